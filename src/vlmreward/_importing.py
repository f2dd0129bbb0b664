"""``"package.module:attr.path"`` references to Python objects (config factories, reward recipes)."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["import_object"]


def import_object(reference: str) -> Any:
    """The object ``"package.module:attr"`` names (``attr`` may be dotted: ``"mod:Class.method"``).

    Raises:
        ValueError: ``reference`` is not of the form ``"package.module:attr"``.
        ImportError: the module cannot be imported.
        AttributeError: the module has no such attribute.
    """
    module_name, sep, attr = reference.partition(":")
    if not (sep and module_name and attr):
        raise ValueError(f"{reference!r} is not of the form 'package.module:attr'")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    return target
