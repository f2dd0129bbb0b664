"""A reward kind defined outside vlmreward, in one file: ``scaled_cosine``.

``r = scale · cos(x, g) + offset`` for the unit image embedding ``x`` and the goal's unit text
embedding ``g`` (the mean of several prompts', not renormalised, as VLM-RM averages goals). It
needs no change to vlmreward: it subclasses :class:`~vlmreward.rewards.base.VLMReward` (so it
scores frames and cached embeddings) and declares its parameters as ``Params``. The registry
finds it by entry point (``vlmreward_example_plugin-0.1.dist-info/entry_points.txt`` beside this
file) or as ``vlmreward_example_plugin:ScaledCosineReward``. It declares a display name, a sweep
parameter (``scale`` over 0.5, 1, 2) and a command-line shorthand (``--scale``), which every
command then offers. ``docs/extending.md`` walks through it.
"""

from __future__ import annotations

from typing import Any

import torch

from vlmreward.rewards.base import VLMReward, as_prompt_list
from vlmreward.rewards.params import FiniteFloat, PositiveFloat, Prompts, RewardParams
from vlmreward.rewards.shorthands import Shorthand, SweepParameter


class ScaledCosineParams(RewardParams):
    goal: Prompts
    scale: PositiveFloat = 1.0
    offset: FiniteFloat = 0.0


class ScaledCosineReward(VLMReward):
    """``scale · cos(image, goal) + offset``: ``float32 [N]``."""

    Params = ScaledCosineParams
    display_name = "Scaled cosine"  # in tables, reports and messages
    sweep_parameter = SweepParameter("scale", "s", grid=(0.5, 1.0, 2.0))  # evaluate: one curve per --scale; sweep: this grid
    shorthands = (Shorthand("scale", "--scale", "Scale s > 0 of the scaled-cosine reward (plugin example)."),)
    model_family = "contrastive"

    def __init__(self, model: Any, goal: str | list[str], scale: float = 1.0, offset: float = 0.0) -> None:
        super().__init__(model)
        self.goal = as_prompt_list(goal, "goal")
        self.scale, self.offset = float(scale), float(offset)
        self._g = model.encode_text(self.goal).mean(dim=0)  # [D] on the model's device

    def _reward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * (x @ self._g) + self.offset

    def describe(self) -> dict[str, Any]:
        return {"kind": "scaled_cosine", "model": self.model.name, "goal": self.goal, "scale": self.scale, "offset": self.offset}
