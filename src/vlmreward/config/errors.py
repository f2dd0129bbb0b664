"""One translation of pydantic's validation errors into lines that name the key path and what is
allowed there, for every schema vlmreward reads (run configs, reward parameters, goal families,
Ray and emulator sections).

Each problem becomes ``KEY.PATH: what is wrong``: ``reward.alpha: must be in [0, 1]; got 1.5``,
``goals.bogus: unknown key; allowed keys in goals: family, split, ...``, ``model.dtype: 'int8' is
not allowed; use one of ...``. The path is walked through the schema (``root``), so a
discriminated union's tag (``reward.<kind>.alpha``) and the member names pydantic adds to
unions (``str``, ``list[str]``) do not appear, and an unknown key lists the keys of the section it
was found in.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any, Optional, Union

from pydantic import BaseModel, ValidationError

from vlmreward.errors import VLMRewardError

__all__ = ["ConfigError", "describe_error", "describe_errors"]


class ConfigError(VLMRewardError, ValueError):
    """A configuration that cannot be read or is invalid; the message names the key and what is allowed."""


_TYPE_NAME = re.compile(r"^(str|int|float|bool|none|list\[.*\]|dict\[.*\]|tuple\[.*\]|[a-z-]+\[.*\])$")
"""Location parts pydantic adds for union members and validators, not keys."""


def _members(annotation: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return tuple(m for a in typing.get_args(annotation) for m in _members(a))
    return (annotation,)


def _section(field: Any) -> Any:
    """What a field holds: a model class, ``{tag: model}`` for a discriminated union, or None."""
    models = [m for m in _members(field.annotation) if isinstance(m, type) and issubclass(m, BaseModel)]
    discriminator = getattr(field, "discriminator", None)
    if isinstance(discriminator, str) and models:
        tags: dict[str, Any] = {}
        for m in models:
            tag_field = m.model_fields.get(discriminator)
            for tag in typing.get_args(tag_field.annotation) if tag_field is not None else ():
                tags[str(tag)] = m
        return tags
    return models[0] if len(models) == 1 else None


def _walk(root: Optional[type[BaseModel]], loc: tuple[Any, ...]) -> tuple[str, Any, bool]:
    """``(dotted path, the model holding the last key or None, the location names a whole section)``."""
    parts: list[str] = []
    holder: Any = root
    field_level = False
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(holder, dict) and isinstance(part, str) and part in holder:  # a discriminated union's tag
            holder = holder[part]
            field_level = False
            continue
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
            continue
        if isinstance(part, str) and _TYPE_NAME.match(part) and not (isinstance(holder, type) and part in holder.model_fields):
            continue
        parts.append(str(part))
        if isinstance(holder, type) and issubclass(holder, BaseModel):
            field = holder.model_fields.get(str(part))
            field_level = field is not None
            if not last:
                holder = _section(field) if field is not None else None
        else:
            field_level = True
            if not last:
                holder = None
    whole = not loc or (isinstance(holder, type) and not field_level) or isinstance(holder, dict)
    return ".".join(parts), holder, whole


def describe_error(
    error: dict[str, Any], root: Optional[type[BaseModel]] = None, *, prefix: str = "", unknown: Optional[str] = None,
    kinds: str = "kind",
) -> str:
    """One line for one of pydantic's ``err.errors()``.

    Args:
        error: the error dict.
        root: the schema validated (paths are walked through it); None: the location as it is.
        prefix: put before the path (``"emulator."``).
        unknown: the text for a key the schema does not have (default: ``unknown key; allowed
            keys in SECTION: ...``).
        kinds: what a discriminated union's tag names (``"reward kind"``).
    """
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    path, holder, whole = _walk(root, loc)
    path = prefix + path if path else prefix.rstrip(".")
    value = error.get("input")
    msg = str(error.get("msg", "")).removeprefix("Value error, ")
    where = path or "config"
    if kind == "extra_forbidden":
        if unknown is not None:
            return f"{where}: {unknown}"
        if isinstance(holder, type) and issubclass(holder, BaseModel):
            section = ".".join(path.split(".")[:-1]) or "the top level"
            return f"{where}: unknown key; allowed keys in {section}: {', '.join(holder.model_fields)}"
        return f"{where}: unknown key"
    if kind == "missing":
        return f"{where}: required key is missing"
    if kind == "literal_error":
        return f"{where}: {value!r} is not allowed; use one of {ctx.get('expected', '')}"
    if kind == "union_tag_invalid":
        return f"{where}.kind: {ctx.get('tag')!r} is not a {kinds}; use one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        tags = ", ".join(map(repr, holder)) if isinstance(holder, dict) else "see the documentation"
        return f"{where}.kind: missing; use one of {tags}"
    if kind == "value_error":
        return msg if whole else f"{where}: {msg}"  # a model validator's message names its keys itself
    if kind == "too_short":
        return f"{where}: must hold at least {ctx.get('min_length', 1)} item(s); got {value!r}"
    if kind == "string_pattern_mismatch":
        return f"{where}: {value!r} does not match the pattern {ctx.get('pattern')}"
    if not path:
        return msg
    return f"{where}: {msg.rstrip('.')}; got {value!r}"


def describe_errors(err: ValidationError, root: Optional[type[BaseModel]] = None, **options: Any) -> str:
    """Every problem of ``err``, one :func:`describe_error` each, joined by ``"; "``."""
    return "; ".join(dict.fromkeys(describe_error(e, root, **options) for e in err.errors()))
