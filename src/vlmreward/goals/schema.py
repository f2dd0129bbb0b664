"""The YAML format of a goal family (:mod:`vlmreward.goals`'s docstring shows it): its pydantic
schema, reading a file or mapping, and the default family."""

from __future__ import annotations

import os
import re
from typing import Any, Literal, Mapping

from vlmreward._yamlfile import read_yaml_file
from vlmreward.errors import InvalidParameterError
from vlmreward.goals.family import GoalFamily
from vlmreward.goals.objects import (
    APP_PLACEHOLDERS, OBJECT_PLACEHOLDERS, TARGET_PLACEHOLDERS, GoalFamilyError, GoalObject, placeholders,
)

__all__ = ["DEFAULT_GOAL_FAMILY", "parse_goal_family", "load_goal_family", "as_goal_family"]

DEFAULT_GOAL_FAMILY: dict[str, Any] = {
    "name": "miniworld_objects",
    "objects": {"kinds": ["box", "ball", "key"], "colours": ["red", "green", "blue", "yellow", "purple"], "exclude": []},
    "templates": {
        "find": ["go to the {object}", "find the {object}"],
        "lift": ["pick up the {object}", "lift the {object}"],
        "place": ["put the {object} next to the {target}", "place the {object} beside the {target}"],
    },
    "split": {"by": "colour", "held_out": ["purple"]},
}
"""The family of ``configs/goals/miniworld_objects.yaml``: MiniWorld's box, ball and key in five
of its six colours (grey is left out: the walls are grey), 15 Find, 15 Lift and 210
Pick-and-place goals; purple goals held out."""


_PACKAGE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+")
_ACTIVITY = re.compile(r"\.?[A-Za-z][A-Za-z0-9_$]*(\.[A-Za-z][A-Za-z0-9_$]*)*")


def _family_schema():
    """The pydantic models of the file format (built lazily: pydantic is only needed to read files)."""
    from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

    class _Strict(BaseModel):
        model_config = ConfigDict(extra="forbid")

    class Objects(_Strict):
        kinds: list[str] = Field(min_length=1)
        colours: list[str] = Field(min_length=1)
        exclude: list[str] = Field(default_factory=list)

        @field_validator("kinds", "colours")
        @classmethod
        def _words(cls, value: list[str]) -> list[str]:
            cleaned = [" ".join(v.split()) for v in value]
            if any(not v for v in cleaned):
                raise ValueError("names must be non-empty")
            if len(set(cleaned)) != len(cleaned):
                raise ValueError(f"names must be distinct; got {value}")
            return cleaned

        @model_validator(mode="after")
        def _exclusions(self) -> "Objects":
            names = {f"{c} {k}" for k in self.kinds for c in self.colours}
            for item in self.exclude:
                if item not in names:
                    raise ValueError(f"exclude: {item!r} is not one of the objects (\"<colour> <kind>\", e.g. {sorted(names)[0]!r})")
            if len(names - set(self.exclude)) < 2:
                raise ValueError("a family needs at least two objects (one goal and one negative)")
            return self

    class App(_Strict):
        name: str
        package: str
        activity: str = ""

        @field_validator("name")
        @classmethod
        def _name(cls, value: str) -> str:
            cleaned = " ".join(value.split())
            if not cleaned:
                raise ValueError("an app needs a display name")
            return cleaned

        @field_validator("package")
        @classmethod
        def _package(cls, value: str) -> str:
            if not _PACKAGE.fullmatch(value):
                raise ValueError(f"{value!r} is not an Android package name such as com.android.settings")
            return value

        @field_validator("activity")
        @classmethod
        def _activity(cls, value: str) -> str:
            if value and not _ACTIVITY.fullmatch(value):
                raise ValueError(f"{value!r} is not an activity class such as .Settings or com.android.settings.Settings")
            return value

    class Split(_Strict):
        by: Literal["object", "kind", "colour", "template", "goal_type", "app"]
        held_out: list[str] = Field(min_length=1)

        @field_validator("held_out", mode="before")
        @classmethod
        def _one_or_many(cls, value: Any) -> Any:
            return [value] if isinstance(value, str) else value

    class Family(_Strict):
        name: str = "goals"
        objects: Objects | None = None
        apps: list[App] | None = None
        templates: dict[str, list[str]] = Field(min_length=1)
        split: Split | None = None

        @model_validator(mode="after")
        def _objects_or_apps(self) -> "Family":
            if self.objects is None and self.apps is None:
                raise ValueError("a family needs objects: (kinds and colours) or apps: (name, package, activity)")
            if self.objects is not None and self.apps is not None:
                raise ValueError("give either objects: (kinds and colours) or apps: (name, package, activity), not both")
            if self.apps is not None:
                names = [a.name for a in self.apps]
                if len(names) < 2:
                    raise ValueError("apps: a family needs at least two apps (one goal and one negative)")
                for what, values in (("names", names), ("packages", [a.package for a in self.apps])):
                    if len(set(values)) != len(values):
                        raise ValueError(f"apps: {what} must be distinct; got {values}")
                for goal_type, templates in self.templates.items():
                    for i, template in enumerate(templates):
                        unknown = [n for n in placeholders(template) if n not in APP_PLACEHOLDERS]
                        if unknown:
                            raise ValueError(f"templates.{goal_type}[{i}]: an app family's templates use {{app}}; not {{{unknown[0]}}}")
            else:
                for goal_type, templates in self.templates.items():
                    if any("app" in placeholders(t) for t in templates):
                        raise ValueError(f"templates.{goal_type}: {{app}} is for app families (apps:); use {{object}}")
            return self

        @field_validator("templates", mode="before")
        @classmethod
        def _one_or_many(cls, value: Any) -> Any:
            if isinstance(value, Mapping):
                return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
            return value

        @field_validator("templates")
        @classmethod
        def _templates(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
            for goal_type, templates in value.items():
                if not str(goal_type).isidentifier():
                    raise ValueError(f"goal type {goal_type!r} must be a name such as find, lift or place")
                if not templates:
                    raise ValueError(f"{goal_type}: give at least one template")
                kinds_of_target = set()
                for i, template in enumerate(templates):
                    where = f"{goal_type}[{i}]"
                    try:
                        names = placeholders(template)
                    except ValueError as err:
                        raise ValueError(f"{where}: {err}") from None
                    known = OBJECT_PLACEHOLDERS + TARGET_PLACEHOLDERS + ("app",)
                    unknown = [n for n in names if n not in known]
                    if unknown:
                        raise ValueError(
                            f"{where}: unknown placeholder {{{unknown[0]}}}; use "
                            + ", ".join(f"{{{p}}}" for p in known)
                        )
                    if not any(n in OBJECT_PLACEHOLDERS + ("app",) for n in names):
                        raise ValueError(
                            f"{where}: {template!r} names no object; use {{object}} (or {{colour}} and {{kind}}; {{app}} for apps)"
                        )
                    kinds_of_target.add(any(n in TARGET_PLACEHOLDERS for n in names))
                if len(kinds_of_target) > 1:
                    raise ValueError(f"{goal_type}: either every template names a {{target}} or none does")
            return value

    return Family


def parse_goal_family(data: Any, source: str = "goal family") -> GoalFamily:
    """Validate a goal-family mapping (as read from YAML; format in the module docstring).

    Raises:
        GoalFamilyError: not a mapping, an unknown or missing key, an invalid template, a
            split that names values the family does not have; the message names the key.
    """
    from pydantic import ValidationError

    if not isinstance(data, Mapping):
        raise GoalFamilyError(
            f"{source} must be a mapping with objects: (or apps:) and templates: keys; got {type(data).__name__}."
        )
    try:
        parsed = _family_schema().model_validate(dict(data))
    except ValidationError as err:
        from vlmreward.config.errors import describe_errors

        raise GoalFamilyError(f"invalid {source}: {describe_errors(err, _family_schema())}.") from None
    if parsed.apps is not None:
        objects = [GoalObject.app(a.name, a.package, a.activity) for a in parsed.apps]
    else:
        excluded = set(parsed.objects.exclude)
        objects = [GoalObject(k, c) for k in parsed.objects.kinds for c in parsed.objects.colours if f"{c} {k}" not in excluded]
    split = None if parsed.split is None else {"by": parsed.split.by, "held_out": list(parsed.split.held_out)}
    family = GoalFamily(parsed.name, objects, {t: list(ts) for t, ts in parsed.templates.items()}, split)
    if split is not None:
        try:
            family.split()
        except InvalidParameterError as err:
            raise GoalFamilyError(f"invalid {source}: split.held_out: {err}") from None
    return family


def load_goal_family(path: str | os.PathLike) -> GoalFamily:
    """Read a goal family from a YAML file.

    Raises:
        GoalFamilyError: a missing or unreadable file, invalid YAML, or an invalid family (see
            :func:`parse_goal_family`).
    """
    data = read_yaml_file(path, "goal family file", GoalFamilyError, "; e.g. configs/goals/miniworld_objects.yaml")
    return parse_goal_family(data, f"goal family file {str(path)!r}")


def as_goal_family(family: GoalFamily | Mapping[str, Any] | str | os.PathLike | None) -> GoalFamily:
    """A :class:`GoalFamily` from a family, a mapping, a YAML path, or None (:data:`DEFAULT_GOAL_FAMILY`)."""
    if isinstance(family, GoalFamily):
        return family
    if family is None:
        return parse_goal_family(DEFAULT_GOAL_FAMILY, "the default goal family")
    if isinstance(family, Mapping):
        return parse_goal_family(family)
    return load_goal_family(family)
