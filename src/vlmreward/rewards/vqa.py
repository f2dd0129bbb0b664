"""Rewards from generative VLMs: the probability that the model answers "yes" to "does this frame show the goal?".

Both kinds ask a :class:`~vlmreward.models.generative.GenerativeVLM` a question per frame, made
from a template with the goal sentence (default :data:`DEFAULT_VQA_TEMPLATE`), and read the
answer's first token from one forward pass (no ``generate``):

* ``vqa`` (:class:`VQAReward`): ``p = p(yes) / (p(yes) + p(no))``, where ``p(yes)`` sums the
  next-token probabilities of every single-token spelling of "yes" (" Yes", "yes", ...; found
  from the tokenizer) and ``p(no)`` those of "no". Options: the log-odds ``log p(yes) − log p(no)``
  instead of ``p``, and a threshold ``β`` for the binary reward ``1[p ≥ β]`` (Baumli et al.
  threshold their success probability the same way, arXiv:2312.09187 eq. 2). This is the
  success-detector reading of a VQA model used by Du et al. (2023, "Vision-language models as
  success detectors", arXiv:2303.07280) and, with "True", LeRobot's TOPReward.
* ``vqa_contrastive`` (:class:`VQAContrastiveReward`): the same question for the goal and for
  negatives (given, or the goal family's other goals), each scored by its log-odds ``s``, and
  the reward the softmax ``exp(s_goal / τ) / Σ_m exp(s_m / τ)`` (Baumli et al.'s contrastive
  form, eq. 1, with the VLM's log-odds in place of the CLIP similarity), optionally thresholded.

Without a ``goal`` parameter, both score each frame against its episode's goal
(``info["goal"]``, :attr:`goal_info_key`), so they serve goal-conditioned runs; ``vqa_contrastive``
then takes its negatives from the run's goal family.

Neither has ``from_embeddings``: a generative model has no image embedding to cache, so
``evaluate`` and ``sweep`` score their frames directly.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Sequence

import numpy as np
import torch
from pydantic import AfterValidator

from vlmreward.errors import InvalidParameterError
from vlmreward.goals import NEGATIVE_MODES, as_goal_family
from vlmreward.models.generative import NO_SPELLINGS, YES_SPELLINGS, check_generative, frame_list
from vlmreward.models.preprocess import Frames
from vlmreward.rewards.params import PositiveFloat, Prompts, RewardParams, UnitFloat, check_placeholder
from vlmreward.rewards.registry import RewardContext, register
from vlmreward.rewards.shorthands import NEGATIVES, TEMPERATURE, THRESHOLD, SweepParameter

__all__ = ["VQAReward", "VQAContrastiveReward", "DEFAULT_VQA_TEMPLATE", "check_template", "yes_probability"]

DEFAULT_VQA_TEMPLATE = "Does this image show {goal}? Answer yes or no."
"""The question asked of every frame; ``{goal}`` is replaced by the goal sentence."""


def check_template(template: str) -> str:
    """A question template: text with exactly one ``{goal}`` placeholder and no other field.

    Raises:
        ValueError: no ``{goal}``, another ``{field}``, or broken braces.
    """
    return check_placeholder(template, "goal", DEFAULT_VQA_TEMPLATE)


Template = Annotated[str, AfterValidator(check_template)]


def yes_probability(log_yes: torch.Tensor, log_no: torch.Tensor) -> torch.Tensor:
    """``p(yes) / (p(yes) + p(no))`` from log-probabilities, computed as ``sigmoid(log_yes − log_no)``."""
    return torch.sigmoid(log_yes - log_no)


def _sentence(goal: Any) -> str:
    sentence = getattr(goal, "sentence", goal)
    if not isinstance(sentence, str) or not sentence.strip():
        raise InvalidParameterError(f"a goal must be a non-empty sentence; got {goal!r}.")
    return sentence


def _as_goals(goal: str | Sequence[str] | None) -> list[str] | None:
    if goal is None:
        return None
    return [goal] if isinstance(goal, str) else list(goal)


class VQAParams(RewardParams):
    """Parameters of ``vqa``.

    Attributes:
        goal: the goal sentence (several: their probabilities are averaged); None: each frame's
            episode goal (goal-conditioned runs).
        template: the question, with ``{goal}``.
        output: ``"probability"`` (``p`` in ``[0, 1]``) or ``"log_odds"`` (``log p(yes) − log p(no)``).
        threshold: ``β`` in ``[0, 1]``: the reward is ``1[p ≥ β]`` (with ``output="probability"``).
    """

    goal: Optional[Prompts] = None
    template: Template = DEFAULT_VQA_TEMPLATE
    output: Literal["probability", "log_odds"] = "probability"
    threshold: Optional[UnitFloat] = None


@register("vqa", VQAParams, display="VQA", shorthands=(THRESHOLD,), family="generative")
class VQAReward:
    """``p(yes | frame, question(goal))`` normalised over yes and no, from a generative VLM.

    Args:
        model: a :class:`~vlmreward.models.generative.GenerativeVLM`.
        goal: the goal sentence(s); None to score each frame against its own goal (``goals=``).
        template: the question, with ``{goal}`` (default :data:`DEFAULT_VQA_TEMPLATE`).
        output: ``"probability"`` or ``"log_odds"``.
        threshold: ``β`` in ``[0, 1]`` for a binary reward ``1[p ≥ β]``, or None.

    Raises:
        InvalidParameterError: not a generative model; a template without ``{goal}``; ``threshold``
            with ``output="log_odds"`` or outside ``[0, 1]``; a tokenizer without a single-token
            "yes" or "no" (the message lists the spellings tried).
    """

    def __init__(
        self,
        model: Any,
        goal: str | Sequence[str] | None = None,
        template: str = DEFAULT_VQA_TEMPLATE,
        output: str = "probability",
        threshold: float | None = None,
    ) -> None:
        self.model = check_generative(model, "vqa")
        try:
            self.template = check_template(template)
        except ValueError as err:
            raise InvalidParameterError(f"{err}.") from None
        if output not in ("probability", "log_odds"):
            raise InvalidParameterError(f"output={output!r}: use 'probability' or 'log_odds'.")
        if threshold is not None and (output != "probability" or not 0.0 <= float(threshold) <= 1.0):
            raise InvalidParameterError(f"threshold={threshold!r} thresholds the probability: a number in [0, 1] with output='probability'.")
        self.goal = _as_goals(goal)
        if self.goal is not None:
            for g in self.goal:
                _sentence(g)
        self.output = output
        self.threshold = None if threshold is None else float(threshold)
        self.yes_ids = self.model.answer_token_ids(YES_SPELLINGS)
        self.no_ids = self.model.answer_token_ids(NO_SPELLINGS)
        if self.goal is None:
            self.goal_info_key = "goal"  # scores each frame against its episode's goal

    @classmethod
    def from_params(cls, params: VQAParams, model: Any, context: RewardContext) -> "VQAReward":
        """The registry's builder."""
        return cls(model, params.goal, params.template, params.output, params.threshold)

    def question(self, goal: Any) -> str:
        """The question asked about ``goal``."""
        return self.template.format(goal=_sentence(goal))

    def log_odds(self, frames: Frames, goals: Sequence[Any] | None = None, batch_size: int | None = None) -> torch.Tensor:
        """``log p(yes) − log p(no)`` per frame, ``float32 [N]`` (averaged in probability over several goal sentences)."""
        if goals is not None:
            questions: list[str] | str = [self.question(g) for g in goals]
            scores = self.model.answer_log_probs(frames, questions, [self.yes_ids, self.no_ids], batch_size)
            return scores[:, 0] - scores[:, 1]
        if self.goal is None:
            raise InvalidParameterError(
                "this vqa reward has no goal: give goal=... or score each frame against its own goal with goals=[...]."
            )
        if len(self.goal) == 1:
            scores = self.model.answer_log_probs(frames, self.question(self.goal[0]), [self.yes_ids, self.no_ids], batch_size)
            return scores[:, 0] - scores[:, 1]
        p = torch.stack([
            yes_probability(*self.model.answer_log_probs(frames, self.question(g), [self.yes_ids, self.no_ids], batch_size).unbind(-1))
            for g in self.goal
        ]).mean(dim=0)
        return torch.log(p) - torch.log1p(-p)

    def __call__(self, frames: Frames, goals: Sequence[Any] | None = None, batch_size: int | None = None) -> np.ndarray:
        """Rewards of uint8 RGB frames ``[N, H, W, 3]``: ``float32 [N]``.

        Args:
            frames: the frames.
            goals: one goal (a :class:`~vlmreward.goals.Goal` or sentence) per frame, or None for
                the reward's own ``goal``.
            batch_size: frames per forward pass.
        """
        odds = self.log_odds(frames, goals, batch_size)
        if self.output == "log_odds":
            return odds.numpy().astype(np.float32)
        p = torch.sigmoid(odds)
        if self.threshold is not None:
            return (p >= self.threshold).numpy().astype(np.float32)
        return p.numpy().astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "vqa", "model": self.model.name, "goal": self.goal, "template": self.template,
            "output": self.output, "threshold": self.threshold,
            "yes_tokens": self.model.tokenizer.convert_ids_to_tokens(list(self.yes_ids)),
            "no_tokens": self.model.tokenizer.convert_ids_to_tokens(list(self.no_ids)),
        }


class VQAContrastiveParams(RewardParams):
    """Parameters of ``vqa_contrastive``.

    Attributes:
        goal: the goal sentence; None: each frame's episode goal, negatives from the goal family.
        negatives: negative sentences (with ``goal``).
        template: the question, with ``{goal}``.
        temperature: ``τ > 0`` of the softmax over log-odds.
        threshold: ``β`` in ``[0, 1]`` (binary reward), or None for the probability.
    """

    goal: Optional[str] = None
    negatives: Optional[list[str]] = None
    template: Template = DEFAULT_VQA_TEMPLATE
    temperature: PositiveFloat = 1.0
    threshold: Optional[UnitFloat] = None


@register(
    "vqa_contrastive", VQAContrastiveParams, display="contrastive VQA", shorthands=(NEGATIVES, TEMPERATURE, THRESHOLD),
    family="generative", sweep=SweepParameter("temperature", "τ", (1.0,)),
)
class VQAContrastiveReward:
    """Softmax over the VQA log-odds of the goal's question and its negatives' questions.

    ``r = exp(s(goal) / τ) / Σ_{m ∈ {goal} ∪ negatives} exp(s(m) / τ)`` with
    ``s(m) = log p(yes | frame, question(m)) − log p(no | frame, question(m))``; with a threshold,
    ``1[r ≥ β]``. Costs ``1 + len(negatives)`` forward passes per frame.

    Args:
        model: a :class:`~vlmreward.models.generative.GenerativeVLM`.
        goal: the goal sentence, or None to score each frame against its own goal (``goals=``).
        negatives: negative sentences for ``goal``.
        family: with ``goal=None``, the :class:`~vlmreward.goals.GoalFamily` whose other goals are
            each goal's negatives (:meth:`~vlmreward.goals.GoalFamily.negatives_for`).
        family_negatives, k, types, seed: how the family's negatives are chosen.
        template, temperature, threshold: as in :class:`VQAContrastiveParams`.

    Raises:
        InvalidParameterError: not a generative model; ``goal`` without ``negatives`` or
            ``negatives`` without ``goal``; ``goal=None`` without a family; a bad template,
            ``τ ≤ 0``, ``β`` outside ``[0, 1]``.
    """

    def __init__(
        self,
        model: Any,
        goal: str | None = None,
        negatives: Sequence[str] | None = None,
        template: str = DEFAULT_VQA_TEMPLATE,
        temperature: float = 1.0,
        threshold: float | None = None,
        *,
        family: Any = None,
        family_negatives: str = "all",
        k: int | None = None,
        types: Sequence[str] | None = None,
        seed: int = 0,
    ) -> None:
        self.vqa = VQAReward(model, None, template, "log_odds")
        self.model = self.vqa.model
        if not float(temperature) > 0.0:
            raise InvalidParameterError(f"temperature must be > 0; got {temperature}.")
        if threshold is not None and not 0.0 <= float(threshold) <= 1.0:
            raise InvalidParameterError(f"threshold must be in [0, 1]; got {threshold}.")
        self.temperature = float(temperature)
        self.threshold = None if threshold is None else float(threshold)
        self.goal = None if goal is None else _sentence(goal)
        self.negatives = None if negatives is None else [_sentence(n) for n in negatives]
        if self.goal is not None and not self.negatives:
            raise InvalidParameterError("vqa_contrastive compares the goal with negatives; give negatives=[...] (one or more).")
        if self.goal is None:
            if self.negatives:
                raise InvalidParameterError("negatives go with a goal; without one, each goal's negatives come from its goal family.")
            if family is None:
                raise InvalidParameterError(
                    "vqa_contrastive without a goal scores each frame against its episode's goal and needs the goal family "
                    "(a goals section in a run config), or give goal=... and negatives=[...]."
                )
            if family_negatives not in NEGATIVE_MODES:
                raise InvalidParameterError(f"negatives {family_negatives!r}: use one of {', '.join(NEGATIVE_MODES)}.")
            self.goal_info_key = "goal"
        self.family = None if family is None else as_goal_family(family)
        self.family_negatives, self.k, self.types, self.seed = family_negatives, k, types, int(seed)
        self._family_cache: dict[str, list[str]] = {}

    @classmethod
    def from_params(cls, params: VQAContrastiveParams, model: Any, context: RewardContext) -> "VQAContrastiveReward":
        """The registry's builder: a run's goal family (``context``) gives the negatives when there is no goal."""
        return cls(
            model, params.goal, params.negatives, params.template, params.temperature, params.threshold,
            family=context.family if params.goal is None else None, family_negatives=context.negatives, k=context.k,
            types=context.types, seed=context.seed,
        )

    def candidates(self, goal: Any = None) -> list[str]:
        """``[goal, *negatives]`` sentences for the reward's goal, or for ``goal`` (from the family)."""
        if goal is None:
            if self.goal is None:
                raise InvalidParameterError("this vqa_contrastive reward has no goal: pass goals=[...], one per frame.")
            return [self.goal, *self.negatives]
        sentence = _sentence(goal)
        if self.family is None:
            if self.goal is not None and sentence == self.goal:
                return [self.goal, *self.negatives]
            raise InvalidParameterError("per-frame goals need the goal family to take their negatives from.")
        key = getattr(goal, "key", None) or sentence
        if key not in self._family_cache:
            negatives = self.family.negatives_for(goal, self.family_negatives, self.k, rng=self.seed, types=self.types)
            self._family_cache[key] = [sentence, *(n.sentence for n in negatives)]
        return self._family_cache[key]

    def __call__(self, frames: Frames, goals: Sequence[Any] | None = None, batch_size: int | None = None) -> np.ndarray:
        """Rewards of uint8 RGB frames ``[N, H, W, 3]``: ``float32 [N]`` in ``[0, 1]``."""
        images = frame_list(frames)
        if goals is not None and len(goals) != len(images):
            raise InvalidParameterError(f"give one goal per frame; got {len(goals)} for {len(images)} frames.")
        sets = [self.candidates(None if goals is None else goals[i]) for i in range(len(images))]
        pair_frames = [images[i] for i, s in enumerate(sets) for _ in s]
        pair_goals = [sentence for s in sets for sentence in s]
        odds = self.vqa.log_odds(pair_frames, pair_goals, batch_size)
        rewards, start = [], 0
        for s in sets:
            logits = odds[start : start + len(s)] / self.temperature
            rewards.append(torch.softmax(logits, dim=0)[0])
            start += len(s)
        r = torch.stack(rewards)
        if self.threshold is not None:
            r = (r >= self.threshold).float()
        return r.numpy().astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "vqa_contrastive", "model": self.model.name, "goal": self.goal, "negatives": self.negatives,
            "family": None if self.family is None else self.family.name, "family_negatives": self.family_negatives,
            "template": self.vqa.template, "temperature": self.temperature, "threshold": self.threshold,
        }
