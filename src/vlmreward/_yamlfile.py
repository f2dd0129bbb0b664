"""Reading the YAML files users write (run configs, goal families, prompt sets), with clear errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["read_yaml_file"]


def read_yaml_file(path: str | os.PathLike, what: str, error: type[Exception], missing_hint: str = "") -> Any:
    """The YAML document in ``path`` (``yaml.safe_load``: None for an empty file).

    Args:
        path: the file.
        what: how messages name it (``"config file"``, ``"goal family file"``).
        error: the exception class raised, with one message naming the file.
        missing_hint: appended to the message for a missing file (``"; e.g. configs/cartpole.yaml"``).

    Raises:
        error: the file does not exist or cannot be read, or is not valid YAML (the message
            gives the line and the parser's complaint).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {str(path)!r} does not exist{missing_hint}.")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or " ".join(str(err).split())
        raise error(f"{what} {str(path)!r} is not valid YAML{where}: {problem}.") from err
    except (OSError, UnicodeDecodeError) as err:
        raise error(f"cannot read {what} {str(path)!r}: {err}.") from err
