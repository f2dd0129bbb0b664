"""Replay buffers on disk and in memory: compact, safe checkpoint files and an up-front size check.

SB3's ``save_replay_buffer`` pickles the buffer as allocated: all ``buffer_size`` rows, filled or
not, with every next observation stored beside its observation. A Humanoid run (observations of
348 float64) thus wrote 5.6 GB after 1,600 steps. :func:`save_replay_buffer` writes an ``.npz``
(NumPy arrays, no pickle: loading it runs no code) holding only the filled rows, observations in
their own dtype, and a next observation only where it differs from the observation stored after
it (an episode's end, or the newest step); ``dones`` and ``timeouts`` are stored as bytes when they
are 0/1. Per transition that is, for an environment whose episodes last ``L`` steps,

    observation + action + 4 (reward, float32) + 2 (done, timeout) + 1/8 (next-observation mask)
    + observation / L

bytes, against ``observation + action + 4 + 1`` for the raw transition (one observation, action,
reward and done flag); ``benchmarks/bench_checkpoint.py`` measures the ratio (≤ 1.2× for CartPole,
MountainCar and Humanoid, see ``benchmarks/RESULTS.md``). Restoring is exact: the arrays come back
bit-identical (tested).

SB3's own ``optimize_memory_usage`` (one array for observations and next observations) cannot be
combined with ``handle_timeout_termination``, which every time-limited environment needs, so
vlmreward deduplicates on disk instead; a buffer made with it is saved and restored too.

:func:`replay_buffer_bytes` and :func:`check_replay_buffer_fits` estimate the memory of a buffer
before SB3 allocates it (NumPy's zero pages are only committed when written, so an impossible
budget otherwise dies much later, killed by the kernel).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer

from vlmreward.errors import VLMRewardError

__all__ = [
    "ReplayStorageError",
    "save_replay_buffer",
    "load_replay_buffer",
    "replay_buffer_bytes",
    "available_memory_bytes",
    "check_replay_buffer_fits",
]

FORMAT = "vlmreward-replay-buffer/1"


class ReplayStorageError(VLMRewardError, OSError):
    """A replay-buffer file that cannot be read into the buffer (damaged, or of another buffer)."""


def _filled(buffer: ReplayBuffer) -> int:
    return buffer.buffer_size if buffer.full else buffer.pos


def _observation_arrays(buffer: ReplayBuffer) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """``{name: (observations, next_observations or None)}`` for a plain or a dict buffer."""
    if isinstance(buffer, DictReplayBuffer):
        return {f"obs.{k}": (buffer.observations[k], buffer.next_observations[k]) for k in buffer.observations}
    nxt = None if getattr(buffer, "optimize_memory_usage", False) else buffer.next_observations
    return {"obs": (buffer.observations, nxt)}


def _flags_as_bytes(values: np.ndarray) -> np.ndarray:
    """0/1 float flags as uint8 (exact), any other values unchanged."""
    as_bytes = values.astype(np.uint8)
    return as_bytes if np.array_equal(as_bytes, values) else values


def _differs_from_successor(obs: np.ndarray, nxt: np.ndarray, n: int, full: bool, chunk: int = 4096) -> np.ndarray:
    """``[n, n_envs]`` bool: row t's next observation is not the observation stored at t + 1
    (wrapping round when ``full``; the newest row of a buffer not yet full has no successor)."""
    differs = np.ones(nxt.shape[:2], dtype=bool)[:n]
    for start in range(0, max(n - 1, 0), chunk):
        stop = min(start + chunk, n - 1)
        differs[start:stop] = (nxt[start:stop] != obs[start + 1 : stop + 1]).reshape(stop - start, nxt.shape[1], -1).any(-1)
    if full and n:
        differs[n - 1] = (nxt[n - 1] != obs[0]).reshape(nxt.shape[1], -1).any(-1)
    return differs


def save_replay_buffer(buffer: ReplayBuffer, path: str | os.PathLike) -> Path:
    """Write the filled part of an SB3 ``ReplayBuffer``/``DictReplayBuffer`` to ``path`` (``.npz``).

    Args:
        buffer: the buffer (deferred VLM rewards must already be written in, see
            :func:`vlmreward.rl.checkpoints.complete_deferred_rewards`).
        path: the file to write (overwritten).

    Returns:
        ``path``. Size per transition: see the module docstring.
    """
    n = _filled(buffer)
    size = buffer.buffer_size
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT),
        "pos": np.array(buffer.pos, dtype=np.int64),
        "full": np.array(buffer.full),
        "buffer_size": np.array(size, dtype=np.int64),
        "n_envs": np.array(buffer.n_envs, dtype=np.int64),
        "actions": buffer.actions[:n],
        "rewards": buffer.rewards[:n],
        "dones": _flags_as_bytes(buffer.dones[:n]),
        "timeouts": _flags_as_bytes(buffer.timeouts[:n]),
    }
    for name, (obs, nxt) in _observation_arrays(buffer).items():
        if nxt is None:  # optimize_memory_usage: the next observation of row t is row t + 1
            arrays[name] = obs if buffer.full else obs[: min(n + 1, size)]
            continue
        arrays[name] = obs[:n]
        differs = _differs_from_successor(obs, nxt, n, buffer.full)
        arrays[f"next_{name}.mask"] = np.packbits(differs.ravel())
        arrays[f"next_{name}.rows"] = nxt[:n][differs]
    path = Path(path)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def load_replay_buffer(buffer: ReplayBuffer, path: str | os.PathLike) -> None:
    """Fill ``buffer`` (freshly allocated, same spaces, size and number of environments) from a file
    written by :func:`save_replay_buffer`; the arrays come back exactly.

    Raises:
        ReplayStorageError: the file is missing, damaged, or of a buffer of another size, number
            of environments, observation or action shape or dtype.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            content = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ReplayStorageError(f"{path} cannot be read ({type(err).__name__}: {err}); the checkpoint is damaged.") from err
    try:
        _fill(buffer, content)
    except (KeyError, ValueError, TypeError, IndexError) as err:
        raise ReplayStorageError(
            f"{path} does not fit this run's replay buffer ({type(err).__name__}: {err}); it is damaged or of another "
            "configuration (buffer_size, n_envs, observation or action space)."
        ) from err


def _put(target: np.ndarray, values: np.ndarray, what: str) -> None:
    if values.shape[1:] != target.shape[1:] or len(values) > len(target):
        raise ValueError(f"{what}: stored shape {values.shape} vs buffer {target.shape}")
    if values.dtype.kind != target.dtype.kind and not (values.dtype == np.uint8 and target.dtype.kind == "f"):
        raise ValueError(f"{what}: stored dtype {values.dtype} vs buffer {target.dtype}")
    target[: len(values)] = values


def _fill(buffer: ReplayBuffer, content: dict[str, np.ndarray]) -> None:
    if str(content["format"]) != FORMAT:
        raise ValueError(f"format {content['format']!s}, expected {FORMAT}")
    size, n_envs = int(content["buffer_size"]), int(content["n_envs"])
    if (size, n_envs) != (buffer.buffer_size, buffer.n_envs):
        raise ValueError(f"buffer_size × n_envs {size} × {n_envs} vs {buffer.buffer_size} × {buffer.n_envs}")
    full, pos = bool(content["full"]), int(content["pos"])
    n = size if full else pos
    for name in ("actions", "rewards", "dones", "timeouts"):
        if len(content[name]) != n:
            raise ValueError(f"{name}: {len(content[name])} rows, expected {n}")
        _put(getattr(buffer, name), content[name], name)
    for name, (obs, nxt) in _observation_arrays(buffer).items():
        stored = content[name]
        if nxt is None:
            _put(obs, stored, name)
            continue
        if len(stored) != n:
            raise ValueError(f"{name}: {len(stored)} rows, expected {n}")
        _put(obs, stored, name)
        differs = np.unpackbits(content[f"next_{name}.mask"], count=n * n_envs).astype(bool).reshape(n, n_envs)
        rows = content[f"next_{name}.rows"]
        if len(rows) != int(differs.sum()):
            raise ValueError(f"next_{name}: {len(rows)} stored rows for {int(differs.sum())} marked")
        if n:
            nxt[: n - 1] = obs[1:n]
            nxt[n - 1] = obs[0]  # the successor of the last row when the buffer is full; else marked
        nxt[:n][differs] = rows
    buffer.pos, buffer.full = pos, full


# ---------------------------------------------------------------------------------------------
# memory


def replay_buffer_bytes(
    observation_space: gym.Space, action_space: gym.Space, buffer_size: int, optimize_memory_usage: bool = False
) -> int:
    """Bytes SB3's replay buffer allocates for ``buffer_size`` transitions (all environments
    together): observations and next observations in their own dtype (one array with
    ``optimize_memory_usage``), actions, and float32 rewards, dones and timeouts."""
    spaces = observation_space.spaces.values() if isinstance(observation_space, gym.spaces.Dict) else [observation_space]
    obs = sum(int(np.prod(s.shape)) * np.dtype(s.dtype).itemsize for s in spaces)
    action_dtype = np.dtype(action_space.dtype)
    if action_dtype == np.float64:
        action_dtype = np.dtype(np.float32)  # SB3's _maybe_cast_dtype
    action = int(np.prod(action_space.shape or (1,))) * action_dtype.itemsize
    return int(buffer_size) * ((1 if optimize_memory_usage else 2) * obs + action + 12)


def available_memory_bytes() -> int | None:
    """Memory the system can still give (Linux ``MemAvailable``; psutil where installed), or None."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_replay_buffer_fits(needed: int, what: str, available: int | None = None) -> None:
    """Raise when ``needed`` bytes exceed the memory available (unknown memory: no check).

    Raises:
        VLMRewardError: naming ``what`` (e.g. the config key) and both sizes in GB.
    """
    available = available_memory_bytes() if available is None else available
    if available is not None and needed > available:
        raise VLMRewardError(
            f"the replay buffer would need {needed / 1e9:.1f} GB but {available / 1e9:.1f} GB of memory is available; "
            f"lower {what}."
        )

