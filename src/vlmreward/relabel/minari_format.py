"""Minari datasets in and out of :func:`vlmreward.relabel.core.relabel_dataset` (the ``minari``
package, 0.5; ``pip install -e ".[relabel]"``).

The source is a dataset id in the local Minari root (``MINARI_DATASETS_PATH``, default
``~/.minari/datasets``; nothing is downloaded) or a dataset's directory. The destination is a new
dataset id in the same root, written with Minari's own storage (``MinariStorage``, the source's
data format): the source's observations, actions, terminations, truncations, seeds, infos and
metadata, with

* ``mode="replace"``: the VLM reward as ``rewards``, the source's in ``infos["original_reward"]``;
* ``mode="add"``: the source's ``rewards``, the VLM reward in ``infos["vlm_reward"]``;

(infos follow Minari's layout: ``T + 1`` entries, entry ``t + 1`` for step ``t``, entry 0 zero;
each ``float64 [T + 1, 1]``, because Minari 0.5.4's arrow storage cannot read back an info of
one scalar per step),
and the provenance as JSON in the metadata key ``vlmreward`` (``MinariDataset.storage.metadata``).
Image observations are stored without JPEG encoding, so the destination holds the pixels the
source's loader returned, unchanged. ``minari.load_dataset(DEST)`` reads the result.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from vlmreward.relabel.core import Mode, RelabelError, SourceEpisode, files_checksum
from vlmreward.relabel.frames import FrameSource

__all__ = ["MinariAdapter", "open_minari_dataset", "record_episode", "PROVENANCE_KEY"]

PROVENANCE_KEY = "vlmreward"


def _minari() -> Any:
    try:
        import minari
    except ImportError as err:
        raise RelabelError('Minari datasets need the minari package: pip install -e ".[relabel]".') from err
    return minari


def open_minari_dataset(source: str | os.PathLike) -> Any:
    """A ``MinariDataset`` from a local dataset id or a dataset directory (``…/data`` or its parent).

    Raises:
        RelabelError: no such dataset locally (ids are not downloaded), or it cannot be read.
    """
    minari = _minari()
    path = Path(source)
    try:
        if path.is_dir():
            data = path / "data" if (path / "data").is_dir() else path
            return minari.MinariDataset(str(data))
        return minari.load_dataset(str(source), download=False)
    except FileNotFoundError as err:
        raise RelabelError(
            f"Minari dataset {str(source)!r} is not in the local Minari root ({_root()}) and is not a directory; "
            "download it where there is network (minari download ID) or give its path."
        ) from err
    except Exception as err:  # noqa: BLE001 - Minari raises many kinds for damaged files
        raise RelabelError(f"Minari dataset {str(source)!r} cannot be read ({type(err).__name__}: {err}).") from err


def record_episode(env: Any, seed: int, policy: Callable[[Any], Any] | None = None) -> Any:
    """One episode of ``env`` as a Minari ``EpisodeBuffer`` (``T + 1`` observations; random actions
    unless ``policy(observation)`` is given; ``infos["success"]`` from ``info["is_success"]``,
    ``[T + 1, 1]``), for ``minari.create_dataset_from_buffers`` without Minari's ``DataCollector``
    (which needs jax)."""
    from minari.data_collector.episode_buffer import EpisodeBuffer

    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    observations, actions, rewards, terminations, truncations = [obs], [], [], [], []
    success = [bool(info.get("is_success", False))]
    done = False
    while not done:
        action = env.action_space.sample() if policy is None else policy(obs)
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        actions.append(action)
        rewards.append(reward)
        terminations.append(terminated)
        truncations.append(truncated)
        success.append(bool(info.get("is_success", False)))
        done = terminated or truncated
    if isinstance(observations[0], dict):
        stacked: Any = {k: np.stack([o[k] for o in observations]) for k in observations[0]}
    else:
        stacked = np.stack(observations)
    return EpisodeBuffer(seed=seed, observations=stacked, actions=np.array(actions), rewards=np.array(rewards),
                         terminations=np.array(terminations), truncations=np.array(truncations),
                         infos={"success": np.array(success)[:, None]})  # [T + 1, 1]: see the module docstring


def _root() -> Path:
    from minari.storage.datasets_root_dir import get_dataset_path

    return get_dataset_path()


class MinariAdapter:
    """Reads a Minari dataset's episodes and writes the relabelled copy (see the module docstring).

    Args:
        source: dataset id or directory.
        destination: the new dataset's id (written under the Minari root).
        image_key: the ``Dict`` observation key holding frames (None: found, see
            :func:`~vlmreward.relabel.frames.image_key`).

    Raises:
        RelabelError: unreadable source, or a destination id that is not a valid Minari id.
        FramesUnavailableError: no image observations and no restorable simulator.
    """

    format = "minari"

    def __init__(self, source: str | os.PathLike, destination: str, image_key: str | None = None) -> None:
        self.dataset = open_minari_dataset(source)
        self.storage = self.dataset.storage
        self.source_id = str(self.storage.metadata.get("dataset_id", source))
        self.destination_id = str(destination)
        try:
            from minari.dataset.minari_dataset import parse_dataset_id

            parse_dataset_id(self.destination_id)
        except Exception as err:  # noqa: BLE001
            raise RelabelError(f"--out {destination!r} is not a Minari dataset id ([namespace/]name-v<N>): {err}") from err
        self.num_episodes = int(self.storage.total_episodes)
        env_spec = self.env_spec = self.dataset.spec.env_spec
        make_env = None
        if env_spec is not None:
            import gymnasium as gym

            make_env = lambda: gym.make(env_spec, render_mode="rgb_array")  # noqa: E731

        self.frame_source = FrameSource(self.storage.observation_space, make_env, image_key)
        self.frames_from = self.frame_source.how

    def checksum(self) -> str:
        return files_checksum(Path(self.storage.data_path).parent)  # the dataset directory: data and metadata

    def _episode(self, index: int) -> dict[str, Any]:
        try:
            return next(iter(self.storage.get_episodes([index])))
        except Exception as err:  # noqa: BLE001 - a damaged episode file
            raise RelabelError(f"episode {index} of {self.source_id} cannot be read ({type(err).__name__}: {err}).") from err

    def episodes(self, skip: set[int]) -> Iterator[SourceEpisode]:
        for index in range(self.num_episodes):
            if index in skip:
                continue
            data = self._episode(index)
            infos = data.get("infos") or {}
            frames = self.frame_source.frames(data["observations"], infos)
            rewards = np.asarray(data["rewards"], dtype=np.float64).reshape(-1)
            if len(frames) != len(rewards):
                raise RelabelError(f"episode {index} of {self.source_id}: {len(frames)} frames for {len(rewards)} rewards.")
            success = next((np.asarray(infos[k]).reshape(len(infos[k]), -1)[1:, 0].astype(bool)
                            for k in ("success", "is_success") if k in infos), None)
            yield SourceEpisode(index, frames, rewards, success)

    def destination(self) -> Path:
        from minari.storage.datasets_root_dir import get_dataset_path

        return get_dataset_path(self.destination_id)

    def write(self, rewards_of: Callable[[int], np.ndarray], mode: Mode, provenance: dict[str, Any]) -> None:
        from minari.data_collector.episode_buffer import EpisodeBuffer
        from minari.dataset.minari_storage import MinariStorage
        from minari.namespace import create_namespace, list_local_namespaces
        from minari.dataset.minari_dataset import parse_dataset_id

        namespace = parse_dataset_id(self.destination_id)[0]
        if namespace is not None and namespace not in list_local_namespaces():
            create_namespace(namespace)
        source_meta = dict(self.storage.metadata)
        dest = self.destination()
        dest.mkdir(parents=True, exist_ok=True)
        storage = MinariStorage.new(
            dest / "data", observation_space=self.storage.observation_space, action_space=self.storage.action_space,
            env_spec=self.env_spec, data_format=source_meta.get("data_format", "arrow"), jpeg_encoding=False,
        )
        keep = {k: v for k, v in source_meta.items() if k in ("algorithm_name", "author", "author_email", "code_permalink",
                                                               "eval_env_spec", "ref_min_score", "ref_max_score",
                                                               "num_episodes_average_score", "requirements")}
        description = f"{source_meta.get('description') or self.source_id} — rewards relabelled by vlmreward ({mode})."
        storage.update_metadata({**keep, "dataset_id": self.destination_id, "description": description,
                                 "minari_version": _minari().__version__,
                                 PROVENANCE_KEY: json.dumps(provenance, default=str)})
        for index in range(self.num_episodes):
            data = self._episode(index)
            original = np.asarray(data["rewards"], dtype=np.float64).reshape(-1)
            vlm = np.asarray(rewards_of(index), dtype=np.float64)
            infos = dict(data.get("infos") or {})
            padded = lambda values: np.concatenate([[0.0], values])[:, None]  # noqa: E731 - infos: T + 1 entries
            if mode == "replace":
                rewards, infos["original_reward"] = vlm, padded(original)
            else:
                rewards, infos["vlm_reward"] = original, padded(vlm)
            storage.update_episodes([EpisodeBuffer(
                id=index, seed=data.get("seed"), options=data.get("options"), observations=data["observations"],
                actions=data["actions"], rewards=rewards, terminations=data["terminations"],
                truncations=data["truncations"], infos=infos,
            )])

    def close(self) -> None:
        self.frame_source.close()
