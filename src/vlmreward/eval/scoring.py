"""Rewards of a stream of frames, written as ``vlmreward score`` writes them.

:func:`score_to_csv` rewards every frame of an input (:mod:`vlmreward.media`), embedding each
batch once, and writes ``rewards.csv`` (``frame,source,reward``, plus ``p_goal`` for a reward with
a ``probability`` of its embeddings, the softmax reward's ``p(goal | frame)``);
:func:`plot_rewards` draws ``rewards.png``. The ``score`` command (:mod:`vlmreward.cli.score`)
parses its options into a reward and calls these.
"""

from __future__ import annotations

import csv
import math
import os
import textwrap
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch

from vlmreward import media
from vlmreward.errors import InputFileError, InvalidParameterError
from vlmreward.eval.embeddings import scores_embeddings

__all__ = ["ScoreResult", "score_to_csv", "plot_rewards", "default_out_dir", "make_dirs", "write_output", "CSV_NAME",
           "PLOT_NAME", "JSON_NAME", "has_probability"]

CSV_NAME = "rewards.csv"
PLOT_NAME = "rewards.png"
JSON_NAME = "score.json"


def has_probability(reward: Any) -> bool:
    """Whether ``reward`` reports ``p(goal | frame)`` of its model's embeddings beside the reward
    (``reward.probability(embeddings [N, D]) -> [N]``, the softmax reward's)."""
    return callable(getattr(reward, "probability", None)) and not getattr(reward, "goal_info_key", None) and scores_embeddings(reward)


def default_out_dir(path: Path) -> Path:
    """``./scores/<name>``: the input's file name without extension, or the folder's name; a
    dataset's ``frames.npy`` is named by its dataset folder (every dataset has one)."""
    name = path.name if path.is_dir() else path.stem
    if not path.is_dir() and path.name == "frames.npy" and path.resolve().parent.name:
        name = path.resolve().parent.name
    return Path("scores") / (name or path.resolve().name or "input")


@dataclass
class ScoreResult:
    """What :func:`score_to_csv` computed.

    Attributes:
        rewards: ``float32 [N]``, one per frame in input order.
        p_goal: ``float32 [N]`` ``p(goal | frame)`` for the softmax reward, else None.
    """

    rewards: np.ndarray
    p_goal: np.ndarray | None

    @property
    def n_frames(self) -> int:
        return int(self.rewards.shape[0])

    def stats(self) -> dict[str, float]:
        """Mean, standard deviation, min and max of the rewards."""
        r = self.rewards.astype(np.float64)
        return {"mean": float(r.mean()), "std": float(r.std()), "min": float(r.min()), "max": float(r.max())}


READ_BATCH = 128
"""Frames read at a time by :func:`score_to_csv` when the model chooses its own batch size."""


def score_to_csv(
    reward: Any,
    frames: Iterable[tuple[str, np.ndarray]],
    batch_size: int | None,
    csv_path: Path,
    advance: Callable[[int], None] = lambda n: None,
) -> ScoreResult:
    """Reward every frame, embedding each batch once, and write the rows to ``csv_path``.

    The CSV is written next to ``csv_path`` as it goes and renamed into place at the end, so an
    input that fails half-way leaves no partial ``rewards.csv``.

    Args:
        reward: the reward; its ``model`` embeds the frames.
        frames: ``(source, uint8 [H, W, 3])`` pairs (:func:`vlmreward.media.iter_frames`).
        batch_size: frames per batch and per forward pass; None: batches of :data:`READ_BATCH` frames,
            each embedded at the model's own batch size (with ``batch_size="auto"`` the size timed
            fastest on this machine, :mod:`vlmreward.models.autotune`).
        csv_path: where ``frame,source,reward[,p_goal]`` goes.
        advance: called with the number of frames of each finished batch (a progress bar).

    Returns:
        The rewards (and ``p_goal`` for a reward with a ``probability``, see :func:`has_probability`).

    Raises:
        InputFileError: the frames cannot be read, or there are none.
        InvalidParameterError: ``csv_path`` cannot be written.
    """
    softmax = has_probability(reward)
    rewards: list[np.ndarray] = []
    probabilities: list[np.ndarray] = []
    partial = csv_path.with_name(csv_path.name + ".partial")
    try:
        with _output_errors(csv_path):
            f = open(partial, "w", newline="", encoding="utf-8")
        with f:
            writer = csv.writer(f)
            writer.writerow(["frame", "source", "reward"] + (["p_goal"] if softmax else []))
            index = 0
            embedding_reward = scores_embeddings(reward)
            for sources, batch in media.iter_batches(frames, batch_size or READ_BATCH):
                if embedding_reward:
                    embeddings = reward.model.encode_images(batch, batch_size=batch_size)
                    r = reward.from_embeddings(embeddings)
                else:  # a frame reward of another kind: scores the frames itself
                    r = np.asarray(reward(batch), dtype=np.float32).reshape(-1)
                rewards.append(r)
                columns = [range(index, index + len(sources)), sources, map(_fmt, r)]
                if softmax:
                    with torch.inference_mode():
                        p = reward.probability(embeddings).float().cpu().numpy()
                    probabilities.append(p)
                    columns.append(map(_fmt, p))
                with _output_errors(csv_path):
                    writer.writerows(zip(*columns))
                index += len(sources)
                advance(len(sources))
        if not rewards:
            raise InputFileError("the input holds zero frames.")
        with _output_errors(csv_path):
            os.replace(partial, csv_path)
    finally:
        partial.unlink(missing_ok=True)
    return ScoreResult(
        rewards=np.concatenate(rewards).astype(np.float32),
        p_goal=np.concatenate(probabilities).astype(np.float32) if softmax else None,
    )


def plot_rewards(
    path: Path,
    rewards: np.ndarray,
    goal: list[str],
    threshold: float | None = None,
    p_goal: np.ndarray | None = None,
    title: str | None = None,
) -> None:
    """Save a PNG of the rewards ``[N]`` against the frame index, titled with the goal prompt(s)
    (or ``title``, for a reward without a goal).

    The threshold, if any, is a dashed horizontal line; ``p_goal`` (``[N]``, the softmax reward's
    probability) is drawn too when the reward is thresholded. Uses matplotlib's Agg canvas
    directly, so no GUI backend is touched.
    """
    from matplotlib.figure import Figure

    n = len(rewards)
    x = np.arange(n)
    marker = "." if n <= 200 else None
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax = fig.subplots()
    if threshold is not None and p_goal is not None:
        ax.plot(x, p_goal, color="C1", lw=1, marker=marker, label="p(goal | frame)")
        ax.step(x, rewards, where="mid", color="C0", lw=1.5, label="reward")
    else:
        ax.plot(x, rewards, color="C0", lw=1.5, marker=marker, label="reward")
    if threshold is not None:
        ax.axhline(threshold, color="C3", ls="--", lw=1, label=f"threshold {threshold:g}")
        ax.legend(loc="best", fontsize="small")
    title = " | ".join(repr(g) for g in goal) or title or ""
    ax.set_title(textwrap.shorten(title, width=100, placeholder=" …").replace("$", r"\$"), fontsize="medium")
    ax.set_xlabel("frame")
    ax.set_ylabel("reward")
    ax.grid(alpha=0.3)
    if p_goal is not None:  # a probability or a 0/1 reward
        ax.set_ylim(-0.05, 1.05)
    if n == 1:
        ax.set_xlim(-1, 1)
    fig.savefig(path, dpi=100)


def _fmt(value: float) -> str:
    """A float32 reward with enough digits to round-trip."""
    return f"{float(value):.9g}" if math.isfinite(value) else str(float(value))


@contextmanager
def _output_errors(path: Path) -> Iterator[None]:
    """Turn an OS error while writing ``path`` into a one-sentence :class:`InvalidParameterError`."""
    try:
        yield
    except OSError as err:
        reason = err.strerror or err
        raise InvalidParameterError(f"cannot write {str(path)!r}: {reason}; choose another --out.") from err


def make_dirs(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents; returns the folders created, deepest first."""
    missing = [p for p in [path, *path.parents] if not p.exists()]
    with _output_errors(path):
        path.mkdir(parents=True, exist_ok=True)
    return missing


def write_output(path: Path, write: Callable[[Path], object]) -> None:
    """``write(path)``, an OS error becoming one :class:`InvalidParameterError` that names ``path``."""
    with _output_errors(path):
        write(path)
