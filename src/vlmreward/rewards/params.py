"""Field types of reward parameters (pydantic), shared by every reward kind's ``Params`` model.

A reward kind declares its parameters as a :class:`RewardParams` subclass; run configs, the
command line and error messages are generated from it (:mod:`vlmreward.rewards.registry`). The
field types are :mod:`vlmreward.config.fields`' (re-exported here, where reward kinds find them).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from vlmreward.config.fields import Count, FiniteFloat, PositiveFloat, Prompt, Prompts, UnitFloat

__all__ = ["RewardParams", "NoParams", "UnitFloat", "PositiveFloat", "FiniteFloat", "Count", "Prompt", "Prompts"]


class RewardParams(BaseModel):
    """Base of a reward kind's parameters: unknown keys are errors, defaults are validated."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class NoParams(RewardParams):
    """A reward kind without parameters."""
