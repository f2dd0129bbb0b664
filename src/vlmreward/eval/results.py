"""One reward's metrics on a dataset's frames: :class:`RewardEvaluation` and the functions that fill it.

:func:`score_rewards` scores per-frame rewards as a goal detector against a binary label
(average precision, ROC-AUC, the precision-recall curve, the best-F1 threshold, the threshold
reaching a target precision) and as a reward against a reference reward (EPIC distance, Pearson
and Spearman correlations); :func:`group_summaries` does so per value of a column. The
episode-level reward-quality metrics (VOC, policy ranking, instruction mismatch;
:mod:`vlmreward.eval.progress_metrics`) are attached as :attr:`RewardEvaluation.quality` by
:func:`vlmreward.eval.evaluation.score_dataset`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vlmreward._json import json_safe
from vlmreward.eval.calibration import CalibrationError, ThresholdChoice, threshold_for_precision
from vlmreward.eval.metrics import DetectionMetrics, correlations, detection_metrics, epic_distance
from vlmreward.eval.progress_metrics import PROGRESS_METRICS

__all__ = ["RewardEvaluation", "score_rewards", "group_summaries"]


@dataclass
class RewardEvaluation:
    """A reward's metrics on a dataset.

    Attributes:
        name: display name of the setting.
        reward: the reward's ``describe()``.
        rewards: ``float32 [N]`` rewards of the frames (not written to JSON).
        detection: detection metrics against the label, or None (no label, or one class only).
        epic_distance: EPIC distance to the reference reward (NaN when undefined).
        epic_distance_to_label: EPIC distance to the binary label (NaN when undefined / no label).
        pearson, spearman: correlations with the reference reward (NaN when undefined).
        threshold_at_precision: the calibrated threshold, when a target precision was given and reached.
        notes: why something is missing.
        groups: per value of the grouping column: the scalar metrics (:meth:`summary`) on its
            frames, with ``frames`` and ``positives``.
        episodes: for an episode reward (a kind of mode ``episode``): the episode-level metrics of
            :func:`~vlmreward.eval.episodes.episode_metrics` (AP and ROC-AUC against episode
            success, EPIC distance to the episodes' returns), else None.
        quality: on a dataset of episodes, VOC, policy ranking and instruction mismatch
            (:func:`~vlmreward.eval.progress_metrics.episode_quality`), else None.
    """

    name: str
    reward: dict[str, Any]
    rewards: np.ndarray
    detection: DetectionMetrics | None
    epic_distance: float
    epic_distance_to_label: float
    pearson: float
    spearman: float
    threshold_at_precision: ThresholdChoice | None = None
    notes: list[str] = field(default_factory=list)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    episodes: dict[str, Any] | None = None
    quality: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """Scalar metrics: AP, ROC-AUC, best F1 and its threshold, EPIC distances, correlations, and
        (NaN without episodes) VOC, policy ranking's ``τ`` and the instruction-mismatch fraction."""
        d = self.detection
        q = self.quality or {}
        return {
            "average_precision": d.average_precision if d else math.nan,
            "roc_auc": d.roc_auc if d else math.nan,
            "best_f1": d.best_f1 if d else math.nan,
            "best_threshold": d.best_threshold if d else math.nan,
            "epic_distance": self.epic_distance,
            "epic_distance_to_label": self.epic_distance_to_label,
            "pearson": self.pearson,
            "spearman": self.spearman,
            "threshold_at_precision": self.threshold_at_precision.threshold if self.threshold_at_precision else math.nan,
            **{key: q.get(key, math.nan) for key in PROGRESS_METRICS},
        }

    def to_json(self) -> dict[str, Any]:
        d = self.detection
        out: dict[str, Any] = {"name": self.name, "reward": self.reward, **self.summary()}
        out["reward_stats"] = {
            "mean": float(np.mean(self.rewards)), "std": float(np.std(self.rewards)),
            "min": float(np.min(self.rewards)), "max": float(np.max(self.rewards)),
        }
        out["threshold_at_precision"] = (
            None if self.threshold_at_precision is None else dict(vars(self.threshold_at_precision))
        )
        out["pr_curve"] = None if d is None else {"precision": d.precision, "recall": d.recall, "thresholds": d.thresholds}
        out["notes"] = self.notes
        if self.groups:
            out["groups"] = self.groups
        if self.episodes is not None:
            out["episodes"] = self.episodes
        if self.quality is not None:
            out["quality"] = self.quality
        return json_safe(out)


def score_rewards(
    name: str,
    rewards: np.ndarray,
    labels: np.ndarray | None,
    reference: np.ndarray,
    target_precision: float | None = None,
    reward: dict[str, Any] | None = None,
) -> RewardEvaluation:
    """Score one reward against labels and a reference reward.

    Args:
        name: display name.
        rewards: ``[N]``.
        labels: ``[N]`` booleans, or None.
        reference: ``[N]`` reference reward.
        target_precision: also pick the threshold that reaches this precision.
        reward: the reward's description.

    Returns:
        :class:`RewardEvaluation`; what cannot be computed (a constant reward, one-class labels,
        an unreachable precision) is NaN/None with a note, not an error.
    """
    rewards = np.asarray(rewards, dtype=np.float32)
    notes: list[str] = []
    detection = None
    choice = None
    epic_label = math.nan
    if labels is not None:
        labels = np.asarray(labels, dtype=bool)
        if labels.all() or not labels.any():
            notes.append(
                f"the label is {'true' if labels.all() else 'false'} for every frame, so AP, ROC-AUC and the "
                "precision-recall curve are undefined; collect a dataset with both goal and non-goal frames."
            )
        else:
            detection = detection_metrics(rewards, labels)
            epic_label = epic_distance(rewards, labels.astype(np.float64))
            if target_precision is not None:
                try:
                    choice = threshold_for_precision(rewards, labels, target_precision)
                except CalibrationError as err:
                    notes.append(str(err))
    epic = epic_distance(rewards, reference)
    corr = correlations(rewards, reference)
    if math.isnan(epic):
        notes.append(
            "the reference reward or this reward is constant on the dataset, so the EPIC distance and the "
            "correlations are undefined; choose another --reference (e.g. is_success)."
        )
    return RewardEvaluation(
        name=name,
        reward=reward or {},
        rewards=rewards,
        detection=detection,
        epic_distance=epic,
        epic_distance_to_label=epic_label,
        pearson=corr["pearson"],
        spearman=corr["spearman"],
        threshold_at_precision=choice,
        notes=notes,
    )


def group_summaries(
    rewards: np.ndarray,
    labels: np.ndarray | None,
    reference: np.ndarray,
    groups: np.ndarray,
    target_precision: float | None = None,
) -> dict[str, dict[str, Any]]:
    """:meth:`RewardEvaluation.summary` per value of ``groups`` (``[N]``), with ``frames``, ``positives`` and notes."""
    out: dict[str, dict[str, Any]] = {}
    for value in dict.fromkeys(groups.tolist()):
        mask = groups == value
        part = score_rewards(str(value), rewards[mask], None if labels is None else labels[mask], reference[mask], target_precision)
        d = part.detection
        out[str(value)] = {
            **part.summary(),
            "frames": int(mask.sum()),
            "positives": None if labels is None else int(labels[mask].sum()),
            "pr_curve": None if d is None else {"precision": d.precision, "recall": d.recall, "thresholds": d.thresholds},
            "notes": part.notes,
        }
    return out
