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
from vlmreward.eval.dataset import load_dataset
from vlmreward.rewards.preference import resize_frames
from vlmreward.rewards.preference_labels import NO_PREFERENCE, LabelCache, OracleLabeller, VLMPreferenceLabeller, label_accuracy

__all__ = ["PreferenceLabelRun", "label_dataset", "cache_path_for"]


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
