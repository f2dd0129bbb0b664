"""A goal family (:mod:`vlmreward.goals`): its goals, their sentences, the train/held-out split
and each goal's negatives for the contrastive reward."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import numpy as np

from vlmreward.errors import InvalidParameterError
from vlmreward.goals.objects import (
    APP_KIND, NEGATIVE_MODES, SPLIT_BY, TARGET_PLACEHOLDERS, Goal, GoalObject, GoalSplit, placeholders, render,
)

__all__ = ["GoalFamily", "select_goals"]


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
        return any(p in TARGET_PLACEHOLDERS for p in placeholders(self.templates[goal_type][0]))

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
        return Goal(goal_type, obj, target, render(self.templates[goal_type][template], obj, target), template)

    def rephrase(self, goal: Goal, template: int | str) -> Goal:
        """``goal``'s task phrased with another template: an index (clipped to the type's
        templates, so every type has one) or a template string with the same placeholders."""
        if isinstance(template, str):
            return Goal(goal.type, goal.object, goal.target, render(template, goal.object, goal.target), -1)
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
