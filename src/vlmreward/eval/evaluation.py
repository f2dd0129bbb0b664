"""Evaluate a VLM reward on a labelled dataset: metrics, plots and a report.

:func:`evaluate_dataset` embeds the dataset's frames once (:func:`~vlmreward.eval.embeddings.embed_dataset`,
cached), computes the reward for every setting asked for (goal-baseline for each ``α``, or the
softmax probability for each ``τ`` when negatives are given) with ``from_embeddings``, and
scores each against the dataset's labels (:func:`score_rewards`):

* as a goal detector against a binary label: average precision, ROC-AUC, precision-recall
  curve, best-F1 threshold (:func:`~vlmreward.eval.metrics.detection_metrics`), and with a
  target precision the threshold that reaches it (:func:`~vlmreward.eval.calibration.threshold_for_precision`);
* as a reward against a reference reward (the ground-truth ``gt_reward`` by default): EPIC
  distance, Pearson and Spearman correlations; the EPIC distance to the binary label too (VLM-RM
  compares with human goal labels this way).

It writes ``metrics.json``, ``landscape.png``, ``pr_curve.png``, ``reward_by_label.png``,
``frames.png`` and a self-contained ``report.html`` into the output directory.

Datasets of goal-conditioned environments (each frame with its own goal, :mod:`vlmreward.eval.goal_eval`)
are evaluated without a ``goal``: each frame's reward is ``p(its goal | frame)`` against the goal
family's negatives (Baumli et al.). ``group_by`` (by default ``goal_type`` for such datasets) adds
every metric per value of a column (``metrics.json``: ``results[i].groups``, ``metric_by_group.png``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from vlmreward._json import json_safe
from vlmreward._paths import write_output_text
from vlmreward.errors import InvalidParameterError
from vlmreward.eval.calibration import CalibrationError, ThresholdChoice, pick_alpha_by_epic, threshold_for_precision
from vlmreward.eval.dataset import Dataset
from vlmreward.eval.embeddings import count_parameters, embed_dataset, resize_note
from vlmreward.eval.metrics import DetectionMetrics, correlations, detection_metrics, epic_distance
from vlmreward.models.base import VisionLanguageModel
from vlmreward.rewards import DEFAULT_TEMPERATURE
from vlmreward.rewards.registry import build_reward as registry_build_reward
from vlmreward.rewards.registry import reward_kind as lookup_reward_kind

__all__ = [
    "RewardSetting",
    "RewardEvaluation",
    "EvaluationResult",
    "reward_settings",
    "build_reward",
    "score_rewards",
    "resolve_label",
    "evaluate_dataset",
    "METRICS_FILE",
    "REPORT_FILE",
    "PLOT_FILES",
    "DEFAULT_ALPHAS_WITH_BASELINE",
]

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.html"
PLOT_FILES = {
    "landscape": "landscape.png",
    "pr_curve": "pr_curve.png",
    "reward_by_label": "reward_by_label.png",
    "frames": "frames.png",
}
DEFAULT_ALPHAS_WITH_BASELINE: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
"""The ``α`` curves drawn when a baseline is given and no ``α`` is."""


@dataclass(frozen=True)
class RewardSetting:
    """One reward to evaluate: a reward kind (:mod:`vlmreward.rewards.registry`) and the parameters
    that vary: the goal-baseline reward at ``alpha``, the softmax or goal-family probability at
    ``temperature``, or any other kind with its ``params`` (``--reward-kind``, ``--param``)."""

    kind: str  # a registered kind: "goal_baseline", "softmax_threshold", "goal_family_softmax", a plugin's
    alpha: float | None = None
    temperature: float | None = None
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        """Short display name: ``"α = 0.5"``, ``"τ = 0.01"``, or the kind and its parameters."""
        if self.kind == "goal_baseline":
            return f"α = {self.alpha:g}"
        if self.temperature is not None:
            return f"τ = {self.temperature:g}"
        return ", ".join([self.kind, *(f"{k} = {v}" for k, v in self.params)])

    @property
    def ascii_name(self) -> str:
        """``"alpha=0.5"``, ``"temperature=0.01"`` or ``"KIND[,key=value...]"`` (CSV-friendly)."""
        if self.kind == "goal_baseline":
            return f"alpha={self.alpha:g}"
        if self.temperature is not None:
            return f"temperature={self.temperature:g}"
        return ",".join([self.kind, *(f"{k}={v}" for k, v in self.params)])


def reward_settings(
    baseline: Sequence[str] | None,
    negatives: Sequence[str] | None,
    alphas: Sequence[float] | None = None,
    temperatures: Sequence[float] | None = None,
    kind: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> list[RewardSetting]:
    """The settings to evaluate for one set of prompts.

    With ``negatives``: the softmax probability at each temperature (default
    :data:`~vlmreward.rewards.DEFAULT_TEMPERATURE`). Otherwise the goal-baseline reward at each
    ``α``; by default ``α = 0`` without a baseline and :data:`DEFAULT_ALPHAS_WITH_BASELINE` with one.
    With another ``kind`` (``--reward-kind``): that kind with ``params``, once.

    Raises:
        InvalidParameterError: ``α > 0`` without a baseline, ``α`` or ``τ`` with the other reward,
            goal-baseline or softmax options with another kind.
        UnknownRewardKindError: an unknown ``kind``.
    """
    if kind is not None and kind not in ("goal_baseline", "softmax_threshold"):
        lookup_reward_kind(kind)  # unknown kinds fail here, before anything is loaded
        given = [o for o, v in (("--baseline", baseline), ("--negative", negatives), ("--alpha", alphas),
                                ("--temperature", temperatures)) if v]
        if given:
            raise InvalidParameterError(
                f"{', '.join(given)} belong(s) to the goal-baseline and softmax rewards, not to reward kind {kind!r}; "
                "give its parameters with --param KEY=VALUE."
            )
        return [RewardSetting(kind, params=tuple(sorted((params or {}).items())))]
    if params:
        raise InvalidParameterError("--param goes with --reward-kind of another kind; use --alpha, --temperature, ... here.")
    if kind == "softmax_threshold" and not negatives:
        raise InvalidParameterError("reward kind 'softmax_threshold' needs --negative prompts to compare the goal against.")
    if kind == "goal_baseline" and negatives:
        raise InvalidParameterError("--negative selects the softmax reward, but --reward-kind says goal_baseline; drop one.")
    if negatives:
        if alphas:
            raise InvalidParameterError(
                "--alpha belongs to the goal-baseline reward, but --negative selects the softmax reward; drop one."
            )
        return [RewardSetting("softmax_threshold", temperature=float(t)) for t in (temperatures or [DEFAULT_TEMPERATURE])]
    if temperatures:
        raise InvalidParameterError(
            "--temperature sets the softmax reward, which needs --negative prompts to compare the goal against."
        )
    if not alphas:
        alphas = DEFAULT_ALPHAS_WITH_BASELINE if baseline else (0.0,)
    if not baseline and any(float(a) > 0 for a in alphas):
        raise InvalidParameterError(
            "α > 0 projects onto the goal-baseline direction and needs --baseline (e.g. 'a pole on a cart')."
        )
    return [RewardSetting("goal_baseline", alpha=float(a)) for a in dict.fromkeys(alphas)]


def build_reward(
    model: VisionLanguageModel,
    setting: RewardSetting,
    goal: Sequence[str],
    baseline: Sequence[str] | None,
    negatives: Sequence[str] | None,
) -> Any:
    """The reward of a setting, built by the reward registry (the softmax one dense: ``threshold=None``).

    A kind other than goal-baseline and softmax gets the goal when its parameters include one,
    and the setting's ``params``.

    Raises:
        UnknownRewardKindError, InvalidParameterError, PromptError: from the registry and the reward.
    """
    if setting.kind == "softmax_threshold":
        params: dict[str, Any] = {"goal": list(goal), "negatives": list(negatives or []),
                                  "temperature": setting.temperature or DEFAULT_TEMPERATURE}
    elif setting.kind == "goal_baseline":
        params = {"goal": list(goal), "baseline": list(baseline) if baseline else None, "alpha": setting.alpha or 0.0}
    else:
        fields = lookup_reward_kind(setting.kind).params.model_fields
        params = {**({"goal": list(goal)} if "goal" in fields and goal else {}), **dict(setting.params)}
    reward = registry_build_reward(setting.kind, params, model)
    if not callable(getattr(reward, "from_embeddings", None)):
        raise InvalidParameterError(
            f"reward kind {setting.kind!r} scores frames only (it has no from_embeddings); evaluate and sweep score "
            "cached image embeddings, so they need an embedding reward."
        )
    return reward


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


@dataclass
class EvaluationResult:
    """What :func:`evaluate_dataset` computed and wrote.

    Attributes:
        metrics: the content of ``metrics.json``.
        results: one :class:`RewardEvaluation` per setting.
        out_dir: where the files are.
        files: ``{kind: path}`` of everything written.
    """

    metrics: dict[str, Any]
    results: list[RewardEvaluation]
    out_dir: Path
    files: dict[str, Path]


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


def evaluate_dataset(
    dataset: Dataset,
    model: VisionLanguageModel,
    goal: Sequence[str] | None,
    out_dir: str | os.PathLike,
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
    report: bool = True,
    goal_family: Any = None,
    family_negatives: str = "all",
    k: int | None = None,
    templates: Mapping[str, str | Sequence[str]] | None = None,
    group_by: str | None = None,
    reward_kind: str | None = None,
    reward_params: Mapping[str, Any] | None = None,
) -> EvaluationResult:
    """Evaluate a VLM reward on a labelled dataset and write metrics, plots and a report.

    Args:
        dataset: from :func:`~vlmreward.eval.dataset.load_dataset`.
        model: the vision-language model.
        goal: goal prompt(s); None (or empty) for a goal dataset: each frame against its own goal.
        out_dir: output directory (created).
        baseline: baseline prompt(s) of the goal-baseline reward.
        negatives: negative prompts; select the softmax reward ``p(goal | frame)``.
        alphas: ``α`` values (goal-baseline); see :func:`reward_settings` for the default.
        temperatures: ``τ`` values (softmax).
        label: binary label column for the detection metrics; None: ``is_success`` if the
            dataset has it (else detection metrics are skipped with a note).
        reference: numeric column the EPIC distance and correlations compare with.
        x, facet: state variable (and categorical facet) of the landscape plot; default from
            the dataset's metadata.
        target_precision: also report the threshold reaching this precision (needs a label).
        cache_dir: embedding cache directory; None for no cache.
        batch_size: frames per forward pass.
        progress: called with the number of frames of each embedded batch.
        report: also write ``report.html``.
        goal_family: the goal family of a goal dataset (default: the one in its metadata).
        family_negatives: ``all``, ``same_template`` or ``k_sampled`` (goal datasets).
        k: negatives per goal for ``k_sampled``.
        templates: the reward's prompt templates per goal type (goal datasets).
        group_by: also report every metric per value of this column (default ``goal_type`` for
            goal datasets, else none).
        reward_kind, reward_params: another reward kind than goal-baseline and softmax (``--reward-kind``,
            ``--param``), evaluated once with these parameters (and the goal, when it takes one).

    Returns:
        :class:`EvaluationResult`.

    Raises:
        MissingLabelError: ``label``, ``reference``, ``x``, ``facet`` or ``group_by`` is not a column
            of the dataset (or ``target_precision`` without any label).
        InvalidParameterError, PromptError: bad reward parameters or prompts; no ``goal`` for a
            dataset without per-frame goals; ``baseline``, ``negatives`` or ``alphas`` with per-frame goals.
    """
    from vlmreward import __version__
    import vlmreward.eval.goal_eval as goal_eval
    import vlmreward.eval.landscape as plots
    from vlmreward.eval.report import write_report

    out = Path(out_dir)
    notes: list[str] = []
    frame_goals: list[str] | None = None
    if not goal:  # each frame against its own goal (Baumli et al.'s goal-family reward)
        if not goal_eval.is_goal_dataset(dataset) and goal_family is None:
            raise InvalidParameterError(
                f"dataset {str(dataset.path)!r} has no per-frame goals, so give the goal prompt (--goal ...)."
            )
        if baseline or negatives or alphas:
            raise InvalidParameterError(
                "each frame is scored against its own goal, with the goal family's other goals as negatives; "
                "--baseline, --negative and --alpha do not apply (give --goal to score one sentence instead)."
            )
        if reward_kind is not None or reward_params:
            raise InvalidParameterError(
                "each frame of a goal dataset is scored by the goal-family reward; --reward-kind and --param apply "
                "with --goal (one sentence for every frame)."
            )
        family = goal_eval.dataset_goal_family(dataset, goal_family)
        frame_goals = goal_eval.dataset_goals(dataset)
        settings = [RewardSetting("goal_family_softmax", temperature=float(t)) for t in dict.fromkeys(temperatures or [DEFAULT_TEMPERATURE])]
        rewards_objects = [
            (s, goal_eval.goal_family_reward(model, family, s.temperature, family_negatives, k, templates)) for s in settings
        ]
        goal = [f"each frame's own goal (family {family.name!r}, negatives: {family_negatives})"]
        if group_by is None and goal_eval.DEFAULT_GROUP_BY in dataset.table:
            group_by = goal_eval.DEFAULT_GROUP_BY
    else:
        settings = reward_settings(baseline, negatives, alphas, temperatures, reward_kind, reward_params)
        rewards_objects = [(s, build_reward(model, s, goal, baseline, negatives)) for s in settings]  # prompt errors first
    groups = None if group_by is None else goal_eval.group_values(dataset, group_by)
    label_name, labels = resolve_label(dataset, label, notes, needed=target_precision is not None)
    ref = dataset.numeric(reference, "reference reward")
    x_name, facet_name = _landscape_axes(dataset, x, facet)
    note = resize_note(model, dataset.render_size)
    if note:
        notes.append(note)

    embedded = embed_dataset(model, dataset, cache_dir=cache_dir, batch_size=batch_size, progress=progress)
    results = []
    for s, r in rewards_objects:
        values = r.from_embeddings(embedded.embeddings) if frame_goals is None else r.from_embeddings_with_goals(
            embedded.embeddings, frame_goals
        )
        result = score_rewards(s.name, values, labels, ref, target_precision, r.describe())
        if groups is not None:
            result.groups = group_summaries(result.rewards, labels, ref, groups, target_precision)
        results.append(result)

    calibration: dict[str, Any] = {}
    if len(settings) > 1 and settings[0].kind == "goal_baseline":
        try:
            choice = pick_alpha_by_epic({s.alpha: r.rewards for s, r in zip(settings, results)}, ref)
            calibration["alpha_by_epic"] = {"alpha": choice.alpha, "epic_distance": choice.epic_distance, "reference": reference}
        except CalibrationError as err:
            calibration["alpha_by_epic"] = {"alpha": None, "note": str(err)}
    if target_precision is not None:
        calibration["target_precision"] = target_precision

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InvalidParameterError(f"cannot create {str(out)!r}: {err.strerror or err}; choose another --out.") from err
    files: dict[str, Path] = {}
    curves = {r.name: r.rewards for r in results}
    title = " | ".join(goal)
    if x_name is not None:
        unit = (dataset.metadata.get("state_variables", {}).get(x_name) or {}).get("unit", "")
        files["landscape"] = out / PLOT_FILES["landscape"]
        plots.plot_landscape(
            files["landscape"], dataset.numeric(x_name, "state variable"), curves, x_name=x_name, x_unit=unit,
            labels=labels, label_name=label_name or "goal", reference=ref, reference_name=reference,
            facet=None if facet_name is None else dataset.column(facet_name), facet_name=facet_name or "",
            title=f"{title}  ({_display_name(model.name)})",
        )
    else:
        notes.append("the dataset has no numeric state variable, so no reward landscape was drawn.")
    detected = {r.name: r.detection for r in results if r.detection is not None}
    if detected:
        files["pr_curve"] = out / PLOT_FILES["pr_curve"]
        plots.plot_pr_curves(files["pr_curve"], detected, positive_rate=float(np.mean(labels)) if labels is not None else None)
    if labels is not None and labels.any() and not labels.all():
        files["reward_by_label"] = out / PLOT_FILES["reward_by_label"]
        plots.plot_reward_by_label(files["reward_by_label"], curves, labels, label_name or "goal")
    if groups is not None and labels is not None:
        by_group = {}
        for value in dict.fromkeys(groups.tolist()):
            mask = groups == value
            if labels[mask].any() and not labels[mask].all():
                by_group[f"{group_by} = {value}"] = detection_metrics(results[0].rewards[mask], labels[mask])
        if by_group:
            files["pr_curve_by_group"] = out / "pr_curve_by_group.png"
            plots.plot_pr_curves(files["pr_curve_by_group"], by_group, title=f"{results[0].name}: per {group_by}")
        files["metric_by_group"] = out / "metric_by_group.png"
        goal_eval.plot_metric_by_group(
            files["metric_by_group"],
            {r.name: {g: v["average_precision"] for g, v in r.groups.items()} for r in results},
            title=f"average precision per {group_by}",
        )
    files["frames"] = out / PLOT_FILES["frames"]
    plots.plot_extreme_frames(files["frames"], dataset.frames, results[0].rewards, labels, title=f"{results[0].name}: {title}")

    metrics = {
        "dataset": {
            "path": str(dataset.path),
            "env_id": dataset.env_id,
            "frames": len(dataset),
            "render_size": {"height": dataset.render_size[0], "width": dataset.render_size[1]},
            "policy": dataset.metadata.get("policy"),
            "label": label_name,
            "label_definition": (dataset.metadata["labels"].get(label_name) or {}).get("definition") if label_name else None,
            "positives": None if labels is None else int(labels.sum()),
            "reference": reference,
            "reference_definition": (
                (dataset.metadata.get("gt_reward") or {}).get("definition")
                if reference == "gt_reward"
                else (dataset.metadata["columns"].get(reference) or {}).get("description")
            ),
            "landscape_x": x_name,
            "landscape_facet": facet_name,
        },
        "model": {
            "name": model.name,
            "backend": getattr(model, "backend", None),
            "parameters": count_parameters(model),
            "image_size": model.image_size,
            "resize": model.resize,
            "antialias": model.antialias,
            "device": str(model.device),
            "dtype": str(model.dtype).removeprefix("torch."),
        },
        "prompts": {
            "goal": list(goal), "baseline": list(baseline) if baseline else None,
            "negatives": list(negatives) if negatives else None,
            **({"per_frame_goals": True, "family_negatives": family_negatives, "k": k,
                "templates": {t: [v] if isinstance(v, str) else list(v) for t, v in (templates or {}).items()} or None}
               if frame_goals is not None else {}),
        },
        "group_by": group_by,
        "embedding_cache": {"hit": embedded.cache_hit, "path": None if embedded.path is None else str(embedded.path)},
        "results": [r.to_json() for r in results],
        "calibration": calibration,
        "plots": {k: v.name for k, v in files.items()},
        "notes": notes,
        "vlmreward_version": __version__,
    }
    metrics = json_safe(metrics)
    files["metrics"] = out / METRICS_FILE
    write_output_text(files["metrics"], json.dumps(metrics, indent=2) + "\n")
    if report:
        files["report"] = out / REPORT_FILE
        write_report(files["report"], metrics, {k: v for k, v in files.items() if v.suffix == ".png"})
    return EvaluationResult(metrics=metrics, results=results, out_dir=out, files=files)


def _display_name(name: str) -> str:
    """A model name for a plot title: a local directory by its last component."""
    return Path(name).name if os.path.isdir(name) else name
