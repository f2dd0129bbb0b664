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
  compares with human goal labels this way);
* on a dataset of episodes, for every reward kind: VOC, policy ranking and (with ``mismatch``,
  other tasks' instructions) instruction mismatch (:mod:`vlmreward.eval.progress_metrics`).

Sequence rewards (clip, episode and prefix kinds) are scored episode by episode
(:func:`~vlmreward.eval.episodes.dataset_clip_rewards`); the rest frame by frame or from the
cached embeddings. :class:`~vlmreward.eval.results.RewardEvaluation` holds each setting's metrics.

:func:`vlmreward.eval.outputs.evaluate_dataset` then writes ``metrics.json``, ``landscape.png``,
``pr_curve.png``, ``reward_by_label.png``, ``frames.png`` and a self-contained ``report.html``
(:func:`~vlmreward.eval.outputs.write_evaluation`).

Datasets of goal-conditioned environments (each frame with its own goal, :mod:`vlmreward.eval.goal_eval`)
are evaluated without a ``goal``: each frame's reward is ``p(its goal | frame)`` against the goal
family's negatives (Baumli et al.). ``group_by`` (by default ``goal_type`` for such datasets) adds
every metric per value of a column (``metrics.json``: ``results[i].groups``, ``metric_by_group.png``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from vlmreward.errors import InvalidParameterError
from vlmreward.eval.calibration import CalibrationError, pick_alpha_by_epic
from vlmreward.eval.dataset import Dataset
from vlmreward.eval.embeddings import embed_dataset, frame_rewards, resize_note, scores_embeddings
from vlmreward.eval.episodes import dataset_clip_rewards, episode_metrics
from vlmreward.eval.preferences import prepare_learned_reward
from vlmreward.eval.progress_metrics import episode_quality, has_episodes
from vlmreward.eval.results import RewardEvaluation, group_summaries, score_rewards
from vlmreward.models.base import VisionLanguageModel
from vlmreward.eval.settings import RewardSetting, build_setting, reward_settings, scores_per_frame_goals
from vlmreward.rewards.base import is_learned
from vlmreward.rewards.selection import is_given
from vlmreward.rewards.video import is_clip_reward

__all__ = [
    "RewardEvaluation",
    "DatasetScores",
    "score_rewards",
    "group_summaries",
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
    mismatch: Sequence[str] | None = None,
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
        mismatch: other tasks' instructions: on a dataset of episodes, each setting is scored again
            with each in place of ``goal`` for the instruction-mismatch metric
            (:mod:`vlmreward.eval.progress_metrics`; VOC and policy ranking need no option).

    Returns:
        :class:`DatasetScores`.

    Raises:
        MissingLabelError: ``label``, ``reference``, ``x``, ``facet`` or ``group_by`` is not a column
            of the dataset (or ``target_precision`` without any label).
        InvalidParameterError, PromptError: bad reward parameters or prompts; no ``goal`` for a
            dataset without per-frame goals; ``baseline``, ``negatives`` or ``alphas`` with per-frame goals;
            ``mismatch`` without episodes, with per-frame goals, or for a kind without a goal.
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
    def values_of(r: Any) -> np.ndarray:
        if is_clip_reward(r):  # episodes replayed through the environments' clip path
            return dataset_clip_rewards(r, dataset, progress=progress)
        if embedded is None or not scores_embeddings(r):
            return frame_rewards(r, dataset.frames, batch_size, progress)
        if frame_goals is None:
            return r.from_embeddings(embedded.embeddings)
        return r.from_embeddings_with_goals(embedded.embeddings, frame_goals)

    episodes = has_episodes(dataset)
    mismatch = list(mismatch or [])
    if mismatch and not episodes:
        raise InvalidParameterError(
            "--mismatch compares episodes; the dataset records none (a scripted sweep, or no episode and step columns): "
            "record episodes with collect --policy random or expert."
        )
    if mismatch and (frame_goals is not None or not settings[0].spec.takes("goal")):
        raise InvalidParameterError(
            f"--mismatch scores the episodes against other instructions in place of --goal; reward kind "
            f"{settings[0].spec.name!r} {'scores each frame against its own goal' if frame_goals is not None else 'takes no goal'}."
        )
    if mismatch and settings[0].spec.learned:
        raise InvalidParameterError(f"--mismatch scores episodes against other instructions; a learned reward "
                                    f"({settings[0].spec.name!r}) was trained on its labels and does not read one.")
    learned_notes = {id(r): prepare_learned_reward(r, dataset) for _, r in rewards_objects if is_learned(r)}
    results = []
    for s, r in rewards_objects:
        values = values_of(r)
        result = score_rewards(s.name, values, labels, ref, target_precision, r.describe())
        result.notes += learned_notes.get(id(r), [])
        parse = result.reward.get("parse")  # a reward that reads generated answers counts those it could not read
        if isinstance(parse, dict) and parse.get("frames_unparsed"):
            result.notes.append(
                f"{parse['frames_unparsed']} of {parse['frames_asked']} frames' answers could not be read "
                f"({parse.get('episodes_without_answer', 0)} episodes without any, scored 0); see reward.parse."
            )
        if groups is not None:
            result.groups = group_summaries(result.rewards, labels, ref, groups, target_precision)
        if is_clip_reward(r) and r.clip_mode == "episode":
            result.episodes = episode_metrics(values, dataset, labels, ref)
        if episodes:
            others = [values_of(build_setting(model, s, {**prompts, "goal": [m]})) for m in mismatch]
            result.quality = episode_quality(result.rewards, dataset, labels, ref, others, mismatch)
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
