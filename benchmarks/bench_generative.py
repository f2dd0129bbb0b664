"""Generative-VLM reward frames/s: vlmreward's ``vqa`` reward against the loop a user writes.

The naive loop, per frame: the chat template, the processor on one image, ``model.generate(...,
max_new_tokens=1, do_sample=False)`` and the decoded answer compared with "yes" (a binary
reward). Ours: :class:`vlmreward.rewards.vqa.VQAReward` (one forward pass per batch, the question
formatted once, left padding, ``logits_to_keep=1``, the probability of every yes/no spelling), at
batch sizes 1, 8 and 32. All variants score the same frames and are timed round-robin
(``_common.interleaved``) so that machine load falls on all alike.

Models (random weights, real architectures and processors, :mod:`vlmreward.models.testing_vlms`):

* ``tiny``: the 2-layer SmolVLM of the tests (32-px images): where fixed per-call costs dominate;
* ``smolvlm-256m``: SmolVLM-256M-Instruct's dimensions (256 M parameters, 512-px images without
  splitting, 64 image tokens a frame).

Frames are CartPole renders (600 × 400). Writes ``results/generative.json``; ``report.py`` adds
a table to RESULTS.md.

    .venv/bin/python benchmarks/bench_generative.py            # about 15 minutes on 2 CPU cores
    .venv/bin/python benchmarks/bench_generative.py --quick
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import vlmreward  # noqa: E402
from _common import interleaved, save_results  # noqa: E402
from vlmreward.models.testing import render_cartpole_frames  # noqa: E402
from vlmreward.models.testing_vlms import build_smolvlm  # noqa: E402
from vlmreward.rewards.vqa import DEFAULT_VQA_TEMPLATE, VQAReward  # noqa: E402

GOAL = "a pole standing upright on a cart"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def naive_loop(model: Any, frames: np.ndarray, question: str) -> Callable[[], int]:
    """What a user writes first: generate one token per frame and parse the text."""
    from PIL import Image

    processor, network = model.processor, model.model

    def run() -> int:
        rewards = []
        for frame in frames:
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
            text = processor.apply_chat_template(messages, add_generation_prompt=True)
            inputs = processor(text=[text], images=[[Image.fromarray(frame)]], return_tensors="pt")
            with torch.no_grad():
                out = network.generate(**inputs, max_new_tokens=1, do_sample=False)
            answer = processor.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
            rewards.append(1.0 if answer.strip().lower().startswith("yes") else 0.0)
        return len(rewards)

    return run


def ours(reward: VQAReward, frames: np.ndarray, batch: int) -> Callable[[], int]:
    def run() -> int:
        return len(reward(frames, batch_size=batch))

    return run


def bench_model(name: str, path: Path, n_frames: int, batches: list[int], repeats: int) -> dict[str, Any]:
    model = vlmreward.load_model(str(path))
    parameters = sum(p.numel() for p in model.model.parameters())
    frames = render_cartpole_frames(n_frames)
    reward = VQAReward(model, GOAL)
    question = DEFAULT_VQA_TEMPLATE.format(goal=GOAL)
    variants = {"naive generate loop": naive_loop(model, frames, question)}
    variants.update({f"vqa reward, batch {b}": ours(reward, frames, b) for b in batches})
    log(f"{name}: {parameters / 1e6:.1f} M parameters, {n_frames} frames, {repeats} rounds")
    timing = interleaved(variants, repeats, on_repeat=lambda r: log(f"  round {r + 1}/{repeats}"))
    naive = timing["naive generate loop"]["per_s"]
    rows = []
    for variant, t in timing.items():
        rows.append({"variant": variant, "frames_per_s": t["per_s"], "ms_per_frame": 1000 * t["s_per_item"],
                     "vs_naive": t["per_s"] / naive})
        log(f"  {variant:24s} {t['per_s']:8.2f} frames/s  {t['per_s'] / naive:5.2f}x the naive loop")
    return {"model": name, "parameters": parameters, "frames": n_frames, "frame_size": list(frames.shape[1:3]), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny model only, 8 frames, one round")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="generative")
    args = parser.parse_args()
    batches = [1, 8, 32]
    with tempfile.TemporaryDirectory() as tmp:
        results = []
        tiny = build_smolvlm(Path(tmp) / "tiny")
        if args.quick:
            results.append(bench_model("tiny", tiny, 8, [1, 8], 1))
        else:
            results.append(bench_model("tiny", tiny, args.frames, batches, max(3, args.repeats)))
            big = build_smolvlm(Path(tmp) / "256m", size="256m")
            results.append(bench_model("smolvlm-256m", big, args.frames, batches, args.repeats))
    path = save_results(args.out, {"goal": GOAL, "models": results})
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
