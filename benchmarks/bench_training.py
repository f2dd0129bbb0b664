"""Environment steps per second while training CartPole (DQN) with a VLM reward, by scoring mode.

Modes (``--modes``), timed round-robin over ``--repeats`` rounds of ``--transitions`` transitions
each (``model.learn`` only: environment steps, rendering, scoring and gradient steps):

* ``ground truth``: the environment's own reward, no VLM (the ceiling set by the rest);
* ``per-step``: one environment in :class:`~vlmreward.envs.VLMRewardWrapper`, each frame scored
  alone as it is rendered (what a first implementation does);
* ``vectorised``: ``--n-envs`` environments, each step's frames scored in one batch
  (``make_vlm_vec_env(..., deferred=False)``);
* ``deferred``: the same environments, frames kept and scored in batches of
  ``--score-batch-size`` written back into the replay buffer (``deferred=True`` with
  :class:`~vlmreward.rl.deferred.DeferredReplayBuffer`), as ``configs/cartpole.yaml``;
* ``deferred + cache``: deferred, with an :class:`~vlmreward.models.cache.EmbeddingCache` (CartPole
  renders pixel-identical frames for nearby states);
* ``deferred + ONNX int8``: deferred, the vision tower on ONNX Runtime with ``int8`` weights.

DQN's hyper-parameters are ``configs/cartpole.yaml``'s (``train_freq`` scaled so every mode does
128 gradient steps per 256 transitions), with ``learning_starts`` lowered so learning happens
within the short run. The model is a random-weight ViT-B/32 unless ``--model`` names one.
Writes ``results/training.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import vlmreward  # noqa: E402
import vlmreward.envs  # noqa: E402,F401  (registers vlmreward/CartPole-v1)
from _common import interleaved, save_results  # noqa: E402
from _models import vit_b32_directory  # noqa: E402
from vlmreward.models.cache import EmbeddingCache  # noqa: E402

ENV_ID = "vlmreward/CartPole-v1"
GOAL, BASELINE = "pole vertically upright on top of the cart", "pole and cart"
MODES = ("ground truth", "per-step", "vectorised", "deferred", "deferred + cache", "deferred + ONNX int8")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def dqn_kwargs(n_envs: int, learning_starts: int, cycle: int = 256) -> dict[str, Any]:
    """``configs/cartpole.yaml``'s DQN settings: ``cycle`` transitions (256) between trainings of
    ``cycle / 2`` gradient steps, whatever the number of environments.

    Stable-baselines3 collects whole cycles: ``learn(total_timesteps=T)`` runs ``T`` rounded up to
    a multiple of ``cycle`` transitions (counted exactly in the results).
    """
    return dict(
        learning_rate=2.3e-3,
        batch_size=64,
        buffer_size=100_000,
        learning_starts=learning_starts,
        gamma=0.99,
        target_update_interval=10,
        train_freq=max(1, cycle // n_envs),
        gradient_steps=max(1, cycle // 2),
        exploration_fraction=0.16,
        exploration_final_eps=0.04,
        policy_kwargs={"net_arch": [256, 256]},
        seed=0,
        verbose=0,
        device="cpu",
    )


def trainer(
    mode: str, reward: Any, n_envs: int, score_batch_size: int, transitions: int, cycle: int
) -> Callable[[], int]:
    """A callable that trains a fresh DQN for ``transitions`` transitions and returns that number."""
    from stable_baselines3 import DQN
    from stable_baselines3.common.vec_env import DummyVecEnv

    from vlmreward.envs import VLMRewardWrapper, make_vlm_vec_env
    from vlmreward.rl.deferred import DeferredReplayBuffer, attach_reward_source

    learning_starts = min(cycle, transitions // 2)

    def run() -> int:
        cache = getattr(getattr(reward, "model", None), "embedding_cache", None)
        if cache is not None:
            cache.clear()  # every round starts cold: the same seed renders the same frames
        if mode == "per-step":
            venv = DummyVecEnv([lambda: VLMRewardWrapper(gym.make(ENV_ID, render_mode="rgb_array"), reward)])
            model = DQN("MlpPolicy", venv, **dqn_kwargs(1, learning_starts, cycle))
        elif mode == "ground truth":
            venv = DummyVecEnv([lambda: gym.make(ENV_ID, render_mode="rgb_array") for _ in range(n_envs)])
            model = DQN("MlpPolicy", venv, **dqn_kwargs(n_envs, learning_starts, cycle))
        else:
            deferred = mode.startswith("deferred")
            venv = make_vlm_vec_env(ENV_ID, n_envs, reward, deferred=deferred, score_batch_size=score_batch_size, seed=0)
            extra = {"replay_buffer_class": DeferredReplayBuffer} if deferred else {}
            model = DQN("MlpPolicy", venv, **dqn_kwargs(n_envs, learning_starts, cycle), **extra)
            attach_reward_source(model, venv)
        model.learn(total_timesteps=transitions)
        venv.close()
        return int(model.num_timesteps)

    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model directory or hub id (default: random ViT-B/32)")
    parser.add_argument("--transitions", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-envs", type=int, default=4)
    parser.add_argument("--score-batch-size", type=int, default=256)
    parser.add_argument("--cycle", type=int, default=256, help="transitions between trainings (configs/cartpole.yaml: 256)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, from: {', '.join(MODES)}")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, not a measurement")
    parser.add_argument("--out", default="training")
    args = parser.parse_args(argv)
    if args.quick:
        args.transitions, args.repeats, args.score_batch_size, args.cycle = 32, 1, 16, 16
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}; choose from {', '.join(MODES)}")

    path = args.model or str(vit_b32_directory())
    model = vlmreward.load_model(path)
    model.batch_size = 64  # configs/cartpole.yaml's model.batch_size
    reward = vlmreward.GoalBaselineReward(model, goal=GOAL, baseline=BASELINE, alpha=0.5)
    cached_model = vlmreward.load_model(path)
    cached_model.batch_size = 64
    cached_model.embedding_cache = EmbeddingCache(max_entries=50_000)
    cached_reward = vlmreward.GoalBaselineReward(cached_model, goal=GOAL, baseline=BASELINE, alpha=0.5)
    with tempfile.TemporaryDirectory(prefix="vlmreward-bench-onnx-") as onnx_cache:
        variants: dict[str, Callable[[], int]] = {}
        for mode in modes:
            if mode == "deferred + ONNX int8":
                int8 = vlmreward.load_model(path, runtime="onnx", quantize="int8", onnx_cache_dir=onnx_cache)
                int8.batch_size = 64
                r = vlmreward.GoalBaselineReward(int8, goal=GOAL, baseline=BASELINE, alpha=0.5)
            else:
                r = cached_reward if mode == "deferred + cache" else reward
            variants[mode] = trainer(mode, r, args.n_envs, args.score_batch_size, args.transitions, args.cycle)

        def progress(r: int) -> None:
            log(f"round {r + 1}/{args.repeats} done")

        if "ground truth" in variants:
            variants["ground truth"]()  # untimed: the first DQN built in a process pays PyTorch's start-up
        log(f"training {args.transitions} transitions per mode: {', '.join(modes)}")
        results = interleaved(variants, args.repeats, warmup=False, on_repeat=progress)
    stats = cached_model.embedding_cache.stats()
    payload = {
        "model": {"path": path if args.model else "random-weight ViT-B/32 (transformers CLIPConfig() defaults)"},
        "env": ENV_ID,
        "n_envs": args.n_envs,
        "score_batch_size": args.score_batch_size,
        "transitions": args.transitions,
        "cycle": args.cycle,
        "repeats": args.repeats,
        "steps_per_s": {m: {"median": v["per_s"], "runs": v["runs"]} for m, v in results.items()},
        "cache": {"hits": stats.hits, "misses": stats.misses, "hit_rate": stats.hit_rate},
    }
    for mode, v in results.items():
        log(f"{mode}: {v['per_s']:.2f} steps/s (runs {', '.join(f'{x:.2f}' for x in v['runs'])})")
    out = save_results(args.out, payload)
    log(f"wrote {out}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
