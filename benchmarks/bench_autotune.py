"""``batch_size: auto`` against every hand-picked batch size and the naive transformers loop, on 3 runs.

Each run starts from an empty autotune cache, so the batch size is timed again
(:func:`vlmreward.models.autotune.autotune_batch_size`); then, round-robin over ``--repeats`` rounds on
the same ``--frames`` CartPole frames (400 × 600), frames/s of:

* ``reward(frames)`` with the model loaded as ``batch_size="auto"`` (the tuned size);
* ``reward(frames, batch_size=b)`` for each hand-picked ``b`` of :data:`~vlmreward.models.autotune.BATCH_CANDIDATES`;
* the naive pipeline (``CLIPProcessor`` on PIL images + ``CLIPModel``) at batch 32 and 64.

The model is ``--model`` or the random-weight ViT-B/32 of :mod:`_models`. Writes
``results/autotune.json``; ``report.py`` turns it into ``RESULTS.md``.

    .venv/bin/python benchmarks/bench_autotune.py            # about 6 minutes on 2 cores
    .venv/bin/python benchmarks/bench_autotune.py --quick    # smoke run
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
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import vlmreward  # noqa: E402
from _common import interleaved, machine_info, save_results  # noqa: E402
from _models import vit_b32_directory  # noqa: E402
from bench_scoring import BASELINE, GOAL, Setup, end_to_end, log, naive_scorer  # noqa: E402
from vlmreward.models.autotune import BATCH_CANDIDATES  # noqa: E402
from vlmreward.models.spec import ModelSpec  # noqa: E402
from vlmreward.models.testing import render_cartpole_frames  # noqa: E402


def one_run(path: str, frames: Any, repeats: int, setup: Setup, naive_batches: list[int], candidates: list[int]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vlmreward-autotune-") as cache:
        os.environ["VLMREWARD_CACHE_DIR"] = cache  # an empty cache: this run times the batch sizes again
        model = ModelSpec(path, device="cpu", batch_size="auto").load()
        start = time.perf_counter()
        chosen = model.batch_size_for(frames.shape[1:3])
        tune_s = time.perf_counter() - start
        choice = model.batch_choices[tuple(frames.shape[1:3])]
        reward = vlmreward.GoalBaselineReward(model, goal=GOAL, baseline=BASELINE, alpha=0.5)
        variants = {"auto": end_to_end(reward, frames, None)}
        variants.update({f"batch {b}": end_to_end(reward, frames, b) for b in candidates})
        variants.update({f"naive transformers, batch {b}": naive_scorer(setup, frames, b) for b in naive_batches})
        timed = interleaved(variants, repeats)
    rates = {name: t["per_s"] for name, t in timed.items()}
    best_name = max((n for n in rates if n.startswith("batch ")), key=rates.__getitem__)
    best_naive = max((n for n in rates if n.startswith("naive")), key=rates.__getitem__)
    log(f"auto chose {chosen} ({tune_s:.1f} s): {rates['auto']:.1f} frames/s; best hand-picked {best_name} "
        f"{rates[best_name]:.1f}; {best_naive} {rates[best_naive]:.1f}")
    return {"chosen": chosen, "tune_s": tune_s, "seconds_per_frame": {str(k): v for k, v in choice.seconds_per_frame.items()},
            "frames_per_s": rates, "best_hand_picked": best_name, "best_naive": best_naive,
            "vs_best_hand_picked": rates["auto"] / rates[best_name], "vs_naive": rates["auto"] / rates[best_naive]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model directory or hub id (default: random ViT-B/32)")
    parser.add_argument("--frames", type=int, default=128, help="frames per timed call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, not a measurement")
    parser.add_argument("--out", default="autotune", help="results/<out>.json")
    args = parser.parse_args(argv)
    candidates, naive_batches = list(BATCH_CANDIDATES), [32, 64]
    if args.quick:
        args.frames, args.repeats, args.runs, candidates, naive_batches = 8, 1, 1, [8], [8]
    path = args.model or str(vit_b32_directory())
    frames = render_cartpole_frames(args.frames)
    with tempfile.TemporaryDirectory(prefix="vlmreward-bench-onnx-") as onnx_cache:
        setup = Setup(path, onnx_cache)
        runs = [one_run(path, frames, args.repeats, setup, naive_batches, candidates) for _ in range(args.runs)]
    payload = {
        "machine": machine_info(),
        "model": path if args.model else "random-weight ViT-B/32 (transformers CLIPConfig() defaults)",
        "frames": args.frames, "frame_size": list(frames.shape[1:3]), "repeats": args.repeats, "runs": runs,
    }
    log(f"wrote {save_results(args.out, payload)}")


if __name__ == "__main__":
    main()
