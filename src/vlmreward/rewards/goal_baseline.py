"""VLM-RM's goal-baseline regularised CLIP reward (Rocamonde et al., ICLR 2024)."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from pydantic import model_validator

from vlmreward.errors import InvalidParameterError
from vlmreward.models.base import VisionLanguageModel
from vlmreward.rewards.base import VLMReward, as_prompt_list
from vlmreward.rewards.params import Prompts, RewardParams, UnitFloat
from vlmreward.rewards.registry import register
from vlmreward.rewards.shorthands import ALPHA, BASELINE, SweepParameter


class GoalBaselineParams(RewardParams):
    """Parameters of ``goal_baseline``: goal prompt(s), baseline prompt(s), ``α`` in ``[0, 1]``."""

    goal: Prompts
    baseline: Optional[Prompts] = None
    alpha: UnitFloat = 0.0

    @model_validator(mode="after")
    def _baseline_for_alpha(self) -> "GoalBaselineParams":
        if self.alpha > 0 and self.baseline is None:
            raise ValueError(
                f"reward.baseline is required when reward.alpha > 0 (got alpha {self.alpha}): α > 0 needs a baseline "
                "prompt; add a sentence "
                "describing the scene without the goal (e.g. 'a humanoid robot'), or set reward.alpha: 0"
            )
        return self

__all__ = ["GoalBaselineReward", "DEFAULT_ALPHAS_WITH_BASELINE", "DEFAULT_SWEEP_ALPHAS"]


DEFAULT_ALPHAS_WITH_BASELINE: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
"""The ``α`` curves ``evaluate`` draws when a baseline is given and no ``α`` is."""

DEFAULT_SWEEP_ALPHAS: tuple[float, ...] = (0.0, 0.5, 1.0)
"""The ``α`` grid of ``sweep`` when none is given (Rocamonde et al. compare α = 0 with α > 0)."""


@register(
    "goal_baseline", GoalBaselineParams, display="goal-baseline", shorthands=(BASELINE, ALPHA), family="contrastive",
    sweep=SweepParameter("alpha", "α", DEFAULT_SWEEP_ALPHAS, needs="baseline", with_needs=DEFAULT_ALPHAS_WITH_BASELINE,
                         calibrate=True),
    selected_by=("goal",),
)
class GoalBaselineReward(VLMReward):
    r"""Goal-baseline regularised CLIP reward.

    With ``x`` the unit image embedding, ``g`` the mean of the unit embeddings of the goal
    prompts, ``b`` that of the baseline prompts, ``d = g - b`` and ``P = d dᵀ / ‖d‖²`` the
    projection onto the line through ``b`` and ``g``::

        R(x) = 1 - ½ ‖ (α P + (1 - α) I) (x - g) ‖²,   α ∈ [0, 1]

    Source: Rocamonde et al., "Vision-Language Models are Zero-Shot Reward Models for
    Reinforcement Learning", ICLR 2024, eq. 3 (goal-baseline regularisation); averaging of
    several prompts and the un-renormalised means follow the reference code
    (AlignmentResearch/vlmrm, ``compute_rewards``).

    Limits: ``α = 0`` gives ``1 - ½‖x - g‖² = ½ + x·g - ½‖g‖²``, for one goal prompt exactly the
    cosine similarity ``x·g`` (the plain CLIP reward, eq. 2); ``α = 1`` keeps only the component
    of ``x - g`` along ``d``. The rewards lie in ``[-1, 1]`` for one goal prompt.

    Computed as ``1 - ½[(1 - (1-α)²)(y·d̂)² + (1-α)²‖y‖²]`` with ``y = x - g``, ``d̂ = d/‖d‖``,
    which equals the matrix form (``P`` is a symmetric idempotent projection) in ``O(N·D)``.

    Args:
        model: the vision-language model that embeds frames and prompts.
        goal: the goal prompt, or several whose unit embeddings are averaged.
        baseline: the baseline prompt(s) describing the environment without the goal; required
            when ``alpha > 0``.
        alpha: regularisation strength ``α`` in ``[0, 1]``.

    Raises:
        InvalidParameterError: ``alpha`` outside ``[0, 1]``; ``alpha > 0`` without a baseline;
            goal and baseline with the same embedding (``d = 0``).
        PromptError: an empty or over-long prompt.
    """

    def __init__(
        self,
        model: VisionLanguageModel,
        goal: str | Sequence[str],
        baseline: str | Sequence[str] | None = None,
        alpha: float = 0.0,
    ) -> None:
        super().__init__(model)
        alpha = float(alpha)
        if not 0.0 <= alpha <= 1.0:
            raise InvalidParameterError(f"alpha must be in [0, 1]; got {alpha}.")
        self.goal = as_prompt_list(goal, "goal")
        self.baseline = None if baseline is None else as_prompt_list(baseline, "baseline")
        self.alpha = alpha
        if alpha > 0 and self.baseline is None:
            raise InvalidParameterError(
                f"alpha={alpha} projects onto the goal-baseline direction and needs a baseline prompt, "
                "e.g. baseline='a humanoid robot' for goal 'a humanoid robot kneeling'."
            )
        self.goal_embedding = model.encode_text(self.goal).mean(dim=0)  # [D], not re-normalised
        self.direction: torch.Tensor | None = None  # unit d̂ = (g - b)/‖g - b‖, [D]
        if self.baseline is not None:
            self.baseline_embedding = model.encode_text(self.baseline).mean(dim=0)
            d = self.goal_embedding - self.baseline_embedding
            norm = torch.linalg.vector_norm(d)
            if norm <= 1e-6:
                raise InvalidParameterError(
                    "goal and baseline prompts embed to the same vector, so there is no direction to "
                    "project on; make the goal describe what differs from the baseline."
                )
            self.direction = d / norm

    def _reward(self, x: torch.Tensor) -> torch.Tensor:
        y = x - self.goal_embedding
        squared = (y * y).sum(dim=-1)
        if self.direction is None or self.alpha == 0.0:
            return 1.0 - 0.5 * squared
        along = y @ self.direction
        keep = (1.0 - self.alpha) ** 2
        return 1.0 - 0.5 * ((1.0 - keep) * along * along + keep * squared)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "goal_baseline",
            "model": self.model.name,
            "goal": self.goal,
            "baseline": self.baseline,
            "alpha": self.alpha,
        }
