"""Checkpoints of a training run: consistent, atomically written, verified, resumable exactly.

A checkpoint holds the policy and optimiser (SB3's ``model.zip``), the replay buffer (off-policy;
every deferred reward written in first), ``VecNormalize`` statistics, the step count and the
random states (:func:`capture_rng_state`), and last a ``manifest.json`` with the size and SHA-256
of every other file. :class:`Checkpointer` writes them; :func:`latest_checkpoint` finds the newest
intact one: a checkpoint whose files do not match its manifest (a disk error, a copy cut short, a
file replaced) is named in a warning and skipped, and nothing is loaded from it. Besides SB3's
model archive nothing is a pickle: the replay buffer is an ``.npz``, the state and statistics are
JSON and ``.npz`` (:mod:`vlmreward.rl.run_state`). Checkpoints of earlier versions (``state.pkl``,
``vecnormalize.pkl``, ``replay_buffer.pkl``, no manifest) still resume, their pickles only with
``trust=True`` (``vlmreward train --resume RUN --trust-run-dir``).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from vlmreward._paths import atomic_write_text
from vlmreward.errors import VLMRewardError
from vlmreward.rewards.base import is_learned
from vlmreward.rl.deferred import DeferredDictReplayBuffer, DeferredReplayBuffer
from vlmreward.rl.manifest import MANIFEST_FILE, clean_interrupted_writes, verify_files, write_manifest
from vlmreward.rl.replay_storage import load_replay_buffer, save_replay_buffer
from vlmreward.rl.run_state import (
    RNG_ARRAYS,
    STATE_JSON,
    RunStateError,
    capture_rng_state,
    load_state,
    load_vec_normalize,
    restore_rng_state,
    save_state,
    save_vec_normalize,
)

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
    "MANIFEST_FILE",
    "LEGACY_STATE_FILE",
    "LEGACY_VEC_NORMALIZE_FILE",
    "verify_checkpoint",
    "clean_interrupted_writes",
]

_log = logging.getLogger("vlmreward.rl")

LATEST = "latest.json"
MODEL_FILE = "model.zip"
REPLAY_BUFFER_FILE = "replay_buffer.npz"
LEGACY_REPLAY_BUFFER_FILE = "replay_buffer.pkl"  # SB3's pickle, written by earlier checkpoints (still resumed)
VEC_NORMALIZE_FILE = "vecnormalize.npz"
LEGACY_VEC_NORMALIZE_FILE = "vecnormalize.pkl"  # SB3's pickle, written by earlier checkpoints
STATE_FILE = STATE_JSON  # step count and scalar random states; the arrays in rng.npz
LEGACY_STATE_FILE = "state.pkl"  # a pickle, written by earlier checkpoints
_TRUST_HINT = "pass --trust-run-dir (trust=True) if you made this run directory yourself"


def _pickle_refused(path: Path) -> "CheckpointError":
    return CheckpointError(f"{path} is a pickle (written by an earlier vlmreward), which can run code; {_TRUST_HINT}.")


class CheckpointError(VLMRewardError, OSError):
    """A run directory without a usable checkpoint (none written yet, or files missing)."""



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

    def _first_file(self, *names: str) -> Path | None:
        return next((self.path / name for name in names if (self.path / name).is_file()), None)

    @property
    def replay_buffer(self) -> Path | None:
        """``replay_buffer.npz`` (or an older checkpoint's ``replay_buffer.pkl``), None if absent."""
        return self._first_file(REPLAY_BUFFER_FILE, LEGACY_REPLAY_BUFFER_FILE)

    def load_replay_buffer(self, model: OffPolicyAlgorithm, trust: bool = False) -> bool:
        """Fill ``model``'s replay buffer from this checkpoint; False when it holds none.

        Raises:
            ReplayStorageError: the file is damaged or of another configuration.
            CheckpointError: an older checkpoint's pickle, without ``trust``.
        """
        path = self.replay_buffer
        if path is None:
            return False
        if path.suffix == ".npz":
            load_replay_buffer(model.replay_buffer, path)
        elif trust:
            model.load_replay_buffer(path)  # a pickle (SB3's format): it can run code
        else:
            raise _pickle_refused(path)
        return True

    @property
    def vec_normalize(self) -> Path | None:
        """``vecnormalize.npz`` (or an older checkpoint's ``vecnormalize.pkl``), None if absent."""
        return self._first_file(VEC_NORMALIZE_FILE, LEGACY_VEC_NORMALIZE_FILE)

    def load_vec_normalize(self, venv: Any, trust: bool = False) -> Any:
        """``VecNormalize`` around ``venv`` with this checkpoint's statistics (None if it has none).

        Raises:
            CheckpointError: the file is damaged, or is an older checkpoint's pickle and not ``trust``.
        """
        path = self.vec_normalize
        if path is None:
            return None
        if path.suffix == ".npz":
            try:
                return load_vec_normalize(path, venv)
            except RunStateError as err:
                raise CheckpointError(f"{err}; the checkpoint {self.path} is damaged.") from err
        if not trust:
            raise _pickle_refused(path)
        from stable_baselines3.common.vec_env import VecNormalize

        return VecNormalize.load(str(path), venv)

    def load_state(self, trust: bool = False) -> dict[str, Any]:
        """The step count and RNG states saved with the model: ``state.json`` + ``rng.npz``, or an
        older checkpoint's ``state.pkl`` (a pickle: loaded only with ``trust``).

        Raises:
            CheckpointError: the files are missing, truncated or not a state (a dict with
                ``num_timesteps`` and ``rng``), or a pickle without ``trust``.
        """
        if (self.path / STATE_FILE).is_file():
            try:
                return load_state(self.path)
            except RunStateError as err:
                raise CheckpointError(f"{err}; the checkpoint {self.path} is damaged: {_DAMAGED_HINT}") from err
        path = self.path / LEGACY_STATE_FILE
        if path.is_file() and not trust:
            raise _pickle_refused(path)
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


_DAMAGED_HINT = "resume falls back to the newest intact checkpoint; delete this one or start the run again"


def verify_checkpoint(path: str | os.PathLike) -> str | None:
    """What is wrong with a checkpoint directory, or None when it is intact.

    Intact: ``manifest.json`` lists every file with its size and SHA-256 and the files have them
    (:func:`vlmreward.rl.manifest.verify_files`), and the model and state are among them. A
    checkpoint of an earlier version (no manifest) is intact when its model and state files exist.
    """
    path = Path(path)
    if not (path / MANIFEST_FILE).is_file():
        has_state = (path / STATE_FILE).is_file() or (path / LEGACY_STATE_FILE).is_file()
        if (path / MODEL_FILE).is_file() and has_state and not (path / RNG_ARRAYS).exists():
            return None  # written before manifests existed
        return f"{MANIFEST_FILE} is missing"
    return verify_files(path, required=(MODEL_FILE, STATE_FILE))


def _checkpoint_dirs(directory: Path) -> list[Path]:
    """``step_<N>[_k]`` directories, newest first (highest step, then latest written)."""
    found = []
    for p in directory.glob("step_*"):
        m = re.fullmatch(r"step_(\d+)(?:_(\d+))?", p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), int(m.group(2) or 0), p))
    return [p for *_, p in sorted(found, reverse=True)]


def latest_checkpoint(run_dir: str | os.PathLike) -> CheckpointInfo:
    """The newest intact checkpoint of a run: the ``step_<N>`` directory with the most steps (then
    the latest written) that :func:`verify_checkpoint` finds intact. ``checkpoints/latest.json``
    names it too, except after a process was killed between renaming a finished checkpoint into
    place and updating ``latest.json``: the renamed one is complete (its manifest is written last),
    so it is taken. A warning names each damaged one skipped and what is wrong with it; nothing is
    loaded from a damaged one.

    Raises:
        CheckpointError: no checkpoint yet, or none intact.
    """
    directory = Path(run_dir) / "checkpoints"
    pointer = directory / LATEST
    named: CheckpointInfo | None = None
    try:
        data = json.loads(pointer.read_text(encoding="utf-8"))
        named = CheckpointInfo(directory / data["checkpoint"], int(data["num_timesteps"]), data["reason"], data["algorithm"])
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as err:
        _log.warning("%s is unreadable (%s); looking for the newest intact checkpoint", pointer, err)
    candidates: list[CheckpointInfo] = []
    for path in _checkpoint_dirs(directory):
        try:
            meta = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
            candidates.append(CheckpointInfo(path, int(meta["num_timesteps"]), str(meta["reason"]), str(meta["algorithm"])))
        except (OSError, ValueError, KeyError, TypeError):
            # a checkpoint written before manifests existed is described by latest.json only;
            # otherwise verify_checkpoint names the problem
            candidates.append(named if named is not None and named.path == path else CheckpointInfo(path, -1, "", ""))
    if named is not None and not any(c.path == named.path for c in candidates):
        candidates.insert(0, named)  # the directory is missing: reported below
    if not candidates:
        raise CheckpointError(
            f"{str(run_dir)!r} has no checkpoint ({pointer} is missing); the run stopped before its first "
            "checkpoint, so start it again with `vlmreward train CONFIG`."
        )
    problems = []
    for info in candidates:
        problem = verify_checkpoint(info.path) if info.path.is_dir() else "the directory is missing"
        if problem is None and info.num_timesteps >= 0:
            for text in problems:
                _log.warning("checkpoint %s", text)
            if problems:
                _log.warning("resuming from the newest intact checkpoint, %s (%d steps)", info.path.name, info.num_timesteps)
            elif named is not None and named.path != info.path:
                _log.info(
                    "%s names %s but %s (%d steps) is newer and intact (the process was killed before it updated "
                    "%s); resuming from %s", LATEST, named.path.name, info.path.name, info.num_timesteps, LATEST,
                    info.path.name,
                )
            return info
        problems.append(f"{info.path.name} is damaged: {problem or MANIFEST_FILE + ' cannot be read'}")
    raise CheckpointError(f"no intact checkpoint in {directory}: {'; '.join(problems)}; start the run again.")


class Checkpointer:
    """Writes consistent checkpoints of one run into ``RUN_DIR/checkpoints``.

    A checkpoint is a directory ``step_<N>`` holding ``model.zip`` (SB3 ``model.save``: policy,
    optimiser, step and episode counters), ``replay_buffer.npz`` (off-policy; every deferred
    reward written in first, so no placeholder is saved; the filled rows only, next observations
    deduplicated, see :mod:`vlmreward.rl.replay_storage`), ``vecnormalize.npz`` (if the
    environment normalises observations), ``state.json`` + ``rng.npz`` (step count and RNG states,
    see :func:`capture_rng_state` and :mod:`vlmreward.rl.run_state`) and, written last,
    ``manifest.json`` (size and SHA-256 of each file, :func:`verify_checkpoint`). It is written
    into a temporary directory that is renamed into place (``os.replace``), then ``latest.json``
    is replaced to point at it, so a crash at any moment leaves the previous checkpoint intact; the
    temporary files such a crash leaves are removed when the next process starts
    (:func:`clean_interrupted_writes`). Only the ``keep`` newest are kept. With
    ``replay_buffer=False`` the replay buffer is left out (it takes about one observation, one
    action and 7 bytes per stored transition, see :mod:`vlmreward.rl.replay_storage`); a run
    resumed from such a checkpoint refills it from empty, so it is not identical to an
    uninterrupted one.

    For an on-policy algorithm interrupted mid-rollout, the partial rollout is lost (it is not
    worth saving) and the checkpoint counts the steps up to the rollout's start, so that a resumed
    run still stops at the same rollout boundary.

    ``reward`` (optional): a learned reward (``learned = True``), whose state goes into the
    checkpoint (:func:`vlmreward.rl.preference.save_learned_state`).

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
        reward: Any = None,
    ) -> None:
        self.before_write = before_write
        self.reward = reward if is_learned(reward) else None  # a learned reward's state is checkpointed
        self.directory = Path(run_dir) / "checkpoints"
        self.replay_buffer = bool(replay_buffer)
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in clean_interrupted_writes(run_dir):
            _log.info("removed %s, left by a process killed while writing it", stale)
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
        if self.reward is not None:  # staged frames: of the lost partial rollout (on-policy), else of stored transitions
            self.reward.discard_staged() if steps != model.num_timesteps else self.reward.commit()
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
            save_vec_normalize(vec_normalize, tmp / VEC_NORMALIZE_FILE)
        if self.reward is not None:
            from vlmreward.rl.preference import save_learned_state

            save_learned_state(model, self.reward, tmp)
        save_state(tmp, {"num_timesteps": steps, "reason": reason, "time": time.time(), "rng": capture_rng_state(model)})
        write_manifest(tmp, {"num_timesteps": steps, "reason": reason, "algorithm": self.algorithm})
        name = f"step_{steps:09d}"
        k = 1
        while (self.directory / name).exists():
            name = f"step_{steps:09d}_{k}"
            k += 1
        final = self.directory / name
        os.replace(tmp, final)
        history = [h for h in self._history() if h != name] + [name]
        pointer = {"checkpoint": name, "num_timesteps": steps, "reason": reason, "algorithm": self.algorithm, "history": history}
        atomic_write_text(self.directory / LATEST, json.dumps(pointer, indent=2) + "\n")
        self.last = CheckpointInfo(final, steps, reason, self.algorithm)
        self._prune(history)
        _log.debug("checkpoint (%s) at %d steps: %s", reason, steps, final)
        return final

    def _history(self) -> list[str]:
        """The checkpoint directories on disk, oldest first: those ``latest.json`` lists, and any
        one a killed process renamed into place without listing it (so that it is pruned too)."""
        try:
            listed = json.loads((self.directory / LATEST).read_text(encoding="utf-8")).get("history", [])
        except (OSError, ValueError, AttributeError):
            listed = []
        on_disk = [p.name for p in reversed(_checkpoint_dirs(self.directory))]
        return [h for h in listed if h in on_disk] + [h for h in on_disk if h not in listed]

    def _prune(self, history: list[str]) -> None:
        if self.keep is None or len(history) <= self.keep:
            return
        for name in history[: -self.keep]:
            shutil.rmtree(self.directory / name, ignore_errors=True)
        pointer = json.loads((self.directory / LATEST).read_text(encoding="utf-8"))
        pointer["history"] = history[-self.keep :]
        atomic_write_text(self.directory / LATEST, json.dumps(pointer, indent=2) + "\n")

