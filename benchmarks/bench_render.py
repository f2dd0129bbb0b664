"""Humanoid rendering frames/s: our render settings against gymnasium's defaults, at 224 × 224.

Variants, timed round-robin over ``--repeats`` rounds of ``--frames`` frames (``env.step`` with a
random action, then ``env.render()``; the step alone is timed too, and subtracted):

* ``vlmreward/HumanoidTextured-v0``: textured scene, front camera, fast settings (no shadows, no
  multisampling, no reflections; :mod:`vlmreward.envs.humanoid`);
* the same scene with ``high_quality_render=True`` (MuJoCo's defaults: 4096² shadow map, 4×
  multisampling, shadows, a reflective floor): what the settings alone are worth;
* ``gymnasium.make("Humanoid-v5", render_mode="rgb_array", width=224, height=224)``: gymnasium's
  own model and defaults.

Needs ``pip install -e ".[mujoco]"``; set ``MUJOCO_GL=egl`` (default here) or ``osmesa`` on a
headless machine. Writes ``results/render.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import vlmreward.envs  # noqa: E402,F401  (registers vlmreward/HumanoidTextured-v0)
from _common import interleaved, save_results  # noqa: E402

SIZE = 224


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def make_envs() -> dict[str, gym.Env]:
    return {
        "vlmreward/HumanoidTextured-v0 (our fast settings)": gym.make("vlmreward/HumanoidTextured-v0", render_mode="rgb_array"),
        "vlmreward/HumanoidTextured-v0, high_quality_render=True (MuJoCo defaults)": gym.make(
            "vlmreward/HumanoidTextured-v0", render_mode="rgb_array", high_quality_render=True
        ),
        "gymnasium Humanoid-v5, width=height=224 (gymnasium defaults)": gym.make(
            "Humanoid-v5", render_mode="rgb_array", width=SIZE, height=SIZE
        ),
    }


def stepper(env: gym.Env, frames: int, render: bool, seed: int = 0) -> Callable[[], int]:
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low, env.action_space.high

    def run() -> int:
        for _ in range(frames):
            _, _, terminated, truncated, _ = env.step(rng.uniform(low, high).astype(np.float32))
            if render:
                frame = env.render()
                assert frame.shape == (SIZE, SIZE, 3)
            if terminated or truncated:
                env.reset()
        return frames

    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="render")
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.repeats = 5, 1
    log(f"MUJOCO_GL={os.environ.get('MUJOCO_GL')}")
    envs = make_envs()
    for env in envs.values():
        env.reset(seed=0)
    with_render = {name: stepper(env, args.frames, True) for name, env in envs.items()}
    step_only = {name: stepper(env, args.frames, False) for name, env in envs.items()}
    log(f"{args.frames} frames x {args.repeats} rounds per variant")
    rendered = interleaved(with_render, args.repeats, on_repeat=lambda r: log(f"round {r + 1}/{args.repeats}"))
    stepped = interleaved(step_only, args.repeats)
    results: dict[str, Any] = {}
    for name in envs:
        step_render_s = rendered[name]["s_per_item"]
        step_s = stepped[name]["s_per_item"]
        results[name] = {
            "step_and_render_fps": rendered[name]["per_s"],
            "step_only_fps": stepped[name]["per_s"],
            "render_ms": 1000 * max(step_render_s - step_s, 0.0),
            "render_fps": 1.0 / max(step_render_s - step_s, 1e-9),
            "runs_fps": rendered[name]["runs"],
        }
        log(f"{name}: {results[name]['step_and_render_fps']:.1f} steps+renders/s, render {results[name]['render_ms']:.2f} ms")
    for env in envs.values():
        env.close()
    try:
        import mujoco

        renderer = mujoco.__version__
    except Exception:  # noqa: BLE001
        renderer = None
    out = save_results(
        args.out,
        {"mujoco_gl": os.environ.get("MUJOCO_GL"), "mujoco": renderer, "size": SIZE, "frames": args.frames,
         "repeats": args.repeats, "variants": results, "gl_renderer": gl_renderer()},
    )
    log(f"wrote {out}")


def gl_renderer() -> str | None:
    """The OpenGL renderer string MuJoCo's context reports (e.g. llvmpipe: software rendering)."""
    try:
        import mujoco
        from OpenGL import GL  # type: ignore[import-not-found]

        ctx = mujoco.GLContext(16, 16)
        ctx.make_current()
        name = GL.glGetString(GL.GL_RENDERER)
        ctx.free()
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:  # noqa: BLE001 - informational only
        return None


if __name__ == "__main__":
    main()
