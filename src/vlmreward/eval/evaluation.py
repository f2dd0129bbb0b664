"""Score a VLM reward on a labelled dataset: rewards and metrics, nothing written.

:func:`score_dataset` embeds the dataset's frames once (:func:`~vlmreward.eval.embeddings.embed_dataset`,
cached), computes the reward for every setting asked for (goal-baseline for each ``α``, or the
softmax probability for each ``τ`` when negatives are given) with ``from_embeddings``, and
scores each against the dataset's labels (:func:`score_rewards`):

* as a goal detector against a binary label: average precision, ROC-AUC, precision-recall
  curve, best-F1 threshold (:func:`~vlmreward.eval.metrics.detection_metrics`), and with a
  target precision the threshold that reaches it (:func:`~vlmreward.eval.calibration.threshold_for_precision`);
* as a reward against a reference reward (the ground-truth ``gt_reward`` by default): EPIC
  distance, Pearson and Spearman correlations; the EPIC distance to the binary label too (VLM-RM
  compares with human goal labels this way).

:func:`vlmreward.eval.outputs.evaluate_dataset` then writes ``metrics.json``, ``landscape.png``,
``pr_curve.png``, ``reward_by_label.png``, ``frames.png`` and a self-contained ``report.html``
(:func:`~vlmreward.eval.outputs.write_evaluation`).

Datasets of goal-conditioned environments (each frame with its own goal, :mod:`vlmreward.eval.goal_eval`)
are evaluated without a ``goal``: each frame's reward is ``p(its goal | frame)`` against the goal
family's negatives (Baumli et al.). ``group_by`` (by default ``goal_type`` for such datasets) adds
every metric per value of a column (``metrics.json``: ``results[i].groups``, ``metric_by_group.png``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from vlmreward._json import json_safe
from vlmreward.errors import InvalidParameterError
from vlmreward.eval.calibration import CalibrationError, ThresholdChoice, pick_alpha_by_epic, threshold_for_precision
from vlmreward.eval.dataset import Dataset
from vlmreward.eval.embeddings import embed_dataset, frame_rewards, resize_note, scores_embeddings
from vlmreward.eval.metrics import DetectionMetrics, correlations, detection_metrics, epic_distance
from vlmreward.models.base import VisionLanguageModel
from vlmreward.eval.episodes import dataset_clip_rewards, episode_metrics
from vlmreward.eval.settings import RewardSetting, build_setting, reward_settings, scores_per_frame_goals
from vlmreward.rewards.selection import is_given
from vlmreward.rewards.video import is_clip_reward

__all__ = [
    "RewardEvaluation",
    "DatasetScores",
    "score_rewards",
    "resolve_label",
    "score_dataset",
    "METRICS_FILE",
    "REPORT_FILE",
    "PLOT_FILES",
]

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.html"
PLOT_FILES = {
    "landscape": "landscape.png",
    "pr_curve": "pr_curve.png",
    "reward_by_label": "reward_by_label.png",
    "frames": "frames.png",
}
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

    def summary(self) -> dict[str, Any]:
        """Scalar metrics: AP, ROC-AUC, best F1 and its threshold, EPIC distances, correlations."""
        d = self.detection
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


def resolve_label(dataset: Dataset, label: str | None, notes: list[str], needed: bool) -> tuple[str | None, np.ndarray | None]:
    """The label column to score against: ``label`` if given (required), else ``is_success`` if present.

    Without either, appends a note to ``notes`` and returns ``(None, None)``, unless ``needed``.

    Raises:
        MissingLabelError: ``label`` is not a label of the dataset, or none is there and ``needed``.
    """
    if label is not None:
        return label, dataset.label(label)
    if "is_success" in dataset.label_names:
        return "is_success", dataset.label("is_success")
    if needed:
        dataset.label("is_success")  # raises MissingLabelError with the dataset's labels
    notes.append(
        "the dataset has no success label, so only the EPIC distance and correlations were computed "
        f"(labels: {', '.join(dataset.label_names) or 'none'})."
    )
    return None, None


def _landscape_axes(dataset: Dataset, x: str | None, facet: str | None) -> tuple[str | None, str | None]:
    spec = dataset.metadata.get("landscape") or {}
    if x is None:
        x = spec.get("x")
        if x is not None and x not in dataset.table:
            x = None
        if facet is None:
            facet = spec.get("facet")
    else:
        dataset.numeric(x, "state variable")
    if x is None:
        candidates = [c for c in dataset.state_variable_names if dataset.table[c].dtype.kind in "fiu"]
        x = candidates[0] if candidates else None
    if facet is not None:
        dataset.column(facet, "state variable")
        if x is not None and np.all(~np.isfinite(dataset.numeric(x, "state variable"))):
            facet = None
    return x, facet


@dataclass
class DatasetScores:
    """What :func:`score_dataset` computed; nothing is written (:func:`~vlmreward.eval.outputs.write_evaluation` writes it).

    Attributes:
        results: one :class:`RewardEvaluation` per setting, in the order of ``settings``.
        settings: the reward settings scored.
        title: the goal prompt(s) joined by ``" | "`` (or a description of the per-frame goals).
        prompts: the prompts as ``metrics.json`` records them.
        label_name, labels: the binary label column and its values (bool ``[N]``); None without one.
        reference, reference_values: the reference reward column and its values (float64 ``[N]``).
        group_by, groups: the grouping column and its values (``[N]``); None when not grouped.
        x_name, facet_name: the landscape's state variable and facet (None when there is none).
        calibration: ``alpha_by_epic`` (several ``α``) and ``target_precision``, when they apply.
        embedding_cache: ``{"hit": bool, "path": str | None}``.
        notes: what was skipped, and why.
    """

    results: list[RewardEvaluation]
    settings: list[RewardSetting]
    title: str
    prompts: dict[str, Any]
    label_name: str | None
    labels: np.ndarray | None
    reference: str
    reference_values: np.ndarray
    group_by: str | None
    groups: np.ndarray | None
    x_name: str | None
    facet_name: str | None
    calibration: dict[str, Any]
    embedding_cache: dict[str, Any]
    notes: list[str]


def score_dataset(
    dataset: Dataset,
    model: VisionLanguageModel,
    goal: Sequence[str] | None,
    *,
    baseline: Sequence[str] | None = None,
    negatives: Sequence[str] | None = None,
    alphas: Sequence[float] | None = None,
    temperatures: Sequence[float] | None = None,
    label: str | None = None,
    reference: str = "gt_reward",
    x: str | None = None,
    facet: str | None = None,
    target_precision: float | None = None,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    goal_family: Any = None,
    family_negatives: str = "all",
    k: int | None = None,
    templates: Mapping[str, str | Sequence[str]] | None = None,
    group_by: str | None = None,
    reward_kind: str | None = None,
    reward_params: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> DatasetScores:
    """Score a VLM reward on a labelled dataset: every setting's rewards and metrics, no file written.

    Args:
        dataset: from :func:`~vlmreward.eval.dataset.load_dataset`.
        model: the vision-language model.
        goal: goal prompt(s); None (or empty) for a goal dataset: each frame against its own goal.
        baseline, negatives: baseline prompt(s) (goal-baseline), negative prompts (select the softmax reward).
        alphas, temperatures: ``α`` values (goal-baseline), ``τ`` values (softmax); :func:`reward_settings`.
        label: binary label column for the detection metrics; None: ``is_success`` if the
            dataset has it (else detection metrics are skipped with a note).
        reference: numeric column the EPIC distance and correlations compare with.
        x, facet: state variable (and categorical facet) of the landscape plot; default from
            the dataset's metadata.
        target_precision: also report the threshold reaching this precision (needs a label).
        cache_dir: embedding cache directory; None for no cache.
        batch_size: frames per forward pass.
        progress: called with the number of frames of each embedded batch.
        goal_family: the goal family of a goal dataset (default: the one in its metadata).
        family_negatives: ``all``, ``same_template`` or ``k_sampled`` (goal datasets).
        k: negatives per goal for ``k_sampled``.
        templates: the reward's prompt templates per goal type (goal datasets).
        group_by: also report every metric per value of this column (default ``goal_type`` for
            goal datasets, else none).
        reward_kind, reward_params: the reward kind (``--reward-kind``; default: the one the prompts
            select, :func:`~vlmreward.rewards.selection.choose_kind`) and its ``--param`` values.
        options: the shorthand options given (``{"threshold": 0.5, "scale": [1, 2]}``; a kind's sweep
            parameter as a list, one curve per value), beside ``baseline``, ``alphas``, ... .

    Returns:
        :class:`DatasetScores`.

    Raises:
        MissingLabelError: ``label``, ``reference``, ``x``, ``facet`` or ``group_by`` is not a column
            of the dataset (or ``target_precision`` without any label).
        InvalidParameterError, PromptError: bad reward parameters or prompts; no ``goal`` for a
            dataset without per-frame goals; ``baseline``, ``negatives`` or ``alphas`` with per-frame goals.
    """
    import vlmreward.eval.goal_eval as goal_eval

    notes: list[str] = []
    frame_goals: list[str] | None = None
    given = {"goal": list(goal) if goal else None, "baseline": baseline, "negatives": negatives, "alpha": alphas,
             "temperature": temperatures, **dict(options or {})}
    baseline, negatives = given.get("baseline"), given.get("negatives")
    if scores_per_frame_goals(reward_kind, goal):  # each frame against its own goal (Baumli et al.'s reward)
        if not goal_eval.is_goal_dataset(dataset) and goal_family is None:
            raise InvalidParameterError(
                f"dataset {str(dataset.path)!r} has no per-frame goals, so give the goal prompt (--goal ...)."
            )
        if any(is_given(v) for k, v in given.items() if k in ("baseline", "negatives", "alpha")):
            raise InvalidParameterError(
                "each frame is scored against its own goal, with the goal family's other goals as negatives; "
                "--baseline, --negative and --alpha do not apply (give --goal to score one sentence instead)."
            )
        family = goal_eval.dataset_goal_family(dataset, goal_family)
        frame_goals = goal_eval.dataset_goals(dataset)
        settings = reward_settings(reward_kind, given, reward_params, per_frame_goals=True)
        context = goal_eval.family_context(family, family_negatives, k)
        extra = {"templates": dict(templates)} if templates else {}
        rewards_objects = [(s, build_setting(model, s, {}, context, extra)) for s in settings]
        goal = [f"each frame's own goal (family {family.name!r}, negatives: {family_negatives})"]
        if group_by is None and goal_eval.DEFAULT_GROUP_BY in dataset.table:
            group_by = goal_eval.DEFAULT_GROUP_BY
    else:
        settings = reward_settings(reward_kind, given, reward_params)
        kind = settings[0].spec
        if kind.requires("goal") and not goal:
            raise InvalidParameterError(f"reward kind {kind.name!r} needs the goal prompt (--goal ...).")
        prompts = {"goal": list(goal) if goal else None, "baseline": baseline, "negatives": negatives}
        rewards_objects = [(s, build_setting(model, s, prompts)) for s in settings]  # prompt errors first
        goal = list(goal) if goal else [f"the {kind.display_name} reward (no prompt)"]
    groups = None if group_by is None else goal_eval.group_values(dataset, group_by)
    label_name, labels = resolve_label(dataset, label, notes, needed=target_precision is not None)
    ref = dataset.numeric(reference, "reference reward")
    x_name, facet_name = _landscape_axes(dataset, x, facet)
    notes += [n for n in [resize_note(model, dataset.render_size)] if n]

    embedded = None
    if any(scores_embeddings(r) for _, r in rewards_objects):
        embedded = embed_dataset(model, dataset, cache_dir=cache_dir, batch_size=batch_size, progress=progress)
    results = []
    for s, r in rewards_objects:
        if is_clip_reward(r):  # episodes replayed through the environments' clip path
            values = dataset_clip_rewards(r, dataset, progress=progress)
        elif embedded is None or not scores_embeddings(r):
            values = frame_rewards(r, dataset.frames, batch_size, progress)
        elif frame_goals is None:
            values = r.from_embeddings(embedded.embeddings)
        else:
            values = r.from_embeddings_with_goals(embedded.embeddings, frame_goals)
        result = score_rewards(s.name, values, labels, ref, target_precision, r.describe())
        if groups is not None:
            result.groups = group_summaries(result.rewards, labels, ref, groups, target_precision)
        if is_clip_reward(r) and r.clip_mode == "episode":
            result.episodes = episode_metrics(values, dataset, labels, ref)
        results.append(result)

    calibration: dict[str, Any] = {}
    sweep = settings[0].spec.sweep
    if len(settings) > 1 and sweep is not None and sweep.calibrate:  # α chosen by EPIC distance (Rocamonde et al.)
        key = f"{sweep.param}_by_epic"
        try:
            choice = pick_alpha_by_epic({s.get(sweep.param): r.rewards for s, r in zip(settings, results)}, ref)
            calibration[key] = {sweep.param: choice.alpha, "epic_distance": choice.epic_distance, "reference": reference,
                                "symbol": sweep.symbol}
        except CalibrationError as err:
            calibration[key] = {sweep.param: None, "note": str(err)}
    if target_precision is not None:
        calibration["target_precision"] = target_precision

    prompts = {
        "goal": list(goal), "baseline": list(baseline) if baseline else None,
        "negatives": list(negatives) if negatives else None,
        **({"per_frame_goals": True, "family_negatives": family_negatives, "k": k,
            "templates": {t: [v] if isinstance(v, str) else list(v) for t, v in (templates or {}).items()} or None}
           if frame_goals is not None else {}),
    }
    return DatasetScores(
        results=results, settings=settings, title=" | ".join(goal), prompts=prompts,
        label_name=label_name, labels=labels, reference=reference, reference_values=ref,
        group_by=group_by, groups=groups, x_name=x_name, facet_name=facet_name, calibration=calibration,
        embedding_cache=(
            {"hit": None, "path": None} if embedded is None
            else {"hit": embedded.cache_hit, "path": None if embedded.path is None else str(embedded.path)}
        ),
        notes=notes,
    )
