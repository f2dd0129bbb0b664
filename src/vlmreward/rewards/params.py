"""Field types of reward parameters (pydantic), shared by every reward kind's ``Params`` model.

A reward kind declares its parameters as a :class:`RewardParams` subclass; run configs, the
command line and error messages are generated from it (:mod:`vlmreward.rewards.registry`). The
field types are :mod:`vlmreward.config.fields`' (re-exported here, where reward kinds find them).
"""

from __future__ import annotations

import string
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from vlmreward.config.fields import Count, FiniteFloat, PositiveFloat, Prompt, Prompts, UnitFloat

__all__ = [
    "RewardParams", "NoParams", "UnitFloat", "PositiveFloat", "FiniteFloat", "Count", "Prompt", "Prompts", "check_placeholder",
]


class RewardParams(BaseModel):
    """Base of a reward kind's parameters: unknown keys are errors, defaults are validated."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    offline_only: ClassVar[tuple[str, ...]] = ()
    """Parameters only an offline evaluation reads (``evaluate --param``); a training run refuses them when set."""


class NoParams(RewardParams):
    """A reward kind without parameters."""


def check_placeholder(template: str, field: str, example: str, what: str = "template") -> str:
    """``template`` if it holds exactly one ``{field}`` placeholder and no other (a question or prompt template).

    Raises:
        ValueError: no ``{field}``, another ``{name}``, or broken braces (the message shows ``example``).
    """
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as err:
        raise ValueError(f"{what} {template!r} has broken braces ({err}); write {{{field}}} where the {field} goes") from None
    if fields != [field]:
        raise ValueError(f"{what} {template!r} must contain {{{field}}} exactly once and no other {{field}}; e.g. {example!r}")
    return template
