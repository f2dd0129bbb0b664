"""The parts of a goal family: coloured objects (or apps), goals, and a train/held-out split
(:mod:`vlmreward.goals`), with the placeholders their templates may use."""

from __future__ import annotations

import string
from dataclasses import dataclass

from vlmreward.errors import InvalidParameterError, VLMRewardError

__all__ = [
    "GoalObject", "Goal", "GoalSplit", "GoalFamilyError", "SPLIT_BY", "NEGATIVE_MODES", "OBJECT_PLACEHOLDERS",
    "TARGET_PLACEHOLDERS", "APP_PLACEHOLDERS", "APP_KIND", "placeholders", "render",
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


def placeholders(template: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as err:
        raise ValueError(f"{template!r} is not a valid template ({err}); write placeholders as {{object}}") from None


def render(template: str, obj: GoalObject, target: GoalObject | None) -> str:
    values = {"object": obj.name, "colour": obj.colour, "kind": obj.kind, "app": obj.name}
    if target is not None:
        values.update(target=target.name, target_colour=target.colour, target_kind=target.kind)
    return " ".join(template.format(**values).split())
