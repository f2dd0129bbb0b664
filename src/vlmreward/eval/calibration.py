"""Calibrating reward parameters on a labelled dataset: the threshold β and the strength α.

* :func:`threshold_for_precision`: the threshold ``β`` at which the binary reward
  ``1[score ≥ β]`` reaches a target precision against the success labels, with the most recall
  (Baumli et al. 2023 threshold ``p(goal | o) ≥ β``; any score works, e.g. the goal-baseline reward).
* :func:`pick_alpha_by_epic`: of rewards computed for several ``α``, the one closest to a
  reference reward in EPIC distance (VLM-RM, Rocamonde et al. 2024, §4.2 compares rewards with
  human labels by EPIC distance).
* :func:`calibrate_alpha` and :func:`calibrate_threshold` do the same from image embeddings and
  prompts (no image pass: :mod:`vlmreward.eval.embeddings` gives the embeddings).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch

from vlmreward.errors import InvalidParameterError, VLMRewardError
from vlmreward.eval.metrics import epic_distance
from vlmreward.models.base import VisionLanguageModel
from vlmreward.rewards import DEFAULT_TEMPERATURE, GoalBaselineReward, SoftmaxThresholdReward

__all__ = [
    "CalibrationError",
    "ThresholdChoice",
    "AlphaChoice",
    "threshold_for_precision",
    "pick_alpha_by_epic",
    "calibrate_alpha",
    "calibrate_threshold",
    "DEFAULT_ALPHAS",
]

DEFAULT_ALPHAS: tuple[float, ...] = tuple(round(a, 2) for a in np.linspace(0.0, 1.0, 11))
"""``α ∈ {0, 0.1, …, 1}``: the grid :func:`calibrate_alpha` searches by default."""


class CalibrationError(VLMRewardError, ValueError):
    """A calibration target that the data cannot meet (e.g. a precision no threshold reaches)."""


@dataclass(frozen=True)
class ThresholdChoice:
    """A threshold chosen for a target precision.

    Attributes:
        threshold: ``β``; frames with ``score ≥ β`` count as successes.
        precision: precision of ``score ≥ β`` against the labels (``≥ target_precision``).
        recall: its recall (the largest any threshold reaching the target has).
        target_precision: what was asked for.
        predicted_positives: frames with ``score ≥ β``.
    """

    threshold: float
    precision: float
    recall: float
    target_precision: float
    predicted_positives: int


@dataclass(frozen=True)
class AlphaChoice:
    """The ``α`` whose reward is closest to the reference in EPIC distance.

    Attributes:
        alpha: the chosen ``α``.
        epic_distance: its EPIC distance to the reference, in ``[0, 1]``.
        distances: ``{α: EPIC distance}`` for every candidate (NaN where undefined, e.g. a
            constant reward).
    """

    alpha: float
    epic_distance: float
    distances: dict[float, float] = field(default_factory=dict)


def _check_labels(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1)
    if s.shape != y.shape:
        raise InvalidParameterError(f"{s.size} scores but {y.size} labels; they must be paired.")
    if not np.isin(y, [0, 1]).all():
        raise InvalidParameterError("labels must be booleans or 0/1.")
    if not np.all(np.isfinite(s)):
        raise InvalidParameterError("scores contain NaN or infinite values.")
    y = y.astype(bool)
    if not y.any():
        raise CalibrationError("the labels hold no success, so no threshold has a defined precision; use a dataset with goal states.")
    return s, y


def threshold_for_precision(scores, labels, target_precision: float) -> ThresholdChoice:
    """The threshold ``β`` reaching ``target_precision`` with the highest recall.

    Among the thresholds at which ``1[score ≥ β]`` has precision ``≥ target_precision`` on the
    labelled frames, the one with the highest recall; among equal recalls, the highest ``β``
    (fewest false positives). ``β`` is one of the scores, so ``score ≥ β`` reproduces the
    reported precision and recall exactly (compare in float64, as
    :class:`~vlmreward.SoftmaxThresholdReward` does).

    Args:
        scores: ``[N]`` rewards or probabilities, higher meaning "goal reached".
        labels: ``[N]`` booleans or 0/1 success labels.
        target_precision: in ``(0, 1]``.

    Returns:
        :class:`ThresholdChoice`.

    Raises:
        InvalidParameterError: a target outside ``(0, 1]``, unpaired inputs, non-finite scores.
        CalibrationError: no success in the labels, or no threshold reaches the target (the
            message gives the best precision there is).

    Source: the precision-recall curve of scikit-learn (``precision_recall_curve``), thresholds
    as in Baumli et al. 2023 (``r = 1[p(goal | o) ≥ β]``).
    """
    if not 0.0 < float(target_precision) <= 1.0:
        raise InvalidParameterError(f"target precision must be in (0, 1]; got {target_precision}.")
    s, y = _check_labels(scores, labels)
    thresholds = np.unique(s)[::-1]  # descending
    order = np.argsort(-s, kind="stable")
    sorted_scores, sorted_labels = s[order], y[order]
    tp_cum = np.cumsum(sorted_labels)
    # number of frames with score >= t, for each distinct t (descending)
    counts = np.searchsorted(-sorted_scores, -thresholds, side="right")
    tp = tp_cum[counts - 1]
    precision = tp / counts
    recall = tp / y.sum()
    ok = precision >= float(target_precision) - 1e-12
    if not ok.any():
        best = int(np.argmax(precision))
        raise CalibrationError(
            f"no threshold reaches precision {target_precision:g} on these labels; the best is {precision[best]:.3g} "
            f"(at threshold {thresholds[best]:.6g}, recall {recall[best]:.3g}); lower the target or improve the reward."
        )
    candidates = np.nonzero(ok)[0]
    best_recall = recall[candidates].max()
    i = int(candidates[np.nonzero(recall[candidates] >= best_recall - 1e-15)[0][0]])  # highest β with that recall
    return ThresholdChoice(
        threshold=float(thresholds[i]),
        precision=float(precision[i]),
        recall=float(recall[i]),
        target_precision=float(target_precision),
        predicted_positives=int(counts[i]),
    )


def pick_alpha_by_epic(rewards_by_alpha: Mapping[float, np.ndarray], reference) -> AlphaChoice:
    """The ``α`` whose reward has the smallest EPIC distance to ``reference``.

    Args:
        rewards_by_alpha: ``{α: rewards [N]}`` on the same frames.
        reference: ``[N]`` reference reward (ground truth, or 0/1 success labels as VLM-RM's
            human labels).

    Returns:
        :class:`AlphaChoice`; ties go to the smaller ``α`` (the weaker regularisation).

    Raises:
        InvalidParameterError: no candidates, unpaired lengths, non-finite values.
        CalibrationError: every distance is undefined (the reference or every reward is constant).

    Source: EPIC distance (Gleave et al., ICLR 2021) as :func:`vlmreward.eval.metrics.epic_distance`.
    """
    if not rewards_by_alpha:
        raise InvalidParameterError("no α candidates given.")
    distances = {float(a): epic_distance(r, reference) for a, r in sorted(rewards_by_alpha.items())}
    finite = {a: d for a, d in distances.items() if not math.isnan(d)}
    if not finite:
        raise CalibrationError(
            "the EPIC distance is undefined for every α (the reference or the rewards are constant on these frames); "
            "use a dataset whose reference reward varies."
        )
    alpha = min(finite, key=lambda a: (finite[a], a))
    return AlphaChoice(alpha=alpha, epic_distance=finite[alpha], distances=distances)


def calibrate_alpha(
    model: VisionLanguageModel,
    image_embeddings: np.ndarray | torch.Tensor,
    goal: str | Sequence[str],
    baseline: str | Sequence[str],
    reference,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
) -> AlphaChoice:
    """Pick ``α`` of :class:`~vlmreward.GoalBaselineReward` by EPIC distance to a reference reward.

    Args:
        model: embeds the prompts (no image pass).
        image_embeddings: ``[N, D]`` unit image embeddings of the labelled frames.
        goal, baseline: the prompts.
        reference: ``[N]`` reference reward of the same frames.
        alphas: candidates in ``[0, 1]`` (default :data:`DEFAULT_ALPHAS`).

    Returns:
        :class:`AlphaChoice`.

    Raises:
        InvalidParameterError, PromptError: as :class:`~vlmreward.GoalBaselineReward`.
        CalibrationError: as :func:`pick_alpha_by_epic`.
    """
    rewards = {
        float(a): GoalBaselineReward(model, goal, baseline, alpha=float(a)).from_embeddings(image_embeddings)
        for a in alphas
    }
    return pick_alpha_by_epic(rewards, reference)


def calibrate_threshold(
    model: VisionLanguageModel,
    image_embeddings: np.ndarray | torch.Tensor,
    goal: str | Sequence[str],
    negatives: Sequence[str],
    labels,
    target_precision: float,
    temperature: float = DEFAULT_TEMPERATURE,
) -> ThresholdChoice:
    """Pick ``β`` of :class:`~vlmreward.SoftmaxThresholdReward` for a target precision.

    The scores are the dense ``p(goal | x)``; pass the returned ``threshold`` as ``threshold=``.

    Raises:
        InvalidParameterError, PromptError: as :class:`~vlmreward.SoftmaxThresholdReward`.
        CalibrationError: as :func:`threshold_for_precision`.
    """
    reward = SoftmaxThresholdReward(model, goal, negatives, temperature=temperature, threshold=None)
    return threshold_for_precision(reward.from_embeddings(image_embeddings), labels, target_precision)
