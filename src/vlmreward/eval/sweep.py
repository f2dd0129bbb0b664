"""Sweeps: models × prompt sets × reward parameters on one labelled dataset.

For each model the dataset's frames go through the vision tower once
(:func:`~vlmreward.eval.embeddings.embed_dataset`, cached on disk, so a second sweep with new
prompts or parameters runs no image pass at all); every prompt set and reward setting is then a
function of those embeddings (``from_embeddings``). The result is a table, one row per
(model, prompt set, setting), with AP, ROC-AUC, best F1, EPIC distance and correlations
(:func:`~vlmreward.eval.evaluation.score_rewards`), written as ``results.csv`` and
``results.md``, plus the papers' scaling figure (AP and EPIC distance against parameter count)
and a prompt comparison, in a self-contained ``report.html``.

Models are named as :func:`vlmreward.load_model` takes them, with an optional local checkpoint
after ``@``: ``open_clip:ViT-B-32@/path/weights.safetensors`` (:class:`ModelSpec`).

A prompts file (YAML) maps prompt-set names to prompts::

    plain:
      goal: a pole standing upright on a cart
      baseline: a pole on a cart
    descriptive:
      goal: [a photo of a cart with a vertical pole balanced on top, a pole upright on a cart]
      baseline: a cart with a pole
      negatives: [a pole that has fallen over]      # adds the softmax reward p(goal | frame)

(optionally under a top-level ``prompt_sets:`` key). ``goal`` is required; ``baseline`` enables
``α > 0``; ``negatives`` adds the softmax reward at each temperature.

For a goal dataset (each frame with its own goal, e.g. ``collect vlmreward/MiniWorldGoals-v0``) a
``goal_templates:`` section gives sets of prompt templates per goal type instead
(:func:`vlmreward.eval.goal_eval.parse_goal_template_sets`); each set is the goal-family reward
``p(goal | frame)`` with those prompts, and the table gains one row per goal type (``group``
column; ``--group-by``), the comparison of Baumli et al.'s prompt-engineering figure
(``prompts_by_group.png``).
"""

from __future__ import annotations

import csv
import gc
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from vlmreward._json import json_safe
from vlmreward._yamlfile import read_yaml_file
from vlmreward.errors import InvalidParameterError, PromptFileError
from vlmreward.eval.dataset import Dataset
from vlmreward.eval.embeddings import count_parameters, embed_dataset, frame_rewards, resize_note, scores_embeddings
from vlmreward.models.spec import ModelSpec
from vlmreward.eval.episodes import dataset_clip_rewards
from vlmreward.eval.evaluation import resolve_label, score_rewards
from vlmreward.eval.progress_metrics import episode_quality, has_episodes
from vlmreward.rewards.video import is_clip_reward
from vlmreward.eval.settings import RewardSetting, build_setting, settings_of
from vlmreward.rewards import registry
from vlmreward.rewards.registry import RewardKind, loaded_kinds
from vlmreward.rewards.selection import check_value, given_roles

__all__ = [
    "parse_model",
    "model_label",
    "PromptSet",
    "SweepResult",
    "PromptFileError",
    "load_prompt_sets",
    "parse_prompt_sets",
    "run_sweep",
    "SWEEP_COLUMNS",
]

GROUP_COLUMN = "group"
"""The extra ``results.csv`` column of grouped sweeps: ``all``, or a value of the grouping column."""

SWEEP_COLUMNS: list[str] = [
    "model", "parameters", "prompt_set", "reward", "setting", "alpha", "temperature",
    "average_precision", "roc_auc", "best_f1", "best_threshold", "epic_distance", "epic_distance_to_label",
    "pearson", "spearman", "threshold_at_precision", "voc", "policy_ranking_tau", "instruction_mismatch",
]
"""Columns of ``results.csv`` / ``results.md``."""


def parse_model(text: str | ModelSpec, **defaults: Any) -> ModelSpec:
    """A sweep's model: ``MODEL`` or ``MODEL@CHECKPOINT`` (a local weights file) as a
    :class:`~vlmreward.models.spec.ModelSpec` with ``defaults`` (device, dtype, resize, ...); a
    ``ModelSpec`` is taken as it is.

    Raises:
        InvalidParameterError: an empty name or checkpoint.
    """
    if isinstance(text, ModelSpec):
        return text
    name, sep, checkpoint = str(text).strip().partition("@")
    if not name or (sep and not checkpoint):
        raise InvalidParameterError(
            f"model {text!r}: give MODEL or MODEL@CHECKPOINT, e.g. open_clip:ViT-B-32@weights.safetensors."
        )
    return ModelSpec(name.strip(), checkpoint=checkpoint.strip() or None, **defaults)


def model_label(spec: ModelSpec) -> str:
    """A sweep row's model name: the name, with the checkpoint's file name after ``@``."""
    return spec.name if spec.checkpoint is None else f"{spec.name}@{Path(spec.checkpoint).name}"


@dataclass(frozen=True)
class PromptSet:
    """A named set of prompts: goal(s), optional baseline(s) and negative(s); or, for a goal dataset,
    prompt ``templates`` per goal type (``{}``: the family's own sentences) with the family's negatives."""

    name: str
    goal: list[str]
    baseline: list[str] | None = None
    negatives: list[str] | None = None
    templates: dict[str, list[str]] | None = None
    family_negatives: str = "all"
    k: int | None = None

    def describe(self) -> dict[str, Any]:
        if self.templates is not None:
            return {"templates": self.templates, "family_negatives": self.family_negatives, "k": self.k}
        return {k: v for k, v in (("goal", self.goal), ("baseline", self.baseline), ("negatives", self.negatives)) if v}


def _prompt_list(value: Any, where: str) -> list[str] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(p, str) and p.strip() for p in items):
        raise PromptFileError(f"{where} must be a non-empty prompt or a list of non-empty prompts; got {value!r}.")
    return list(items)


def parse_prompt_sets(data: Any, source: str = "prompts") -> dict[str, PromptSet]:
    """Prompt sets from parsed YAML (see the module docstring).

    Raises:
        PromptFileError: not a mapping, an empty one, a set without ``goal``, an unknown key.
    """
    if isinstance(data, Mapping) and "goal_templates" in data:
        from vlmreward.eval.goal_eval import parse_goal_template_sets

        unknown = sorted(set(data) - {"goal_templates", "negatives", "k", "prompt_sets"})
        if unknown:
            raise PromptFileError(f"{source} has unknown top-level key(s) {unknown}; use goal_templates, negatives, k, prompt_sets.")
        template_sets, options = parse_goal_template_sets(data, source)
        sets = {
            name: PromptSet(name, [], templates=t, family_negatives=options["negatives"], k=options["k"])
            for name, t in template_sets.items()
        }
        if "prompt_sets" in data:
            sets.update(parse_prompt_sets(data["prompt_sets"], source))
        return sets
    if isinstance(data, Mapping) and "prompt_sets" in data:
        data = data["prompt_sets"]
    if not isinstance(data, Mapping) or not data:
        raise PromptFileError(
            f"{source} must map prompt-set names to {{goal: ..., baseline: ..., negatives: ...}}; e.g.\n"
            "plain: {goal: a pole upright on a cart, baseline: a pole on a cart}."
        )
    sets: dict[str, PromptSet] = {}
    for name, spec in data.items():
        where = f"{source}: prompt set {name!r}"
        if isinstance(spec, str):
            spec = {"goal": spec}
        if not isinstance(spec, Mapping):
            raise PromptFileError(f"{where} must be a mapping with goal (and optionally baseline, negatives).")
        unknown = sorted(set(spec) - {"goal", "baseline", "negatives"})
        if unknown:
            raise PromptFileError(f"{where} has unknown key(s) {unknown}; use goal, baseline and negatives.")
        goal = _prompt_list(spec.get("goal"), f"{where}: goal")
        if goal is None:
            raise PromptFileError(f"{where} has no goal prompt.")
        sets[str(name)] = PromptSet(
            str(name), goal, _prompt_list(spec.get("baseline"), f"{where}: baseline"),
            _prompt_list(spec.get("negatives"), f"{where}: negatives"),
        )
    return sets


def load_prompt_sets(path: str | os.PathLike) -> dict[str, PromptSet]:
    """Read a prompts YAML file (see the module docstring).

    Raises:
        PromptFileError: a missing file, invalid YAML, or content that is not prompt sets.
    """
    data = read_yaml_file(path, "prompts file", PromptFileError)
    return parse_prompt_sets(data, str(path))


@dataclass
class SweepResult:
    """What :func:`run_sweep` computed and wrote.

    Attributes:
        rows: one dict per (model, prompt set, setting), keys :data:`SWEEP_COLUMNS` (+ ``cache_hit``).
        models: per model: ``name``, ``parameters``, ``cache_hit``, ``embed_dim``, ``image_size``.
        out_dir: output directory.
        files: ``{kind: path}``.
        notes: remarks (resizing, skipped settings).
    """

    rows: list[dict[str, Any]]
    models: list[dict[str, Any]]
    out_dir: Path
    files: dict[str, Path]
    notes: list[str]


def _settings_for(
    ps: PromptSet, grids: Mapping[str, Sequence[Any]], notes: list[str], extra: RewardKind | None = None,
    extra_params: Mapping[str, Any] | None = None,
) -> list[RewardSetting]:
    """A prompt set's settings: every kind its prompts select (``selected_by``) over its sweep grid
    (``grids[param]`` or the declared one), then the ``--reward-kind`` one."""
    per_frame = ps.templates is not None
    prompts = {} if per_frame else {"goal": ps.goal, "baseline": ps.baseline, "negatives": ps.negatives}
    roles = given_roles(prompts, per_frame)
    where = f"prompt set {ps.name!r}"
    settings: list[RewardSetting] = []
    for kind in loaded_kinds():
        if kind.selected_by is not None and set(kind.selected_by) <= roles:
            settings += settings_of(kind, {**prompts, **grids}, grid=True, notes=notes, where=where)
    if extra is not None and not per_frame:
        swept = {p: v for p, v in grids.items() if extra.sweep is not None and p == extra.sweep.param}
        settings += settings_of(extra, {**prompts, **swept}, extra_params, grid=True, notes=notes, where=where)
    return settings


def run_sweep(
    dataset: Dataset,
    models: Sequence[str | ModelSpec],
    prompt_sets: Mapping[str, PromptSet],
    out_dir: str | os.PathLike,
    *,
    alphas: Sequence[float] | None = None,
    temperatures: Sequence[float] | None = None,
    label: str | None = None,
    reference: str = "gt_reward",
    target_precision: float | None = None,
    cache_dir: str | os.PathLike | None = None,
    device: Any = "cpu",
    dtype: Any = None,
    resize: str = "squash",
    antialias: bool = True,
    runtime: str = "torch",
    quantize: str | None = None,
    batch_size: int | None = None,
    progress: Callable[[str, int], None] | None = None,
    report: bool = True,
    group_by: str | None = None,
    goal_family: Any = None,
    reward_kind: str | None = None,
    reward_params: Mapping[str, Any] | None = None,
    options: Mapping[str, Sequence[Any]] | None = None,
) -> SweepResult:
    """Evaluate every model × prompt set × reward setting on ``dataset``; one image pass per model.

    Args:
        dataset: a loaded dataset.
        models: names (``MODEL`` or ``MODEL@CHECKPOINT``) or :class:`~vlmreward.models.spec.ModelSpec`.
        prompt_sets: from :func:`load_prompt_sets`.
        out_dir: output directory.
        alphas: ``α`` values (default: the goal-baseline kind's declared grid, 0, 0.5, 1).
        temperatures: ``τ`` values of the softmax reward, for prompt sets with negatives
            (default :data:`~vlmreward.rewards.DEFAULT_TEMPERATURE`).
        label: binary label column (default ``is_success`` when present).
        reference: numeric column for EPIC distance and correlations.
        target_precision: also report the threshold reaching this precision.
        cache_dir: embedding cache (None: no cache).
        device, dtype, resize, antialias, runtime, quantize: how the models given by name are
            loaded (:class:`~vlmreward.models.spec.ModelSpec`).
        batch_size: frames per forward pass.
        progress: called with ``(model name, frames)`` after each embedded batch.
        report: also write ``report.html``.
        group_by: also one row per value of this column (``group``); default ``goal_type`` when
            a prompt set has goal templates.
        goal_family: the goal family of template sets (default: the dataset's own).
        reward_kind, reward_params: also evaluate this reward kind (``--reward-kind``) with these
            parameters (``--param``) on every prompt set without templates, given its goal when
            the kind takes one.

    Returns:
        :class:`SweepResult`.

    Raises:
        InvalidParameterError: no models or prompt sets, ``α`` outside ``[0, 1]``, ``τ ≤ 0``.
        MissingLabelError: ``label`` or ``reference`` is not a column.
        ModelNotFoundError, ModelNotAvailableError, PromptError: from loading and prompts.
    """
    import torch

    from vlmreward import __version__
    import vlmreward.eval.landscape as plots
    from vlmreward.eval.report import markdown_table, write_sweep_report

    defaults = dict(device=str(device), dtype=dtype, resize=resize, antialias=antialias, runtime=runtime, quantize=quantize)
    specs = [parse_model(m, **defaults) for m in models]
    if not specs:
        raise InvalidParameterError("no models given; pass --model at least once.")
    if not prompt_sets:
        raise InvalidParameterError("no prompt sets given.")
    grids = {p: list(v) for p, v in {"alpha": alphas, "temperature": temperatures, **dict(options or {})}.items() if v}
    for kind in loaded_kinds():  # every value against every kind that sweeps it, before anything loads
        for value in grids.get(kind.sweep.param, ()) if kind.sweep is not None else ():
            check_value(kind, kind.sweep.param, value)
    notes: list[str] = []
    label_name, labels = resolve_label(dataset, label, notes, needed=target_precision is not None)
    ref = dataset.numeric(reference, "reference reward")
    extra = registry.reward_kind(reward_kind) if reward_kind is not None else None  # unknown kinds fail before any model loads
    plans = {name: _settings_for(ps, grids, notes, extra, reward_params) for name, ps in prompt_sets.items()}
    swept = {kind.sweep.param: list(dict.fromkeys(grids.get(kind.sweep.param) or kind.sweep.grid))
             for kind in loaded_kinds() if kind.sweep is not None and kind.selected_by is not None}
    import vlmreward.eval.goal_eval as goal_eval
    from vlmreward.eval.evaluation import group_summaries

    family = frame_goals = None
    if any(ps.templates is not None for ps in prompt_sets.values()):
        family = goal_eval.dataset_goal_family(dataset, goal_family)
        frame_goals = goal_eval.dataset_goals(dataset)
        if group_by is None and goal_eval.DEFAULT_GROUP_BY in dataset.table:
            group_by = goal_eval.DEFAULT_GROUP_BY
    groups = None if group_by is None else goal_eval.group_values(dataset, group_by)

    rows: list[dict[str, Any]] = []
    model_rows: list[dict[str, Any]] = []
    for spec in specs:
        model = spec.load()
        try:
            parameters = count_parameters(model)
            note = resize_note(model, dataset.render_size)
            if note and note not in notes:
                notes.append(note)
            callback = None if progress is None else (lambda n, _name=model_label(spec): progress(_name, n))
            embedded = None
            if hasattr(model, "encode_images"):  # a contrastive model: one cached image pass serves every setting
                embedded = embed_dataset(model, dataset, cache_dir=cache_dir, batch_size=batch_size, progress=callback)
            model_rows.append({
                "name": model_label(spec), "parameters": parameters, "cache_hit": None if embedded is None else embedded.cache_hit,
                "embed_dim": getattr(model, "embed_dim", None), "image_size": getattr(model, "image_size", None),
                "cache_file": None if embedded is None or embedded.path is None else str(embedded.path),
            })
            for ps_name, ps in prompt_sets.items():
                for setting in plans[ps_name]:
                    if embedded is None and setting.spec.family == "contrastive":
                        generative = " or ".join(k.name for k in loaded_kinds() if k.family == "generative")
                        tagged = (f"{model_label(spec)} is a generative VLM: the contrastive setting {setting.ascii_name} "
                                  f"of prompt set {ps_name} was skipped (give --reward-kind {generative} to sweep it).")
                        if tagged not in notes:
                            notes.append(tagged)
                        continue
                    if ps.templates is not None:  # each frame against its own goal
                        context = goal_eval.family_context(family, ps.family_negatives, ps.k)
                        reward = build_setting(model, setting, {}, context, {"templates": ps.templates})
                        values = reward.from_embeddings_with_goals(embedded.embeddings, frame_goals)
                    else:
                        reward = build_setting(model, setting, {"goal": ps.goal, "baseline": ps.baseline, "negatives": ps.negatives})
                        if is_clip_reward(reward):  # each episode on its own, as evaluate scores it
                            values = dataset_clip_rewards(reward, dataset, progress=callback)
                        elif embedded is not None and scores_embeddings(reward):
                            values = reward.from_embeddings(embedded.embeddings)
                        else:
                            values = frame_rewards(reward, dataset.frames, batch_size, callback)
                    result = score_rewards(setting.name, values, labels, ref, target_precision, reward.describe())
                    if has_episodes(dataset):
                        result.quality = episode_quality(result.rewards, dataset, labels, ref)
                    for n in result.notes:
                        tagged = f"{model_label(spec)} / {ps_name} / {setting.ascii_name}: {n}"
                        if tagged not in notes:
                            notes.append(tagged)
                    row = {
                        "model": model_label(spec), "parameters": parameters, "prompt_set": ps_name,
                        "reward": setting.kind, "setting": setting.ascii_name,
                        "alpha": setting.get("alpha"), "temperature": setting.get("temperature"),
                        **result.summary(), "cache_hit": None if embedded is None else embedded.cache_hit,
                    }
                    if groups is None:
                        rows.append(row)
                        continue
                    rows.append({**row, GROUP_COLUMN: "all"})
                    for value, summary in group_summaries(result.rewards, labels, ref, groups, target_precision).items():
                        rows.append({**row, **{k: summary[k] for k in result.summary()}, GROUP_COLUMN: value})
        finally:
            del model
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InvalidParameterError(f"cannot create {str(out)!r}: {err.strerror or err}; choose another --out.") from err
    files = {"csv": out / "results.csv", "markdown": out / "results.md", "json": out / "sweep.json",
             "scaling": out / "scaling.png", "prompts": out / "prompts.png"}
    columns = SWEEP_COLUMNS + ([GROUP_COLUMN] if groups is not None else [])
    with open(files["csv"], "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for r in rows:
            writer.writerow([_csv_cell(r.get(c)) for c in columns])
    table = [[r.get(c) for c in columns] for r in rows]
    files["markdown"].write_text(
        f"# Sweep on {dataset.name} ({dataset.env_id}, {len(dataset)} frames)\n\n"
        f"label: `{label_name}`, reference reward: `{reference}`"
        + (f", grouped by `{group_by}`" if groups is not None else "") + "\n\n" + markdown_table(columns, table)
        + ("\n" + "\n".join(f"- {n}" for n in notes) + "\n" if notes else ""),
        encoding="utf-8",
    )
    overall = [r for r in rows if r.get(GROUP_COLUMN, "all") == "all"]
    plots.plot_scaling(files["scaling"], overall)
    plots.plot_prompt_comparison(files["prompts"], overall)
    if groups is not None:
        files["prompts_by_group"] = out / "prompts_by_group.png"
        several_models = len({r["model"] for r in rows}) > 1
        several_settings = len({(r["prompt_set"], r["setting"]) for r in rows}) > len({r["prompt_set"] for r in rows})
        by_series: dict[str, dict[str, float]] = {}
        for r in rows:
            name = r["prompt_set"] + (f" · {r['setting']}" if several_settings else "") + (f" · {r['model']}" if several_models else "")
            by_series.setdefault(name, {})[str(r[GROUP_COLUMN])] = r["average_precision"]
        goal_eval.plot_metric_by_group(files["prompts_by_group"], by_series, title=f"average precision per {group_by}")
    summary = {
        "dataset": str(dataset.path), "env_id": dataset.env_id, "frames": len(dataset),
        "label": label_name, "reference": reference, "target_precision": target_precision,
        "models": model_rows, "prompt_sets": {k: v.describe() for k, v in prompt_sets.items()},
        "alphas": swept.get("alpha"), "temperatures": swept.get("temperature"), "grids": swept, "notes": notes, "rows": rows, "group_by": group_by,
        "vlmreward_version": __version__,
    }
    files["json"].write_text(json.dumps(json_safe(summary), indent=2) + "\n", encoding="utf-8")
    if report:
        files["report"] = out / "report.html"
        images = {k: files[k] for k in ("scaling", "prompts", "prompts_by_group") if k in files}
        names = {r["reward"]: registry.reward_kind(r["reward"]).display_name for r in rows}  # the kinds' display names
        shown = [[names.get(v, v) if c == "reward" else v for c, v in zip(columns, row)] for row in table]
        write_sweep_report(files["report"], summary, columns, shown, images)
    return SweepResult(rows=rows, models=model_rows, out_dir=out, files=files, notes=notes)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)

