"""Reward diagnostics: EPIC distance, goal-detection metrics and correlations.

* :func:`epic_distance`: the EPIC pseudometric (Gleave et al., ICLR 2021) between two rewards of
  states sampled from a dataset, as VLM-RM uses it against human labels;
  :func:`epic_distance_transitions` its general form for rewards of transitions ``(s, a, s')``.
* :func:`detection_metrics`: a reward used as a goal detector against binary success labels:
  average precision, ROC-AUC, the precision-recall curve and the best-F1 threshold (scikit-learn).
* :func:`correlations`: Pearson and Spearman correlations (SciPy).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from vlmreward.errors import InvalidParameterError

__all__ = [
    "pearson_distance",
    "epic_distance",
    "epic_distance_transitions",
    "canonicalize",
    "DetectionMetrics",
    "detection_metrics",
    "correlations",
]

RewardFunction = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``R(s, a, s')`` on batches: states ``[B, ...]``, actions ``[B, ...]``, next states ``[B, ...]`` → ``[B]``."""


def _as_rewards(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size < 2:
        raise InvalidParameterError(f"{name} needs at least 2 samples; got {array.size}.")
    if not np.all(np.isfinite(array)):
        raise InvalidParameterError(f"{name} contains NaN or infinite values.")
    return array


def pearson_distance(a, b) -> float:
    """``D_ρ = sqrt((1 - ρ) / 2)`` with ``ρ`` the Pearson correlation of ``a`` and ``b``, in ``[0, 1]``.

    A constant input has no defined correlation: the distance is then NaN (a sweep can go on; a
    constant reward, e.g. a threshold never reached, tells nothing about the other).

    Source: Gleave et al., "Quantifying Differences in Reward Functions", ICLR 2021, definition 4.2.

    Raises:
        InvalidParameterError: fewer than 2 samples, different lengths, or non-finite values.
    """
    x, y = _as_rewards(a, "rewards_a"), _as_rewards(b, "rewards_b")
    if x.shape != y.shape:
        raise InvalidParameterError(f"the two rewards have {x.size} and {y.size} samples; they must be paired.")
    x, y = x - x.mean(), y - y.mean()
    norm = np.sqrt((x @ x) * (y @ y))
    if norm == 0:
        return float("nan")
    rho = float(np.clip((x @ y) / norm, -1.0, 1.0))
    return float(np.sqrt((1.0 - rho) / 2.0))


def epic_distance(rewards_a, rewards_b) -> float:
    """EPIC distance between two state rewards sampled on the same states, in ``[0, 1]``.

    For rewards of the reached state alone, ``R(s, a, s') = f(s')``, with states, actions and next
    states drawn independently from the coverage distribution (here: the dataset's states), the
    canonicalisation of Gleave et al. (eq. 3) subtracts the constant ``E[f(S)]``:
    ``C(R)(s, a, s') = f(s') + γE[f(S')] - E[f(S')] - γE[f(S')] = f(s') - E[f(S)]``, and EPIC is
    the Pearson distance of the canonicalised rewards, :func:`pearson_distance` (which is itself
    shift-invariant). 0: equivalent up to positive scaling and shaping; ``√½``: uncorrelated;
    1: one is the negation of the other.

    Args:
        rewards_a: ``[N]`` rewards (e.g. the VLM reward of ``N`` frames).
        rewards_b: ``[N]`` rewards of the same states (e.g. ground-truth or human labels).

    Source: Gleave et al., ICLR 2021, definition 4.3; VLM-RM (Rocamonde et al. 2024, §4.2)
    compares the CLIP reward with human labels this way.

    Raises:
        InvalidParameterError: fewer than 2 samples, unpaired lengths, non-finite values.
    """
    return pearson_distance(rewards_a, rewards_b)


def canonicalize(
    reward: RewardFunction,
    states: np.ndarray,
    actions: np.ndarray,
    next_states: np.ndarray,
    coverage_states: np.ndarray,
    coverage_actions: np.ndarray,
    gamma: float,
) -> np.ndarray:
    """Canonically shaped reward ``C(R)`` of transitions, by Monte Carlo over a coverage sample.

    ``C(R)(s, a, s') = R(s, a, s') + E[γ R(s', A, S') - R(s, A, S') - γ R(S, A, S')]`` with ``S``,
    ``S'`` drawn from ``coverage_states`` and ``A`` from ``coverage_actions`` (the same ``M``
    samples for every expectation, so potential shaping cancels exactly).

    Args:
        reward: ``R(s, a, s')`` on batches (:data:`RewardFunction`).
        states, actions, next_states: the ``N`` transitions, ``[N, ...]``.
        coverage_states: ``[M, ...]`` states of the coverage distribution ``D_S``.
        coverage_actions: ``[M, ...]`` actions of ``D_A``.
        gamma: discount ``γ`` in ``[0, 1]``.

    Returns:
        ``float64 [N]``.

    Source: Gleave et al., ICLR 2021, definition 4.1 (eq. 3).
    """
    n, m = len(states), len(coverage_states)
    if len(coverage_actions) != m:
        raise InvalidParameterError("coverage_states and coverage_actions must have the same length.")
    if not 0.0 <= gamma <= 1.0:
        raise InvalidParameterError(f"gamma must be in [0, 1]; got {gamma}.")

    def mean_over_coverage(first: np.ndarray) -> np.ndarray:
        """``E_{A, S'}[R(x, A, S')]`` for each ``x`` in ``first`` ``[N, ...]`` → ``[N]``."""
        s = np.repeat(first, m, axis=0)
        a = np.tile(coverage_actions, (len(first),) + (1,) * (coverage_actions.ndim - 1))
        s2 = np.tile(coverage_states, (len(first),) + (1,) * (coverage_states.ndim - 1))
        return np.asarray(reward(s, a, s2), dtype=np.float64).reshape(len(first), m).mean(axis=1)

    direct = np.asarray(reward(states, actions, next_states), dtype=np.float64).reshape(n)
    from_next = mean_over_coverage(next_states)
    from_current = mean_over_coverage(states)
    overall = mean_over_coverage(coverage_states).mean()
    return direct + gamma * from_next - from_current - gamma * overall


def epic_distance_transitions(
    reward_a: RewardFunction,
    reward_b: RewardFunction,
    states: np.ndarray,
    actions: np.ndarray,
    next_states: np.ndarray,
    coverage_states: np.ndarray,
    coverage_actions: np.ndarray,
    gamma: float = 0.99,
) -> float:
    """EPIC distance of two transition rewards: Pearson distance of their canonicalisations.

    Args: as :func:`canonicalize`; the transitions are the samples of the Pearson distance.

    Returns:
        Distance in ``[0, 1]``; invariant to positive scaling of either reward and to potential
        shaping ``R + γΦ(s') - Φ(s)``.

    Source: Gleave et al., ICLR 2021, definition 4.3.
    """
    args = (states, actions, next_states, coverage_states, coverage_actions, gamma)
    return pearson_distance(canonicalize(reward_a, *args), canonicalize(reward_b, *args))


@dataclass(frozen=True)
class DetectionMetrics:
    """A reward as a goal detector against binary labels.

    Attributes:
        average_precision: area under the precision-recall curve (step-wise, scikit-learn), ``[0, 1]``.
        roc_auc: area under the ROC curve, ``[0, 1]``; 0.5 is chance.
        best_f1: the highest F1 score over thresholds, and ``best_threshold`` the reward at which it is reached.
        positives: number of positive labels; ``n``: number of samples.
        precision, recall, thresholds: the precision-recall curve (``thresholds`` one shorter).
    """

    average_precision: float
    roc_auc: float
    best_f1: float
    best_threshold: float
    positives: int
    n: int
    precision: list[float]
    recall: list[float]
    thresholds: list[float]

    def summary(self) -> dict[str, float | int]:
        """The scalar metrics only (no curve)."""
        return {k: v for k, v in asdict(self).items() if not isinstance(v, list)}


def detection_metrics(rewards, labels) -> DetectionMetrics:
    """Average precision, ROC-AUC, PR curve and best-F1 threshold of ``rewards`` against ``labels``.

    Args:
        rewards: ``[N]`` scores, higher meaning "goal reached".
        labels: ``[N]`` booleans or 0/1, the ground-truth success labels.

    Raises:
        InvalidParameterError: unpaired lengths, non-finite rewards, or labels that are all one class
            (precision-recall and ROC need positives and negatives).

    Source: scikit-learn's ``average_precision_score``, ``roc_auc_score``,
    ``precision_recall_curve``; Baumli et al. 2023 (Fig. 4) evaluate VLM rewards this way.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

    scores = _as_rewards(rewards, "rewards")
    y = np.asarray(labels).reshape(-1)
    if y.shape != scores.shape:
        raise InvalidParameterError(f"{scores.size} rewards but {y.size} labels; they must be paired.")
    if not np.isin(y, [0, 1]).all():
        raise InvalidParameterError("labels must be booleans or 0/1.")
    y = y.astype(bool)
    positives = int(y.sum())
    if positives in (0, y.size):
        raise InvalidParameterError(
            f"labels are all {'positive' if positives else 'negative'}; precision-recall and ROC need both "
            "successes and failures in the dataset."
        )
    precision, recall, thresholds = precision_recall_curve(y, scores)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-300), 0.0)[:-1]
    best = int(np.argmax(f1))
    return DetectionMetrics(
        average_precision=float(average_precision_score(y, scores)),
        roc_auc=float(roc_auc_score(y, scores)),
        best_f1=float(f1[best]),
        best_threshold=float(thresholds[best]),
        positives=positives,
        n=int(y.size),
        precision=precision.tolist(),
        recall=recall.tolist(),
        thresholds=thresholds.tolist(),
    )


def correlations(rewards_a, rewards_b) -> dict[str, float]:
    """Pearson and Spearman correlations of two paired rewards: ``{"pearson": ρ, "spearman": ρ_s}``.

    Both are NaN when either input is constant (undefined).

    Raises:
        InvalidParameterError: fewer than 2 samples, unpaired lengths, non-finite values.
    """
    from scipy.stats import pearsonr, spearmanr

    x, y = _as_rewards(rewards_a, "rewards_a"), _as_rewards(rewards_b, "rewards_b")
    if x.shape != y.shape:
        raise InvalidParameterError(f"the two rewards have {x.size} and {y.size} samples; they must be paired.")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"pearson": float("nan"), "spearman": float("nan")}
    return {"pearson": float(pearsonr(x, y)[0]), "spearman": float(spearmanr(x, y)[0])}
