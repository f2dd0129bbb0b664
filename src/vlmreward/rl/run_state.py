"""A run's state on disk without pickles: step count and random states, ``VecNormalize`` statistics.

Loading a pickle runs whatever code it names, so a crafted checkpoint would run code on
``--resume``. The state a checkpoint needs besides SB3's model archive is stored as JSON plus
NumPy arrays (``np.load(..., allow_pickle=False)``), which run no code:

* :func:`save_state` / :func:`load_state`: ``state.json`` (step count, reason, time, Python's and
  the action space's random states, NumPy's scalars) and ``rng.npz`` (NumPy's Mersenne Twister
  key, PyTorch's CPU and CUDA generator states as bytes);
* :func:`save_vec_normalize` / :func:`load_vec_normalize`: ``VecNormalize``'s settings (JSON inside
  the ``.npz``) and running statistics (mean, variance, count per observation key; returns).

Both restore exactly what they saved (tested: the same random numbers are drawn afterwards, the
same observations normalised).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm

from vlmreward._paths import atomic_write_bytes, atomic_write_text
from vlmreward.errors import VLMRewardError

__all__ = [
    "capture_rng_state",
    "restore_rng_state",
    "RunStateError",
    "STATE_JSON",
    "RNG_ARRAYS",
    "save_state",
    "load_state",
    "save_vec_normalize",
    "load_vec_normalize",
]

STATE_JSON = "state.json"
RNG_ARRAYS = "rng.npz"
_FORMAT = 2  # state.pkl (a pickle) was format 1


class RunStateError(VLMRewardError, OSError):
    """A state file that is missing, damaged or not what vlmreward writes."""


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


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def save_state(directory: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` (``num_timesteps``, ``reason``, ``time``, ``rng`` as
    :func:`~vlmreward.rl.checkpoints.capture_rng_state` returns it) as ``state.json`` + ``rng.npz``."""
    directory = Path(directory)
    rng = state["rng"]
    version, internal, gauss = rng["python"]
    name, key, pos, has_gauss, cached = rng["numpy"]
    arrays = {"numpy_key": np.asarray(key, dtype=np.uint32), "torch": rng["torch"].numpy().astype(np.uint8)}
    cuda = rng.get("torch_cuda")
    for i, value in enumerate(cuda or []):
        arrays[f"torch_cuda_{i}"] = value.numpy().astype(np.uint8)
    data = {
        "format": _FORMAT,
        "num_timesteps": int(state["num_timesteps"]),
        "reason": str(state.get("reason", "")),
        "time": float(state.get("time", 0.0)),
        "rng": {
            "python": {"version": int(version), "internal": [int(v) for v in internal], "gauss": gauss},
            "numpy": {"name": str(name), "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
            "torch_cuda_devices": None if cuda is None else len(cuda),
            "action_space": rng.get("action_space"),
        },
    }
    atomic_write_bytes(directory / RNG_ARRAYS, _npz_bytes(arrays))
    atomic_write_text(directory / STATE_JSON, json.dumps(data) + "\n")


def load_state(directory: str | os.PathLike) -> dict[str, Any]:
    """What :func:`save_state` wrote, in :func:`~vlmreward.rl.checkpoints.capture_rng_state`'s shape.

    Raises:
        RunStateError: a file missing, not JSON / not an ``.npz`` of arrays, or without the fields
            written (the message names the file).
    """
    directory = Path(directory)
    path = directory / STATE_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rng = data["rng"]
        with np.load(directory / RNG_ARRAYS, allow_pickle=False) as arrays:
            numpy_key = arrays["numpy_key"].astype(np.uint32)
            torch_state = torch.from_numpy(arrays["torch"].astype(np.uint8).copy())
            devices = rng.get("torch_cuda_devices")
            cuda = None if devices is None else [torch.from_numpy(arrays[f"torch_cuda_{i}"].astype(np.uint8).copy())
                                                 for i in range(int(devices))]
        py = rng["python"]
        npy = rng["numpy"]
        state = {
            "num_timesteps": int(data["num_timesteps"]),
            "reason": data.get("reason", ""),
            "time": data.get("time", 0.0),
            "rng": {
                "python": (int(py["version"]), tuple(int(v) for v in py["internal"]), py["gauss"]),
                "numpy": (npy["name"], numpy_key, int(npy["pos"]), int(npy["has_gauss"]), float(npy["cached_gaussian"])),
                "torch": torch_state,
                "torch_cuda": cuda,
                "action_space": rng.get("action_space"),
            },
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise RunStateError(f"{path} (with {RNG_ARRAYS}) cannot be read: {type(err).__name__}: {err}") from err
    if not isinstance(data.get("num_timesteps"), int):
        raise RunStateError(f"{path} holds no step count (num_timesteps).")
    return state


_SETTINGS = ("training", "norm_obs", "norm_reward", "clip_obs", "clip_reward", "gamma", "epsilon", "norm_obs_keys")


def save_vec_normalize(vec_normalize: Any, path: str | os.PathLike) -> None:
    """Write a ``VecNormalize``'s settings and running statistics to ``path`` (``.npz``, no pickle)."""
    arrays: dict[str, np.ndarray] = {}
    stats = vec_normalize.obs_rms
    for key, rms in (stats.items() if isinstance(stats, dict) else [("", stats)]):
        arrays[f"obs/{key}/mean"], arrays[f"obs/{key}/var"] = np.asarray(rms.mean), np.asarray(rms.var)
        arrays[f"obs/{key}/count"] = np.asarray(rms.count, dtype=np.float64)
    ret = vec_normalize.ret_rms
    arrays["ret/mean"], arrays["ret/var"], arrays["ret/count"] = np.asarray(ret.mean), np.asarray(ret.var), np.asarray(ret.count)
    arrays["returns"] = np.asarray(vec_normalize.returns)
    settings = {name: getattr(vec_normalize, name) for name in _SETTINGS}
    settings["obs_keys"] = sorted(stats) if isinstance(stats, dict) else None
    arrays["settings_json"] = np.frombuffer(json.dumps(settings).encode("utf-8"), dtype=np.uint8)
    atomic_write_bytes(path, _npz_bytes(arrays))


def load_vec_normalize(path: str | os.PathLike, venv: Any = None) -> Any:
    """A ``VecNormalize`` around ``venv`` with the settings and statistics :func:`save_vec_normalize` wrote;
    without ``venv``, one that only normalises observations (``normalize_obs``, frozen: ``training=False``),
    for evaluating a policy.

    Raises:
        RunStateError: the file is missing or damaged, or its statistics do not fit ``venv``'s observations.
    """
    from stable_baselines3.common.running_mean_std import RunningMeanStd
    from stable_baselines3.common.vec_env import VecNormalize

    try:
        with np.load(path, allow_pickle=False) as arrays:
            content = {name: arrays[name] for name in arrays.files}
        settings = json.loads(content["settings_json"].tobytes().decode("utf-8"))
        keys = settings.pop("obs_keys")
        if venv is not None:
            vec = VecNormalize(venv, **{name: settings[name] for name in _SETTINGS})
        else:
            vec = VecNormalize.__new__(VecNormalize)  # no environment to wrap: normalize_obs only
            for name in _SETTINGS:
                setattr(vec, name, settings[name])
            vec.training = False
            vec.returns = np.zeros(content["returns"].shape)

        def rms(prefix: str) -> RunningMeanStd:
            out = RunningMeanStd(shape=content[f"{prefix}/mean"].shape)
            out.mean, out.var = content[f"{prefix}/mean"].astype(np.float64), content[f"{prefix}/var"].astype(np.float64)
            out.count = float(content[f"{prefix}/count"])
            return out

        if keys is None:
            vec.obs_rms = rms("obs/")
        else:
            vec.obs_rms = {key: rms(f"obs/{key}") for key in keys}
        vec.ret_rms = rms("ret")
        vec.returns = content["returns"].astype(vec.returns.dtype)
    except (OSError, ValueError, KeyError, TypeError, AssertionError) as err:
        raise RunStateError(f"{path} cannot be read as VecNormalize statistics: {type(err).__name__}: {err}") from err
    return vec
