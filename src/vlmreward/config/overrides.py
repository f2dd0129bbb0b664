"""``--set KEY=VALUE`` overrides and path resolution of config mappings (before validation).

:func:`apply_overrides` sets dotted keys (``reward.alpha=0.5``, ``model=NAME``) with YAML values;
:func:`resolve_config_paths` makes the relative paths of a config absolute against the folder
they are relative to (the config file's for its own values, the current directory for ``--set``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable

import yaml

from vlmreward.config.errors import ConfigError

__all__ = ["parse_value", "apply_overrides", "resolve_config_paths", "MODEL_PATH_KEYS"]


_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def parse_value(text: str) -> Any:
    """A ``--set`` value: YAML (``0.5``, ``true``, ``[1, 2]``), with ``1e-3`` read as a number."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value)
    return value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``"KEY=VALUE"`` overrides to a config mapping (a copy; the input is unchanged).

    Raises:
        ConfigError: an override without ``=``, an empty key, or a key below a non-mapping value.
    """
    import copy

    out = copy.deepcopy(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set expects KEY=VALUE with a dotted KEY (e.g. --set reward.alpha=0.5); got {item!r}.")
        value = parse_value(text)
        parts = key.split(".")
        if parts == ["model"] and not isinstance(value, dict):
            parts = ["model", "name"]  # --set model=NAME
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif part == "model" and i == 0 and isinstance(child, str):
                child = node[part] = {"name": child}
            elif not isinstance(child, dict):
                here = ".".join(parts[: i + 1])
                raise ConfigError(f"--set {key}: {here} is {child!r}, not a section with keys.")
            node = child
        node[parts[-1]] = value
    return out


MODEL_PATH_KEYS: tuple[tuple[str, ...], ...] = (("model", "name"), ("model", "checkpoint"))
"""The ``model`` section's keys that may name a local file or directory."""


def resolve_config_paths(data: dict[str, Any], base: Path, keys: Iterable[tuple[str, ...]] = MODEL_PATH_KEYS) -> dict[str, Any]:
    """``data`` with each relative path at ``keys`` (key paths) that exists under ``base`` made absolute.

    A config's paths are read relative to the config file's folder, and ``--set`` paths relative
    to the current directory; a value that names nothing there (a hub id such as
    ``openai/clip-vit-base-patch32``, ``open_clip:...``, a path relative to the current directory
    in a config file) is left as it is, so the current directory still serves as before. The run
    directory's ``config.yaml`` then holds absolute paths, and ``--resume`` works from anywhere.
    """
    out = dict(data)
    if isinstance(out.get("model"), (str, os.PathLike)):
        out["model"] = {"name": out["model"]}
    for key_path in keys:
        parent: Any = out
        for key in key_path[:-1]:
            if not isinstance(parent.get(key), dict):
                break
            parent[key] = dict(parent[key])
            parent = parent[key]
        else:
            value = parent.get(key_path[-1])
            if isinstance(value, (str, os.PathLike)) and str(value) and not os.path.isabs(value) and ":" not in str(value):
                candidate = base / value
                if candidate.exists():
                    parent[key_path[-1]] = str(candidate.resolve())
    return out
