"""Evaluation of rewards before training: EPIC distance, goal-detection metrics, correlations."""

from vlmreward.eval.metrics import (
    DetectionMetrics,
    canonicalize,
    correlations,
    detection_metrics,
    epic_distance,
    epic_distance_transitions,
    pearson_distance,
)

__all__ = [
    "epic_distance",
    "epic_distance_transitions",
    "canonicalize",
    "pearson_distance",
    "detection_metrics",
    "DetectionMetrics",
    "correlations",
]
