"""Write an evaluation's files: plots, ``metrics.json`` and ``report.html``.

:func:`evaluate_dataset` is the whole evaluation: :func:`~vlmreward.eval.evaluation.score_dataset`
(pure scoring), then :func:`write_evaluation`.

:func:`write_evaluation` takes what :func:`~vlmreward.eval.evaluation.score_dataset` computed and
writes, into one directory, ``landscape.png`` (rewards against a state variable),
``pr_curve.png``, ``reward_by_label.png``, ``frames.png`` (the frames of highest and lowest
reward), per-group plots when the scores are grouped, ``metrics.json`` and a self-contained
``report.html`` (:mod:`vlmreward.eval.report`). Nothing here computes a metric.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vlmreward._json import json_safe
from vlmreward._paths import write_output_text
from vlmreward.errors import InvalidParameterError
from vlmreward.eval.dataset import Dataset
from vlmreward.eval.embeddings import count_parameters
from vlmreward.eval.evaluation import METRICS_FILE, PLOT_FILES, REPORT_FILE, DatasetScores, RewardEvaluation, score_dataset
from vlmreward.eval.metrics import detection_metrics
from vlmreward.models.base import VisionLanguageModel

__all__ = ["EvaluationResult", "evaluate_dataset", "write_evaluation"]


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


def evaluate_dataset(
    dataset: Dataset,
    model: VisionLanguageModel,
    goal: Sequence[str] | None,
    out_dir: str | os.PathLike,
    *,
    report: bool = True,
    **options: Any,
) -> EvaluationResult:
    """Evaluate a VLM reward on a labelled dataset and write metrics, plots and a report:
    :func:`~vlmreward.eval.evaluation.score_dataset`, then :func:`write_evaluation`.

    Args:
        dataset, model, goal: as :func:`~vlmreward.eval.evaluation.score_dataset`.
        out_dir: output directory (created).
        report: also write ``report.html``.
        options: the keyword arguments of :func:`~vlmreward.eval.evaluation.score_dataset`.

    Returns:
        :class:`EvaluationResult`.

    Raises:
        what :func:`~vlmreward.eval.evaluation.score_dataset` raises; InvalidParameterError: ``out_dir`` cannot be created.
    """
    scores = score_dataset(dataset, model, goal, **options)
    return write_evaluation(scores, dataset, model, out_dir, report=report)


def write_evaluation(
    scores: DatasetScores,
    dataset: Dataset,
    model: VisionLanguageModel,
    out_dir: str | os.PathLike,
    *,
    report: bool = True,
) -> EvaluationResult:
    """Write the plots, ``metrics.json`` and (``report``) ``report.html`` of ``scores`` into ``out_dir``.

    Args:
        scores: from :func:`~vlmreward.eval.evaluation.score_dataset` on ``dataset`` and ``model``.
        dataset: the dataset scored (its frames, metadata and state variables are drawn).
        model: the model that scored it (described in ``metrics.json``).
        out_dir: output directory (created; files in it are replaced).
        report: also write ``report.html``.

    Returns:
        :class:`EvaluationResult`.

    Raises:
        InvalidParameterError: ``out_dir`` cannot be created.
    """
    from vlmreward import __version__
    import vlmreward.eval.goal_eval as goal_eval
    import vlmreward.eval.landscape as plots
    from vlmreward.eval.report import write_report

    out = Path(out_dir)
    results, labels, groups, group_by = scores.results, scores.labels, scores.groups, scores.group_by
    label_name, x_name, facet_name, title = scores.label_name, scores.x_name, scores.facet_name, scores.title
    ref, reference, notes = scores.reference_values, scores.reference, list(scores.notes)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InvalidParameterError(f"cannot create {str(out)!r}: {err.strerror or err}; choose another --out.") from err
    files: dict[str, Path] = {}
    curves = {r.name: r.rewards for r in results}
    if x_name is not None:
        unit = (dataset.metadata.get("state_variables", {}).get(x_name) or {}).get("unit", "")
        files["landscape"] = out / PLOT_FILES["landscape"]
        plots.plot_landscape(
            files["landscape"], dataset.numeric(x_name, "state variable"), curves, x_name=x_name, x_unit=unit,
            labels=labels, label_name=label_name or "goal", reference=ref, reference_name=reference,
            facet=None if facet_name is None else dataset.column(facet_name), facet_name=facet_name or "",
            title=f"{title}  ({_display_name(model.name)})" if model is not None else title,
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
    episodic = next((r for r in results if r.episodes is not None), None)
    if episodic is not None:
        from vlmreward.eval.episodes import draw_filmstrips

        files["episodes"] = draw_filmstrips(dataset, episodic.episodes, out / "episodes.png")
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
        "model": None if model is None else {  # None: a model-free reward kind
            "name": model.name,
            "backend": getattr(model, "backend", None),
            "runtime": getattr(model, "runtime", "torch"),
            "parameters": count_parameters(model),
            "image_size": model.image_size,
            "resize": model.resize,
            "antialias": model.antialias,
            "device": str(model.device),
            "dtype": str(model.dtype).removeprefix("torch."),
            "batch_size": "auto" if getattr(model, "autotune", False) else getattr(model, "batch_size", None),
            "batch_choices": [c.to_json() for c in getattr(model, "batch_choices", {}).values()],
        },
        "prompts": scores.prompts,
        "group_by": group_by,
        "embedding_cache": scores.embedding_cache,
        "results": [r.to_json() for r in results],
        "calibration": scores.calibration,
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
