"""Checkpoint size per transition: vlmreward's replay-buffer file against the raw transitions and SB3's pickle.

For each environment (the paper environments vlmreward registers: CartPole, MountainCarContinuous,
Humanoid), random-action transitions are stored in an SB3 ``ReplayBuffer`` of twice their number
(as in a run checkpointed half-way through its buffer), exactly as SB3's off-policy algorithms
store them (the terminal observation as the next observation at an episode's end), then written

* by :func:`vlmreward.rl.replay_storage.save_replay_buffer` (``replay_buffer.npz``, what
  checkpoints hold), and
* by SB3's ``save_to_pkl`` (what ``model.save_replay_buffer`` writes, and vlmreward wrote before),

and read back. The raw bytes of a transition are one observation (its own dtype), the action, a
float32 reward and a one-byte done flag. The target is ≤ 1.2× raw. Writes
``results/checkpoint.json``; ``report.py`` adds a table to RESULTS.md.

    .venv/bin/python benchmarks/bench_checkpoint.py           # about a minute
    .venv/bin/python benchmarks/bench_checkpoint.py --quick
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
from stable_baselines3.common.buffers import ReplayBuffer  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402
from stable_baselines3.common.save_util import load_from_pkl, save_to_pkl  # noqa: E402

import vlmreward.envs  # noqa: E402,F401  (registers the environments)
from _common import save_results  # noqa: E402
from vlmreward.rl.replay_storage import load_replay_buffer, save_replay_buffer  # noqa: E402

ENVS = {
    "CartPole": ("vlmreward/VLMRM-CartPole-v0", 20_000),
    "MountainCarContinuous": ("vlmreward/VLMRM-MountainCarContinuous-v0", 20_000),
    "Humanoid": ("vlmreward/VLMRM-Humanoid-v0", 5_000),
}


def fill(env_id: str, steps: int, seed: int = 0) -> tuple[ReplayBuffer, int]:
    """A buffer of ``2 × steps`` rows holding ``steps`` random transitions; also the number of episode ends."""
    venv = make_vec_env(env_id, n_envs=1, seed=seed)
    buffer = ReplayBuffer(2 * steps, venv.observation_space, venv.action_space, n_envs=1, handle_timeout_termination=True)
    venv.action_space.seed(seed)
    obs, ends = venv.reset(), 0
    for _ in range(steps):
        action = np.array([venv.action_space.sample()])
        new_obs, reward, done, infos = venv.step(action)
        next_obs = new_obs.copy()
        if done[0]:
            next_obs[0] = infos[0]["terminal_observation"]
            ends += 1
        buffer.add(obs, next_obs, action, reward, done, infos)
        obs = new_obs
    venv.close()
    return buffer, ends


def measure(name: str, env_id: str, steps: int, directory: Path) -> dict[str, Any]:
    start = time.perf_counter()
    buffer, ends = fill(env_id, steps)
    collect_s = time.perf_counter() - start
    obs_bytes = buffer.observations[0, 0].nbytes
    raw = obs_bytes + buffer.actions[0, 0].nbytes + 4 + 1
    row: dict[str, Any] = {
        "env": name, "env_id": env_id, "transitions": steps, "buffer_size": buffer.buffer_size, "episode_ends": ends,
        "observation": f"{buffer.observations.shape[2:]} {buffer.observations.dtype}", "raw_bytes": raw, "collect_s": collect_s,
    }
    npz, pkl = directory / f"{name}.npz", directory / f"{name}.pkl"
    t = time.perf_counter()
    save_replay_buffer(buffer, npz)
    row["npz_save_s"] = time.perf_counter() - t
    t = time.perf_counter()
    save_to_pkl(pkl, buffer)
    row["pkl_save_s"] = time.perf_counter() - t
    fresh = ReplayBuffer(buffer.buffer_size, buffer.observation_space, buffer.action_space, n_envs=1, handle_timeout_termination=True)
    t = time.perf_counter()
    load_replay_buffer(fresh, npz)
    row["npz_load_s"] = time.perf_counter() - t
    assert np.array_equal(fresh.next_observations, buffer.next_observations) and np.array_equal(fresh.observations, buffer.observations)
    t = time.perf_counter()
    load_from_pkl(pkl)
    row["pkl_load_s"] = time.perf_counter() - t
    row["npz_bytes_per_transition"] = npz.stat().st_size / steps
    row["pkl_bytes_per_transition"] = pkl.stat().st_size / steps
    row["npz_vs_raw"] = row["npz_bytes_per_transition"] / raw
    row["pkl_vs_raw"] = row["pkl_bytes_per_transition"] / raw
    npz.unlink()
    pkl.unlink()
    print(f"{name}: {row['npz_bytes_per_transition']:.1f} B/transition ({row['npz_vs_raw']:.3f}× raw {raw} B); "
          f"SB3 pickle {row['pkl_bytes_per_transition']:.1f} B ({row['pkl_vs_raw']:.2f}×)", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="500 transitions each")
    parser.add_argument("--out", default="checkpoint")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (env_id, steps) in ENVS.items():
            rows.append(measure(name, env_id, 500 if args.quick else steps, Path(tmp)))
    save_results(args.out, {"rows": rows})


if __name__ == "__main__":
    main()
