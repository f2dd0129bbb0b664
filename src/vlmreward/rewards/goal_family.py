"""The contrastive reward of a whole goal family: each frame scored against its own goal (Baumli et al.)."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch

from vlmreward.errors import InvalidParameterError, PromptError
from vlmreward.goals import NEGATIVE_MODES, Goal, GoalFamily, as_goal_family
from vlmreward.models.base import VisionLanguageModel
from vlmreward.models.preprocess import Frames
from pydantic import Field

from vlmreward.rewards.base import require_embedding_model
from vlmreward.rewards.params import PositiveFloat, Prompts, RewardParams, UnitFloat
from vlmreward.rewards.registry import RewardContext, register
from vlmreward.rewards.shorthands import TEMPERATURE, THRESHOLD, SweepParameter
from vlmreward.rewards.softmax_threshold import DEFAULT_TEMPERATURE


class GoalFamilySoftmaxParams(RewardParams):
    """Parameters of ``goal_family_softmax``.

    Attributes:
        temperature: ``τ > 0``.
        threshold: ``β`` in ``[0, 1]`` (binary reward), or None for the probability.
        templates: the reward's prompt per goal type (``{find: "a photo of a {object} in a room"}``,
            a list for an ensemble); default: the family's canonical sentences.
    """

    temperature: PositiveFloat = DEFAULT_TEMPERATURE
    threshold: Optional[UnitFloat] = None
    templates: dict[str, Prompts] = Field(default_factory=dict)

__all__ = ["GoalFamilySoftmaxReward"]


@register(
    "goal_family_softmax", GoalFamilySoftmaxParams, goals=True, display="goal-family softmax",
    shorthands=(TEMPERATURE, THRESHOLD), family="contrastive",
    sweep=SweepParameter("temperature", "τ", (DEFAULT_TEMPERATURE,)), selected_by=("goals",),
)
class GoalFamilySoftmaxReward:
    r"""``p(goal | frame)`` against the other goals of the family, per frame and its goal.

    With ``x`` the unit image embedding of a frame whose episode pursues goal ``l``, ``g(l)`` the
    unit text embedding of ``l``'s prompt and ``N(l)`` its negatives (other goals of the family,
    :meth:`~vlmreward.goals.GoalFamily.negatives_for`)::

        p(l | x) = exp(x·g(l) / τ) / Σ_{m ∈ {l} ∪ N(l)} exp(x·g(m) / τ)
        r(x, l)  = 1[p(l | x) ≥ β]          (or p itself without a threshold)

    Source: Baumli et al., "Vision-Language Models as a Source of Rewards", arXiv:2312.09187,
    section 2 (eq. 1 and 2), negatives "typically the other goals of the task family". For one
    goal this is :class:`~vlmreward.rewards.SoftmaxThresholdReward` with the family's negatives
    (tested equal).

    The text embeddings of the whole family are computed once, as one ``[G, D]`` matrix on the
    model's device, and each goal's negatives fixed once as a row of a ``[G, G]`` mask
    (``"k_sampled"`` draws them with ``seed``), so a frame's reward depends on its frame and goal
    only, not on the batch it is scored in (deferred scoring gives the per-step rewards).

    A goal's *prompt* is its task phrased with ``templates[goal type]`` when given (several
    templates: a prompt ensemble, unit embeddings averaged and re-normalised), else the family's
    canonical sentence. Goals are matched to the family by task (:attr:`~vlmreward.goals.Goal.key`),
    so any phrasing of a task (held-out templates included) gets its task's reward.

    Args:
        model: the vision-language model.
        family: a :class:`~vlmreward.goals.GoalFamily` (or a YAML path / mapping).
        negatives: ``"all"``, ``"same_template"`` or ``"k_sampled"`` (:data:`~vlmreward.goals.NEGATIVE_MODES`).
        k: negatives per goal for ``"k_sampled"``.
        temperature: ``τ > 0``.
        threshold: ``β`` in ``[0, 1]``, or None for the probability.
        templates: ``{goal type: template or [templates]}``, the reward's prompts (default: the
            family's canonical templates), with the family's placeholders.
        types: restrict the family to these goal types (goals and negatives).
        seed: seed of the ``"k_sampled"`` negatives.

    Raises:
        InvalidParameterError: ``temperature ≤ 0``, ``threshold`` outside ``[0, 1]``, an unknown
            negatives mode, ``k_sampled`` without ``k``, a template for an unknown goal type.
        PromptError: an empty or over-long prompt.
    """

    goal_info_key = "goal"
    """The ``info`` key whose value (per frame) :meth:`score_with_goals` receives from the wrappers."""

    @classmethod
    def from_params(
        cls, params: GoalFamilySoftmaxParams, model: VisionLanguageModel, context: RewardContext
    ) -> "GoalFamilySoftmaxReward":
        """The reward of a run's ``goals`` section (``context``) with these parameters (the registry's builder)."""
        return cls(
            model, context.family, negatives=context.negatives, k=context.k, temperature=params.temperature,
            threshold=params.threshold, templates=params.templates or None, types=context.types, seed=context.seed,
        )

    def __init__(
        self,
        model: VisionLanguageModel,
        family: GoalFamily | Mapping[str, Any] | str,
        negatives: str = "all",
        k: int | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
        threshold: float | None = None,
        templates: Mapping[str, str | Sequence[str]] | None = None,
        types: Sequence[str] | None = None,
        seed: int = 0,
    ) -> None:
        temperature = float(temperature)
        if not temperature > 0.0:
            raise InvalidParameterError(f"temperature must be > 0; got {temperature}.")
        if threshold is not None and not 0.0 <= float(threshold) <= 1.0:
            raise InvalidParameterError(f"threshold must be in [0, 1]; got {threshold}.")
        if negatives not in NEGATIVE_MODES:
            raise InvalidParameterError(f"negatives {negatives!r}: use one of {', '.join(NEGATIVE_MODES)}.")
        self.model = require_embedding_model(model, "goal_family_softmax")
        self.family = as_goal_family(family)
        self.negatives = negatives
        self.k = None if k is None else int(k)
        self.temperature = temperature
        self.threshold = None if threshold is None else float(threshold)
        self.seed = int(seed)
        self.types = None if types is None else list(types)
        self.templates = self._check_templates(templates)
        self.goals: list[Goal] = self.family.goals(self.types)  # canonical, one per task
        self._index = {g.key: i for i, g in enumerate(self.goals)}
        self.prompts: list[list[str]] = [self.prompts_for(g) for g in self.goals]
        flat = [p for ps in self.prompts for p in ps]
        embeddings = model.encode_text(flat)  # [sum M_g, D], cached per prompt
        rows, start = [], 0
        for ps in self.prompts:
            rows.append(torch.nn.functional.normalize(embeddings[start : start + len(ps)].mean(dim=0), dim=0))
            start += len(ps)
        self.text_embeddings = torch.stack(rows)  # [G, D] on the model's device
        rng = np.random.default_rng(self.seed)
        mask = np.zeros((len(self.goals), len(self.goals)), dtype=bool)
        for i, goal in enumerate(self.goals):
            mask[i, i] = True
            for negative in self.family.negatives_for(goal, negatives, self.k, rng, types=self.types):
                mask[i, self._index[negative.key]] = True
        self.negative_mask = torch.as_tensor(mask, device=model.device)  # [G, G]: row g = {g} ∪ N(g)
        self._lookup: dict[Any, int] = {}

    def _check_templates(self, templates: Mapping[str, str | Sequence[str]] | None) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for goal_type, value in (templates or {}).items():
            if goal_type not in self.family.templates:
                raise InvalidParameterError(
                    f"reward template for goal type {goal_type!r}, which family {self.family.name!r} does not have; "
                    f"its types are {', '.join(self.family.goal_types)}."
                )
            items = [value] if isinstance(value, str) else list(value)
            if not items:
                raise PromptError(f"no reward template given for goal type {goal_type!r}.")
            for template in items:
                probe = self.family.goals([goal_type])[0]
                try:
                    self.family.rephrase(probe, template)
                except (KeyError, IndexError, ValueError) as err:
                    raise PromptError(
                        f"reward template {template!r} for {goal_type!r} does not fit the family's placeholders ({err!r}); "
                        "use {object}, {colour}, {kind} (and {target}, ... for goal types with a target)."
                    ) from None
            out[goal_type] = items
        return out

    def prompts_for(self, goal: Goal) -> list[str]:
        """The prompt(s) the reward uses for ``goal``'s task."""
        if goal.type in self.templates:
            return [self.family.rephrase(goal, t).sentence for t in self.templates[goal.type]]
        return [self.family.rephrase(goal, 0).sentence]

    def index(self, goal: Goal | str) -> int:
        """Row of ``goal``'s task in :attr:`text_embeddings` (a Goal, sentence or key).

        Raises:
            InvalidParameterError: not a goal of the family (or of its restricted types).
        """
        key = goal.key if isinstance(goal, Goal) else goal
        hit = self._lookup.get(key)
        if hit is None:
            if goal is None:
                raise InvalidParameterError(
                    "a frame has no goal; the goal-family reward needs each frame's goal (environments report it "
                    "in info['goal'])."
                )
            resolved = self.family.goal(goal) if not isinstance(goal, Goal) else goal
            if resolved.key not in self._index:
                raise InvalidParameterError(
                    f"goal {resolved.sentence!r} is of type {resolved.type!r}, which this reward does not cover "
                    f"(types {', '.join(sorted({g.type for g in self.goals}))})."
                )
            hit = self._lookup[key] = self._index[resolved.key]
        return hit

    # ------------------------------------------------------------------------------ scoring
    @torch.inference_mode()
    def probability(self, x: torch.Tensor, goal_index: torch.Tensor) -> torch.Tensor:
        """``p(goal | x)``: unit embeddings ``[N, D]`` and goal rows ``[N]`` (long) on the model's device → ``[N]``."""
        logits = (x @ self.text_embeddings.T) / self.temperature  # [N, G]
        masked = logits.masked_fill(~self.negative_mask[goal_index], float("-inf"))
        own = logits.gather(1, goal_index[:, None])[:, 0]
        return torch.exp(own - torch.logsumexp(masked, dim=-1))

    def from_embeddings_with_goals(self, image_embeddings: torch.Tensor | np.ndarray, goals: Sequence[Goal | str]) -> np.ndarray:
        """Rewards of image embeddings ``[N, D]`` (unit rows) pursuing ``goals`` (``N`` goals): ``np.float32 [N]``.

        Raises:
            InvalidParameterError: shapes that disagree, or a goal outside the family.
        """
        x = torch.as_tensor(image_embeddings).to(device=self.model.device, dtype=torch.float32)
        if x.ndim == 1:
            x = x.unsqueeze(0)
        if x.ndim != 2 or x.shape[1] != self.model.embed_dim:
            raise InvalidParameterError(f"image embeddings must have shape [N, {self.model.embed_dim}]; got {tuple(x.shape)}.")
        goals = list(goals)
        if len(goals) != x.shape[0]:
            raise InvalidParameterError(f"{x.shape[0]} frames but {len(goals)} goals; give one goal per frame.")
        index = torch.as_tensor([self.index(g) for g in goals], dtype=torch.long, device=self.model.device)
        p = self.probability(x, index)
        if self.threshold is None:
            return p.float().cpu().numpy()
        return (p.cpu().double() >= self.threshold).float().numpy()  # float64: see SoftmaxThresholdReward

    def score_with_goals(self, frames: Frames, goals: Sequence[Goal | str], batch_size: int | None = None) -> np.ndarray:
        """Rewards of uint8 RGB frames ``[N, H, W, 3]``, frame ``i`` pursuing ``goals[i]``: ``np.float32 [N]``.

        This is what :class:`~vlmreward.envs.VLMRewardWrapper` and
        :class:`~vlmreward.envs.VLMRewardVecEnvWrapper` call, with each frame's ``info["goal"]``.
        """
        return self.from_embeddings_with_goals(self.model.encode_images(frames, batch_size=batch_size), goals)

    def __call__(self, frames: Frames, goals: Sequence[Goal | str] | None = None, batch_size: int | None = None) -> np.ndarray:
        """:meth:`score_with_goals`; ``goals`` is required (a family reward has no single goal)."""
        if goals is None:
            raise InvalidParameterError(
                "the goal-family reward scores each frame against its own goal: call score_with_goals(frames, goals) "
                "or use it in an environment that reports info['goal']."
            )
        return self.score_with_goals(frames, goals, batch_size=batch_size)

    def from_embeddings(self, image_embeddings: torch.Tensor | np.ndarray, goals: Sequence[Goal | str] | None = None) -> np.ndarray:
        """:meth:`from_embeddings_with_goals`; ``goals`` is required."""
        if goals is None:
            raise InvalidParameterError("the goal-family reward needs each embedding's goal: from_embeddings(embeddings, goals).")
        return self.from_embeddings_with_goals(image_embeddings, goals)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "goal_family_softmax",
            "model": self.model.name,
            "family": self.family.name,
            "goals": len(self.goals),
            "goal_types": sorted({g.type for g in self.goals}),
            "negatives": self.negatives,
            "k": self.k,
            "templates": self.templates or None,
            "temperature": self.temperature,
            "threshold": self.threshold,
        }
