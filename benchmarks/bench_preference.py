"""Preference labels/s (``preference`` kind, RL-VLM-F's query): one forward per batch of ordered queries against a
naive loop of one ``generate`` per pair, side by side; and the label cache's hit rate on a rerun.

* naive loop (RL-VLM-F's ``get_label`` with a local model in place of Gemini): per pair, the two images and the
  question, ``generate`` a few tokens greedily, parse the first "1"/"2" (one order only: position bias is not removed);
* vlmreward: :class:`vlmreward.rewards.preference_labels.VLMPreferenceLabeller` (one stage), both orders of every
  pair, ``batch`` queries a forward pass, the label read from the next-token log-probabilities of "1" and "2";
* rerun: the same pairs through a fresh labeller on the same cache file (answers read back, no model call).

Variants are timed round-robin (``_common.interleaved``); labels/s counts *pairs* for every variant (vlmreward asks two
queries per pair). Model: the tests' random-weight Qwen2.5-VL; CartPole frames resized to 224 × 224 (the
``query_size`` default). Writes ``results/preference.json``; ``report.py`` adds a table to RESULTS.md.

    .venv/bin/python benchmarks/bench_preference.py            # about a minute on 2 CPU cores
    .venv/bin/python benchmarks/bench_preference.py --quick
"""

from __future__ import annotations

import argparse
import re
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
from vlmreward.models.generative_video import generate_after_frames  # noqa: E402
from vlmreward.models.testing import render_cartpole_frames  # noqa: E402
from vlmreward.models.testing_vlms import build_qwen2_5_vl  # noqa: E402
from vlmreward.rewards.preference import resize_frames  # noqa: E402
from vlmreward.rewards.preference_labels import IMAGE_1, IMAGE_2, LABEL_QUESTION, LabelCache, VLMPreferenceLabeller  # noqa: E402

GOAL = "to balance the brown pole on the black cart to be upright"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def naive_loop(model: Any, a: np.ndarray, b: np.ndarray, max_new_tokens: int) -> Callable[[], int]:
    def run() -> int:
        for x, y in zip(a, b):
            text = generate_after_frames(model, [IMAGE_1, x, IMAGE_2, y, LABEL_QUESTION.format(goal=GOAL)], max_new_tokens)
            re.search(r"[12]", text)  # the parse RL-VLM-F does on Gemini's reply
        return len(a)

    return run


def ours(model: Any, a: np.ndarray, b: np.ndarray, batch: int) -> Callable[[], int]:
    def run() -> int:
        VLMPreferenceLabeller(model, GOAL, batch_size=batch).label(a, b)  # no cache: every query asked
        return len(a)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 pairs, one round")
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=4, help="tokens the naive loop generates per pair")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="preference")
    args = parser.parse_args()
    pairs, repeats = (4, 1) if args.quick else (args.pairs, args.repeats)
    torch.manual_seed(0)
    frames = resize_frames(render_cartpole_frames(2 * pairs), 224)
    a, b = frames[:pairs], frames[pairs:]
    with tempfile.TemporaryDirectory() as tmp:
        model = vlmreward.load_model(str(build_qwen2_5_vl(Path(tmp) / "qwen2_5_vl")))
        variants = {f"naive loop (one generate of {args.max_new_tokens} tokens per pair, one order)":
                    naive_loop(model, a, b, args.max_new_tokens)}
        for batch in (8, 32):
            variants[f"vlmreward, both orders, batch {batch}"] = ours(model, a, b, batch)
        log(f"{pairs} pairs of 224 x 224 frames, {repeats} rounds")
        timing = interleaved(variants, repeats, on_repeat=lambda r: log(f"  round {r + 1}/{repeats}"))
        cache_path = Path(tmp) / "labels.jsonl"
        first = VLMPreferenceLabeller(model, GOAL, cache=LabelCache(cache_path))
        first.label(a, b)
        rerun = VLMPreferenceLabeller(model, GOAL, cache=LabelCache(cache_path))
        start = time.perf_counter()
        rerun.label(a, b)
        rerun_s = time.perf_counter() - start
        hit_rate = rerun.cache_hits / max(1, rerun.cache_hits + rerun.model_calls)
    naive = next(iter(timing.values()))["per_s"]
    rows = []
    for variant, t in timing.items():
        rows.append({"variant": variant, "pairs_per_s": t["per_s"], "ms_per_pair": 1000 * t["s_per_item"], "vs_naive": t["per_s"] / naive})
        log(f"  {variant:60s} {t['per_s']:8.2f} pairs/s  {t['per_s'] / naive:5.2f}x the naive loop")
    rows.append({"variant": "vlmreward, rerun from the label cache", "pairs_per_s": pairs / rerun_s, "ms_per_pair": 1000 * rerun_s / pairs,
                 "vs_naive": pairs / rerun_s / naive})
    log(f"  cache rerun: {pairs / rerun_s:.1f} pairs/s, hit rate {hit_rate:.0%}")
    path = save_results(args.out, {"goal": GOAL, "pairs": pairs, "frame_size": [224, 224], "model": "tiny qwen2_5_vl",
                                   "max_new_tokens": args.max_new_tokens, "cache_hit_rate": hit_rate, "rows": rows})
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
