"""Prefix scoring (``token_progress``, TOPReward) prefixes/s: batched across prefixes against the naive loop.

Both variants score every step's prefix of one episode (the dense online reward), each prefix
sampled to ``max_frames`` frames, and give the same rewards (checked here to 1e-4):

* naive loop (LeRobot's ``compute_rabc_weights.py`` recipe): per prefix, the text, the processor
  on that one video, one forward pass with every position's logits, the answer's log-probability;
* vlmreward: :class:`vlmreward.rewards.progress.TokenProgressReward`'s ``score_clips`` on all the
  prefixes, ``batch`` a forward pass (left padding, ``logits_to_keep``: the language head on the
  answer's positions only), the text templated once.

Variants are timed round-robin (``_common.interleaved``). Model: the tests' random-weight
Qwen2.5-VL (2 layers; real processor, video processor and chat template), CartPole frames
(600 × 400, resized by the video processor to at most 64 patches of 28 px). Writes
``results/progress.json``; ``report.py`` adds a table to RESULTS.md.

    .venv/bin/python benchmarks/bench_progress.py            # about 2 minutes on 2 CPU cores
    .venv/bin/python benchmarks/bench_progress.py --quick
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
from vlmreward.models.testing_vlms import build_qwen2_5_vl  # noqa: E402
from vlmreward.rewards.progress import DEFAULT_PROMPT, DEFAULT_PROMPT_PREFIX, TokenProgressReward  # noqa: E402

TASK = "balance the pole upright on the cart"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def naive_loop(model: Any, clips: list[np.ndarray], out: list[float]) -> Callable[[], int]:
    """One processor call and one full forward per prefix, as LeRobot's dataset scoring does."""
    processor, network, tok = model.processor, model.model, model.tokenizer

    def run() -> int:
        out.clear()
        for clip in clips:
            messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": DEFAULT_PROMPT_PREFIX}]}]
            chat = processor.apply_chat_template(messages, add_generation_prompt=False, tokenize=False)
            head = chat[: chat.rindex(tok.eos_token)] + DEFAULT_PROMPT.format(instruction=TASK)
            text = head + " True"
            n = len(tok.encode(text, add_special_tokens=False)) - len(tok.encode(head, add_special_tokens=False))
            inputs = processor(text=[text], videos=[torch.from_numpy(clip).permute(0, 3, 1, 2)], return_tensors="pt",
                               do_sample_frames=False, video_metadata=[{"total_num_frames": len(clip), "fps": 2.0,
                                                                         "frames_indices": list(range(len(clip)))}])
            with torch.no_grad():
                log_probs = torch.log_softmax(network(**inputs).logits[0].float(), dim=-1)
            ids = inputs["input_ids"][0]
            out.append(float(sum(log_probs[p - 1, ids[p]] for p in range(len(ids) - n, len(ids)))))
        return len(clips)

    return run


def ours(reward: TokenProgressReward, clips: list[np.ndarray], batch: int, out: list[float]) -> Callable[[], int]:
    def run() -> int:
        reward.batch_size = batch
        out[:] = reward.score_clips(clips).tolist()
        return len(clips)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="8 steps, one round")
    parser.add_argument("--steps", type=int, default=48, help="episode length: one prefix per step")
    parser.add_argument("--max-frames", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="progress")
    args = parser.parse_args()
    steps, repeats = (8, 1) if args.quick else (args.steps, args.repeats)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        model = vlmreward.load_model(str(build_qwen2_5_vl(Path(tmp) / "qwen2_5_vl")))
        reward = TokenProgressReward(model, TASK, max_frames=args.max_frames)
        frames = render_cartpole_frames(steps)
        clips = [frames[: t + 1][reward.clip_indices(t + 1)] for t in range(steps)]
        results: dict[str, list[float]] = {}
        variants = {"naive loop (one forward per prefix)": naive_loop(model, clips, results.setdefault("naive", []))}
        for b in (8, 32):
            variants[f"vlmreward, batch {b}"] = ours(reward, clips, b, results.setdefault(f"b{b}", []))
        log(f"{steps} prefixes of up to {args.max_frames} frames, {repeats} rounds")
        timing = interleaved(variants, repeats, on_repeat=lambda r: log(f"  round {r + 1}/{repeats}"))
        for key in ("b8", "b32"):
            gap = float(np.max(np.abs(np.array(results[key]) - np.array(results["naive"]))))
            assert gap < 1e-4, f"the variants disagree by {gap}"
        naive = timing["naive loop (one forward per prefix)"]["per_s"]
        rows = []
        for variant, t in timing.items():
            rows.append({"variant": variant, "prefixes_per_s": t["per_s"], "ms_per_prefix": 1000 * t["s_per_item"],
                         "vs_naive": t["per_s"] / naive})
            log(f"  {variant:36s} {t['per_s']:8.2f} prefixes/s  {t['per_s'] / naive:5.2f}x the naive loop")
        path = save_results(args.out, {"task": TASK, "steps": steps, "max_frames": args.max_frames,
                                       "frame_size": list(frames.shape[1:3]), "model": "tiny qwen2_5_vl", "rows": rows})
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
