"""Checkpoints of a training run: consistent, atomically written, resumable exactly.

A checkpoint holds the policy and optimiser (SB3's ``model.zip``), the replay buffer (off-policy;
every deferred reward written in first), ``VecNormalize`` statistics, the step count and the
random states (:func:`capture_rng_state`). :class:`Checkpointer` writes them;
:func:`latest_checkpoint` finds the newest complete one. Pickles are SB3's format for buffers and
statistics (the replay buffer is an ``.npz``): a run directory is code, load only your own.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import random
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from vlmreward._paths import atomic_write_text
from vlmreward.errors import VLMRewardError
from vlmreward.rl.deferred import DeferredDictReplayBuffer, DeferredReplayBuffer
from vlmreward.rl.replay_storage import load_replay_buffer, save_replay_buffer

__all__ = [
    "CheckpointError",
    "CheckpointInfo",
    "Checkpointer",
    "latest_checkpoint",
    "capture_rng_state",
    "restore_rng_state",
    "complete_deferred_rewards",
    "LATEST",
    "MODEL_FILE",
    "REPLAY_BUFFER_FILE",
    "LEGACY_REPLAY_BUFFER_FILE",
    "VEC_NORMALIZE_FILE",
    "STATE_FILE",
]

_log = logging.getLogger("vlmreward.rl")

LATEST = "latest.json"
MODEL_FILE = "model.zip"
REPLAY_BUFFER_FILE = "replay_buffer.npz"
LEGACY_REPLAY_BUFFER_FILE = "replay_buffer.pkl"  # SB3's pickle, written by earlier checkpoints (still resumed)
VEC_NORMALIZE_FILE = "vecnormalize.pkl"
STATE_FILE = "state.pkl"


class CheckpointError(VLMRewardError, OSError):
    """A run directory without a usable checkpoint (none written yet, or files missing)."""



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
        """``replay_buffer.npz`` (or an older checkpoint's ``replay_buffer.pkl``), None if absent."""
        for name in (REPLAY_BUFFER_FILE, LEGACY_REPLAY_BUFFER_FILE):
            p = self.path / name
            if p.is_file():
                return p
        return None

    def load_replay_buffer(self, model: OffPolicyAlgorithm) -> bool:
        """Fill ``model``'s replay buffer from this checkpoint; False when it holds none.

        Raises:
            ReplayStorageError: the file is damaged or of another configuration.
        """
        path = self.replay_buffer
        if path is None:
            return False
        if path.suffix == ".npz":
            load_replay_buffer(model.replay_buffer, path)
        else:
            model.load_replay_buffer(path)  # a pickle (SB3's format): it can run code
        return True

    @property
    def vec_normalize(self) -> Path | None:
        p = self.path / VEC_NORMALIZE_FILE
        return p if p.is_file() else None

    def load_state(self) -> dict[str, Any]:
        """The step count and RNG states saved with the model (``state.pkl``, a pickle: it can run
        code, so load only run directories you trust).

        Raises:
            CheckpointError: the file is missing, truncated, not a pickle, or not a state
                (a dict with ``num_timesteps`` and ``rng``).
        """
        path = self.path / STATE_FILE
        try:
            with open(path, "rb") as f:
                state = pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, IndexError, TypeError, ValueError) as err:
            raise CheckpointError(
                f"{path} cannot be read ({type(err).__name__}: {err}); the checkpoint is damaged: delete "
                f"{self.path} and point {self.path.parent / LATEST} at an earlier checkpoint, or start the run again."
            ) from err
        if not (isinstance(state, dict) and isinstance(state.get("num_timesteps"), int) and "rng" in state):
            raise CheckpointError(
                f"{path} is not a vlmreward checkpoint state (a dict with num_timesteps and rng); it was replaced or "
                "damaged: start the run again or restore the file."
            )
        return state


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


class Checkpointer:
    """Writes consistent checkpoints of one run into ``RUN_DIR/checkpoints``.

    A checkpoint is a directory ``step_<N>`` holding ``model.zip`` (SB3 ``model.save``: policy,
    optimiser, step and episode counters), ``replay_buffer.npz`` (off-policy; every deferred
    reward written in first, so no placeholder is saved; the filled rows only, next observations
    deduplicated, see :mod:`vlmreward.rl.replay_storage`), ``vecnormalize.pkl`` (if the
    environment normalises observations) and ``state.pkl`` (step count and RNG states, see
    :func:`capture_rng_state`). It is written into a temporary directory that is renamed into place
    (``os.replace``), then ``latest.json`` is replaced to point at it, so a crash at any moment
    leaves the previous checkpoint intact. Only the ``keep`` newest are kept. With
    ``replay_buffer=False`` the replay buffer is left out (it takes about one observation, one
    action and 7 bytes per stored transition, see :mod:`vlmreward.rl.replay_storage`); a run
    resumed from such a checkpoint refills it from empty, so it is not identical to an
    uninterrupted one.

    For an on-policy algorithm interrupted mid-rollout, the partial rollout is lost (it is not
    worth saving) and the checkpoint counts the steps up to the rollout's start, so that a resumed
    run still stops at the same rollout boundary.

    ``before_write`` (optional) is called with the checkpoint's step count once the deferred
    rewards are in and before anything is written: the trainer writes the episodes finished up to
    that step into ``episodes.csv`` (:meth:`~vlmreward.rl.callbacks.EpisodeLogCallback.write_finished`).
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        algorithm: str,
        keep: int | None = 2,
        replay_buffer: bool = True,
        before_write: Callable[[int], Any] | None = None,
    ) -> None:
        self.before_write = before_write
        self.directory = Path(run_dir) / "checkpoints"
        self.replay_buffer = bool(replay_buffer)
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
        if self.before_write is not None:
            self.before_write(steps)
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
        if self.replay_buffer and isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None:
            save_replay_buffer(model.replay_buffer, tmp / REPLAY_BUFFER_FILE)
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
        atomic_write_text(self.directory / LATEST, json.dumps(pointer, indent=2) + "\n")
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
        atomic_write_text(self.directory / LATEST, json.dumps(pointer, indent=2) + "\n")

