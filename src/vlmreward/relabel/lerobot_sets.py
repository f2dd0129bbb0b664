"""A LeRobot v3.0 dataset as an episode set of ``vlmreward benchmark`` and ``evaluate``.

:func:`lerobot_episode_set` writes the episodes of a LeRobot dataset (read by
:class:`~vlmreward.relabel.lerobot_format.LeRobotAdapter`: frame ``i`` is the image of frame
``i + 1``, the state step ``i`` reached) as a vlmreward dataset
(:func:`~vlmreward.eval.dataset.save_dataset`) with the columns

* ``episode``, ``step`` (1-based), ``gt_reward``: the dataset's ``next.reward`` (0 without one);
* ``progress``: the progress label of the reward-model papers (GVL; LeRobot's progress
  parquet): ``frame_index / (length − 1)`` on successful episodes, in ``[0, 1]``, 0 on failed
  ones; every episode counts as successful when the dataset labels no success (demonstrations);
* ``is_success`` when the dataset has ``next.success``;

and the task sentence of the dataset (``meta/tasks.parquet``, the first task) recorded as
``metadata["task"]``: the instruction the benchmark gives the reward.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vlmreward.eval.dataset import save_dataset
from vlmreward.relabel.lerobot_format import LeRobotAdapter

__all__ = ["lerobot_episode_set", "lerobot_task"]


def lerobot_task(source: str | os.PathLike) -> str | None:
    """The first task sentence of a LeRobot dataset (``meta/tasks.parquet``), or None."""
    import pyarrow.parquet as pq

    from vlmreward.relabel.lerobot_format import lerobot_root

    path = lerobot_root(source) / "meta" / "tasks.parquet"
    if not path.is_file():
        return None
    table = pq.read_table(path)
    if "task" in table.column_names and table.num_rows:
        return str(table.column("task")[0].as_py())
    tasks = table.to_pandas().index.tolist() if table.num_rows else []  # LeRobot writes the task as the index
    return str(tasks[0]) if tasks else None


def lerobot_episode_set(source: str | os.PathLike, out: str | os.PathLike, image_key: str | None = None,
                        overwrite: bool = False) -> Path:
    """Write LeRobot dataset ``source``'s episodes as a vlmreward dataset at ``out`` (module docstring).

    Raises:
        RelabelError: not a readable LeRobot v3.0 dataset, or no camera / several without ``image_key``.
        InvalidParameterError: ``out`` exists (without ``overwrite``).
    """
    adapter = LeRobotAdapter(source, out, image_key=image_key)  # read only: this adapter writes nothing
    frames, episode, step, reward, progress, success = [], [], [], [], [], []
    labelled = True
    try:
        for e in adapter.episodes(skip=set()):
            n = len(e.frames)
            ok = True if e.success is None else bool(np.any(e.success))
            labelled = labelled and e.success is not None
            frames.append(e.frames)
            episode.append(np.full(n, e.index))
            step.append(np.arange(1, n + 1))
            reward.append(np.asarray(e.rewards, dtype=np.float64) if len(e.rewards) == n else np.zeros(n))
            progress.append(np.arange(n) / max(n - 1, 1) if ok else np.zeros(n))
            success.append(np.zeros(n, bool) if e.success is None else np.asarray(e.success, dtype=bool))
    finally:
        adapter.close()
    table = {"episode": np.concatenate(episode), "step": np.concatenate(step), "gt_reward": np.concatenate(reward),
             "progress": np.concatenate(progress)}
    columns = {
        "frame": {"type": "int", "description": "row index into frames.npy"},
        "episode": {"type": "int", "description": "LeRobot episode_index"},
        "step": {"type": "int", "description": "frame_index + 1"},
        "gt_reward": {"type": "float", "description": "next.reward of the LeRobot dataset (0 without one)"},
        "progress": {"type": "float", "description": "frame_index / (length - 1) on successful episodes, 0 on failed ones"},
    }
    labels = {}
    if labelled:
        table["is_success"] = np.concatenate(success)
        columns["is_success"] = {"type": "bool", "description": "next.success of the LeRobot dataset"}
        labels["is_success"] = {"definition": "next.success of the LeRobot dataset"}
    all_frames = np.concatenate(frames)
    metadata = {
        "env_id": f"lerobot:{source}", "env_kwargs": {}, "policy": {"kind": "dataset", "source": str(source)},
        "render": {"render_mode": "rgb_array", "width": int(all_frames.shape[2]), "height": int(all_frames.shape[1])},
        "columns": columns, "labels": labels, "state_variables": {}, "gt_reward": {"definition": "the dataset's next.reward"},
        "landscape": {"x": None, "facet": None}, "task": lerobot_task(source), "frames_from": adapter.frames_from,
    }
    return save_dataset(out, all_frames, table, metadata, overwrite=overwrite)
