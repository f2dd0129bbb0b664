"""Self-contained reports: one HTML file with the plots embedded (base64 ``data:`` URIs) and the
metrics as tables, readable offline and safe to mail or attach; and Markdown tables for sweeps.

* :func:`write_report`: the report of ``vlmreward evaluate`` (from its ``metrics.json``).
* :func:`write_sweep_report`: the report of ``vlmreward sweep``.
* :func:`markdown_table`, :func:`format_number`: plain-text tables.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from vlmreward._html import format_number, image_data_uri, page, table
from vlmreward._html import notes as note_paragraphs
from vlmreward._paths import write_output_text

__all__ = ["write_report", "write_sweep_report", "markdown_table", "format_number", "image_data_uri", "METRIC_COLUMNS"]

METRIC_COLUMNS: list[tuple[str, str]] = [
    ("average_precision", "AP"),
    ("roc_auc", "ROC-AUC"),
    ("best_f1", "best F1"),
    ("best_threshold", "threshold (best F1)"),
    ("epic_distance", "EPIC distance"),
    ("epic_distance_to_label", "EPIC to label"),
    ("pearson", "Pearson"),
    ("spearman", "Spearman"),
    ("threshold_at_precision", "threshold (target precision)"),
    ("voc", "VOC"),
    ("policy_ranking_tau", "policy ranking τ"),
    ("instruction_mismatch", "instruction mismatch"),
]
"""``(key, heading)`` of the metric columns, in table order."""

_CAPTIONS = {
    "landscape": "Reward landscape: the reward against the labelled state variable, one curve per setting "
    "(each min-max normalised over the dataset and averaged over frames sharing the x value; with one or two "
    "curves, a band shows their min–max; shaded: goal states; dashed: the reference reward).",
    "pr_curve": "Precision-recall curves of the reward as a goal detector (dot: the best-F1 threshold).",
    "reward_by_label": "Reward of goal frames (green) and other frames (red).",
    "frames": "The frames the first setting rewards most and least (✓ goal frame, ✗ not).",
    "scaling": "Average precision and EPIC distance against the model's parameter count.",
    "prompts": "Per prompt set: the best AP and the lowest EPIC distance over the reward settings, per model.",
}

def _figures(images: Mapping[str, Path]) -> str:
    parts = []
    for kind, path in images.items():
        caption = _CAPTIONS.get(kind, kind)
        parts.append(
            f'<figure><img alt="{html.escape(kind)}" src="{image_data_uri(path)}">'
            f"<figcaption>{html.escape(caption)} <code>{html.escape(Path(path).name)}</code></figcaption></figure>"
        )
    return "\n".join(parts)


def write_report(path: str | os.PathLike, metrics: Mapping[str, Any], images: Mapping[str, Path]) -> Path:
    """Write the HTML report of an evaluation.

    Args:
        path: the ``.html`` file to write.
        metrics: the content of ``metrics.json`` (:func:`vlmreward.eval.outputs.evaluate_dataset`).
        images: ``{kind: PNG path}``; kinds ``landscape``, ``pr_curve``, ``reward_by_label``, ``frames``.

    Returns:
        ``path``.
    """
    path = Path(path)
    ds, model, prompts = metrics["dataset"], metrics["model"], metrics["prompts"]
    goal = " | ".join(prompts["goal"])
    parts = []
    rows = [
        ("environment", ds["env_id"]),
        ("dataset", ds["path"]),
        ("frames", f"{ds['frames']} at {ds['render_size']['width']}x{ds['render_size']['height']} pixels"),
        ("policy", (ds.get("policy") or {}).get("kind", "?")),
        ("label", f"{ds['label']}: {ds.get('label_definition') or ''} ({ds['positives']} positive frames)" if ds["label"] else "none"),
        ("reference reward", f"{ds['reference']}: {ds.get('reference_definition') or ''}"),
        ("model", "none (a model-free reward)" if model is None else
                  f"{model['name']} ({model['backend']}{'' if model.get('runtime', 'torch') == 'torch' else ' on ' + model['runtime']}, {format_number(model['parameters'])} parameters, "
                  f"{model['image_size']}x{model['image_size']} input, resize={model['resize']})"),
        ("goal prompt(s)", goal),
    ]
    if prompts.get("baseline"):
        rows.append(("baseline prompt(s)", " | ".join(prompts["baseline"])))
    if prompts.get("negatives"):
        rows.append(("negative prompt(s)", " | ".join(prompts["negatives"])))
    parts.append("<h2>Set-up</h2>" + table(None, rows))
    if metrics.get("notes"):
        parts.append("<h2>Notes</h2>" + note_paragraphs(metrics["notes"]))
    headers = ["setting"] + [h for _, h in METRIC_COLUMNS]
    table_rows = [[r["name"]] + [r.get(k) for k, _ in METRIC_COLUMNS] for r in metrics["results"]]
    parts.append(
        "<h2>Metrics</h2>"
        + table(headers, table_rows, [False] + [True] * len(METRIC_COLUMNS))
        + "<p>AP, ROC-AUC and F1 treat the reward as a detector of the label; the EPIC distance (0 = the same "
        "reward up to shaping and scale, 0.71 = unrelated, 1 = opposite) and the correlations compare it with "
        "the reference reward; 'EPIC to label' compares it with the 0/1 label.</p>"
    )
    notes = [f"{r['name']}: {n}" for r in metrics["results"] for n in r.get("notes", [])]
    if notes:
        parts.append(note_paragraphs(notes))
    grouped = [
        [r["name"], group, g.get("frames"), g.get("positives"), g.get("average_precision"), g.get("roc_auc"), g.get("best_f1")]
        for r in metrics["results"] for group, g in (r.get("groups") or {}).items()
    ]
    if grouped:
        by = html.escape(str(metrics.get("group_by") or "group"))
        parts.append(
            f"<h2>Metrics per {by}</h2>"
            + table(["setting", by, "frames", "positives", "AP", "ROC-AUC", "best F1"], grouped, [False, False] + [True] * 5)
        )
    episodic = [
        [r["name"], e["episodes"], e["positives"], e["average_precision"], e["roc_auc"], e["epic_distance"]]
        for r in metrics["results"] for e in [r.get("episodes")] if e
    ]
    if episodic:
        rule = html.escape(next(r["episodes"]["success_rule"] for r in metrics["results"] if r.get("episodes")))
        parts.append(
            "<h2>Per episode</h2>"
            + table(["setting", "episodes", "successes", "AP", "ROC-AUC", "EPIC to return"], episodic, [False] + [True] * 5)
            + f"<p>The episode's score against its success ({rule}); the EPIC distance compares the episode "
            "scores with the episodes' ground-truth returns. The filmstrips show the highest and lowest scored episodes.</p>"
        )
    quality = [
        [r["name"], q["episodes"], q["voc_episodes"], q["voc"], q["policy_ranking_tau"], q["policy_ranking_success_tau"],
         q["instruction_mismatch"]]
        for r in metrics["results"] for q in [r.get("quality")] if q
    ]
    if quality:
        parts.append(
            "<h2>Reward quality over episodes</h2>"
            + table(["setting", "episodes", "successful", "VOC", "τ vs return", "τ vs success", "instruction mismatch"],
                    quality, [False] + [True] * 6)
            + "<p>VOC: Spearman correlation of the per-frame reward with the frame index, averaged over successful "
            "episodes (GVL's value-order correlation; 1 = rises at every step). Policy ranking: Kendall τ between the "
            "episodes' returns and their ground-truth returns or success. Instruction mismatch: the fraction of "
            "(episode, other instruction) pairs in which the episode scores higher under its own instruction "
            "(0.5 = the reward ignores the instruction; given with --mismatch).</p>"
        )
    calibration = metrics.get("calibration") or {}
    for key, c in calibration.items():  # PARAM_by_epic: the sweep parameter's value chosen by EPIC distance
        param = key.removesuffix("_by_epic")
        if key.endswith("_by_epic") and isinstance(c, dict) and c.get(param) is not None:
            symbol = html.escape(str(c.get("symbol", param)))
            parts.append(
                f"<p><b>{symbol} by EPIC distance:</b> {symbol} = {format_number(c[param])} is closest to "
                f"<code>{html.escape(str(c['reference']))}</code> (EPIC distance {format_number(c['epic_distance'])}).</p>"
            )
    parts.append("<h2>Plots</h2>" + _figures(images))
    from vlmreward import __version__

    write_output_text(path, page(f"Reward evaluation: {goal}", "\n".join(parts), metrics.get("vlmreward_version", __version__)))
    return path


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (``|`` in cells escaped)."""
    def cell(value: Any) -> str:
        return format_number(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_sweep_report(
    path: str | os.PathLike,
    summary: Mapping[str, Any],
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    images: Mapping[str, Path],
) -> Path:
    """Write the HTML report of a sweep: set-up, the results table and the plots.

    Args:
        path: the ``.html`` file.
        summary: ``{"dataset", "env_id", "frames", "label", "reference", "models": [...], "prompt_sets": {...}, "notes": [...]}``.
        headers, rows: the results table (as in ``results.csv``).
        images: ``{kind: PNG path}``; kinds ``scaling``, ``prompts``.
    """
    path = Path(path)
    parts = [
        "<h2>Set-up</h2>"
        + table(
            None,
            [
                ("dataset", f"{summary['dataset']} ({summary['env_id']}, {summary['frames']} frames)"),
                ("label", summary.get("label") or "none"),
                ("reference reward", summary.get("reference")),
                ("models", ", ".join(f"{m['name']} ({format_number(m['parameters'])} parameters, image pass: "
                                     f"{'cached' if m['cache_hit'] else 'computed'})" for m in summary["models"])),
            ]
            + [(f"prompt set {name}", "; ".join(f"{k}: {' | '.join(v) if isinstance(v, list) else v}" for k, v in spec.items()))
               for name, spec in summary["prompt_sets"].items()],
        )
    ]
    if summary.get("notes"):
        parts.append("<h2>Notes</h2>" + note_paragraphs(summary["notes"]))
    numeric = [isinstance(c, (int, float)) and not isinstance(c, bool) for c in rows[0]] if rows else None
    parts.append("<h2>Results</h2>" + table(headers, rows, numeric))
    parts.append("<h2>Plots</h2>" + _figures(images))
    from vlmreward import __version__

    write_output_text(path, page(f"Sweep: {summary['dataset']}", "\n".join(parts), __version__))
    return path
