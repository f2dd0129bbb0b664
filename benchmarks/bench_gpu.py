"""The precision and compilation options, side by side on one device (``--device``; a GPU where lent).

* ``reward(frames)`` of a ViT-B/32-shaped CLIP (random weights, or ``--model``): float32 weights;
  float32 weights under ``autocast`` bf16 and fp16 (CUDA only); bf16 weights; each again with
  ``compile=True``. Frames/s end to end (CartPole frames, 400 × 600, ``--batch`` a call), median
  of ``--repeats`` round-robin rounds after a warm-up (which pays the compilation), and the
  largest difference of the rewards from float32 eager.
* a tiny Qwen2.5-VL's ``vqa`` forward (the generative path): float32 against ``compile=True``
  (and bf16 on CUDA), calls/s.
* MuJoCo rendering through EGL (``MUJOCO_GL=egl``; on a GPU machine the CUDA EGL device):
  Meta-World ``reach`` frames/s, when Meta-World is installed.

Writes ``results/gpu.json`` (``results/gpu_cpu.json`` for ``--device cpu``).
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
import torch  # noqa: E402

from _common import interleaved, save_results  # noqa: E402
from _models import vit_b32_directory  # noqa: E402
from vlmreward.distributed.spec import RewardSpec  # noqa: E402
from vlmreward.models.spec import ModelSpec  # noqa: E402
from vlmreward.models.testing import render_cartpole_frames  # noqa: E402


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _contrastive_variants(device: str) -> dict[str, dict[str, Any]]:
    variants: dict[str, dict[str, Any]] = {"float32": {}, "float32, compile": {"compile": True}}
    if device.startswith("cuda"):
        variants |= {"autocast bf16": {"autocast": "bf16"}, "autocast fp16": {"autocast": "fp16"},
                     "bf16 weights": {"dtype": "bf16"}, "bf16 weights, compile": {"dtype": "bf16", "compile": True}}
    return variants


def bench_contrastive(model: str, device: str, frames: np.ndarray, repeats: int) -> dict[str, Any]:
    params = {"goal": "pole vertically upright on top of the cart", "baseline": "pole and cart", "alpha": 0.5}
    rewards: dict[str, Callable[[], np.ndarray]] = {}
    outputs: dict[str, np.ndarray] = {}
    build_s: dict[str, float] = {}
    for name, options in _contrastive_variants(device).items():
        reward = RewardSpec("goal_baseline", params, ModelSpec(model, device=device, batch_size=len(frames), **options))()
        start = time.perf_counter()
        outputs[name] = reward(frames)  # the warm-up: compiles where asked
        build_s[name] = time.perf_counter() - start
        rewards[name] = lambda r=reward: len(r(frames))
        log(f"  {name}: first call {build_s[name]:.1f} s")
    timings = interleaved(rewards, repeats)
    base = outputs["float32"]
    return {name: {"frames_per_s": t["per_s"], "first_call_s": build_s[name], "runs": t["runs"],
                   "max_abs_difference_vs_float32": float(np.max(np.abs(outputs[name] - base)))}
            for name, t in timings.items()}


def bench_generative(device: str, repeats: int, work: Path) -> dict[str, Any]:
    from vlmreward.models.testing_vlms import build_qwen2_5_vl

    path = build_qwen2_5_vl(work / "qwen2_5_vl")
    frames = render_cartpole_frames(4)
    variants: dict[str, dict[str, Any]] = {"float32": {}, "float32, compile": {"compile": True}}
    if device.startswith("cuda"):
        variants["bf16 weights"] = {"dtype": "bf16"}
    calls, outputs, first = {}, {}, {}
    for name, options in variants.items():
        reward = RewardSpec("vqa", {"goal": "a pole upright", "output": "log_odds"}, ModelSpec(str(path), device=device, **options))()
        start = time.perf_counter()
        outputs[name] = reward(frames)
        first[name] = time.perf_counter() - start
        calls[name] = lambda r=reward: (r(frames), 1)[1]
        log(f"  vqa {name}: first call {first[name]:.1f} s")
    timings = interleaved(calls, repeats)
    return {name: {"calls_per_s": t["per_s"], "frames_per_call": len(frames), "first_call_s": first[name],
                   "max_abs_difference_vs_float32": float(np.max(np.abs(outputs[name] - outputs["float32"])))}
            for name, t in timings.items()}


def bench_render(steps: int) -> dict[str, Any]:
    try:
        import gymnasium as gym

        import vlmreward.envs  # noqa: F401  (registers the environments)

        env = gym.make("vlmreward/MetaWorld-reach-v3", render_mode="rgb_array")
    except Exception as err:  # noqa: BLE001 (reported, not fatal: Meta-World is an extra)
        return {"skipped": f"{type(err).__name__}: {err}"}
    env.reset(seed=0)
    env.render()
    start = time.perf_counter()
    for _ in range(steps):
        env.step(env.action_space.sample())
        env.render()
    seconds = time.perf_counter() - start
    env.close()
    return {"mujoco_gl": os.environ.get("MUJOCO_GL"), "egl_device": os.environ.get("MUJOCO_EGL_DEVICE_ID"),
            "steps": steps, "frames_per_s": steps / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", default=None, help="model directory or hub id (default: random ViT-B/32)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--render-steps", type=int, default=200)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.quick:
        args.batch, args.repeats, args.render_steps = 4, 2, 10
    out = args.out or ("gpu" if args.device.startswith("cuda") else "gpu_cpu")
    frames = render_cartpole_frames(args.batch)
    model = args.model or str(vit_b32_directory())
    log(f"contrastive reward on {args.device}: {model}")
    contrastive = bench_contrastive(model, args.device, frames, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        log(f"generative (tiny Qwen2.5-VL vqa) on {args.device}")
        generative = bench_generative(args.device, args.repeats, Path(tmp))
    log("MuJoCo rendering")
    render = bench_render(args.render_steps)
    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None
    path = save_results(out, {"device": args.device, "gpu": gpu, "model": args.model or "random ViT-B/32",
                              "batch": args.batch, "repeats": args.repeats, "contrastive": contrastive,
                              "generative": generative, "render": render})
    for name, row in contrastive.items():
        log(f"{name}: {row['frames_per_s']:.1f} frames/s (max |Δ| {row['max_abs_difference_vs_float32']:.2e})")
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
