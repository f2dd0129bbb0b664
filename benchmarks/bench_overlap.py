"""Training steps/s with overlapped scoring, against alternating deferred scoring and the environment alone.

For each environment (``--envs``: CartPole at 400×600, Meta-World ``reach`` at its default frame
size) and model (``--models``: the test suite's tiny random CLIP, a random-weight ViT-B/32), three
modes train a fresh PPO for ``--transitions`` transitions each (``model.learn`` only), timed
round-robin over ``--repeats`` rounds:

* ``environment only``: the same deferred pipeline (``RenderFrame`` rendering, frames stored and
  handed to the reward in batches) with a reward that costs nothing: the ceiling set by stepping,
  rendering and PPO's updates;
* ``deferred``: ``scoring: deferred``: the environments wait while each batch of
  ``--score-batch-size`` frames is scored, the model waits while they step;
* ``overlapped``: ``scoring: overlapped`` (:mod:`vlmreward.envs.overlap`): each full batch is scored
  on a background thread while the environments step the next one.

PPO: ``--n-envs`` environments, ``n_steps = 64`` (256 transitions a rollout with 4 environments),
so a rollout holds several scoring batches; the last one of each rollout cannot overlap (the
rollout's returns need it). One epoch of minibatches of 64: the learner's share stays small, as it
is not what is compared. Writes ``results/overlap.json``.
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
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

import vlmreward  # noqa: E402
import vlmreward.envs  # noqa: E402,F401  (registers the environments)
from _common import interleaved, save_results  # noqa: E402
from _models import vit_b32_directory  # noqa: E402

ENVS = {"CartPole": "vlmreward/CartPole-v1", "Meta-World reach": "vlmreward/MetaWorld-reach-v3"}
GOALS = {"CartPole": ("pole vertically upright on top of the cart", "pole and cart"),
         "Meta-World reach": ("a robot arm reaching the red ball", "a robot arm")}
MODELS = ("tiny", "ViT-B/32")
MODES = ("environment only", "deferred", "overlapped")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class FreeReward:
    """A reward that costs nothing (zeros): what the pipeline does without a VLM."""

    def __call__(self, frames: Any) -> np.ndarray:
        return np.zeros(len(frames), dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        return {"kind": "free"}


def trainer(env_id: str, mode: str, reward: Any, n_envs: int, score_batch_size: int, transitions: int) -> Callable[[], int]:
    """A callable that trains a fresh PPO for ``transitions`` transitions and returns the count."""
    from stable_baselines3 import PPO

    from vlmreward.envs import make_vlm_vec_env
    from vlmreward.rl.deferred import DeferredRolloutBuffer, attach_reward_source

    def run() -> int:
        venv = make_vlm_vec_env(env_id, n_envs, FreeReward() if mode == "environment only" else reward, deferred=True,
                                score_batch_size=score_batch_size, overlap=mode == "overlapped", seed=0)
        model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu", verbose=0,
                    rollout_buffer_class=DeferredRolloutBuffer)
        attach_reward_source(model, venv)
        model.learn(total_timesteps=transitions)
        venv.close()
        return int(model.num_timesteps)

    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", default=",".join(ENVS), help=f"comma-separated, from: {', '.join(ENVS)}")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from: {', '.join(MODELS)}")
    parser.add_argument("--transitions", type=int, default=512, help="per round (ViT-B/32: half)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-envs", type=int, default=4)
    parser.add_argument("--score-batch-size", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, not a measurement")
    parser.add_argument("--out", default="overlap")
    args = parser.parse_args(argv)
    envs = [e.strip() for e in args.envs.split(",") if e.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.quick:
        args.transitions, args.repeats, args.n_envs, args.score_batch_size = 256, 1, 4, 32
        envs, models = ["CartPole"], ["tiny"]
    if set(envs) - set(ENVS) or set(models) - set(MODELS):
        parser.error(f"--envs from {', '.join(ENVS)}; --models from {', '.join(MODELS)}")
    if "Meta-World reach" in envs:
        try:
            import metaworld  # noqa: F401
        except ImportError:
            log("metaworld is not installed (pip install -e '.[metaworld]'): Meta-World skipped")
            envs.remove("Meta-World reach")

    from vlmreward.models.testing import write_tiny_clip

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vlmreward-bench-tiny-") as tiny_dir:
        paths = {"tiny": str(write_tiny_clip(Path(tiny_dir))), "ViT-B/32": str(vit_b32_directory())}
        for model_name in models:
            model = vlmreward.load_model(paths[model_name])
            model.batch_size = args.score_batch_size
            transitions = args.transitions if model_name == "tiny" or args.quick else args.transitions // 2
            for env_name in envs:
                goal, baseline = GOALS[env_name]
                reward = vlmreward.GoalBaselineReward(model, goal=goal, baseline=baseline, alpha=0.5)
                variants = {mode: trainer(ENVS[env_name], mode, reward, args.n_envs, args.score_batch_size, transitions)
                            for mode in MODES}
                variants["environment only"]()  # untimed: rendering back-ends and PyTorch start up
                log(f"{env_name}, {model_name}: {transitions} transitions a mode, {args.repeats} rounds")
                timed = interleaved(variants, args.repeats, warmup=False)
                rates = {mode: v["per_s"] for mode, v in timed.items()}
                rows.append({
                    "env": env_name, "model": model_name, "transitions": transitions,
                    "steps_per_s": {m: {"median": v["per_s"], "runs": v["runs"]} for m, v in timed.items()},
                    "overlapped_vs_deferred": rates["overlapped"] / rates["deferred"],
                    "overlapped_vs_environment": rates["overlapped"] / rates["environment only"],
                    "deferred_vs_environment": rates["deferred"] / rates["environment only"],
                })
                log("  " + "; ".join(f"{m} {r:.1f} steps/s" for m, r in rates.items())
                    + f"; overlapped ÷ deferred {rows[-1]['overlapped_vs_deferred']:.2f}×, "
                    f"÷ environment only {rows[-1]['overlapped_vs_environment']:.2f}×")
    payload = {
        "algorithm": "PPO (n_steps 64, batch_size 64, n_epochs 1)", "n_envs": args.n_envs,
        "score_batch_size": args.score_batch_size, "repeats": args.repeats, "rows": rows,
        "models": {"tiny": "vlmreward.models.testing.write_tiny_clip (2 layers, width 32, random)",
                   "ViT-B/32": "random-weight ViT-B/32 (transformers CLIPConfig() defaults)"},
    }
    out = save_results(args.out, payload)
    log(f"wrote {out}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
