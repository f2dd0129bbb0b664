"""LeRobot datasets (format v3.0) in and out of :func:`vlmreward.relabel.core.relabel_dataset`,
read and written directly with ``pyarrow`` and ``imageio``'s ffmpeg.

The ``lerobot`` package is not used: the newest release installable on this project's machines
(0.4.4, for Python 3.11) pins ``torch<2.11``, and they have 2.13. vlmreward therefore reads and
writes the on-disk format LeRobot documents, which ``LeRobotDataset`` loads:

* ``meta/info.json``: ``codebase_version`` ``"v3.0"``, ``fps``, ``features`` (name → ``dtype``,
  ``shape``, ``names``), ``data_path`` and ``video_path`` templates;
* ``meta/episodes/chunk-XXX/file-YYY.parquet``: one row per episode (``episode_index``,
  ``length``, ``data/chunk_index``, ``data/file_index``, ``dataset_from_index``,
  ``dataset_to_index``, ``videos/<key>/chunk_index``, ``file_index``, ``from_timestamp``,
  ``to_timestamp``, ``stats/<feature>/<stat>``);
* ``data/chunk-XXX/file-YYY.parquet``: one row per frame (``index``, ``episode_index``,
  ``frame_index``, ``timestamp``, ``task_index`` and the features);
* ``videos/<key>/chunk-XXX/file-YYY.mp4``: each camera's frames, episodes one after another;
* ``meta/stats.json``, ``meta/tasks.parquet``.

**Frames and rewards.** A LeRobot frame holds the observation *before* its action, and
``next.reward`` the reward of that transition, so the VLM reward of frame ``i`` scores the image
of frame ``i + 1`` (the state the step reached, VLM-RM eq. 1); the last frame of an episode, with
no later image stored, scores its own. Source: a dataset directory, or a repo id found under
``HF_LEROBOT_HOME`` (default ``~/.cache/huggingface/lerobot``; nothing is downloaded). The
destination is a new directory: the source's videos, tasks and metadata copied, and

* ``mode="replace"``: ``next.reward`` the VLM reward, the source's kept as ``original_reward``;
* ``mode="add"``: ``next.reward`` kept, ``next.vlm_reward`` added;

both ``float32 [1]`` features in ``info.json``, with their statistics in ``meta/stats.json`` and
per episode, and the provenance in ``meta/vlmreward.json`` and ``info.json``'s ``vlmreward`` key.

**Progress file.** With ``progress_file`` (``relabel --progress-file NAME.parquet``) the
destination also holds LeRobot's progress parquet, the file its reward-aligned behaviour cloning
reads (``rabc_progress_path``; written by LeRobot's ``rewards/<model>/compute_rabc_weights.py``):
one row per frame, ``index, episode_index, frame_index`` (int64) and ``progress_sparse``
(float32): the VLM reward of the frame min-max normalised per episode to ``[0, 1]``
(:func:`~vlmreward.rewards.progress.min_max_normalize`, LeRobot's ``normalize_rewards``), with
the model in the schema metadata (``vlm_name``, ``reward_model_path``) and the reward's
description (``vlmreward``, JSON).
:func:`write_lerobot_dataset` writes a dataset of this format from episodes (the tests' sources).
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from vlmreward.relabel.core import Mode, RelabelError, SourceEpisode, files_checksum
from vlmreward.rewards.progress import min_max_normalize

__all__ = ["LeRobotAdapter", "write_lerobot_dataset", "lerobot_root", "CODEBASE_VERSION"]

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)


def _pa() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as err:
        raise RelabelError('LeRobot datasets need pyarrow: pip install -e ".[relabel]".') from err
    return pa, pq


def lerobot_root(source: str | os.PathLike) -> Path:
    """The directory of a LeRobot dataset given as a directory or a repo id under ``HF_LEROBOT_HOME``.

    Raises:
        RelabelError: neither holds ``meta/info.json``.
    """
    path = Path(source)
    if (path / "meta" / "info.json").is_file():
        return path
    home = Path(os.environ.get("HF_LEROBOT_HOME", Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "lerobot"))
    if (home / str(source) / "meta" / "info.json").is_file():
        return home / str(source)
    raise RelabelError(
        f"LeRobot dataset {str(source)!r} is neither a directory with meta/info.json nor in HF_LEROBOT_HOME ({home}); "
        "download it where there is network or give its path."
    )


def _stats(values: np.ndarray) -> dict[str, list[float]]:
    """LeRobot's per-feature statistics of a ``[N]`` column (as ``[1]`` lists)."""
    v = np.asarray(values, dtype=np.float64)
    out = {"min": [float(v.min())], "max": [float(v.max())], "mean": [float(v.mean())], "std": [float(v.std())],
           "count": [int(v.size)]}
    for q in QUANTILES:
        out[f"q{int(round(q * 100)):02d}"] = [float(np.quantile(v, q))]
    return out


def _set_column(table: Any, name: str, array: Any) -> Any:
    """``table`` with column ``name`` replaced by ``array``, or appended when it has none."""
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, array)
    return table.append_column(name, array)


class _VideoCursor:
    """Reads one camera's mp4 files forward, episode after episode (reopened when asked to go back)."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.reader: Any = None
        self.position = 0

    def frames(self, path: Path, start: int, count: int) -> np.ndarray:
        import imageio.v2 as imageio

        if self.path != path or start < self.position:
            self.close()
            self.reader, self.path, self.position = imageio.get_reader(path, "ffmpeg"), path, 0
        out = []
        while self.position < start + count:
            try:
                frame = self.reader.get_next_data()
            except (IndexError, StopIteration) as err:
                raise RelabelError(f"{path} ends at frame {self.position}; the episode needs frames {start} to {start + count - 1}.") from err
            if self.position >= start:
                out.append(np.asarray(frame, dtype=np.uint8))
            self.position += 1
        return np.stack(out)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
        self.reader, self.path = None, None


class LeRobotAdapter:
    """Reads a LeRobot v3.0 dataset's episodes and writes the relabelled copy (module docstring).

    Args:
        source: the dataset's directory or repo id.
        destination: the new dataset's directory.
        image_key: the camera feature to score (None: the only ``video``/``image`` feature).
        progress_file: also write LeRobot's progress parquet under this name in the destination
            (module docstring), or None.

    Raises:
        RelabelError: not a readable v3.0 dataset, or no camera / several without ``image_key``;
            a ``progress_file`` that is not a plain ``.parquet`` file name.
    """

    format = "lerobot"

    def __init__(self, source: str | os.PathLike, destination: str | os.PathLike, image_key: str | None = None,
                 progress_file: str | None = None) -> None:
        if progress_file is not None and (Path(progress_file).name != progress_file or not progress_file.endswith(".parquet")):
            raise RelabelError(f"--progress-file {progress_file!r}: give a file name ending in .parquet (it is written in the destination).")
        self.progress_file = progress_file
        self.pa, self.pq = _pa()
        self.root = lerobot_root(source)
        self.source_id = str(source)
        self.dest = Path(destination)
        try:
            self.info = json.loads((self.root / "meta" / "info.json").read_text(encoding="utf-8"))
            version = str(self.info.get("codebase_version", ""))
            features = self.info["features"]
            self.fps = float(self.info["fps"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise RelabelError(f"{self.root / 'meta' / 'info.json'} cannot be read as LeRobot metadata ({err}).") from err
        if not version.startswith("v3"):
            raise RelabelError(f"{self.root} is LeRobot format {version or '?'}; vlmreward reads v3.0 (convert it with LeRobot's tools).")
        cameras = [k for k, f in features.items() if isinstance(f, dict) and f.get("dtype") in ("video", "image")]
        if image_key is not None and image_key not in cameras:
            raise RelabelError(f"--image-key {image_key!r}: the dataset's cameras are {cameras or 'none'}.")
        if image_key is None and len(cameras) != 1:
            raise RelabelError(
                "the dataset has no camera feature (video or image) to score" if not cameras
                else f"the dataset has several cameras {cameras}; choose one with --image-key."
            )
        self.key = image_key or cameras[0]
        self.is_video = features[self.key]["dtype"] == "video"
        self.frames_from = f"{'video' if self.is_video else 'image'} feature {self.key!r}, frame i + 1 for frame i"
        self.episodes_meta = self._read_episodes()
        self.num_episodes = len(self.episodes_meta)
        self._video = _VideoCursor()

    def _read_episodes(self) -> list[dict[str, Any]]:
        files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise RelabelError(f"{self.root} has no meta/episodes/*/*.parquet; it is not a LeRobot v3.0 dataset.")
        rows: list[dict[str, Any]] = []
        try:
            for file in files:
                rows.extend(self.pq.read_table(file).to_pylist())
        except Exception as err:  # noqa: BLE001 - pyarrow raises several kinds for damaged files
            raise RelabelError(f"the episode metadata of {self.root} cannot be read ({type(err).__name__}: {err}).") from err
        rows.sort(key=lambda r: int(r["episode_index"]))
        if [int(r["episode_index"]) for r in rows] != list(range(len(rows))):
            raise RelabelError(f"{self.root}: episode indices are not 0 … {len(rows) - 1}.")
        return rows

    def checksum(self) -> str:
        return files_checksum(self.root)

    def destination(self) -> Path:
        return self.dest

    def _data_file(self, episode: dict[str, Any]) -> Path:
        return self.root / DATA_PATH.format(chunk_index=int(episode["data/chunk_index"]), file_index=int(episode["data/file_index"]))

    def _rows(self, index: int) -> Any:
        """The episode's frames' rows (a pyarrow table), in frame order."""
        episode = self.episodes_meta[index]
        try:
            table = self.pq.read_table(self._data_file(episode), filters=[("episode_index", "=", index)])
        except Exception as err:  # noqa: BLE001
            raise RelabelError(f"episode {index} of {self.root} cannot be read ({type(err).__name__}: {err}).") from err
        order = np.argsort(np.asarray(table.column("frame_index")))
        table = table.take(self.pa.array(order))
        if table.num_rows != int(episode["length"]):
            raise RelabelError(f"episode {index} of {self.root}: {table.num_rows} data rows for length {episode['length']}.")
        return table

    def _frames(self, index: int, rows: Any) -> np.ndarray:
        episode = self.episodes_meta[index]
        if self.is_video:
            path = self.root / self.info.get("video_path", VIDEO_PATH).format(
                video_key=self.key, chunk_index=int(episode[f"videos/{self.key}/chunk_index"]),
                file_index=int(episode[f"videos/{self.key}/file_index"]))
            start = int(round(float(episode[f"videos/{self.key}/from_timestamp"]) * self.fps))
            return self._video.frames(path, start, int(episode["length"]))
        from PIL import Image

        images = rows.column(self.key).to_pylist()
        return np.stack([np.asarray(Image.open(io.BytesIO(image["bytes"])).convert("RGB")) for image in images])

    def episodes(self, skip: set[int]) -> Iterator[SourceEpisode]:
        for index in range(self.num_episodes):
            if index in skip:
                continue
            rows = self._rows(index)
            frames = self._frames(index, rows)
            reached = np.concatenate([frames[1:], frames[-1:]]) if len(frames) else frames
            names = rows.column_names
            rewards = (np.asarray(rows.column("next.reward"), dtype=np.float64).reshape(-1) if "next.reward" in names
                       else np.zeros(len(frames)))
            success = np.asarray(rows.column("next.success")).reshape(-1).astype(bool) if "next.success" in names else None
            yield SourceEpisode(index, reached, rewards, success)

    def write(self, rewards_of: Callable[[int], np.ndarray], mode: Mode, provenance: dict[str, Any]) -> None:
        pa, pq = self.pa, self.pq
        self.dest.mkdir(parents=True)
        for part in ("videos", "images"):
            if (self.root / part).is_dir():
                shutil.copytree(self.root / part, self.dest / part)
        shutil.copytree(self.root / "meta", self.dest / "meta")
        info = json.loads(json.dumps(self.info))
        has_reward = "next.reward" in info["features"]
        new = {"replace": ["next.reward"] + (["original_reward"] if has_reward else []), "add": ["next.vlm_reward"]}[mode]
        values: dict[str, list[np.ndarray]] = {name: [] for name in new}  # every frame's, for the dataset's stats
        episode_stats: dict[int, dict[str, dict[str, list[float]]]] = {}  # an episode lies in one data file
        progress_rows: list[tuple[np.ndarray, ...]] = []  # (index, episode_index, frame_index, progress) per episode
        for data_file in sorted((self.root / "data").glob("chunk-*/file-*.parquet")):
            table = pq.read_table(data_file)
            episodes = np.asarray(table.column("episode_index"))
            frames = np.asarray(table.column("frame_index"))
            vlm = np.empty(table.num_rows, dtype=np.float32)
            for index in np.unique(episodes):
                rows = episodes == index
                scores = np.asarray(rewards_of(int(index)), dtype=np.float32)
                vlm[rows] = scores[frames[rows]]
                if self.progress_file is not None:
                    progress_rows.append((np.asarray(table.column("index"))[rows], np.full(int(rows.sum()), index), frames[rows],
                                          min_max_normalize(scores)[frames[rows]]))
            columns = {"next.vlm_reward": vlm} if mode == "add" else {"next.reward": vlm}
            if mode == "replace" and has_reward:
                columns["original_reward"] = np.asarray(table.column("next.reward"), dtype=np.float32).reshape(-1)
            for name, column in columns.items():
                table = _set_column(table, name, pa.array(column, type=pa.float32()))
                values[name].append(column)
                for index in np.unique(episodes):
                    episode_stats.setdefault(int(index), {})[name] = _stats(column[episodes == index])
            target = self.dest / data_file.relative_to(self.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, target)
        for name in new:
            info["features"][name] = {"dtype": "float32", "shape": [1], "names": None}
        info["vlmreward"] = provenance
        (self.dest / "meta" / "info.json").write_text(json.dumps(info, indent=4) + "\n", encoding="utf-8")
        stats_file = self.dest / "meta" / "stats.json"
        stats = json.loads(stats_file.read_text(encoding="utf-8")) if stats_file.is_file() else {}
        for name in new:
            stats[name] = _stats(np.concatenate(values[name]))
        stats_file.write_text(json.dumps(stats, indent=4) + "\n", encoding="utf-8")
        for episodes_file in sorted((self.dest / "meta" / "episodes").glob("chunk-*/file-*.parquet")):
            table = pq.read_table(episodes_file)
            indices = [int(i) for i in table.column("episode_index").to_pylist()]
            for name in new:
                for stat in episode_stats[indices[0]][name]:
                    column = [episode_stats[i][name][stat] for i in indices]
                    table = _set_column(table, f"stats/{name}/{stat}",
                                        pa.array(column, type=pa.list_(pa.int64() if stat == "count" else pa.float64())))
            pq.write_table(table, episodes_file)
        (self.dest / "meta" / "vlmreward.json").write_text(json.dumps(provenance, indent=2, default=str) + "\n", encoding="utf-8")
        if self.progress_file is not None:
            self._write_progress(progress_rows, provenance)

    def _write_progress(self, rows: list[tuple[np.ndarray, ...]], provenance: dict[str, Any]) -> None:
        pa, pq = self.pa, self.pq
        columns = [np.concatenate([r[i] for r in rows]) if rows else np.zeros(0) for i in range(4)]
        order = np.argsort(columns[0], kind="stable")
        table = pa.table({
            "index": pa.array(columns[0][order].astype(np.int64)),
            "episode_index": pa.array(columns[1][order].astype(np.int64)),
            "frame_index": pa.array(columns[2][order].astype(np.int64)),
            "progress_sparse": pa.array(columns[3][order].astype(np.float32)),
        })
        reward = provenance.get("reward") or {}
        model = str(reward.get("model") or reward.get("kind") or "")
        table = table.replace_schema_metadata({
            b"vlm_name": model.encode(), b"reward_model_path": model.encode(),
            b"vlmreward": json.dumps(reward, default=str).encode(),
        })
        pq.write_table(table, self.dest / self.progress_file)

    def close(self) -> None:
        self._video.close()


def write_lerobot_dataset(
    root: str | os.PathLike,
    episodes: Sequence[dict[str, np.ndarray]],
    fps: int,
    image_key: str = "observation.image",
    task: str = "",
    video: bool = True,
) -> Path:
    """Write a LeRobot v3.0 dataset (one chunk, one file per kind) of ``episodes``.

    Args:
        root: the new dataset's directory (must not exist).
        episodes: per episode ``{"frames": uint8 [T, H, W, 3], "observation.state": float [T, D],
            "action": float [T, A], "next.reward": float [T], "next.done": bool [T]}`` (optionally
            ``"next.success"``).
        fps: frames per second (the timestamps and the video's rate).
        image_key: the camera feature's name.
        task: the task sentence every episode is labelled with.
        video: store the frames as an H.264 mp4 (``dtype: video``), else as PNGs in the parquet
            (``dtype: image``).

    Returns:
        ``root``.
    """
    import imageio.v2 as imageio
    from PIL import Image

    pa, pq = _pa()
    root = Path(root)
    root.mkdir(parents=True)
    first = episodes[0]
    height, width = first["frames"].shape[1:3]
    features: dict[str, Any] = {
        image_key: {"dtype": "video" if video else "image", "shape": [height, width, 3], "names": ["height", "width", "channels"]},
        "observation.state": {"dtype": "float32", "shape": [first["observation.state"].shape[1]], "names": None},
        "action": {"dtype": "float32", "shape": [first["action"].shape[1]], "names": None},
        "next.reward": {"dtype": "float32", "shape": [1], "names": None},
        "next.done": {"dtype": "bool", "shape": [1], "names": None},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": {"dtype": "int64", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
        "index": {"dtype": "int64", "shape": [1], "names": None},
        "task_index": {"dtype": "int64", "shape": [1], "names": None},
    }
    if "next.success" in first:
        features["next.success"] = {"dtype": "bool", "shape": [1], "names": None}
    if video:
        features[image_key]["info"] = {"video.fps": fps, "video.height": height, "video.width": width, "video.channels": 3,
                                       "video.codec": "h264", "video.pix_fmt": "yuv420p", "has_audio": False}
    columns: dict[str, list[Any]] = {k: [] for k in features if not (video and k == image_key)}
    episode_rows = []
    total = 0
    writer = None
    if video:
        video_file = root / VIDEO_PATH.format(video_key=image_key, chunk_index=0, file_index=0)
        video_file.parent.mkdir(parents=True)
        writer = imageio.get_writer(video_file, fps=fps, codec="libx264", quality=8, macro_block_size=1,
                                    ffmpeg_log_level="error", pixelformat="yuv420p")
    for e, episode in enumerate(episodes):
        length = len(episode["frames"])
        for t in range(length):
            if writer is not None:
                writer.append_data(episode["frames"][t])
            else:
                png = io.BytesIO()
                Image.fromarray(episode["frames"][t]).save(png, format="PNG")
                columns[image_key].append({"bytes": png.getvalue(), "path": None})
            columns["observation.state"].append(np.asarray(episode["observation.state"][t], np.float32).tolist())
            columns["action"].append(np.asarray(episode["action"][t], np.float32).tolist())
            columns["next.reward"].append(float(episode["next.reward"][t]))
            columns["next.done"].append(bool(episode["next.done"][t]))
            if "next.success" in columns:
                columns["next.success"].append(bool(episode["next.success"][t]))
            columns["timestamp"].append(t / fps)
            columns["frame_index"].append(t)
            columns["episode_index"].append(e)
            columns["index"].append(total + t)
            columns["task_index"].append(0)
        row = {"episode_index": e, "tasks": [task], "length": length, "data/chunk_index": 0, "data/file_index": 0,
               "dataset_from_index": total, "dataset_to_index": total + length,
               "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
        if video:
            row.update({f"videos/{image_key}/chunk_index": 0, f"videos/{image_key}/file_index": 0,
                        f"videos/{image_key}/from_timestamp": total / fps, f"videos/{image_key}/to_timestamp": (total + length) / fps})
        episode_rows.append(row)
        total += length
    if writer is not None:
        writer.close()
    data_file = root / DATA_PATH.format(chunk_index=0, file_index=0)
    data_file.parent.mkdir(parents=True)
    types = {"observation.state": pa.list_(pa.float32()), "action": pa.list_(pa.float32()), "next.reward": pa.float32(),
             "next.done": pa.bool_(), "next.success": pa.bool_(), "timestamp": pa.float32(), "frame_index": pa.int64(),
             "episode_index": pa.int64(), "index": pa.int64(), "task_index": pa.int64(),
             image_key: pa.struct([("bytes", pa.binary()), ("path", pa.string())])}
    pq.write_table(pa.table({k: pa.array(v, type=types[k]) for k, v in columns.items()}), data_file)
    episodes_file = root / EPISODES_PATH.format(chunk_index=0, file_index=0)
    episodes_file.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(episode_rows), episodes_file)
    pq.write_table(pa.table({"task_index": [0], "task": [task]}), root / "meta" / "tasks.parquet")
    stats = {k: _stats(np.asarray(columns[k], dtype=np.float64).reshape(-1)) for k in ("next.reward",)}
    (root / "meta" / "stats.json").write_text(json.dumps(stats, indent=4) + "\n", encoding="utf-8")
    info = {"codebase_version": CODEBASE_VERSION, "robot_type": None, "total_episodes": len(episodes), "total_frames": total,
            "total_tasks": 1, "chunks_size": 1000, "data_files_size_in_mb": 100, "video_files_size_in_mb": 200, "fps": fps,
            "splits": {"train": f"0:{len(episodes)}"}, "data_path": DATA_PATH, "video_path": VIDEO_PATH if video else None,
            "features": features}
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4) + "\n", encoding="utf-8")
    return root
