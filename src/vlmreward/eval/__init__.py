"""Evaluation of rewards before training: labelled datasets, EPIC distance, goal-detection metrics,
correlations, calibration, reward landscapes, model/prompt sweeps and reports."""

from vlmreward.eval.calibration import (
    AlphaChoice,
    CalibrationError,
    ThresholdChoice,
    calibrate_alpha,
    calibrate_threshold,
    pick_alpha_by_epic,
    threshold_for_precision,
)
from vlmreward.eval.collect import CollectResult, PolicyError, collect
from vlmreward.eval.dataset import (
    Dataset,
    DatasetError,
    DatasetWriter,
    MissingLabelError,
    load_dataset,
    save_dataset,
)
from vlmreward.eval.embeddings import EmbeddingResult, embed_dataset
from vlmreward.eval.evaluation import DatasetScores, RewardEvaluation, score_dataset, score_rewards
from vlmreward.eval.outputs import EvaluationResult, evaluate_dataset, write_evaluation
from vlmreward.eval.metrics import (
    DetectionMetrics,
    canonicalize,
    correlations,
    detection_metrics,
    epic_distance,
    epic_distance_transitions,
    pearson_distance,
)
from vlmreward.eval.sweep import PromptSet, SweepResult, load_prompt_sets, parse_model, run_sweep

__all__ = [
    "epic_distance",
    "epic_distance_transitions",
    "canonicalize",
    "pearson_distance",
    "detection_metrics",
    "DetectionMetrics",
    "correlations",
    "Dataset",
    "DatasetError",
    "DatasetWriter",
    "MissingLabelError",
    "load_dataset",
    "save_dataset",
    "collect",
    "CollectResult",
    "PolicyError",
    "embed_dataset",
    "EmbeddingResult",
    "evaluate_dataset",
    "score_dataset",
    "write_evaluation",
    "DatasetScores",
    "score_rewards",
    "EvaluationResult",
    "RewardEvaluation",
    "run_sweep",
    "load_prompt_sets",
    "parse_model",
    "PromptSet",
    "SweepResult",
    "threshold_for_precision",
    "pick_alpha_by_epic",
    "calibrate_alpha",
    "calibrate_threshold",
    "ThresholdChoice",
    "AlphaChoice",
    "CalibrationError",
]
