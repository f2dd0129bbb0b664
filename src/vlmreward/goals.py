"""Language-goal families: many goals from a few objects, colours and sentence templates.

Baumli et al. ("Vision-Language Models as a Source of Rewards", arXiv:2312.09187) train one agent
on thousands of language goals generated from templates (Find, Lift, Pick-and-place objects in a
3D house) and reward each goal with the contrastive probability of its sentence against the
*other goals of the family*. This module describes such a family, independent of any simulator
or model:

* a :class:`GoalObject` is a coloured object kind ("red ball");
* a :class:`Goal` is a goal type (``find``, ``lift``, ``place`` or any name a family defines),
  its object, an optional target object (``place``: "put the green box next to the yellow
  ball") and its sentence, phrased with one of the type's templates;
* a :class:`GoalFamily` holds the objects (kinds × colours, minus exclusions) and, per goal type,
  one or several templates; the first template of a type gives the canonical sentence. It
  enumerates its goals (:meth:`GoalFamily.goals`), splits them into training and held-out goals
  by object, kind, colour, template or goal type (:meth:`GoalFamily.split`) and names the
  negatives of a goal for the contrastive reward (:meth:`GoalFamily.negatives_for`).

A family is written in YAML and read with :func:`load_goal_family`::

    name: miniworld_objects
    objects:
      kinds: [box, ball, key]
      colours: [red, green, blue, yellow, purple]
      exclude: []                      # optional: "purple key", ...
    templates:                         # per goal type; the first is the canonical sentence
      find: ["go to the {object}", "find the {object}"]
      lift: ["pick up the {object}", "lift the {object}"]
      place: ["put the {object} next to the {target}", "place the {object} beside the {target}"]
    split:                             # optional: training vs held-out goals
      by: colour                       # object | kind | colour | template | goal_type
      held_out: [purple]

Template placeholders: ``{object}`` ("red ball"), ``{colour}``, ``{kind}``, and for goal types
with a target ``{target}``, ``{target_colour}``, ``{target_kind}``. A goal type whose templates
name a target has one goal per ordered pair of distinct objects; the others one goal per object.

An *app family* (Baumli et al.'s AndroidEnv goals, ``configs/goals/android_apps.yaml``) lists apps
instead of objects; each app is a :class:`GoalObject` of kind ``"app"`` whose name is the app's
display name, with its Android package and launch activity in :attr:`GoalObject.details`::

    name: android_apps
    apps:
      - {name: Calculator, package: com.google.android.calculator, activity: com.android.calculator2.Calculator}
      - {name: Clock, package: com.google.android.deskclock, activity: com.android.deskclock.DeskClock}
    templates:
      open: ["Screenshot of {app} on Android", "Open {app}"]
    split: {by: app, held_out: [Clock]}

Its templates use ``{app}`` (or ``{object}``: the same name) and no target; it splits by ``app``
(``object``), ``template`` or ``goal_type``.

This module imports neither a simulator nor a model, so rewards, environments and the offline
evaluation all use it.

Why one module: a goal family is what its YAML says: the data model (objects, goals, templates,
splits, negatives) and its YAML schema and errors change together.
"""

from __future__ import annotations

import itertools
import os
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np

from vlmreward._yamlfile import read_yaml_file
from vlmreward.errors import InvalidParameterError, VLMRewardError

__all__ = [
    "GoalObject",
    "Goal",
    "GoalFamily",
    "GoalSplit",
    "GoalFamilyError",
    "load_goal_family",
    "parse_goal_family",
    "select_goals",
    "as_goal_family",
    "DEFAULT_GOAL_FAMILY",
    "SPLIT_BY",
    "NEGATIVE_MODES",
    "OBJECT_PLACEHOLDERS",
    "TARGET_PLACEHOLDERS",
    "APP_PLACEHOLDERS",
    "APP_KIND",
]

SPLIT_BY: tuple[str, ...] = ("object", "kind", "colour", "template", "goal_type", "app")
"""What :meth:`GoalFamily.split` can hold out: coloured objects ("red ball"), object kinds
("ball"), colours ("purple"), templates (a template string or ``"TYPE:INDEX"``), goal types, or
apps of an app family (by display name; ``object`` says the same there)."""

NEGATIVE_MODES: tuple[str, ...] = ("all", "same_template", "k_sampled")
"""How :meth:`GoalFamily.negatives_for` picks a goal's negatives (see there)."""

OBJECT_PLACEHOLDERS: tuple[str, ...] = ("object", "colour", "kind")
TARGET_PLACEHOLDERS: tuple[str, ...] = ("target", "target_colour", "target_kind")
APP_PLACEHOLDERS: tuple[str, ...] = ("app", "object")
"""Placeholders of an app family's templates: both say the app's display name ("Calculator")."""
APP_KIND = "app"
"""The :attr:`GoalObject.kind` of an app family's objects."""

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


class GoalFamilyError(VLMRewardError, ValueError):
    """A goal-family file or mapping that cannot be read or is invalid; the message names the key."""


# ---------------------------------------------------------------------------------------------
# goals


@dataclass(frozen=True, order=True)
class GoalObject:
    """A coloured object kind, e.g. ``GoalObject("ball", "red")`` ("red ball"), or an app.

    Attributes:
        kind: the object kind (``"ball"``), or :data:`APP_KIND` for an app.
        colour: the colour (``"red"``); empty for an app.
        label: the name templates say when it is not ``"<colour> <kind>"`` (an app's display name).
        details: further ``(key, value)`` facts, e.g. an app's ``("package", ...)`` and
            ``("activity", ...)`` (see :meth:`app`).
    """

    kind: str
    colour: str
    label: str = ""
    details: tuple[tuple[str, str], ...] = ()

    @classmethod
    def app(cls, name: str, package: str, activity: str = "") -> "GoalObject":
        """An app: display ``name`` ("Calculator"), Android ``package`` and launch ``activity``."""
        return cls(APP_KIND, "", name, (("package", package), ("activity", activity)))

    @property
    def name(self) -> str:
        """``"<colour> <kind>"`` (or the label), as templates say it."""
        return self.label or f"{self.colour} {self.kind}"

    def detail(self, key: str, default: str = "") -> str:
        """The value of ``key`` in :attr:`details` (``default`` if absent)."""
        return dict(self.details).get(key, default)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Goal:
    """One language goal of a family.

    Attributes:
        type: the goal type (``"find"``, ``"lift"``, ``"place"``, ...).
        object: the object the goal is about.
        target: the second object of goal types with a target (``place``), else None.
        sentence: the goal in words, phrased with the type's template number ``template``.
        template: index of the template within its goal type (0: the canonical one).
    """

    type: str
    object: GoalObject
    target: GoalObject | None
    sentence: str
    template: int = 0

    @property
    def key(self) -> str:
        """The task without its phrasing: ``"find:red ball"``, ``"place:green box>yellow ball"``.

        Two phrasings of one task share a key; the contrastive reward never uses one as a
        negative of the other.
        """
        tail = self.object.name if self.target is None else f"{self.object.name}>{self.target.name}"
        return f"{self.type}:{tail}"

    def mentions(self) -> tuple[GoalObject, ...]:
        """The objects the goal names (object, then target)."""
        return (self.object,) if self.target is None else (self.object, self.target)

    def __str__(self) -> str:
        return self.sentence


@dataclass(frozen=True)
class GoalSplit:
    """Training and held-out goals of a family (disjoint; see :meth:`GoalFamily.split`)."""

    train: list[Goal]
    held_out: list[Goal]
    by: str
    held_out_values: list[str]

    def goals(self, which: str) -> list[Goal]:
        """``"train"``, ``"held_out"`` or ``"all"`` (training then held-out goals).

        Raises:
            InvalidParameterError: another name.
        """
        if which == "train":
            return list(self.train)
        if which == "held_out":
            return list(self.held_out)
        if which == "all":
            return list(self.train) + list(self.held_out)
        raise InvalidParameterError(f"goal set {which!r}: use 'train', 'held_out' or 'all'.")


def _placeholders(template: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as err:
        raise ValueError(f"{template!r} is not a valid template ({err}); write placeholders as {{object}}") from None


def _render(template: str, obj: GoalObject, target: GoalObject | None) -> str:
    values = {"object": obj.name, "colour": obj.colour, "kind": obj.kind, "app": obj.name}
    if target is not None:
        values.update(target=target.name, target_colour=target.colour, target_kind=target.kind)
    return " ".join(template.format(**values).split())


# ---------------------------------------------------------------------------------------------
# the family


@dataclass
class GoalFamily:
    """Objects and per-goal-type sentence templates, with the goals they generate.

    Build one with :func:`load_goal_family` (YAML) or :func:`parse_goal_family` (a mapping); the
    constructor trusts its arguments.

    Attributes:
        name: the family's name.
        objects: the objects, in family order (kinds outer, colours inner, exclusions removed).
        templates: ``{goal type: [template, ...]}``; the first template of a type is canonical.
        split_spec: the file's default split ``{"by": ..., "held_out": [...]}``, or None.
    """

    name: str
    objects: list[GoalObject]
    templates: dict[str, list[str]]
    split_spec: dict[str, Any] | None = None
    _goals_cache: dict[Any, list[Goal]] = field(default_factory=dict, repr=False, compare=False)

    # ----------------------------------------------------------------------------- structure
    @property
    def goal_types(self) -> list[str]:
        """Goal types in file order."""
        return list(self.templates)

    @property
    def kinds(self) -> list[str]:
        """Object kinds in family order."""
        return list(dict.fromkeys(o.kind for o in self.objects))

    @property
    def colours(self) -> list[str]:
        """Colours in family order (none in an app family)."""
        return [c for c in dict.fromkeys(o.colour for o in self.objects) if c]

    @property
    def is_app_family(self) -> bool:
        """Whether the family's objects are apps (:meth:`GoalObject.app`)."""
        return bool(self.objects) and all(o.kind == APP_KIND and o.label for o in self.objects)

    def has_target(self, goal_type: str) -> bool:
        """Whether goals of ``goal_type`` name a target object (their templates use ``{target}``)."""
        return any(p in TARGET_PLACEHOLDERS for p in _placeholders(self.templates[goal_type][0]))

    def object_named(self, name: str) -> GoalObject:
        """The object called ``name`` ("red ball").

        Raises:
            InvalidParameterError: no such object; the message lists them.
        """
        for obj in self.objects:
            if obj.name == name:
                return obj
        raise InvalidParameterError(
            f"goal family {self.name!r} has no object {name!r}; it has {', '.join(o.name for o in self.objects)}."
        )

    def phrase(self, goal_type: str, obj: GoalObject, target: GoalObject | None = None, template: int = 0) -> Goal:
        """The goal of ``goal_type`` about ``obj`` (and ``target``), phrased with template ``template``."""
        return Goal(goal_type, obj, target, _render(self.templates[goal_type][template], obj, target), template)

    def rephrase(self, goal: Goal, template: int | str) -> Goal:
        """``goal``'s task phrased with another template: an index (clipped to the type's
        templates, so every type has one) or a template string with the same placeholders."""
        if isinstance(template, str):
            return Goal(goal.type, goal.object, goal.target, _render(template, goal.object, goal.target), -1)
        index = min(int(template), len(self.templates[goal.type]) - 1)
        return self.phrase(goal.type, goal.object, goal.target, index)

    # ----------------------------------------------------------------------------- goals
    def goals(self, types: Sequence[str] | None = None, templates: Literal["canonical", "all"] = "canonical") -> list[Goal]:
        """Every goal of the family, in a fixed order (type, object, target, template).

        Args:
            types: restrict to these goal types (default: all).
            templates: ``"canonical"``: one goal per task, phrased with the type's first template;
                ``"all"``: one goal per task and template.

        Raises:
            InvalidParameterError: an unknown goal type.
        """
        chosen = self._check_types(types)
        cache_key = (tuple(chosen), templates)
        if cache_key not in self._goals_cache:
            out: list[Goal] = []
            for goal_type in chosen:
                indices = range(len(self.templates[goal_type])) if templates == "all" else [0]
                if self.has_target(goal_type):
                    pairs: Iterable[tuple[GoalObject, GoalObject | None]] = itertools.permutations(self.objects, 2)
                else:
                    pairs = ((o, None) for o in self.objects)
                for obj, target in pairs:
                    out.extend(self.phrase(goal_type, obj, target, i) for i in indices)
            self._goals_cache[cache_key] = out
        return list(self._goals_cache[cache_key])

    def _check_types(self, types: Sequence[str] | None) -> list[str]:
        if types is None:
            return self.goal_types
        types = [types] if isinstance(types, str) else list(types)
        unknown = [t for t in types if t not in self.templates]
        if unknown or not types:
            raise InvalidParameterError(
                f"goal family {self.name!r} has no goal type {unknown[0] if unknown else '(none given)'!r}; "
                f"it has {', '.join(self.goal_types)}."
            )
        return types

    def goal(self, text: str | Goal) -> Goal:
        """Look a goal up by sentence (any template's phrasing) or key (``"find:red ball"``).

        Raises:
            InvalidParameterError: no goal of the family has that sentence or key.
        """
        if isinstance(text, Goal):
            return text
        text = " ".join(str(text).split())
        for goal in self.goals(templates="all"):
            if goal.sentence == text or goal.key == text:
                return goal
        raise InvalidParameterError(
            f"{text!r} is not a goal of family {self.name!r}; give a sentence such as "
            f"{self.goals()[0].sentence!r} or a key such as {self.goals()[0].key!r}."
        )

    # ----------------------------------------------------------------------------- splits
    def split(self, by: str | None = None, held_out: Sequence[str] | None = None, types: Sequence[str] | None = None) -> GoalSplit:
        """Split the goals into training and held-out goals.

        A goal is held out when it mentions a held-out value: for ``by="colour"`` an object (or
        target) of a held-out colour; ``"kind"`` an object of a held-out kind; ``"object"`` a
        held-out coloured object ("red ball"; a bare kind such as "ball" is accepted too);
        ``"goal_type"`` a held-out type. These use the canonical phrasing. With
        ``by="template"`` every phrasing is a goal and the held-out templates' phrasings are
        held out (templates given as strings, or ``"TYPE:INDEX"``): the same tasks, new words.

        Args:
            by: one of :data:`SPLIT_BY`; default: the family file's ``split.by``.
            held_out: the held-out values; default: the family file's ``split.held_out``.
            types: restrict to these goal types first.

        Returns:
            :class:`GoalSplit` with non-empty, disjoint ``train`` and ``held_out``.

        Raises:
            InvalidParameterError: no split given and none in the file, an unknown ``by``, a
                held-out value the family does not have, or a split leaving either side empty.
        """
        if by is None and held_out is None:
            if self.split_spec is None:
                raise InvalidParameterError(
                    f"goal family {self.name!r} defines no split; give one, e.g. split(by='colour', held_out=['purple'])."
                )
            by, held_out = self.split_spec["by"], self.split_spec["held_out"]
        elif by is None or held_out is None:
            raise InvalidParameterError("a split needs both 'by' and 'held_out'.")
        if by not in SPLIT_BY:
            raise InvalidParameterError(f"split by {by!r}: use one of {', '.join(SPLIT_BY)}.")
        if self.is_app_family and by in ("kind", "colour"):
            raise InvalidParameterError(f"app family {self.name!r} splits by app, template or goal_type; not by {by}.")
        if by == "app" and not self.is_app_family:
            raise InvalidParameterError(f"split by app: goal family {self.name!r} has objects, not apps; split by object.")
        values = [str(v) for v in ([held_out] if isinstance(held_out, str) else held_out)]
        if not values:
            raise InvalidParameterError("a split needs at least one held-out value.")
        held = self._held_out_predicate(by, values)
        goals = self.goals(types, templates="all" if by == "template" else "canonical")
        train = [g for g in goals if not held(g)]
        test = [g for g in goals if held(g)]
        if not train or not test:
            side = "training" if not train else "held-out"
            raise InvalidParameterError(
                f"splitting goal family {self.name!r} by {by} holding out {values} leaves no {side} goals; "
                "hold out fewer (or more) values."
            )
        return GoalSplit(train, test, by, values)

    def _held_out_predicate(self, by: str, values: list[str]):
        def unknown(value: str, allowed: Iterable[str]) -> InvalidParameterError:
            return InvalidParameterError(
                f"split by {by}: {value!r} is not in goal family {self.name!r}; use one of {', '.join(allowed)}."
            )

        if by == "colour":
            for v in values:
                if v not in self.colours:
                    raise unknown(v, self.colours)
            return lambda g: any(o.colour in values for o in g.mentions())
        if by == "kind":
            for v in values:
                if v not in self.kinds:
                    raise unknown(v, self.kinds)
            return lambda g: any(o.kind in values for o in g.mentions())
        if by in ("object", "app"):
            names = [o.name for o in self.objects]
            for v in values:
                if v not in names and v not in self.kinds:
                    raise unknown(v, names)
            return lambda g: any(o.name in values or o.kind in values for o in g.mentions())
        if by == "goal_type":
            for v in values:
                if v not in self.templates:
                    raise unknown(v, self.goal_types)
            return lambda g: g.type in values
        # template: "TYPE:INDEX" or the template string itself
        held: set[tuple[str, int]] = set()
        refs = [f"{t}:{i}" for t, ts in self.templates.items() for i in range(len(ts))]
        for v in values:
            found = [(t, i) for t, ts in self.templates.items() for i, s in enumerate(ts) if s == v or f"{t}:{i}" == v]
            if not found:
                raise unknown(v, refs + [s for ts in self.templates.values() for s in ts])
            held.update(found)
        return lambda g: (g.type, g.template) in held

    # ----------------------------------------------------------------------------- negatives
    def negatives_for(
        self,
        goal: Goal | str,
        mode: str = "all",
        k: int | None = None,
        rng: np.random.Generator | int | None = None,
        types: Sequence[str] | None = None,
    ) -> list[Goal]:
        """The negatives of ``goal`` for the contrastive reward: other goals of the family.

        Never the goal itself, nor another phrasing of its task (same :attr:`Goal.key`). The
        negatives are phrased with the goal's template index where their type has one (else
        their canonical template).

        Args:
            goal: a goal of the family (or its sentence or key).
            mode: ``"all"``: every other task of the family; ``"same_template"``: the other tasks
                generated from the same template (same goal type and phrasing);
                ``"k_sampled"``: ``k`` tasks sampled without replacement from ``"all"``.
            k: the number of negatives of ``"k_sampled"`` (capped at the number available).
            rng: NumPy generator or seed of ``"k_sampled"`` (default: seed 0).
            types: restrict the candidates to these goal types.

        Returns:
            The negatives in family order (``k_sampled``: in sampled order).

        Raises:
            InvalidParameterError: an unknown mode, ``k_sampled`` without ``k ≥ 1``, a goal not
                in the family, or no negative at all.
        """
        goal = self.goal(goal)
        if mode not in NEGATIVE_MODES:
            raise InvalidParameterError(f"negatives mode {mode!r}: use one of {', '.join(NEGATIVE_MODES)}.")
        candidate_types = self._check_types(types)
        if mode == "same_template":
            candidate_types = [goal.type]
        template = max(goal.template, 0)
        candidates = [
            self.rephrase(g, template) if template else g
            for g in self.goals(candidate_types)
            if g.key != goal.key
        ]
        if mode == "k_sampled":
            if k is None or int(k) < 1:
                raise InvalidParameterError(f"negatives mode 'k_sampled' needs k ≥ 1; got {k}.")
            generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(0 if rng is None else rng)
            picks = generator.choice(len(candidates), size=min(int(k), len(candidates)), replace=False)
            candidates = [candidates[int(i)] for i in picks]
        if not candidates:
            raise InvalidParameterError(
                f"goal {goal.sentence!r} has no negative in family {self.name!r} (mode {mode!r}); the contrastive "
                "reward needs other goals to compare with: add objects or goal types, or use mode 'all'."
            )
        return candidates

    # ----------------------------------------------------------------------------- I/O
    def to_dict(self) -> dict[str, Any]:
        """The family as the YAML mapping :func:`parse_goal_family` reads (objects listed explicitly)."""
        data: dict[str, Any] = {"name": self.name}
        if self.is_app_family:
            data["apps"] = [{"name": o.name, "package": o.detail("package"), "activity": o.detail("activity")} for o in self.objects]
        else:
            kinds, colours = self.kinds, self.colours
            full = [GoalObject(k, c) for k in kinds for c in colours]
            exclude = [o.name for o in full if o not in self.objects]
            data["objects"] = {"kinds": kinds, "colours": colours, "exclude": exclude}
        data["templates"] = {t: list(ts) for t, ts in self.templates.items()}
        if self.split_spec is not None:
            data["split"] = {"by": self.split_spec["by"], "held_out": list(self.split_spec["held_out"])}
        return data

    def save(self, path: str | os.PathLike) -> Path:
        """Write the family as YAML (readable by :func:`load_goal_family`)."""
        import yaml

        path = Path(path)
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True), encoding="utf-8")
        return path


def select_goals(
    family: GoalFamily,
    goal_set: str | None = None,
    split_by: str | None = None,
    held_out: Sequence[str] | None = None,
    goal_types: Sequence[str] | None = None,
    goals: Sequence[str | Goal] | str | Goal | None = None,
) -> tuple[list[Goal], str]:
    """The goals a goal-conditioned environment draws from, and the name of that set.

    Args:
        family: the goal family.
        goal_set: ``"train"``, ``"held_out"`` or ``"all"``; default ``"train"`` when a split is
            known (the family's or ``split_by``/``held_out``), else ``"all"``.
        split_by, held_out: override the family's split (:meth:`GoalFamily.split`).
        goal_types: restrict the goals to these types.
        goals: an explicit list of goals (sentences or keys) instead of ``goal_set`` (then the
            set is called ``"given"``).

    Returns:
        ``(goals, set name)``, the goals non-empty.

    Raises:
        InvalidParameterError: an unknown goal set, goal or type, an invalid split, or no goals.
    """
    if goals is not None:
        chosen = [family.goal(g) for g in ([goals] if isinstance(goals, (str, Goal)) else goals)]
        if goal_types is not None:
            chosen = [g for g in chosen if g.type in goal_types]
        which = "given"
    else:
        has_split = split_by is not None or held_out is not None or family.split_spec is not None
        which = goal_set or ("train" if has_split else "all")
        if which not in ("train", "held_out", "all"):
            raise InvalidParameterError(f"goal_set {which!r}: use 'train', 'held_out' or 'all'.")
        if which == "all" and split_by is None and held_out is None:
            chosen = family.goals(goal_types)
        else:
            chosen = family.split(split_by, held_out, goal_types).goals(which)
    if not chosen:
        raise InvalidParameterError("the goal set is empty; check goals, goal_types and the split.")
    return chosen, which


# ---------------------------------------------------------------------------------------------
# reading and validating


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
                        unknown = [n for n in _placeholders(template) if n not in APP_PLACEHOLDERS]
                        if unknown:
                            raise ValueError(f"templates.{goal_type}[{i}]: an app family's templates use {{app}}; not {{{unknown[0]}}}")
            else:
                for goal_type, templates in self.templates.items():
                    if any("app" in _placeholders(t) for t in templates):
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
                        names = _placeholders(template)
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


def _describe(error: dict[str, Any]) -> str:
    parts: list[str] = []
    for part in error.get("loc", ()):
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
        else:
            parts.append(str(part))
    path = ".".join(parts) or "the file"
    kind = error.get("type", "")
    msg = str(error.get("msg", "")).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        return f"{path}: unknown key"
    if kind == "missing":
        return f"{path}: required key is missing"
    if kind == "literal_error":
        return f"{path}: {error.get('input')!r} is not allowed; use one of {(error.get('ctx') or {}).get('expected', '')}"
    return f"{path}: {msg}"


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
        problems = "; ".join(_describe(e) for e in err.errors())
        raise GoalFamilyError(f"invalid {source}: {problems}.") from None
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
