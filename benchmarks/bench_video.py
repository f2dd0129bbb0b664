"""Episode-level video rewards: ``episode_video`` scoring in batches across episodes against the naive loop.

The naive loop is RoboCLIP's (``metaworld_envs.py``, ``MetaworldSparse.step``): each environment
keeps every frame of its episode and, when the episode ends, runs the video model on that one
episode. vlmreward's path is the deferred one: a :class:`~vlmreward.envs.clips.ClipAssembler`
keeps each sub-environment's frames, hands over the episode's clip (already sampled to the
model's ``num_frames``) at its end, and :func:`~vlmreward.envs.clips.score_clips_batched` scores
the clips of many episodes together, ``clips_per_batch`` episodes a forward pass (1, half the
environments, all of them). All produce the same rewards (checked here to float tolerance); the
ratios are episodes/s measured round-robin in one run.

The model is a random-weight X-CLIP of ``microsoft/xclip-base-patch32``'s architecture
(``XCLIPConfig()``: ViT-B/32, 8 frames), saved and loaded through :func:`vlmreward.load_model`;
speed does not depend on the weights. The frames are Meta-World renders when Meta-World is
installed (else random frames of the same size), recorded once and replayed.

    .venv/bin/python benchmarks/bench_video.py            # a few minutes on 2 CPU cores
    .venv/bin/python benchmarks/bench_video.py --quick
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import vlmreward  # noqa: E402
from _common import interleaved, save_results  # noqa: E402
from _models import xclip_base_directory  # noqa: E402
from vlmreward.envs.clips import ClipAssembler, score_clips_batched  # noqa: E402
from vlmreward.rewards.video import EpisodeVideoReward  # noqa: E402

GOAL = "robot opening green drawer"


def record_frames(n: int, size: int) -> np.ndarray:
    """``n`` frames ``[n, size, size, 3]``: a Meta-World drawer-open episode with random actions, or noise."""
    try:
        import gymnasium as gym

        import vlmreward.envs  # noqa: F401

        env = gym.make("vlmreward/MetaWorld-drawer-open-v3", render_mode="rgb_array", render_width=size, render_height=size,
                       max_episode_steps=n + 1)
        env.reset(seed=0)
        frames = []
        for _ in range(n):
            env.step(env.action_space.sample())
            frames.append(env.render())
        env.close()
        return np.stack(frames)
    except Exception as err:  # noqa: BLE001 - Meta-World or rendering not available: noise frames
        print(f"(Meta-World frames not available: {err}; using random frames)")
        return np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="video")
    parser.add_argument("--model", default=None, help="X-CLIP directory or hub id (default: random X-CLIP base/32)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    n_envs, length, repeats = (4, 16, 1) if args.quick else (8, 128, 3)
    model_name = args.model or str(xclip_base_directory())
    model = vlmreward.load_model(model_name, device=args.device)
    reward = EpisodeVideoReward(model, goal=GOAL)
    frames = record_frames(length, 224)
    episodes = n_envs  # one episode per environment per round, as n_envs environments finish together

    def naive() -> int:
        out = []
        for _ in range(episodes):  # each environment scores its own episode, every frame kept, one clip a call
            out.append(float(reward.score_clips([frames])[0]))
        naive.last = np.array(out)
        return episodes

    def batched(clips_per_batch: int):
        def run() -> int:
            assembler = ClipAssembler(reward, n_envs)
            due_all = []
            for t in range(length):
                due = assembler.add([frames[t]] * n_envs, [t == length - 1] * n_envs)
                if len(due):
                    due_all.append(due)
            run.last = score_clips_batched(reward, due_all[0], clips_per_batch=clips_per_batch)
            return episodes

        return run

    variants = {"naive per-episode loop (RoboCLIP)": naive}
    for k in dict.fromkeys([1, max(1, n_envs // 2), n_envs]):
        variants[f"vlmreward deferred, {k} episode(s) a forward pass"] = batched(k)
    timings = interleaved(variants, repeats)
    for name, fn in variants.items():
        np.testing.assert_allclose(fn.last, naive.last, rtol=0, atol=1e-4)
    base = timings["naive per-episode loop (RoboCLIP)"]["per_s"]
    rows = [{"variant": k, "episodes_per_s": v["per_s"], "vs_naive": v["per_s"] / base} for k, v in timings.items()]
    for row in rows:
        print(f"{row['variant']:48s} {row['episodes_per_s']:8.2f} episodes/s  {row['vs_naive']:.2f}x")
    save_results(args.out, {"rows": rows, "n_envs": n_envs, "episode_length": length, "num_frames": model.num_frames,
                            "model": model_name, "device": args.device, "repeats": repeats})


if __name__ == "__main__":
    main()
