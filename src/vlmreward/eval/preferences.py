"""Preference labels for a dataset of frames, offline (``vlmreward label-preferences``), and their accuracy.

Pairs of frames are drawn uniformly from a dataset (:mod:`vlmreward.eval.dataset`; ``i ≠ j``, one
``numpy`` generator seeded by ``seed``) and labelled by the ``preference`` kind's labellers
(:mod:`vlmreward.rewards.preference_labels`): a local generative VLM, both orders of each pair, its
answers cached beside the output so a rerun asks nothing twice; or the oracle, from a numeric column.
With a ground-truth column, the labels are scored as RL-VLM-F scores its VLM labels ("vlm label acc"
against ``rational_labels``): the share of pairs where the label agrees with the sign of the
ground-truth difference, among pairs where both have a preference.

The output is a CSV, one row per pair: ``first, second`` (frame indices), ``label`` (0: first
preferred, 1: second, -1: none), ``delta`` and ``first_bias`` (see
:class:`~vlmreward.rewards.preference_labels.PreferenceLabels`), and with a truth column
``truth_first, truth_second``.

:func:`prepare_learned_reward` makes such a file (or a training run's reward state) the reward an
offline evaluation scores: ``vlmreward evaluate DATASET --reward-kind preference --param
labels=LABELS.csv`` trains the ensemble on the file's pairs, as one update of a training run, then
scores every frame, so AP, EPIC distance and VOC are the learned reward's; ``--param
state=RUN/checkpoints/step_…/reward_state.pt`` scores with the ensemble a run learned.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vlmreward._paths import atomic_write_text
from vlmreward.errors import InvalidParameterError
from vlmreward.eval.dataset import Dataset, DatasetError, load_dataset
from vlmreward.rewards.base import load_reward_state
from vlmreward.rewards.preference import resize_frames
from vlmreward.rewards.preference_labels import NO_PREFERENCE, LabelCache, OracleLabeller, VLMPreferenceLabeller, label_accuracy

__all__ = ["PreferenceLabelRun", "PreferenceLabelFile", "label_dataset", "cache_path_for", "read_labels", "prepare_learned_reward"]


@dataclass
class PreferenceLabelRun:
    """What :func:`label_dataset` did: the pairs, their labels, and counts."""

    path: Path
    pairs: int
    labelled: int
    accuracy: float | None
    position_bias: float
    model_calls: int
    cache_hits: int


def cache_path_for(out: str | os.PathLike) -> Path:
    """The label cache beside an output file: ``labels.csv`` → ``labels.cache.jsonl``."""
    out = Path(out)
    return out.with_name(out.stem + ".cache.jsonl")


def label_dataset(dataset: str | os.PathLike, out: str | os.PathLike, *, model: Any = None, goal: str | None = None,
                  pairs: int = 100, truth: str | None = None, truth_sign: int = 1, stages: int = 1, margin: float = 0.0,
                  query_size: int = 224, seed: int = 0, batch_size: int | None = None) -> PreferenceLabelRun:
    """Label ``pairs`` pairs of the dataset's frames and write the CSV ``out`` (module docstring).

    Args:
        model: a generative VLM (the VLM labeller), or None for the oracle (then ``truth`` is required).
        goal: the goal sentence of the VLM labeller ("to open the drawer").
        truth: a numeric column of the dataset (ground truth for the oracle and for the accuracy), or None.
        truth_sign: -1 when a smaller ``truth`` is better (a distance).
        query_size: frames are resized to ``query_size`` × ``query_size`` for the VLM.

    Raises:
        InvalidParameterError: fewer than two frames, ``pairs < 1``, no goal with a model, no truth without one.
        DatasetError, MissingLabelError: from the dataset.
    """
    data = load_dataset(dataset)
    n = len(data)
    if n < 2 or pairs < 1:
        raise InvalidParameterError(f"label-preferences needs a dataset of at least 2 frames and --pairs ≥ 1; got {n} frames, {pairs} pairs.")
    values = None if truth is None else truth_sign * data.numeric(truth, "ground-truth column")
    if model is None:
        if values is None:
            raise InvalidParameterError("without --model the oracle labels by a ground-truth column: give --truth COLUMN.")
        labeller: Any = OracleLabeller(margin)
    else:
        if not goal:
            raise InvalidParameterError("the VLM labeller asks about a goal: give --goal (e.g. 'to open the drawer').")
        labeller = VLMPreferenceLabeller(model, goal, stages=stages, margin=margin, cache=LabelCache(cache_path_for(out)),
                                         batch_size=batch_size)
    rng = np.random.default_rng(seed)
    first = rng.integers(0, n, pairs)
    second = (first + rng.integers(1, n, pairs)) % n  # uniform over the other frames
    if model is None:
        a = b = None
    else:
        a, b = resize_frames(data.frames[first], query_size), resize_frames(data.frames[second], query_size)
    result = labeller.label(a, b, None if values is None else values[first], None if values is None else values[second])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["first", "second", "label", "delta", "first_bias", *(["truth_first", "truth_second"] if values is not None else [])])
    for k in range(pairs):
        row = [int(first[k]), int(second[k]), int(result.labels[k]), f"{result.delta[k]:.6g}", f"{result.first_bias[k]:.6g}"]
        if values is not None:
            row += [f"{values[first[k]]:.6g}", f"{values[second[k]]:.6g}"]
        writer.writerow(row)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, buffer.getvalue())
    accuracy = None if values is None else label_accuracy(result.labels, values[first] - values[second])
    return PreferenceLabelRun(Path(out), pairs, int((result.labels != NO_PREFERENCE).sum()), accuracy,
                              float(result.first_bias.mean()), labeller.model_calls, labeller.cache_hits)


@dataclass
class PreferenceLabelFile:
    """A :func:`label_dataset` CSV read back: ``int64 [N]`` frame indices and labels, ``float64 [N, 2]`` truths (or None)."""

    first: np.ndarray
    second: np.ndarray
    labels: np.ndarray
    truths: np.ndarray | None


def read_labels(path: str | os.PathLike, frames: int) -> PreferenceLabelFile:
    """Read a labels CSV written by :func:`label_dataset` (module docstring) for a dataset of ``frames`` frames.

    Raises:
        DatasetError: the file cannot be read, lacks ``first, second, label``, holds no pair, a value that is not an
            integer, a label outside {0, 1, -1}, or a frame index outside ``[0, frames)``.
    """
    try:
        rows = list(csv.DictReader(Path(path).read_text(encoding="utf-8").splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DatasetError(f"cannot read the preference labels {path}: {err}") from err
    missing = [c for c in ("first", "second", "label") if not rows or c not in rows[0]]
    if missing:
        raise DatasetError(f"{path} holds no labelled pairs of `vlmreward label-preferences` (no pair, or no column "
                           f"{', '.join(missing)}).")
    try:
        first, second, labels = (np.array([int(r[c]) for r in rows], np.int64) for c in ("first", "second", "label"))
        truths = (np.array([[float(r["truth_first"]), float(r["truth_second"])] for r in rows])
                  if "truth_first" in rows[0] and "truth_second" in rows[0] else None)
    except (TypeError, ValueError) as err:
        raise DatasetError(f"{path}: a value that is not a number ({err}).") from err
    if not np.isin(labels, (0, 1, NO_PREFERENCE)).all():
        raise DatasetError(f"{path}: labels are 0 (first preferred), 1 (second) or -1 (none); found {sorted(set(labels) - {0, 1, -1})}.")
    bad = (first < 0) | (first >= frames) | (second < 0) | (second >= frames)
    if bad.any():
        raise DatasetError(f"{path}: frame indices outside the {frames} frames of its dataset (row {int(np.argmax(bad)) + 1}); "
                           "give the dataset it labels with --param labels_dataset=DIR.")
    return PreferenceLabelFile(first, second, labels, truths)


def prepare_learned_reward(reward: Any, dataset: Dataset) -> list[str]:
    """Train or load a learned reward before an offline evaluation scores ``dataset`` with it (module docstring).

    ``reward.params.labels`` (a :func:`label_dataset` CSV) trains it on those pairs of frames, of ``labels_dataset``
    when given, else of ``dataset``; ``reward.params.state`` loads a training run's reward state. What was done
    goes into ``reward.offline`` (reported with the reward in ``metrics.json``).

    Returns:
        Notes for the report: what it was trained on, the labels' accuracy against their truths, and whether the
        frames evaluated include those it was trained on.

    Raises:
        InvalidParameterError: neither ``labels`` nor ``state`` (an untrained reward model scores noise).
        DatasetError, VLMRewardError: from the labels file, its dataset or the reward state.
    """
    p = reward.params
    if p.state is not None:
        load_reward_state(reward, p.state)
        if reward.ensemble is None:
            raise InvalidParameterError(f"the reward state {p.state} holds no trained reward model (no update yet).")
        reward.offline = {"state": str(p.state), "updates": reward.updates, "labels_total": int(len(reward.labelled.get("y", ())))}
        return [f"the reward model of {p.state} ({reward.updates} updates, {reward.offline['labels_total']} labelled pairs)."]
    if p.labels is None:
        raise InvalidParameterError("a learned reward must be trained before it is evaluated: give --param labels=LABELS.csv "
                                    "(vlmreward label-preferences) or --param state=RUN/checkpoints/step_…/reward_state.pt.")
    source = load_dataset(p.labels_dataset) if p.labels_dataset is not None else dataset
    pairs = read_labels(p.labels, len(source))
    frames = source.frames
    fit = reward.fit_labels(np.asarray(frames[pairs.first]), np.asarray(frames[pairs.second]), pairs.labels)
    accuracy = None if pairs.truths is None else label_accuracy(pairs.labels, pairs.truths[:, 0] - pairs.truths[:, 1])
    in_sample = p.labels_dataset is None or Path(p.labels_dataset).resolve() == Path(dataset.path).resolve()
    reward.offline = {"labels": str(p.labels), "labels_dataset": str(source.path), "pairs": int(len(pairs.labels)),
                      **fit, "label_accuracy": accuracy, "in_sample": in_sample}
    acc = "" if accuracy is None else f"; label accuracy {accuracy:.3f} against the file's truth"
    notes = [f"trained on {fit['labels_total']} of {len(pairs.labels)} pairs of {p.labels} with a preference"
             f" (training accuracy {fit['train_accuracy'] if fit['train_accuracy'] is None else round(fit['train_accuracy'], 3)}){acc}."]
    if in_sample:
        notes.append("the frames evaluated include those the reward model was trained on (in-sample); label another "
                     "dataset and give it with --param labels_dataset=DIR for a held-out evaluation.")
    return notes
