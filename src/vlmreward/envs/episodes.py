"""Finished episodes of vector environments: running sums per sub-environment, closed into records.

:class:`EpisodeAccounts` adds each step's VLM and ground-truth rewards and success of every
sub-environment and closes an :class:`EpisodeRecord` at the episode's end; the VLM reward
wrappers of :mod:`vlmreward.envs.vector` report them for logging side by side.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["EpisodeRecord", "EpisodeAccounts"]


@dataclass(frozen=True)
class EpisodeRecord:
    """One finished episode of one sub-environment.

    Attributes:
        length: steps in the episode.
        vlm_return: undiscounted sum of the VLM rewards (before ``weight``).
        gt_return: undiscounted sum of the environment's own rewards.
        success: ``info["is_success"]`` at the last step, or None if the environment sets none.
        goal: ``info["goal"]`` at the last step (goal-conditioned environments), else None.
        success_fraction: the fraction of the episode's steps whose ``info["is_success"]`` was
            true (None if the environment sets none): VLM-RM's rule counts an episode a success
            when the goal held in at least 50 % of its steps (Rocamonde et al., section 4.4).
        end_step: the wrapper's step count at the episode's last step, counted as SB3 counts
            ``num_timesteps`` (every sub-environment's step is one; ``num_timesteps`` of the
            wrapper, which training sets to the model's at the start of ``learn``); None where
            the wrapper counts none. With deferred scoring an episode is reported when its
            frames are scored, up to one scoring batch later than this step.
    """

    env_index: int
    length: int
    vlm_return: float
    gt_return: float
    success: bool | None
    goal: Any = None
    success_fraction: float | None = None
    end_step: int | None = None


class EpisodeAccounts:
    """Per-sub-environment running sums, closed into :class:`EpisodeRecord` at episode end."""

    def __init__(self, n_envs: int, maxlen: int = 1000) -> None:
        self.vlm = np.zeros(n_envs, dtype=np.float64)
        self.gt = np.zeros(n_envs, dtype=np.float64)
        self.length = np.zeros(n_envs, dtype=np.int64)
        self.held = np.zeros(n_envs, dtype=np.int64)  # steps whose info["is_success"] was true
        self.reported = np.zeros(n_envs, dtype=bool)  # the episode reported is_success at least once
        self.finished: deque[EpisodeRecord] = deque(maxlen=maxlen)

    def add(
        self,
        vlm: np.ndarray,
        gt: np.ndarray,
        dones: np.ndarray,
        successes: list[bool | None],
        live: np.ndarray | None = None,
        goals: list[Any] | None = None,
        step: int | None = None,
    ) -> None:
        """Add one step of every sub-environment (``live``: those that really stepped; default all).

        ``successes``: each sub-environment's ``info["is_success"]`` at this step (None: not
        reported); ``step``: the step count at this step (:attr:`EpisodeRecord.end_step`).
        """
        live = np.ones(len(self.vlm), dtype=bool) if live is None else live
        self.vlm += np.where(live, vlm, 0.0)
        self.gt += np.where(live, gt, 0.0)
        self.length += live
        for i in np.flatnonzero(live):
            if successes[i] is not None:
                self.reported[i] = True
                self.held[i] += bool(successes[i])
        for i in np.flatnonzero(dones):
            goal = None if goals is None else goals[i]
            fraction = float(self.held[i] / self.length[i]) if self.reported[i] and self.length[i] else None
            self.finished.append(
                EpisodeRecord(int(i), int(self.length[i]), float(self.vlm[i]), float(self.gt[i]), successes[i], goal, fraction, step)
            )
            self.vlm[i] = self.gt[i] = self.length[i] = self.held[i] = 0
            self.reported[i] = False

    def clear_running(self) -> None:
        self.vlm[:] = self.gt[:] = self.length[:] = self.held[:] = 0
        self.reported[:] = False

    def pop_finished(self) -> list[EpisodeRecord]:
        records = list(self.finished)
        self.finished.clear()
        return records
