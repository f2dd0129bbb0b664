"""Reward-quality metrics over episodes, the offline numbers progress-reward papers report.

For any reward kind scored on a dataset of episodes (``episode`` and ``step`` columns):

* :func:`value_order_correlation` (**VOC**, GVL: Ma et al., ICLR 2025, §4): per episode, the
  Spearman rank correlation of the per-frame reward with the frame index, on the *successful*
  episodes (an expert's progress increases with time); reported per episode and as the mean. In
  ``[-1, 1]``; 1 is a reward that increases at every step.
* :func:`policy_ranking` (Robometer's ``evals/run_baseline_eval.py``: "policy ranking"): the
  Kendall rank correlation ``τ_b`` between the episodes' returns under the reward and their
  ground truth (the return of the reference reward, or success), across episodes. In ``[-1, 1]``.
* :func:`instruction_mismatch`: each episode's mean reward under its own instruction against its
  mean reward under another task's instruction; the fraction of pairs ordered correctly (own >
  other), in ``[0, 1]``; 0.5 is a reward that ignores the instruction. Ties count as not ordered.

Correlations are SciPy's (``scipy.stats.spearmanr``, ``scipy.stats.kendalltau`` with its default
``variant="b"``); an undefined value (a constant input, fewer than two episodes) is NaN with a
note, never an error.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from vlmreward.eval.episodes import EPISODE_SUCCESS_RULE, episode_rows

__all__ = [
    "value_order_correlation", "policy_ranking", "instruction_mismatch", "episode_means", "episode_quality", "has_episodes",
    "PROGRESS_METRICS",
]

PROGRESS_METRICS = ("voc", "policy_ranking_tau", "instruction_mismatch")
"""The summary keys of these metrics (``metrics.json`` results, ``sweep``'s table)."""


def value_order_correlation(rewards: np.ndarray, rows: Sequence[np.ndarray], success: np.ndarray | None) -> dict[str, Any]:
    """VOC: Spearman's ``ρ`` of reward against frame index, per episode, averaged over successful episodes.

    Args:
        rewards: per-frame rewards ``[N]`` (dataset row order).
        rows: each episode's row indices in step order (:func:`~vlmreward.eval.episodes.episode_rows`).
        success: per-episode success (bool ``[E]``), or None: every episode counts (noted).

    Returns:
        ``voc`` (mean over the counted episodes with a defined ``ρ``; NaN when none), ``per_episode``
        (``ρ`` of every episode, NaN for constant rewards or one frame), ``episodes`` (counted),
        ``undefined`` (counted episodes whose ``ρ`` is undefined), ``notes``.
    """
    from scipy.stats import spearmanr

    per_episode = []
    for idx in rows:
        r = np.asarray(rewards, dtype=np.float64)[idx]
        per_episode.append(float(spearmanr(r, np.arange(len(r)))[0]) if len(r) > 1 and np.ptp(r) > 0 else math.nan)
    notes = []
    counted = np.ones(len(rows), dtype=bool) if success is None else np.asarray(success, dtype=bool)
    if success is None:
        notes.append("VOC is defined on successful episodes; the dataset has no success label, so every episode counts.")
    values = np.array(per_episode)[counted]
    defined = values[np.isfinite(values)]
    if not len(defined):
        notes.append("VOC is undefined: no counted episode has a non-constant reward over two or more frames.")
    return {
        "voc": float(defined.mean()) if len(defined) else math.nan, "per_episode": per_episode,
        "episodes": int(counted.sum()), "undefined": int(len(values) - len(defined)), "notes": notes,
    }


def policy_ranking(returns: np.ndarray, truth: np.ndarray) -> float:
    """Kendall's ``τ_b`` between episode returns ``[E]`` and their ground truth ``[E]`` (returns or success);
    NaN when either is constant or there are fewer than two episodes."""
    from scipy.stats import kendalltau

    x, y = np.asarray(returns, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(kendalltau(x, y)[0])


def episode_means(rewards: np.ndarray, rows: Sequence[np.ndarray]) -> np.ndarray:
    """Each episode's mean per-frame reward, ``float64 [E]``."""
    return np.array([float(np.mean(np.asarray(rewards, dtype=np.float64)[idx])) for idx in rows])


def instruction_mismatch(own: np.ndarray, others: Sequence[np.ndarray]) -> dict[str, Any]:
    """The fraction of (episode, other instruction) pairs whose own-instruction score is higher.

    Args:
        own: each episode's score under its own instruction ``[E]`` (:func:`episode_means`).
        others: per other instruction, each episode's score under it ``[E]``.

    Returns:
        ``fraction`` (NaN without pairs), ``pairs``, ``ties``.
    """
    own = np.asarray(own, dtype=np.float64)
    wins = ties = pairs = 0
    for other in others:
        other = np.asarray(other, dtype=np.float64)
        wins += int(np.sum(own > other))
        ties += int(np.sum(own == other))
        pairs += len(own)
    return {"fraction": wins / pairs if pairs else math.nan, "pairs": pairs, "ties": ties}


def has_episodes(dataset: Any) -> bool:
    """Whether ``dataset`` records episodes: ``episode`` and ``step`` columns, as ``collect`` writes, and
    not a scripted sweep (whose "episodes" are sweep lines, not behaviour in time order)."""
    sweep = (getattr(dataset, "metadata", None) or {}).get("policy", {}).get("kind") == "scripted"
    return "episode" in dataset.table and "step" in dataset.table and not sweep


def episode_quality(
    rewards: np.ndarray, dataset: Any, labels: np.ndarray | None, reference: np.ndarray,
    mismatched: Sequence[np.ndarray] = (), mismatch_instructions: Sequence[str] = (),
) -> dict[str, Any]:
    """VOC, policy ranking and instruction mismatch of one reward on a dataset of episodes.

    Args:
        rewards: per-frame rewards ``[N]``.
        dataset: the dataset (``episode`` and ``step`` columns).
        labels: per-frame success labels (bool ``[N]``) or None; an episode succeeds when its
            label held at any step (:data:`~vlmreward.eval.episodes.EPISODE_SUCCESS_RULE`).
        reference: the per-frame reference reward ``[N]``; its per-episode sums are the ground-truth returns.
        mismatched: per other instruction, the same reward's per-frame values under it ``[N]``.
        mismatch_instructions: those instructions (recorded).

    Returns:
        ``voc``, ``policy_ranking_tau`` (returns against ground-truth returns),
        ``policy_ranking_success_tau`` (against episode success, NaN without a label),
        ``instruction_mismatch`` (NaN without ``mismatched``), and the details: ``voc_per_episode``,
        ``episodes``, ``voc_episodes``, ``returns``, ``gt_returns``, ``success``, ``mismatch``, ``notes``.
    """
    rows = episode_rows(dataset)
    success = None if labels is None else np.array([bool(np.any(labels[idx])) for idx in rows])
    voc = value_order_correlation(rewards, rows, success)
    returns = np.array([float(np.sum(np.asarray(rewards, np.float64)[idx])) for idx in rows])
    gt_returns = np.array([float(np.sum(np.asarray(reference, np.float64)[idx])) for idx in rows])
    notes = list(voc["notes"])
    tau = policy_ranking(returns, gt_returns)
    tau_success = math.nan if success is None else policy_ranking(returns, success)
    if math.isnan(tau):
        notes.append("policy ranking is undefined: the episodes' returns or ground-truth returns are all equal, or there is one episode.")
    mismatch = None
    if len(mismatched):
        own = episode_means(rewards, rows)
        mismatch = {**instruction_mismatch(own, [episode_means(m, rows) for m in mismatched]),
                    "instructions": list(mismatch_instructions)}
    return {
        "voc": voc["voc"], "policy_ranking_tau": tau, "policy_ranking_success_tau": tau_success,
        "instruction_mismatch": math.nan if mismatch is None else mismatch["fraction"],
        "episodes": len(rows), "voc_episodes": voc["episodes"], "voc_per_episode": voc["per_episode"],
        "returns": returns.tolist(), "gt_returns": gt_returns.tolist(),
        "success": None if success is None else success.tolist(), "success_rule": EPISODE_SUCCESS_RULE,
        "mismatch": mismatch, "notes": notes,
    }
