"""Episode-level evaluation of clip rewards (reward kinds of mode ``clip`` and ``episode``) on a labelled dataset.

A dataset of ``vlmreward collect`` records episodes (``episode`` and ``step`` columns). A clip
reward is scored on it through the same :class:`~vlmreward.envs.clips.ClipAssembler` the
environments use, episode by episode in step order, the clips of all episodes scored together
in batches: the per-frame rewards are exactly those the agent would have been paid.

For ``episode`` clip rewards the meaningful unit is the episode: :func:`episode_metrics` reports
the average precision and ROC-AUC of the episode score against episode success, and the EPIC
distance of the episode scores to the episodes' ground-truth returns. An episode counts as a
success when its label held at any of its steps, Meta-World's rule (``metaworld/evaluation.py``
counts ``info["success"]`` of episodes that terminate on success). :func:`draw_filmstrips`
draws episodes as rows of evenly sampled frames with their scores.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vlmreward.envs.clips import ClipAssembler, DueClips, score_clips_batched
from vlmreward.errors import InvalidParameterError
from vlmreward.eval.metrics import detection_metrics, epic_distance
from vlmreward.models.video import uniform_frame_indices
from vlmreward.rewards.video import offline_episode_rewards

__all__ = ["episode_rows", "dataset_clip_rewards", "episode_metrics", "draw_filmstrips", "EPISODE_SUCCESS_RULE"]

EPISODE_SUCCESS_RULE = "success at any step of the episode (Meta-World's rule)"

DEFAULT_CLIPS_PER_BATCH = 16


def episode_rows(dataset: Any) -> list[np.ndarray]:
    """Row indices of each episode of ``dataset``, in step order, episodes in order of first appearance.

    Raises:
        MissingLabelError: no ``episode`` or ``step`` column.
    """
    episode = dataset.column("episode", "episode column")
    step = dataset.column("step", "step column")
    order = np.lexsort((step, episode))
    ids, starts = np.unique(episode[order], return_index=True)
    bounds = list(starts) + [len(order)]
    return [order[bounds[i] : bounds[i + 1]] for i in range(len(ids))]


def dataset_clip_rewards(
    reward: Any, dataset: Any, clips_per_batch: int = DEFAULT_CLIPS_PER_BATCH, progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """Per-frame rewards of a clip reward on a dataset of episodes: ``float32 [N]`` in the dataset's row order.

    Each episode is replayed frame by frame through a :class:`ClipAssembler` (its last frame
    ends it), so the rewards are those the environment wrappers pay; the clips, across episodes,
    are scored ``clips_per_batch`` at a time as they come (memory: one batch of clips). A reward
    with its own offline scoring (``episode_rewards``: the prefix kinds' anchored curves) is
    given each episode whole instead (:func:`~vlmreward.rewards.video.offline_episode_rewards`).

    Raises:
        InvalidParameterError: the reward reads an ``info`` key that is not a dataset column.
    """
    key = getattr(reward, "clip_info_key", None)
    values = None
    if key is not None:
        if key not in dataset.table:
            raise InvalidParameterError(f"the reward reads info[{key!r}], which is not a column of the dataset.")
        values = dataset.table[key]
    out = np.zeros(len(dataset.frames), dtype=np.float32)
    if hasattr(reward, "episode_rewards"):  # scored offline its own way (a prefix reward's anchored curve)
        for idx in episode_rows(dataset):
            infos = None if values is None else [values[row].item() for row in idx]
            out[idx] = offline_episode_rewards(reward, np.stack([np.asarray(dataset.frames[row]) for row in idx]), infos)
            if progress is not None:
                progress(len(idx))
        return out
    assembler = ClipAssembler(reward, 1)
    batch: list[DueClips] = []  # clips due, scored clips_per_batch at a time (memory: one batch)
    targets: list[int] = []  # the row each clip's reward belongs to

    def flush() -> None:
        out[np.asarray(targets, dtype=np.int64)] = score_clips_batched(reward, DueClips.merge(batch), clips_per_batch)
        batch.clear()
        targets.clear()

    for idx in episode_rows(dataset):
        assembler.reset()
        for position, row in enumerate(idx):
            info = None if values is None else [{key: values[row].item()}]
            due = assembler.add([np.asarray(dataset.frames[row])], [position == len(idx) - 1], info)
            if len(due):
                batch.append(due)
                targets.append(row)
                if len(batch) >= clips_per_batch:
                    flush()
        if progress is not None:
            progress(len(idx))
    if batch:
        flush()
    return out


def episode_metrics(rewards: np.ndarray, dataset: Any, labels: np.ndarray | None, reference: np.ndarray) -> dict[str, Any]:
    """Metrics of an episode reward at the episode level.

    Args:
        rewards: per-frame rewards (``float32 [N]``, 0 except at episodes' last steps for an episode reward).
        dataset: the dataset (episode and step columns).
        labels: per-frame success labels (bool ``[N]``) or None.
        reference: per-frame ground-truth rewards ``[N]``.

    Returns:
        ``episodes``, ``positives``, ``success_rule``, ``average_precision``, ``roc_auc`` (NaN
        without both classes), ``epic_distance`` (episode scores against ground-truth returns),
        and the per-episode ``scores``, ``success`` and ``gt_return`` lists.
    """
    rows = episode_rows(dataset)
    scores = np.array([float(np.sum(rewards[idx])) for idx in rows])
    returns = np.array([float(np.sum(reference[idx])) for idx in rows])
    success = None if labels is None else np.array([bool(np.any(labels[idx])) for idx in rows])
    out: dict[str, Any] = {
        "episodes": len(rows), "positives": None if success is None else int(success.sum()),
        "success_rule": EPISODE_SUCCESS_RULE, "average_precision": math.nan, "roc_auc": math.nan, "notes": [],
    }
    if success is not None and 0 < success.sum() < len(success):
        d = detection_metrics(scores, success)
        out.update(average_precision=d.average_precision, roc_auc=d.roc_auc)
    else:
        why = "the dataset has no success label" if success is None else f"{int(success.sum())} of {len(rows)} episodes succeeded"
        out["notes"].append(f"AP and ROC-AUC need successful and failed episodes; {why}.")
    out["epic_distance"] = epic_distance(scores, returns) if len(rows) > 2 else math.nan
    out.update(scores=scores.tolist(), success=None if success is None else success.tolist(), gt_return=returns.tolist())
    return out


def draw_filmstrips(dataset: Any, metrics: dict[str, Any], path: str | Path, max_episodes: int = 8, frames: int = 8) -> Path:
    """Rows of ``frames`` evenly sampled frames of up to ``max_episodes`` episodes (the highest and the
    lowest scored), each titled with its score and success; written to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = episode_rows(dataset)
    order = np.argsort(metrics["scores"])[::-1]
    half = max_episodes // 2
    chosen = list(order[:half]) + [i for i in order[::-1][: max_episodes - half] if i not in order[:half]]
    fig, axes = plt.subplots(len(chosen), 1, figsize=(frames * 1.1, 1.35 * len(chosen)), squeeze=False)
    for ax, e in zip(axes[:, 0], chosen):
        idx = rows[e][uniform_frame_indices(len(rows[e]), frames)]
        ax.imshow(np.concatenate([np.asarray(dataset.frames[i]) for i in idx], axis=1))
        success = metrics["success"]
        label = "" if success is None else (" · success" if success[e] else " · failure")
        ax.set_title(f"episode {e}: score {metrics['scores'][e]:.4g}{label}", fontsize=8, loc="left")
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)
