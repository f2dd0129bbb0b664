"""stable-baselines3 callbacks of a training run, and the checkpoints and videos they write.

* :class:`EpisodeLogCallback`: VLM return and ground-truth return/success side by side, from the
  :class:`~vlmreward.envs.vector.VLMRewardVecEnvWrapper`'s finished episodes, into SB3's logger
  (``rollout/vlm_return``, ``rollout/gt_return``, ``rollout/success_rate``,
  ``rollout/episode_length``; per goal type ``rollout/success_rate/<type>`` and
  ``rollout/vlm_return/<type>`` for goal-conditioned environments) and one row per episode into
  ``RUN_DIR/episodes.csv``.
* :class:`Checkpointer` and :class:`CheckpointCallback`: consistent, atomically written
  checkpoints (policy and optimiser, replay buffer, step count, RNG states, ``VecNormalize``
  statistics) every ``checkpoint_every`` steps, and on demand after an interruption.
* :class:`EvalCallback` and :func:`evaluate_episodes`: the deterministic policy on a separate
  environment with the same reward, ground-truth and VLM returns, and a video of the frames above
  a plot of the VLM reward so far (:class:`RewardStrip`, :func:`write_episode_video`).
* :class:`StopAtTotalSteps`: off-policy runs end at exactly ``total_steps``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import pickle
import random
import shutil
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.type_aliases import TrainFrequencyUnit
from stable_baselines3.common.vec_env import VecNormalize

from vlmreward.envs.vector import EpisodeRecord
from vlmreward.errors import VLMRewardError
from vlmreward.rl.deferred import DeferredDictReplayBuffer, DeferredReplayBuffer, find_vlm_wrapper

__all__ = [
    "CheckpointError",
    "CheckpointInfo",
    "Checkpointer",
    "CheckpointCallback",
    "EpisodeLogCallback",
    "EvalCallback",
    "StopAtTotalSteps",
    "EvaluationResult",
    "evaluate_episodes",
    "RewardStrip",
    "write_episode_video",
    "latest_checkpoint",
    "capture_rng_state",
    "restore_rng_state",
    "complete_deferred_rewards",
    "EPISODES_CSV_COLUMNS",
    "GOAL_CSV_COLUMNS",
    "goal_type_of",
    "goal_text_of",
]

_log = logging.getLogger("vlmreward.rl")

EPISODES_CSV_COLUMNS = ("timesteps", "env_index", "length", "vlm_return", "gt_return", "success")
GOAL_CSV_COLUMNS = ("goal_type", "goal")
"""Extra ``episodes.csv`` columns of goal-conditioned runs: the episode's goal type and sentence."""
LATEST = "latest.json"
MODEL_FILE = "model.zip"
REPLAY_BUFFER_FILE = "replay_buffer.pkl"
VEC_NORMALIZE_FILE = "vecnormalize.pkl"
STATE_FILE = "state.pkl"


class CheckpointError(VLMRewardError, OSError):
    """A run directory without a usable checkpoint (none written yet, or files missing)."""


# ---------------------------------------------------------------------------------------------
# logging of VLM and ground-truth returns


def _mean(values: deque[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def goal_type_of(goal: Any) -> str | None:
    """The type of a goal reported in ``info["goal"]`` (its ``type`` attribute), or None."""
    value = getattr(goal, "type", None)
    return None if value is None else str(value)


def goal_text_of(goal: Any) -> str | None:
    """The sentence of a goal reported in ``info["goal"]`` (its ``sentence``, else ``str``), or None."""
    if goal is None:
        return None
    sentence = getattr(goal, "sentence", None)
    return str(sentence if sentence is not None else goal)


class EpisodeLogCallback(BaseCallback):
    """Log the VLM return next to the ground-truth return and success of finished episodes.

    Each step (cheap: a deque pop), the episodes that the training environment's
    :class:`~vlmreward.envs.vector.VLMRewardVecEnvWrapper` finished (and, with deferred scoring,
    scored) since the last step are appended to ``episodes_csv``
    (:data:`EPISODES_CSV_COLUMNS`; ``timesteps`` is the step count when the episode was logged,
    which lags its end by up to one scoring batch with deferred scoring; ``success`` is empty when
    the environment reports none). Means over the last ``stats_window`` episodes are recorded as
    ``rollout/vlm_return`` (undiscounted sum of the unweighted VLM reward), ``rollout/gt_return``
    (the environment's own reward), ``rollout/episode_length`` and ``rollout/success_rate`` (only
    once an episode reported ``info["is_success"]``). Episodes of goal-conditioned environments
    (``info["goal"]`` with a ``type``) are also averaged per goal type, over the last
    ``stats_window`` episodes of that type: ``rollout/success_rate/<type>``,
    ``rollout/vlm_return/<type>``; with ``goal_columns`` the CSV gains :data:`GOAL_CSV_COLUMNS`.

    Raises:
        VLMRewardError: (at training start) the training environment has no VLM reward wrapper.
    """

    def __init__(self, episodes_csv: str | os.PathLike, stats_window: int = 100, goal_columns: bool = False) -> None:
        super().__init__()
        self.episodes_csv = Path(episodes_csv)
        self.stats_window = int(stats_window)
        self.goal_columns = bool(goal_columns)
        self.vlm: deque[float] = deque(maxlen=stats_window)
        self.gt: deque[float] = deque(maxlen=stats_window)
        self.length: deque[float] = deque(maxlen=stats_window)
        self.success: deque[float] = deque(maxlen=stats_window)
        self.by_goal_type: dict[str, dict[str, deque[float]]] = {}
        self._file: Any = None
        self._writer: Any = None
        self._means: dict[str, float] = {}

    def _init_callback(self) -> None:
        self._wrapper = find_vlm_wrapper(self.training_env)
        if self._wrapper is None:
            raise VLMRewardError(
                "EpisodeLogCallback needs a training environment wrapped in VLMRewardVecEnvWrapper; "
                "build it with vlmreward.envs.make_vlm_vec_env."
            )
        new = not self.episodes_csv.exists() or self.episodes_csv.stat().st_size == 0
        self._file = open(self.episodes_csv, "a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        if new:
            self._writer.writerow(EPISODES_CSV_COLUMNS + (GOAL_CSV_COLUMNS if self.goal_columns else ()))
            self._file.flush()

    def _drain(self) -> None:
        records: list[EpisodeRecord] = self._wrapper.pop_episodes()
        if records:
            for r in records:
                goal = getattr(r, "goal", None)
                goal_type = goal_type_of(goal)
                row = (self.num_timesteps, r.env_index, r.length, f"{r.vlm_return:.6g}", f"{r.gt_return:.6g}",
                       "" if r.success is None else int(bool(r.success)))
                if self.goal_columns:
                    row += (goal_type or "", goal_text_of(goal) or "")
                self._writer.writerow(row)
                self.vlm.append(r.vlm_return)
                self.gt.append(r.gt_return)
                self.length.append(r.length)
                if r.success is not None:
                    self.success.append(float(bool(r.success)))
                if goal_type is not None:
                    stats = self.by_goal_type.setdefault(
                        goal_type, {"vlm": deque(maxlen=self.stats_window), "success": deque(maxlen=self.stats_window)}
                    )
                    stats["vlm"].append(r.vlm_return)
                    if r.success is not None:
                        stats["success"].append(float(bool(r.success)))
            self._file.flush()
            self._means = {
                "rollout/vlm_return": _mean(self.vlm),
                "rollout/gt_return": _mean(self.gt),
                "rollout/episode_length": _mean(self.length),
            }
            if self.success:
                self._means["rollout/success_rate"] = _mean(self.success)
            for goal_type, stats in sorted(self.by_goal_type.items()):
                self._means[f"rollout/vlm_return/{goal_type}"] = _mean(stats["vlm"])
                if stats["success"]:
                    self._means[f"rollout/success_rate/{goal_type}"] = _mean(stats["success"])
        for key, value in self._means.items():
            self.logger.record(key, value)

    def _on_step(self) -> bool:
        self._drain()
        return True

    def _on_rollout_end(self) -> None:
        self._drain()  # deferred PPO: the rollout's episodes are scored just before this

    def _on_training_end(self) -> None:
        self._drain()
        self.close()

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()


class StopAtTotalSteps(BaseCallback):
    """End an off-policy run at exactly ``total_steps`` environment steps.

    SB3's off-policy loop collects ``train_freq`` steps at a time, overshooting ``total_timesteps``
    when the remaining steps are not a multiple of it (after a resume, say). This stops the
    rollout once ``num_timesteps ≥ total_steps``, unless the rollout ends at that step anyway (then
    SB3 stores the transition and trains on it as usual).
    """

    def __init__(self, total_steps: int) -> None:
        super().__init__()
        self.total_steps = int(total_steps)

    def _on_step(self) -> bool:
        if self.num_timesteps < self.total_steps:
            return True
        train_freq = self.locals.get("train_freq")
        collected = self.locals.get("num_collected_steps")
        ends_here = (
            train_freq is not None
            and train_freq.unit == TrainFrequencyUnit.STEP
            and collected is not None
            and collected >= train_freq.frequency
        )
        return bool(ends_here)


# ---------------------------------------------------------------------------------------------
# checkpoints


def capture_rng_state(model: BaseAlgorithm | None = None) -> dict[str, Any]:
    """The random states a run depends on: Python ``random``, NumPy's global, PyTorch (CPU and
    CUDA), and the model's action space (DQN's ε-greedy and warm-up actions)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "torch_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "action_space": None,
    }
    if model is not None and getattr(model, "action_space", None) is not None:
        state["action_space"] = model.action_space.np_random.bit_generator.state
    return state


def restore_rng_state(state: dict[str, Any], model: BaseAlgorithm | None = None) -> None:
    """Put back what :func:`capture_rng_state` captured (CUDA states only where the devices match)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    cuda = state.get("torch_cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    if model is not None and state.get("action_space") is not None:
        model.action_space.np_random.bit_generator.state = state["action_space"]


def complete_deferred_rewards(model: BaseAlgorithm, drop_unscorable: bool = False) -> bool:
    """Write the VLM rewards of every stored transition into ``model``'s deferred replay buffer.

    A no-op returning True for any other buffer; see :meth:`DeferredReplayBuffer.complete`.
    """
    buffer = getattr(model, "replay_buffer", None)
    if not isinstance(buffer, (DeferredReplayBuffer, DeferredDictReplayBuffer)):
        return True
    return buffer.complete(drop_unscorable=drop_unscorable)


@dataclass(frozen=True)
class CheckpointInfo:
    """A checkpoint on disk, as ``checkpoints/latest.json`` describes it.

    Attributes:
        path: the checkpoint directory (``RUN_DIR/checkpoints/step_<N>``).
        num_timesteps: environment steps the saved model has taken.
        reason: ``"periodic"``, ``"interrupt"``, ``"error"`` or ``"final"``.
        algorithm: ``"PPO"``, ``"SAC"`` or ``"DQN"``.
    """

    path: Path
    num_timesteps: int
    reason: str
    algorithm: str

    @property
    def model(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def replay_buffer(self) -> Path | None:
        p = self.path / REPLAY_BUFFER_FILE
        return p if p.is_file() else None

    @property
    def vec_normalize(self) -> Path | None:
        p = self.path / VEC_NORMALIZE_FILE
        return p if p.is_file() else None

    def load_state(self) -> dict[str, Any]:
        """The step count and RNG states saved with the model (``state.pkl``)."""
        with open(self.path / STATE_FILE, "rb") as f:
            return pickle.load(f)


def latest_checkpoint(run_dir: str | os.PathLike) -> CheckpointInfo:
    """The checkpoint ``RUN_DIR/checkpoints/latest.json`` points to.

    Raises:
        CheckpointError: no checkpoint yet, or its files are missing.
    """
    directory = Path(run_dir) / "checkpoints"
    pointer = directory / LATEST
    if not pointer.is_file():
        raise CheckpointError(
            f"{str(run_dir)!r} has no checkpoint ({pointer} is missing); the run stopped before its first "
            "checkpoint, so start it again with `vlmreward train CONFIG`."
        )
    try:
        data = json.loads(pointer.read_text(encoding="utf-8"))
        info = CheckpointInfo(directory / data["checkpoint"], int(data["num_timesteps"]), data["reason"], data["algorithm"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{pointer} is unreadable ({err}); point it at a checkpoint directory or start again.") from err
    missing = [p.name for p in (info.model, info.path / STATE_FILE) if not p.is_file()]
    if missing:
        raise CheckpointError(f"checkpoint {info.path} lacks {', '.join(missing)}; it cannot be resumed.")
    return info


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class Checkpointer:
    """Writes consistent checkpoints of one run into ``RUN_DIR/checkpoints``.

    A checkpoint is a directory ``step_<N>`` holding ``model.zip`` (SB3 ``model.save``: policy,
    optimiser, step and episode counters), ``replay_buffer.pkl`` (off-policy; every deferred
    reward written in first, so no placeholder is saved), ``vecnormalize.pkl`` (if the
    environment normalises observations) and ``state.pkl`` (step count and RNG states, see
    :func:`capture_rng_state`). It is written into a temporary directory that is renamed into place
    (``os.replace``), then ``latest.json`` is replaced to point at it, so a crash at any moment
    leaves the previous checkpoint intact. Only the ``keep`` newest are kept.

    For an on-policy algorithm interrupted mid-rollout, the partial rollout is lost (it is not
    worth saving) and the checkpoint counts the steps up to the rollout's start, so that a resumed
    run still stops at the same rollout boundary.
    """

    def __init__(self, run_dir: str | os.PathLike, algorithm: str, keep: int | None = 2) -> None:
        self.directory = Path(run_dir) / "checkpoints"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.algorithm = algorithm
        self.keep = keep
        self.rollout_start_timesteps: int | None = None  # set by CheckpointCallback
        self.in_rollout = False
        self.last: CheckpointInfo | None = None

    def save(self, model: BaseAlgorithm, reason: str = "periodic", num_timesteps: int | None = None) -> Path:
        """Write a checkpoint of ``model`` now; returns its directory.

        Args:
            model: the algorithm.
            reason: recorded in ``latest.json``.
            num_timesteps: the step count to record (default ``model.num_timesteps``).

        Raises:
            Exception: whatever scoring the pending deferred rewards or writing raises; the
                previous checkpoint stays the latest.
        """
        complete_deferred_rewards(model)
        return self._write(model, reason, num_timesteps)

    def save_after_interruption(self, model: BaseAlgorithm, reason: str) -> Path | None:
        """Checkpoint after a ``KeyboardInterrupt`` or an exception inside ``learn``.

        Rewards that can no longer be computed (the reward model keeps failing) are dropped with
        their transitions where possible; if they cannot be, no checkpoint is written and the
        previous one stays the latest.

        Returns:
            The checkpoint directory, or None when no consistent checkpoint could be written.
        """
        steps = model.num_timesteps
        if not isinstance(model, OffPolicyAlgorithm) and self.in_rollout and self.rollout_start_timesteps is not None:
            steps = self.rollout_start_timesteps
        if not complete_deferred_rewards(model, drop_unscorable=True):
            _log.warning(
                "the newest transitions of the replay buffer have no VLM reward and could not be dropped; "
                "keeping the previous checkpoint"
            )
            return None
        return self._write(model, reason, steps)

    def _write(self, model: BaseAlgorithm, reason: str, num_timesteps: int | None) -> Path:
        steps = int(model.num_timesteps if num_timesteps is None else num_timesteps)
        for stale in self.directory.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = self.directory / f".tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        saved_steps = model.num_timesteps
        try:
            model.num_timesteps = steps
            model.save(tmp / MODEL_FILE)
        finally:
            model.num_timesteps = saved_steps
        if isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None:
            model.save_replay_buffer(tmp / REPLAY_BUFFER_FILE)
        vec_normalize = model.get_vec_normalize_env()
        if vec_normalize is not None:
            vec_normalize.save(str(tmp / VEC_NORMALIZE_FILE))
        state = {"num_timesteps": steps, "reason": reason, "time": time.time(), "rng": capture_rng_state(model)}
        with open(tmp / STATE_FILE, "wb") as f:
            pickle.dump(state, f)
        name = f"step_{steps:09d}"
        k = 1
        while (self.directory / name).exists():
            name = f"step_{steps:09d}_{k}"
            k += 1
        final = self.directory / name
        os.replace(tmp, final)
        history = self._history()
        history.append(name)
        pointer = {"checkpoint": name, "num_timesteps": steps, "reason": reason, "algorithm": self.algorithm, "history": history}
        _atomic_write_text(self.directory / LATEST, json.dumps(pointer, indent=2) + "\n")
        self.last = CheckpointInfo(final, steps, reason, self.algorithm)
        self._prune(history)
        _log.debug("checkpoint (%s) at %d steps: %s", reason, steps, final)
        return final

    def _history(self) -> list[str]:
        try:
            data = json.loads((self.directory / LATEST).read_text(encoding="utf-8"))
            return [h for h in data.get("history", []) if (self.directory / h).is_dir()]
        except (OSError, ValueError):
            return []

    def _prune(self, history: list[str]) -> None:
        if self.keep is None or len(history) <= self.keep:
            return
        for name in history[: -self.keep]:
            shutil.rmtree(self.directory / name, ignore_errors=True)
        pointer = json.loads((self.directory / LATEST).read_text(encoding="utf-8"))
        pointer["history"] = history[-self.keep :]
        _atomic_write_text(self.directory / LATEST, json.dumps(pointer, indent=2) + "\n")


class CheckpointCallback(BaseCallback):
    """Checkpoint every ``every`` environment steps, at the start of a rollout.

    The start of a rollout is the one point where everything agrees for both algorithm
    families: the previous rollout has been stored and trained on, and (off-policy) every step
    the environment took is in the replay buffer. Checkpoints therefore fall on the first rollout
    boundary at or after each multiple of ``every``.
    """

    def __init__(self, checkpointer: Checkpointer, every: int | None) -> None:
        super().__init__()
        self.checkpointer = checkpointer
        self.every = every
        self._next: int | None = None

    def _init_callback(self) -> None:
        if self.every is not None:
            self._next = (self.model.num_timesteps // self.every + 1) * self.every

    def _on_rollout_start(self) -> None:
        self.checkpointer.rollout_start_timesteps = self.model.num_timesteps
        self.checkpointer.in_rollout = True
        if self._next is not None and self.model.num_timesteps >= self._next:
            self.checkpointer.save(self.model, "periodic")
            self._next = (self.model.num_timesteps // self.every + 1) * self.every  # type: ignore[operator]

    def _on_rollout_end(self) -> None:
        self.checkpointer.in_rollout = False

    def _on_step(self) -> bool:
        return True


# ---------------------------------------------------------------------------------------------
# videos


class RewardStrip:
    """A plot of the per-step reward so far, one image per step, for the strip under a video frame.

    Matplotlib (Agg, one reused figure) draws the axes only when the limits change (a value
    leaves the y-range, which then at least doubles, or the episode outruns ``x_max``); the
    curve itself is drawn incrementally with NumPy, so a step costs a copy of the strip.

    Args:
        width, height: strip size in pixels.
        x_max: expected episode length (the x-axis; doubled when exceeded).
        label: y-axis label.
    """

    DPI = 100
    LINE = np.array([31, 119, 180], dtype=np.uint8)
    DOT = np.array([214, 39, 40], dtype=np.uint8)

    def __init__(self, width: int, height: int, x_max: int = 1000, label: str = "VLM reward") -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.width, self.height = int(width), int(height)
        self.figure = Figure(figsize=(self.width / self.DPI, self.height / self.DPI), dpi=self.DPI)
        FigureCanvasAgg(self.figure)
        self.axes = self.figure.add_subplot(1, 1, 1)
        self.figure.subplots_adjust(left=0.12, right=0.98, top=0.86, bottom=0.28)
        self.label = label
        self.values: list[float] = []
        self.xlim = (0.0, float(max(int(x_max) - 1, 1)))
        self.ylim: tuple[float, float] | None = None
        self._canvas: np.ndarray | None = None
        self._pixels: list[tuple[float, float] | None] = []

    def _fit_limits(self) -> None:
        finite = [v for v in self.values if math.isfinite(v)]
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
        span = max(hi - lo, 1e-3 * max(1.0, abs(hi)))
        if self.ylim is not None:  # grow at least twofold, so redraws stay few (logarithmic in the range)
            span = max(span, 4 * (self.ylim[1] - self.ylim[0]) / 3)  # new y-range = 1.5 span ≥ 2 × old
        middle = (lo + hi) / 2
        self.ylim = (middle - 0.75 * span, middle + 0.75 * span)
        while len(self.values) - 1 > self.xlim[1]:
            self.xlim = (0.0, self.xlim[1] * 2)

    def _redraw(self) -> None:
        ax = self.axes
        ax.clear()
        ax.set_xlim(*self.xlim)
        ax.set_ylim(*self.ylim)  # type: ignore[misc]
        ax.set_xlabel("step", fontsize=7, labelpad=1)
        ax.set_title(self.label, fontsize=8, pad=2)
        ax.tick_params(labelsize=6, pad=1)
        ax.grid(alpha=0.3)
        self.figure.canvas.draw()
        self._background = np.asarray(self.figure.canvas.buffer_rgba())[..., :3].copy()
        self._canvas = self._background.copy()
        self._pixels = [self._to_pixel(t, v) for t, v in enumerate(self.values)]
        for t in range(1, len(self._pixels)):
            self._segment(self._pixels[t - 1], self._pixels[t])

    def _to_pixel(self, t: int, v: float) -> tuple[float, float] | None:
        if not math.isfinite(v):
            return None
        x, y = self.axes.transData.transform((t, v))
        return float(x), float(self.height - y)

    def _segment(self, a: tuple[float, float] | None, b: tuple[float, float] | None) -> None:
        if b is None:
            return
        a = b if a is None else a
        n = int(max(abs(b[0] - a[0]), abs(b[1] - a[1]))) + 2
        xs = np.rint(np.linspace(a[0], b[0], n)).astype(int)
        ys = np.rint(np.linspace(a[1], b[1], n)).astype(int)
        for dy in (0, 1):
            for dx in (0, 1):
                self._canvas[np.clip(ys + dy, 0, self.height - 1), np.clip(xs + dx, 0, self.width - 1)] = self.LINE  # type: ignore[index]

    def push(self, value: float) -> np.ndarray:
        """Add the next step's reward; returns the strip ``uint8 [height, width, 3]``."""
        value = float(value)
        self.values.append(value)
        t = len(self.values) - 1
        outside = math.isfinite(value) and self.ylim is not None and not self.ylim[0] <= value <= self.ylim[1]
        if self._canvas is None or outside or t > self.xlim[1]:
            self._fit_limits()
            self._redraw()
        else:
            self._pixels.append(self._to_pixel(t, value))
            if t > 0:
                self._segment(self._pixels[t - 1], self._pixels[t])
        image = self._canvas.copy()  # type: ignore[union-attr]
        point = self._pixels[-1]
        if point is not None:
            x, y = int(round(point[0])), int(round(point[1]))
            image[max(y - 3, 0) : y + 4, max(x - 3, 0) : x + 4] = self.DOT
        return image


def _compose(frame: np.ndarray, strip: np.ndarray, scale: int) -> np.ndarray:
    """Frame above strip, padded with white to multiples of 16 pixels (what video codecs want)."""
    if scale > 1:
        frame = np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)
    h, w = frame.shape[0] + strip.shape[0], max(frame.shape[1], strip.shape[1])
    out = np.full((-(-h // 16) * 16, -(-w // 16) * 16, 3), 255, dtype=np.uint8)
    out[: frame.shape[0], : frame.shape[1]] = frame
    out[frame.shape[0] : h, : strip.shape[1]] = strip
    return out


class _EpisodeVideo:
    """Streams an episode into an mp4: rendered frames on top, the reward so far underneath."""

    MIN_WIDTH = 448

    def __init__(self, path: Path, fps: float, x_max: int, label: str) -> None:
        import imageio.v2 as imageio

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.stem}.{uuid.uuid4().hex[:8]}.tmp{self.path.suffix}")
        self._writer = imageio.get_writer(
            self._tmp, fps=fps, codec="libx264", quality=7, macro_block_size=16, ffmpeg_log_level="error"
        )
        self._x_max = x_max
        self._label = label
        self._strip: RewardStrip | None = None
        self._scale = 1

    def add(self, frame: np.ndarray, reward: float) -> None:
        if self._strip is None:
            self._scale = max(1, math.ceil(self.MIN_WIDTH / frame.shape[1]))
            width = frame.shape[1] * self._scale
            self._strip = RewardStrip(width, max(120, round(width * 0.28)), self._x_max, self._label)
        self._writer.append_data(_compose(frame, self._strip.push(reward), self._scale))

    def close(self) -> Path:
        self._writer.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self._tmp.unlink(missing_ok=True)


def write_episode_video(path: str | os.PathLike, frames: list[np.ndarray], rewards: list[float], fps: float = 30) -> Path:
    """Write ``frames`` (``uint8 [H, W, 3]`` each) with a strip plotting ``rewards[:t+1]`` under frame ``t``.

    Returns:
        ``path`` (an ``.mp4``, H.264, sides padded to multiples of 16 pixels).
    """
    video = _EpisodeVideo(Path(path), fps, len(frames), "VLM reward")
    try:
        for frame, reward in zip(frames, rewards):
            video.add(frame, reward)
    except BaseException:
        video.abort()
        raise
    return video.close()


# ---------------------------------------------------------------------------------------------
# evaluation


PAPER_SUCCESS_MIN_FRACTION = 0.5
"""VLM-RM's success rule: the goal held in at least half of an episode's steps (paper, section 4.4)."""


@dataclass
class EvaluationResult:
    """Returns of evaluation episodes.

    Attributes:
        gt_returns: undiscounted ground-truth (environment) return of each episode.
        vlm_returns: undiscounted sum of the (unweighted) VLM reward of each episode.
        lengths: steps per episode.
        successes: ``info["is_success"]`` at each episode's end (None where not reported).
        success_fractions: the fraction of each episode's steps whose ``info["is_success"]`` was
            true (None where not reported): VLM-RM's rule (appendix C.2, Table 1) counts an
            episode as a success when the goal held in at least
            :data:`PAPER_SUCCESS_MIN_FRACTION` (50 %) of its steps.
        video: the video of the first episode, if one was written.
        goals: the goal sentence of each episode (goal-conditioned environments; else None).
        goal_types: the goal type of each episode (else None).
    """

    gt_returns: list[float] = field(default_factory=list)
    vlm_returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    successes: list[Optional[bool]] = field(default_factory=list)
    success_fractions: list[Optional[float]] = field(default_factory=list)
    video: Optional[Path] = None
    goals: list[Optional[str]] = field(default_factory=list)
    goal_types: list[Optional[str]] = field(default_factory=list)

    @property
    def mean_gt_return(self) -> float:
        return float(np.mean(self.gt_returns)) if self.gt_returns else float("nan")

    @property
    def std_gt_return(self) -> float:
        return float(np.std(self.gt_returns)) if self.gt_returns else float("nan")

    @property
    def mean_vlm_return(self) -> float:
        return float(np.mean(self.vlm_returns)) if self.vlm_returns else float("nan")

    @property
    def success_rate(self) -> float | None:
        """Fraction of successful episodes among those that report success; None if none does."""
        known = [s for s in self.successes if s is not None]
        return float(np.mean(known)) if known else None

    @property
    def success_rate_held(self) -> float | None:
        """Success rate by the VLM-RM paper's rule: episodes whose goal held in at least
        :data:`PAPER_SUCCESS_MIN_FRACTION` of their steps; None if no episode reports success."""
        known = [f for f in self.success_fractions if f is not None]
        return float(np.mean([f >= PAPER_SUCCESS_MIN_FRACTION for f in known])) if known else None

    @property
    def mean_length(self) -> float:
        return float(np.mean(self.lengths)) if self.lengths else float("nan")

    @property
    def success_rate_by_goal_type(self) -> dict[str, float]:
        """Success rate per goal type, over the episodes of that type that report success."""
        out: dict[str, list[float]] = {}
        for goal_type, success in zip(self.goal_types, self.successes):
            if goal_type is not None and success is not None:
                out.setdefault(goal_type, []).append(float(success))
        return {k: float(np.mean(v)) for k, v in sorted(out.items())}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["video"] = None if self.video is None else str(self.video)
        if not any(t is not None for t in self.goal_types):
            data.pop("goals")
            data.pop("goal_types")
        else:
            data["success_rate_by_goal_type"] = self.success_rate_by_goal_type
        data.update(
            episodes=len(self.gt_returns),
            mean_gt_return=self.mean_gt_return,
            std_gt_return=self.std_gt_return,
            mean_vlm_return=self.mean_vlm_return,
            std_vlm_return=float(np.std(self.vlm_returns)) if self.vlm_returns else float("nan"),
            success_rate=self.success_rate,
            success_rate_held=self.success_rate_held,
            mean_length=self.mean_length,
        )
        return data


def evaluate_episodes(
    model: BaseAlgorithm,
    env: gym.Env,
    episodes: int,
    *,
    deterministic: bool = True,
    video_path: str | os.PathLike | None = None,
    vec_normalize: VecNormalize | None = None,
    seed: int | None = None,
) -> EvaluationResult:
    """Roll out ``model``'s policy for ``episodes`` episodes on one environment.

    Args:
        model: a trained SB3 algorithm.
        env: one environment, ``render_mode="rgb_array"``, normally wrapped in
            :class:`~vlmreward.envs.wrappers.VLMRewardWrapper` (which puts ``"gt_reward"`` and
            ``"vlm_reward"`` into the infos; without it the step reward is the ground truth and the
            VLM return is 0).
        episodes: number of episodes.
        deterministic: the policy's mode action instead of a sample.
        video_path: write the first episode to this ``.mp4`` (:func:`write_episode_video`'s layout).
        vec_normalize: the training environment's ``VecNormalize``, to normalise observations alike.
        seed: seed of the first ``reset`` (the later episodes continue its random stream).

    Returns:
        :class:`EvaluationResult`.
    """
    result = EvaluationResult()
    spec_steps = env.spec.max_episode_steps if env.spec is not None else None
    fps = float(env.metadata.get("render_fps") or 30)
    for episode in range(episodes):
        obs, info = env.reset(seed=seed if episode == 0 else None)
        video = _EpisodeVideo(Path(video_path), fps, spec_steps or 1000, "VLM reward") if video_path and episode == 0 else None
        gt = vlm = 0.0
        length = successes = 0
        reports_success = False
        done = False
        try:
            while not done:
                policy_obs = vec_normalize.normalize_obs(obs) if vec_normalize is not None else obs
                action, _ = model.predict(policy_obs, deterministic=deterministic)
                obs, reward, terminated, truncated, info = env.step(action)
                gt += float(info.get("gt_reward", reward))
                step_vlm = float(info.get("vlm_reward", 0.0))
                vlm += step_vlm
                length += 1
                if info.get("is_success") is not None:
                    reports_success = True
                    successes += bool(info["is_success"])
                done = bool(terminated or truncated)
                if video is not None:
                    video.add(env.render(), step_vlm)
        except BaseException:
            if video is not None:
                video.abort()
            raise
        if video is not None:
            result.video = video.close()
        result.gt_returns.append(gt)
        result.vlm_returns.append(vlm)
        result.lengths.append(length)
        success = info.get("is_success")
        result.successes.append(None if success is None else bool(success))
        result.success_fractions.append(successes / length if reports_success and length else None)
        goal = info.get("goal")
        result.goals.append(goal_text_of(goal))
        result.goal_types.append(goal_type_of(goal) or info.get("goal_type"))
    return result


class EvalCallback(BaseCallback):
    """Evaluate the deterministic policy every ``every`` steps, and at the end, on a separate environment.

    Records ``eval/gt_return`` (mean), ``eval/gt_return_std``, ``eval/vlm_return``,
    ``eval/episode_length`` and ``eval/success_rate`` (where reported; per goal type
    ``eval/success_rate/<type>``), dumps the logger, and, with ``video_dir``, writes
    ``video_dir/eval_<timesteps>.mp4`` of the first episode. ``prefix`` replaces ``eval``
    (``eval_held_out`` for the held-out goals of a goal-conditioned run).

    Args:
        make_env: builds the evaluation environment (called once, at the first evaluation).
        every: steps between evaluations.
        episodes: episodes per evaluation.
        video_dir: where videos go (None: no video).
        seed: seed of each evaluation's first reset (every evaluation sees the same episodes).
        prefix: the logger's key prefix.
    """

    def __init__(
        self,
        make_env: Callable[[], gym.Env],
        every: int,
        episodes: int,
        video_dir: str | os.PathLike | None = None,
        seed: int | None = None,
        prefix: str = "eval",
    ) -> None:
        super().__init__()
        self.prefix = prefix
        self.make_env = make_env
        self.every = int(every)
        self.episodes = int(episodes)
        self.video_dir = None if video_dir is None else Path(video_dir)
        self.seed = seed
        self.env: gym.Env | None = None
        self.results: list[tuple[int, EvaluationResult]] = []
        self._next = 0

    def _init_callback(self) -> None:
        self._next = (self.model.num_timesteps // self.every + 1) * self.every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next = (self.num_timesteps // self.every + 1) * self.every
            self.evaluate()
        return True

    def evaluate(self) -> EvaluationResult:
        """Run one evaluation now and record it."""
        if self.env is None:
            self.env = self.make_env()
        video = None if self.video_dir is None else self.video_dir / f"eval_{self.num_timesteps}.mp4"
        result = evaluate_episodes(
            self.model, self.env, self.episodes, deterministic=True, video_path=video,
            vec_normalize=self.model.get_vec_normalize_env(), seed=self.seed,
        )
        self.results.append((self.num_timesteps, result))
        p = self.prefix
        self.logger.record(f"{p}/gt_return", result.mean_gt_return)
        self.logger.record(f"{p}/gt_return_std", result.std_gt_return)
        self.logger.record(f"{p}/vlm_return", result.mean_vlm_return)
        self.logger.record(f"{p}/episode_length", result.mean_length)
        if result.success_rate is not None:
            self.logger.record(f"{p}/success_rate", result.success_rate)
        for goal_type, rate in result.success_rate_by_goal_type.items():
            self.logger.record(f"{p}/success_rate/{goal_type}", rate)
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(self.num_timesteps)
        return result

    def _on_training_end(self) -> None:
        if not self.results or self.results[-1][0] != self.num_timesteps:
            self.evaluate()  # every finished run ends with an evaluation (and its video)
        self.close()

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None
