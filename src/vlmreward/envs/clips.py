"""Episode frame histories for clip rewards (:mod:`vlmreward.rewards.video`): which clip to score at which step.

A clip reward scores a sequence of frames rather than one: the whole episode at its last step
(``clip_mode="episode"``, RoboCLIP), the last ``window`` frames at every step
(``"window"``), or the episode so far at every step (``"prefix"``, TOPReward).
:class:`ClipAssembler` keeps each sub-environment's frames of the running episode (and the
per-step ``info`` value the reward reads, if any) and, step by step, hands over the clips due:
``(sub-environment index, clip, infos)``. Each clip is already reduced to the frames the reward
reads (:meth:`~vlmreward.rewards.video.ClipReward.clip_indices`), so a stored clip of a deferred
step holds ``num_frames`` frames, not the episode.

The wrappers (:class:`~vlmreward.envs.wrappers.VLMRewardWrapper`,
:class:`~vlmreward.envs.vector.VLMRewardVecEnvWrapper`) score the clips now or, deferred, in
batches across steps and sub-environments; the reward of a clip belongs to the transition at
which it was handed over (the last one of the episode for ``"episode"``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from vlmreward.errors import InvalidParameterError

__all__ = ["ClipAssembler", "DueClips", "score_clips_batched"]


@dataclass
class DueClips:
    """The clips due at one step: ``slots[i]`` is the sub-environment of ``clips[i]``."""

    slots: list[int]
    clips: list[np.ndarray]
    infos: list[list[Any]] | None = None

    def __len__(self) -> int:
        return len(self.slots)

    @classmethod
    def merge(cls, parts: Sequence["DueClips"]) -> "DueClips":
        """The clips of ``parts``, in order, as one :class:`DueClips` (infos kept when the parts have them)."""
        merged = cls([], [], None if not parts or parts[0].infos is None else [])
        for part in parts:
            merged.slots += part.slots
            merged.clips += part.clips
            if merged.infos is not None:
                merged.infos += part.infos or []
        return merged


class ClipAssembler:
    """Per sub-environment frame histories → the clips a clip reward scores at each step.

    Args:
        reward_model: a clip reward (``clip_mode``, ``window``, ``clip_info_key``, ``clip_indices``).
        n_envs: number of sub-environments.

    Raises:
        InvalidParameterError: ``"window"`` mode without a positive ``window``.
    """

    def __init__(self, reward_model: Any, n_envs: int) -> None:
        self.reward_model = reward_model
        self.mode = reward_model.clip_mode
        self.info_key = getattr(reward_model, "clip_info_key", None)
        window = getattr(reward_model, "window", None)
        if self.mode == "window" and (window is None or int(window) < 1):
            raise InvalidParameterError(f"a window clip reward needs window ≥ 1; got {window!r}.")
        maxlen = int(window) if self.mode == "window" else None
        self._frames: list[deque[np.ndarray]] = [deque(maxlen=maxlen) for _ in range(n_envs)]
        self._infos: list[deque[Any]] = [deque(maxlen=maxlen) for _ in range(n_envs)]

    def reset(self, index: int | None = None) -> None:
        """Forget the running episode of sub-environment ``index`` (all when None)."""
        for i in range(len(self._frames)) if index is None else [index]:
            self._frames[i].clear()
            self._infos[i].clear()

    def add(self, frames: Sequence[np.ndarray], dones: Sequence[bool], infos: Sequence[dict] | None = None) -> DueClips:
        """Add one step of every sub-environment; return the clips due at this step.

        Args:
            frames: each sub-environment's rendered frame ``uint8 [H, W, 3]`` (the reached state).
            dones: whether each sub-environment's episode ended at this step (its history is then
                cleared after the clip is taken: the next frame belongs to a new episode).
            infos: each sub-environment's ``info`` dict (read only when the reward declares a
                ``clip_info_key``).
        """
        due = DueClips([], [], None if self.info_key is None else [])
        for i, frame in enumerate(frames):
            self._frames[i].append(frame)
            if self.info_key is not None:
                self._infos[i].append(None if infos is None else infos[i].get(self.info_key))
            if self.mode != "episode" or dones[i]:
                history = self._frames[i]
                keep = self.reward_model.clip_indices(len(history))
                due.slots.append(i)
                due.clips.append(np.stack([history[j] for j in keep]))
                if due.infos is not None:
                    due.infos.append([self._infos[i][j] for j in keep])
            if dones[i]:
                self.reset(i)
        return due


def score_clips_batched(reward_model: Any, due: DueClips, clips_per_batch: int) -> np.ndarray:
    """``float32 [len(due)]``: ``reward_model.score_clips`` over ``due``, ``clips_per_batch`` clips a call."""
    if not len(due):
        return np.zeros(0, dtype=np.float32)
    step = max(1, int(clips_per_batch))
    parts = [
        reward_model.score_clips(due.clips[i : i + step], None if due.infos is None else due.infos[i : i + step])
        for i in range(0, len(due), step)
    ]
    return np.concatenate([np.asarray(p, dtype=np.float32).reshape(-1) for p in parts])
