"""Self-contained HTML pages: the style, tables and embedded images shared by every report
(``vlmreward evaluate``/``sweep``'s in :mod:`vlmreward.eval.report`, a training run's in
:mod:`vlmreward.rl.report`). Pages embed their images as base64 ``data:`` URIs, so one file holds
everything and reads offline."""

from __future__ import annotations

import base64
import html
import math
import os
from pathlib import Path
from typing import Any, Sequence

__all__ = ["format_number", "image_data_uri", "table", "page", "notes"]

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #555; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.4em 0.8em; margin: 0.4em 0; }
code { background: #f5f5f5; padding: 0 0.2em; }
footer { margin-top: 2em; font-size: 0.85em; color: #777; }
"""


def format_number(value: Any, digits: int = 4) -> str:
    """A metric for a table: ``digits`` significant digits, ``—`` for None/NaN, ints as they are."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.{digits}g}"
    return str(value)


def image_data_uri(path: str | os.PathLike) -> str:
    """``data:image/png;base64,…`` of a PNG file."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def table(headers: Sequence[str] | None, rows: Sequence[Sequence[Any]], numeric: Sequence[bool] | None = None) -> str:
    """An HTML table; ``headers=None`` for a key-value table without a header row."""
    width = len(headers) if headers else (len(rows[0]) if rows else 0)
    numeric = numeric or [False] * width
    if headers is None:
        body = "".join(
            f"<tr><th>{html.escape(format_number(row[0]))}</th>"
            + "".join(f"<td>{html.escape(format_number(c))}</td>" for c in row[1:]) + "</tr>"
            for row in rows
        )
        return f"<table><tbody>{body}</tbody></table>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class=\"num\">{html.escape(format_number(c))}</td>" if n else f"<td>{html.escape(format_number(c))}</td>"
            for c, n in zip(row, numeric)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, body: str, version: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n{body}\n"
        f"<footer>Written by vlmreward {html.escape(version)}. Everything shown is in this one file.</footer>"
        "</body></html>\n"
    )


def notes(items: Sequence[str]) -> str:
    return "".join(f'<p class="note">{html.escape(n)}</p>' for n in items)
