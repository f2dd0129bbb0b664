"""Progress lines of a training run, readable in a terminal and in a batch job's log file.

:class:`ProgressLogCallback` writes one line to the ``vlmreward.rl`` logger (INFO) every
``every_s`` seconds and when training ends::

    step 12,288/50,000 (25%) | 412 steps/s | ETA 1m 32s | VLM return 41.2 | GT return 187.5 | success 62%

The VLM return is what the agent optimises (the sum of the VLM reward over an episode); the GT
return is the environment's own reward (SB3's ``rollout/ep_rew_mean``, which it prints as the
episode reward); success is the rate of episodes whose last step reports ``info["is_success"]``,
and "held ≥50%" the rate by VLM-RM's rule (the goal held in at least half of the episode's steps).
All three are means over the last episodes of :class:`~vlmreward.rl.callbacks.EpisodeLogCallback`.
``vlmreward train`` shows these lines on stderr (``--quiet`` hides them).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable

from stable_baselines3.common.callbacks import BaseCallback

__all__ = ["ProgressLogCallback", "format_duration", "DEFAULT_PROGRESS_EVERY_S"]

_log = logging.getLogger("vlmreward.rl")

DEFAULT_PROGRESS_EVERY_S = 10.0
"""Seconds between progress lines."""


def format_duration(seconds: float) -> str:
    """``"45s"``, ``"3m 05s"``, ``"2h 07m"``; ``"?"`` when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


class ProgressLogCallback(BaseCallback):
    """Log the step count, speed, time left and recent returns every ``every_s`` seconds.

    Args:
        total_steps: the run's ``total_steps``.
        means: returns the current means (``rollout/vlm_return``, ``rollout/gt_return``,
            ``rollout/success_rate``), e.g. ``EpisodeLogCallback.means``.
        every_s: seconds between lines (> 0).
        clock: the time source (seconds), replaceable in tests.
        unscored_episodes: returns how many episodes have finished but wait for their deferred
            scoring batch (e.g. ``EpisodeLogCallback.unscored_episodes``); the line then says so
            instead of "no episode finished yet".
    """

    def __init__(
        self,
        total_steps: int,
        means: Callable[[], dict[str, float]],
        every_s: float = DEFAULT_PROGRESS_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        unscored_episodes: Callable[[], int] | None = None,
    ) -> None:
        super().__init__()
        self.unscored_episodes = unscored_episodes
        self.total_steps = int(total_steps)
        self.means = means
        self.every_s = float(every_s)
        self.clock = clock
        self._start_time = 0.0
        self._start_steps = 0
        self._next = 0.0

    def _init_callback(self) -> None:
        self._start_time = self.clock()
        self._start_steps = self.model.num_timesteps
        self._next = self._start_time + self.every_s

    def _on_step(self) -> bool:
        now = self.clock()
        if now >= self._next:
            self._next = now + self.every_s
            _log.info(self.line(now))
        return True

    def _on_training_end(self) -> None:
        _log.info(self.line(self.clock()))

    def line(self, now: float) -> str:
        """The progress line at time ``now``."""
        steps = self.num_timesteps
        elapsed = max(now - self._start_time, 1e-9)
        rate = (steps - self._start_steps) / elapsed
        left = (self.total_steps - steps) / rate if rate > 0 else math.inf
        parts = [
            f"step {steps:,}/{self.total_steps:,} ({100 * steps / max(self.total_steps, 1):.0f}%)",
            f"{rate:,.0f} steps/s",
            f"ETA {format_duration(left)}" if steps < self.total_steps else f"took {format_duration(elapsed)}",
        ]
        means: dict[str, Any] = self.means()
        for key, label in (("rollout/vlm_return", "VLM return"), ("rollout/gt_return", "GT return")):
            if key in means and math.isfinite(means[key]):
                parts.append(f"{label} {means[key]:.4g}")
        if "rollout/success_rate" in means:
            parts.append(f"success {100 * means['rollout/success_rate']:.0f}%")
        if "rollout/success_rate_held" in means:
            parts.append(f"held ≥50% {100 * means['rollout/success_rate_held']:.0f}%")
        waiting = self.unscored_episodes() if self.unscored_episodes is not None else 0
        if waiting:
            parts.append(f"{waiting} more episode{'s' if waiting != 1 else ''} finished, waiting for deferred scoring")
        elif len(parts) == 3:
            parts.append("no episode finished yet")
        return " | ".join(parts)
