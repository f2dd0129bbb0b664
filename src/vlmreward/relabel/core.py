"""Relabel a logged dataset's rewards with a VLM reward: streamed, batched, resumable, with provenance.

:func:`relabel_dataset` is format-agnostic; a :class:`DatasetAdapter` (Minari:
:mod:`vlmreward.relabel.minari_format`, LeRobot: :mod:`vlmreward.relabel.lerobot_format`) reads
episodes and writes the relabelled dataset.

**Two passes.** *Scoring*: episodes are read one at a time, their frames
(:class:`~vlmreward.relabel.frames.FrameSource`) gathered until ``batch_frames`` frames are held,
scored in one call of the reward model, and each episode's rewards saved as
``DEST.vlmreward-partial/scores/<episode>.npy`` (written atomically). Memory holds one batch and
one episode, whatever the dataset's size. *Writing*: the destination dataset is written episode by
episode from the source and the saved rewards, its provenance recorded, and the partial folder
removed.

**Resume.** A relabel that was killed is run again with the same command: episodes whose rewards
are saved are not scored again and none is lost; a destination left half-written by a kill during
the writing pass is written again from the start (the saved rewards make that cheap). The partial
folder records the source's checksum and the reward's description, and a different source or
reward is refused.

**Diagnostics.** Where the source labels success per step, the provenance records the VLM
reward's average precision and ROC-AUC as a detector of it, and for every source the EPIC
distance between the VLM reward and the source's reward (:mod:`vlmreward.eval.metrics`; the same
figures ``vlmreward evaluate`` reports), over all frames.

**Rewards.** Step ``t``'s VLM reward scores the frame of the state that step reached (VLM-RM,
eq. 1); a reward of sequences (clip, episode and prefix kinds) scores each episode on its own
(:func:`~vlmreward.rewards.video.offline_episode_rewards`: a prefix reward's anchored curve).
``mode="replace"`` makes it the dataset's reward and keeps the original as
``original_reward``; ``mode="add"`` keeps the reward and adds ``vlm_reward`` (where each format
puts these: see its module).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Protocol

import numpy as np

from vlmreward import __version__
from vlmreward._locking import exclusive_directory
from vlmreward._paths import atomic_write_bytes, atomic_write_text, files_sha256
from vlmreward.errors import VLMRewardError
from vlmreward.rewards.video import is_clip_reward, offline_episode_rewards

__all__ = [
    "RelabelError",
    "DatasetAdapter",
    "SourceEpisode",
    "RelabelResult",
    "relabel_dataset",
    "files_checksum",
    "PARTIAL_SUFFIX",
]

_log = logging.getLogger("vlmreward.relabel")

PARTIAL_SUFFIX = ".vlmreward-partial"
Mode = Literal["replace", "add"]


class RelabelError(VLMRewardError, ValueError):
    """A relabelling that cannot start or continue (destination exists, another partial run, bad dataset)."""


@dataclass
class SourceEpisode:
    """One episode's frames for scoring.

    Attributes:
        index: the episode's position in the source (0-based).
        frames: ``uint8 [T, H, W, 3]``, frame ``t`` showing the state step ``t`` reached.
        rewards: ``float [T]``, the source's rewards.
        success: ``bool [T]`` where the source labels success (for diagnostics), else None.
    """

    index: int
    frames: np.ndarray
    rewards: np.ndarray
    success: np.ndarray | None = None


class DatasetAdapter(Protocol):
    """What :func:`relabel_dataset` needs of a dataset format."""

    format: str  # "minari" or "lerobot"
    source_id: str
    num_episodes: int
    frames_from: str  # how the frames are obtained, for the provenance

    def checksum(self) -> str:
        """SHA-256 of the source's files."""

    def episodes(self, skip: set[int]) -> Iterator[SourceEpisode]:
        """The episodes not in ``skip``, in order."""

    def destination(self) -> Path:
        """The directory the relabelled dataset is written to."""

    def write(self, rewards_of: Callable[[int], np.ndarray], mode: Mode, provenance: dict[str, Any]) -> None:
        """Write the relabelled dataset (``rewards_of(i)``: episode ``i``'s VLM rewards, ``float32 [T]``)."""

    def close(self) -> None:
        """Release what the adapter holds (a rendering environment)."""


@dataclass
class RelabelResult:
    """What :func:`relabel_dataset` did.

    Attributes:
        destination: the relabelled dataset's directory.
        episodes, frames: how many the dataset has.
        scored_now: episodes scored in this call (the rest were saved by an earlier, interrupted one).
        provenance: what was recorded in the dataset's metadata.
    """

    destination: Path
    episodes: int
    frames: int
    scored_now: int
    provenance: dict[str, Any]


def files_checksum(root: str | os.PathLike) -> str:
    """SHA-256 over the relative names and bytes of every file under ``root`` (sorted)."""
    root = Path(root)
    return files_sha256((str(p.relative_to(root)), p) for p in sorted(p for p in root.rglob("*") if p.is_file()))


def _score_file(partial: Path, index: int) -> Path:
    return partial / "scores" / f"{index:08d}.npy"


def _save_scores(partial: Path, index: int, values: np.ndarray) -> None:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.asarray(values, dtype=np.float32), allow_pickle=False)
    atomic_write_bytes(_score_file(partial, index), buffer.getvalue())


def _load_scores(partial: Path, index: int) -> np.ndarray:
    return np.load(_score_file(partial, index), allow_pickle=False)


def _diagnostics(partial: Path, episodes: int, labels: dict[int, tuple[np.ndarray, np.ndarray | None]]) -> dict[str, Any]:
    """AP/ROC-AUC against success labels and EPIC distance to the source reward, over the episodes
    scored in this call (a resumed relabel: those it read), with notes where they cannot be computed."""
    from vlmreward.errors import InvalidParameterError
    from vlmreward.eval.metrics import detection_metrics, epic_distance

    indices = sorted(i for i in labels if i < episodes)
    out: dict[str, Any] = {"episodes": len(indices)}
    if not indices:
        return out
    vlm = np.concatenate([_load_scores(partial, i) for i in indices]).astype(np.float64)
    source = np.concatenate([labels[i][0] for i in indices])
    try:
        distance = epic_distance(vlm, source)
        if np.isfinite(distance):
            out["epic_distance_to_source_reward"] = distance
        else:
            out["epic_note"] = "the source's or the VLM reward is constant: the EPIC distance is undefined."
    except InvalidParameterError as err:
        out["epic_note"] = str(err)
    if all(labels[i][1] is not None for i in indices):
        success = np.concatenate([labels[i][1] for i in indices])  # type: ignore[misc]
        try:
            m = detection_metrics(vlm, success)
            out.update(average_precision=m.average_precision, roc_auc=m.roc_auc, positives=m.positives, frames=m.n)
        except InvalidParameterError as err:
            out["detection_note"] = str(err)
    return out


def relabel_dataset(
    adapter: DatasetAdapter,
    reward_model: Any,
    *,
    mode: Mode = "replace",
    batch_frames: int = 256,
    overwrite: bool = False,
    provenance: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> RelabelResult:
    """Score every episode of ``adapter``'s source with ``reward_model`` and write the relabelled dataset.

    Args:
        adapter: the source and destination (:class:`DatasetAdapter`).
        reward_model: a reward model (``reward_model(frames) -> float32 [N]``), e.g. from
            :func:`vlmreward.rewards.registry.build_reward`.
        mode: ``"replace"`` or ``"add"`` (module docstring).
        batch_frames: frames gathered (across episodes) per reward-model call.
        overwrite: replace an existing destination (else it is refused).
        provenance: recorded in the destination's metadata with what this function adds (reward
            description, source id and checksum, frames, mode, vlmreward version, time).
        progress: called with the number of frames after each scored batch.

    Returns:
        :class:`RelabelResult`.

    Raises:
        RelabelError: the destination exists (without ``overwrite``), or a partial relabel of
            another source or reward is in the way.
        DirectoryInUseError: another process relabels into the same destination.
        FramesUnavailableError: the episodes give no frames.
    """
    if mode not in ("replace", "add"):
        raise RelabelError(f"mode {mode!r}: use 'replace' or 'add'.")
    if batch_frames < 1:
        raise RelabelError(f"batch_frames must be ≥ 1; got {batch_frames}.")
    dest = adapter.destination()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_directory(dest.parent, "relabel destination", name=dest.name):  # one relabel at a time per destination
        return _relabel_held(adapter, reward_model, dest, mode, batch_frames, overwrite, provenance, progress)


def _relabel_held(adapter: DatasetAdapter, reward_model: Any, dest: Path, mode: Mode, batch_frames: int, overwrite: bool,
                  provenance: dict[str, Any] | None, progress: Callable[[int], None] | None) -> RelabelResult:
    partial = dest.with_name(dest.name + PARTIAL_SUFFIX)
    if overwrite and partial.exists():
        shutil.rmtree(partial)
    if dest.exists() and not partial.exists():
        if not overwrite:
            raise RelabelError(f"{dest} already exists; choose another destination or pass --overwrite to replace it.")
        shutil.rmtree(dest)
    description = reward_model.describe() if hasattr(reward_model, "describe") else {"reward": repr(reward_model)}
    checksum = adapter.checksum()
    identity = {"source": adapter.source_id, "source_checksum": checksum, "reward": description, "mode": mode}
    identity_file = partial / "relabel.json"
    if identity_file.is_file():
        recorded = json.loads(identity_file.read_text(encoding="utf-8"))
        if recorded != json.loads(json.dumps(identity, default=str)):
            raise RelabelError(
                f"{partial} holds a partial relabel of another source, reward or mode; delete it or pass --overwrite."
            )
        _log.info("resuming the relabel in %s", partial)
    else:
        (partial / "scores").mkdir(parents=True, exist_ok=True)
        atomic_write_text(identity_file, json.dumps(identity, default=str, indent=2) + "\n")
    done = {int(p.stem) for p in (partial / "scores").glob("*.npy") if p.stem.isdigit()}

    held: list[SourceEpisode] = []
    scored_now = 0

    def flush() -> None:
        nonlocal scored_now
        if not held:
            return
        if is_clip_reward(reward_model):  # a reward of sequences scores each episode on its own
            values = np.concatenate([offline_episode_rewards(reward_model, e.frames) if len(e.frames) else np.zeros(0, np.float32)
                                     for e in held])
        else:
            frames = np.concatenate([e.frames for e in held]) if any(len(e.frames) for e in held) else None
            values = np.asarray(reward_model(frames), dtype=np.float32) if frames is not None else np.zeros(0, np.float32)
        start = 0
        for episode in held:
            _save_scores(partial, episode.index, values[start : start + len(episode.frames)])
            start += len(episode.frames)
        scored_now += len(held)
        if progress is not None:
            progress(start)
        held.clear()

    labels: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}  # episode -> (source rewards, success) for diagnostics
    try:
        for episode in adapter.episodes(skip=done):
            labels[episode.index] = (np.asarray(episode.rewards, dtype=np.float64), episode.success)
            held.append(episode)
            if sum(len(e.frames) for e in held) >= batch_frames:
                flush()
        flush()
        if dest.exists():  # a kill during an earlier writing pass
            shutil.rmtree(dest)
        record = {
            **(provenance or {}),
            "diagnostics": _diagnostics(partial, adapter.num_episodes, labels),
            "vlmreward_version": __version__,
            "reward": description,
            "mode": mode,
            "frames": adapter.frames_from,
            "source": {"format": adapter.format, "id": adapter.source_id, "sha256": checksum},
            "reward_of_step": "the frame of the state the step reached (VLM-RM eq. 1)",
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        adapter.write(lambda i: _load_scores(partial, i), mode, record)
    finally:
        adapter.close()
    frames_total = sum(len(_load_scores(partial, i)) for i in range(adapter.num_episodes))
    shutil.rmtree(partial)
    return RelabelResult(dest, adapter.num_episodes, frames_total, scored_now, record)
