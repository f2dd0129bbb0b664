"""Contrastive softmax reward with an optional threshold (Baumli et al., 2023)."""

from __future__ import annotations

from typing import Annotated, Any, Optional, Sequence

import torch
from pydantic import Field

from vlmreward.errors import InvalidParameterError, PromptError
from vlmreward.models.base import VisionLanguageModel
from vlmreward.rewards.base import VLMReward, as_prompt_list
from vlmreward.rewards.params import PositiveFloat, Prompt, Prompts, RewardParams, UnitFloat
from vlmreward.rewards.registry import register
from vlmreward.rewards.shorthands import NEGATIVES, TEMPERATURE, THRESHOLD, SweepParameter

__all__ = ["SoftmaxThresholdReward", "DEFAULT_TEMPERATURE"]

DEFAULT_TEMPERATURE = 0.01
"""``τ = 0.01``: CLIP's trained logit scale of 100 (Radford et al. 2021), so ``p`` matches the
model's own zero-shot classification probabilities. Baumli et al. leave ``τ`` a hyperparameter."""


class SoftmaxThresholdParams(RewardParams):
    """Parameters of ``softmax_threshold``: goal prompt(s), negatives (≥ 1), ``τ > 0``, ``β`` or None."""

    goal: Prompts
    negatives: Annotated[list[Prompt], Field(min_length=1)]
    temperature: PositiveFloat = DEFAULT_TEMPERATURE
    threshold: Optional[UnitFloat] = None


@register(
    "softmax_threshold", SoftmaxThresholdParams, display="softmax", shorthands=(NEGATIVES, TEMPERATURE, THRESHOLD),
    family="contrastive", sweep=SweepParameter("temperature", "τ", (DEFAULT_TEMPERATURE,)), selected_by=("goal", "negatives"),
)
class SoftmaxThresholdReward(VLMReward):
    r"""Probability of the goal among negatives, optionally thresholded into a binary reward.

    With ``x`` the unit image embedding, ``g`` the unit embedding of the goal and ``n₁ … n_k``
    those of the negative texts (typically the other goals of the task family)::

        p(goal | x) = exp(x·g / τ) / (exp(x·g / τ) + Σᵢ exp(x·nᵢ / τ))
        r(x)        = 1[p(goal | x) ≥ β]

    Source: Baumli et al., "Vision-Language Models as a Source of Rewards", arXiv:2312.09187,
    section 2 (eq. 1 and 2).

    Several goal prompts are a prompt ensemble: their unit embeddings are averaged and the mean
    re-normalised (Radford et al. 2021, zero-shot prompt ensembling), so ``x·g`` stays a cosine.

    Returns ``p ∈ (0, 1)`` when ``threshold`` is None (the dense variant), else ``1.0`` where
    ``p ≥ threshold`` and ``0.0`` elsewhere.

    Args:
        model: the vision-language model.
        goal: the goal prompt (or an ensemble of phrasings of it).
        negatives: one or more negative prompts, none equal to a goal prompt.
        temperature: ``τ > 0``; smaller is sharper. Default :data:`DEFAULT_TEMPERATURE`.
        threshold: ``β`` in ``[0, 1]``, or None for the probability itself.

    Raises:
        InvalidParameterError: ``temperature ≤ 0`` or ``threshold`` outside ``[0, 1]``.
        PromptError: no negatives, a negative equal to a goal, an empty or over-long prompt.
    """

    def __init__(
        self,
        model: VisionLanguageModel,
        goal: str | Sequence[str],
        negatives: Sequence[str] | None,
        temperature: float = DEFAULT_TEMPERATURE,
        threshold: float | None = None,
    ) -> None:
        super().__init__(model)
        temperature = float(temperature)
        if not temperature > 0.0:
            raise InvalidParameterError(f"temperature must be > 0; got {temperature}.")
        if threshold is not None and not 0.0 <= float(threshold) <= 1.0:
            raise InvalidParameterError(f"threshold must be in [0, 1]; got {threshold}.")
        self.goal = as_prompt_list(goal, "goal")
        if not negatives:
            raise PromptError(
                "the softmax reward needs at least one negative prompt (e.g. the other goals of the task), "
                "to compare the goal against."
            )
        self.negatives = as_prompt_list(negatives, "negative")
        clash = sorted(set(self.goal) & set(self.negatives))
        if clash:
            raise PromptError(f"negative prompts must differ from the goal; {clash} is both.")
        self.temperature = temperature
        self.threshold = None if threshold is None else float(threshold)
        goal_embedding = torch.nn.functional.normalize(model.encode_text(self.goal).mean(dim=0), dim=0)
        # [1 + k, D]: row 0 the goal, then the negatives
        self.text_embeddings = torch.cat([goal_embedding[None], model.encode_text(self.negatives)])

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        """``p(goal | x)`` for unit embeddings ``x`` ``[N, D]`` on the model's device: ``[N]`` in ``(0, 1)``."""
        logits = (x @ self.text_embeddings.T) / self.temperature
        return torch.softmax(logits, dim=-1)[:, 0]

    def _reward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.probability(x)
        if self.threshold is None:
            return p
        # In float64: a float32 comparison would round β first, so p = 0.89999998 would pass β = 0.9.
        return (p.cpu().double() >= self.threshold).float()

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "softmax_threshold",
            "model": self.model.name,
            "goal": self.goal,
            "negatives": self.negatives,
            "temperature": self.temperature,
            "threshold": self.threshold,
        }
