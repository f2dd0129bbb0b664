"""Scoring throughput: vlmreward against the naive pipeline and the bare vision tower, on one model.

Sections (``--sections``, default all), each timed round-robin over ``--repeats`` rounds:

* ``headline``: frames/s of ``reward(frames)`` end to end (PyTorch; ONNX Runtime fp32 and int8)
  against the naive pipeline most users write (``CLIPProcessor`` on PIL images + ``CLIPModel``,
  batch by batch) and against the bare vision tower on already preprocessed tensors; plus
  preprocessing alone (ours, ``CLIPImageProcessor`` with its PIL and torchvision back-ends) on the
  same 400 × 600 CartPole frames.
* ``batch``: frames/s against batch size (PyTorch and ONNX int8, end to end).
* ``resolution``: 400 × 600 CartPole frames against 224 × 224 frames (the model's size: no resize).
* ``threads``: 1 against all threads (PyTorch end to end and bare, ONNX fp32 end to end, preprocessing).
* ``memory``: resident memory over a long stream of distinct frames (``--stream-frames``), with a
  bounded embedding cache in the loop.
* ``cache``: frames/s of a second pass over the same frames with the embedding cache.

The model is ``--model`` (a hub id or directory; any CLIP ``save_pretrained`` directory), by
default a random-weight ViT-B/32 built by :mod:`_models` (speed does not depend on the weights).
Writes ``results/scoring.json``; ``report.py`` turns the results into ``RESULTS.md``.

    .venv/bin/python benchmarks/bench_scoring.py            # a few minutes on 2 cores
    .venv/bin/python benchmarks/bench_scoring.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import vlmreward  # noqa: E402
from _common import interleaved, rss_mib, save_results, square_frames  # noqa: E402
from _models import vit_b32_directory  # noqa: E402
from vlmreward.models.cache import EmbeddingCache  # noqa: E402
from vlmreward.models.preprocess import as_frame_batch  # noqa: E402
from vlmreward.models.testing import render_cartpole_frames  # noqa: E402

GOAL, BASELINE = "a pole vertically upright on top of a cart", "a pole and a cart"
SECTIONS = ("headline", "batch", "resolution", "threads", "memory", "cache")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def chunks(n: int, batch: int) -> list[slice]:
    return [slice(i, min(i + batch, n)) for i in range(0, n, batch)]


class Setup:
    """The model loaded the ways the benchmarks compare; the ONNX graphs are exported on first use."""

    def __init__(self, model_path: str, onnx_cache: str) -> None:
        log(f"loading {model_path}")
        self.path = model_path
        self.torch = vlmreward.load_model(model_path)
        self.onnx_cache = onnx_cache
        self.export_s: dict[str, float] = {}
        self._models: dict[str, Any] = {"torch": self.torch}
        self._rewards: dict[str, Any] = {}

    def model(self, backend: str) -> Any:
        """``"torch"``, ``"onnx"`` (fp32) or ``"int8"``; exported and timed on first use."""
        if backend not in self._models:
            start = time.perf_counter()
            quantize = "int8" if backend == "int8" else None
            self._models[backend] = vlmreward.load_model(
                self.path, runtime="onnx", quantize=quantize, onnx_cache_dir=self.onnx_cache
            )
            self.export_s[backend] = time.perf_counter() - start
            log(f"ONNX {backend}: exported in {self.export_s[backend]:.1f} s")
        return self._models[backend]

    @property
    def onnx(self) -> Any:
        return self.model("onnx")

    @property
    def int8(self) -> Any:
        return self.model("int8")

    @property
    def rewards(self) -> dict[str, Any]:
        for backend in ("torch", "onnx", "int8"):
            if backend not in self._rewards:
                self._rewards[backend] = vlmreward.GoalBaselineReward(self.model(backend), goal=GOAL, baseline=BASELINE, alpha=0.5)
        return self._rewards

    def naive(self) -> tuple[Any, Any, torch.Tensor]:
        """The pipeline most users write: ``CLIPProcessor`` + ``CLIPModel`` from the same directory."""
        from transformers import CLIPModel, CLIPProcessor

        model = CLIPModel.from_pretrained(self.path).eval()
        processor = CLIPProcessor.from_pretrained(self.path)
        with torch.no_grad():
            text = processor(text=[GOAL], return_tensors="pt", padding=True)
            t = model.get_text_features(**text)
            t = t if isinstance(t, torch.Tensor) else t.pooler_output
        return model, processor, t / t.norm(dim=-1, keepdim=True)


def naive_scorer(setup: Setup, frames: np.ndarray, batch: int) -> Callable[[], int]:
    from PIL import Image

    model, processor, text = setup.naive()

    def run() -> int:
        for s in chunks(len(frames), batch):
            images = [Image.fromarray(f) for f in frames[s]]
            inputs = processor(images=images, return_tensors="pt")
            with torch.no_grad():
                e = model.get_image_features(pixel_values=inputs["pixel_values"])
                e = e if isinstance(e, torch.Tensor) else e.pooler_output
                e = e / e.norm(dim=-1, keepdim=True)
                (e @ text.T).squeeze(-1).numpy()
        return len(frames)

    run.processor_class = type(processor.image_processor).__name__  # type: ignore[attr-defined]
    return run


def bare_torch(setup: Setup, frames: np.ndarray, batch: int) -> Callable[[], int]:
    """The vision tower alone on preprocessed pixels: the limit for this model on this machine."""
    model = setup.torch
    pixels = [model.preprocess(frames[s]) for s in chunks(len(frames), batch)]
    network = model.model

    def run() -> int:
        with torch.inference_mode():
            for p in pixels:
                network.get_image_features(pixel_values=p)
        return len(frames)

    return run


def bare_onnx(setup: Setup, frames: np.ndarray, batch: int, which: str = "onnx") -> Callable[[], int]:
    model = setup.onnx if which == "onnx" else setup.int8
    pixels = [model.preprocess(frames[s]).numpy() for s in chunks(len(frames), batch)]
    session = model.session

    def run() -> int:
        for p in pixels:
            session.run(["embeddings"], {"pixels": p})
        return len(frames)

    return run


def overhead_only(setup: Setup, frames: np.ndarray, batch: int) -> Callable[[], int]:
    """``reward(frames)`` end to end with the vision tower replaced by a stub returning fixed embeddings.

    Times exactly what vlmreward adds around the tower (validation, batching, preprocessing,
    normalisation, the reward), in the real code path, free of the tower's timing noise.
    """
    model = copy.copy(setup.torch)
    model._text_cache = dict(setup.torch._text_cache)
    fixed = torch.randn(batch, model.embed_dim)
    model._embed_pixels = lambda pixels: fixed[: len(pixels)]  # type: ignore[method-assign]
    reward = vlmreward.GoalBaselineReward(model, goal=GOAL, baseline=BASELINE, alpha=0.5)
    return end_to_end(reward, frames, batch)


def end_to_end(reward: Any, frames: np.ndarray, batch: int) -> Callable[[], int]:
    def run() -> int:
        reward(frames, batch_size=batch)
        return len(frames)

    return run


def preprocess_ours(model: Any, frames: np.ndarray, batch: int) -> Callable[[], int]:
    def run() -> int:
        with torch.inference_mode():
            for s in chunks(len(frames), batch):
                model.preprocess(frames[s])
        return len(frames)

    return run


def preprocess_hf(path: str, frames: np.ndarray, batch: int, backend: str) -> Callable[[], int]:
    from transformers import CLIPImageProcessor, CLIPImageProcessorPil

    processor = (CLIPImageProcessorPil if backend == "pil" else CLIPImageProcessor).from_pretrained(path)

    def run() -> int:
        for s in chunks(len(frames), batch):
            processor(images=list(frames[s]), return_tensors="pt")
        return len(frames)

    return run


def rate_table(results: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {k: {"fps": v["per_s"], "ms_per_frame": 1000 * v["s_per_item"], "runs_fps": v["runs"]} for k, v in results.items()}


# ---------------------------------------------------------------------------------------------


def section_headline(setup: Setup, frames: np.ndarray, batches: list[int], repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {"frames": list(frames.shape), "batches": {}}
    for batch in batches:
        log(f"headline: batch {batch}, {len(frames)} frames of {frames.shape[1]}x{frames.shape[2]}")
        naive = naive_scorer(setup, frames, batch)
        variants = {
            "naive (CLIPProcessor + CLIPModel)": naive,
            "vlmreward, PyTorch": end_to_end(setup.rewards["torch"], frames, batch),
            "vlmreward, ONNX Runtime fp32": end_to_end(setup.rewards["onnx"], frames, batch),
            "vlmreward, ONNX Runtime int8": end_to_end(setup.rewards["int8"], frames, batch),
            "bare vision tower, PyTorch": bare_torch(setup, frames, batch),
            "bare vision tower, ONNX Runtime fp32": bare_onnx(setup, frames, batch, "onnx"),
            "bare vision tower, ONNX Runtime int8": bare_onnx(setup, frames, batch, "int8"),
            "vlmreward without the vision tower (stub): the overhead": overhead_only(setup, frames, batch),
        }
        results = rate_table(interleaved(variants, repeats, on_repeat=lambda r: log(f"  round {r + 1}/{repeats}")))
        out["batches"][str(batch)] = {"fps": results, "naive_processor": naive.processor_class}  # type: ignore[attr-defined]
    log("preprocessing alone")
    batch = max(batches)
    pre = {
        "vlmreward preprocess (uint8 kernels, batched)": preprocess_ours(setup.torch, frames, batch),
        "CLIPImageProcessorPil (PIL)": preprocess_hf(setup.path, frames, batch, "pil"),
        "CLIPImageProcessor (torchvision; transformers' default)": preprocess_hf(setup.path, frames, batch, "torchvision"),
    }
    out["preprocess"] = rate_table(interleaved(pre, max(repeats, 5)))
    out["preprocess_batch"] = batch
    return out


def section_batch(setup: Setup, frames: np.ndarray, sizes: list[int], repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for batch in sizes:
        n = max(len(frames) // 2, batch) if batch > 1 else min(len(frames), 32)
        sub = frames[:n]
        log(f"batch sweep: batch {batch}, {n} frames")
        variants = {
            "vlmreward, PyTorch": end_to_end(setup.rewards["torch"], sub, batch),
            "vlmreward, ONNX Runtime int8": end_to_end(setup.rewards["int8"], sub, batch),
            "bare vision tower, PyTorch": bare_torch(setup, sub, batch),
        }
        out[str(batch)] = rate_table(interleaved(variants, repeats))
    return out


def section_resolution(setup: Setup, frames: np.ndarray, batch: int, repeats: int) -> dict[str, Any]:
    small = square_frames(frames, setup.torch.image_size)
    log(f"resolution: {frames.shape[1]}x{frames.shape[2]} vs {small.shape[1]}x{small.shape[2]}, batch {batch}")
    variants = {
        "400x600, vlmreward PyTorch": end_to_end(setup.rewards["torch"], frames, batch),
        "224x224, vlmreward PyTorch": end_to_end(setup.rewards["torch"], small, batch),
        "400x600, preprocessing": preprocess_ours(setup.torch, frames, batch),
        "224x224, preprocessing": preprocess_ours(setup.torch, small, batch),
        "400x600, CLIPImageProcessorPil": preprocess_hf(setup.path, frames, batch, "pil"),
        "224x224, CLIPImageProcessorPil": preprocess_hf(setup.path, small, batch, "pil"),
    }
    return rate_table(interleaved(variants, repeats))


def section_threads(setup: Setup, frames: np.ndarray, batch: int, repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    all_threads = torch.get_num_threads()
    counts = sorted({1, all_threads})
    onnx_by_threads = {
        n: vlmreward.models.ONNXModel(setup.torch, cache_dir=setup.onnx_cache, num_threads=n) for n in counts
    }
    try:
        for n in counts:
            log(f"threads: {n}")
            torch.set_num_threads(n)
            reward = vlmreward.GoalBaselineReward(onnx_by_threads[n], goal=GOAL, baseline=BASELINE, alpha=0.5)
            variants = {
                "vlmreward, PyTorch": end_to_end(setup.rewards["torch"], frames, batch),
                "bare vision tower, PyTorch": bare_torch(setup, frames, batch),
                "vlmreward, ONNX Runtime fp32": end_to_end(reward, frames, batch),
                "preprocessing": preprocess_ours(setup.torch, frames, batch),
            }
            out[str(n)] = rate_table(interleaved(variants, repeats))
    finally:
        torch.set_num_threads(all_threads)
    return out


def section_memory(setup: Setup, n_frames: int, batch: int, every: int, backend: str, warmup: int) -> dict[str, Any]:
    """Distinct frames rendered on the fly (never all in memory), scored batch by batch.

    Resident memory is read after every batch (``samples``); ``every`` batches form one row of the
    report (minimum, maximum and last reading of the window). The report judges flatness on the
    readings after the first ``warmup`` frames (the allocator's pools grow to their working size).
    """
    import gymnasium as gym

    model = setup.model(backend)
    reward = vlmreward.GoalBaselineReward(model, goal=GOAL, baseline=BASELINE, alpha=0.5)
    cache = EmbeddingCache(max_entries=256)
    model.embedding_cache = cache
    env = gym.make("CartPole-v1", render_mode="rgb_array")
    env.reset(seed=1)
    rng = np.random.default_rng(1)
    samples: list[dict[str, float]] = []
    done_frames = 0
    start = time.perf_counter()
    log(f"memory: {n_frames} frames in batches of {batch}, {backend}, RSS after every batch")
    try:
        while done_frames < n_frames:
            frames = []
            for _ in range(min(batch, n_frames - done_frames)):
                frames.append(env.render())
                _, _, terminated, truncated, _ = env.step(int(rng.integers(2)))
                if terminated or truncated:
                    env.reset()
            reward(np.stack(frames), batch_size=batch)
            del frames
            done_frames += min(batch, n_frames - done_frames)
            samples.append(
                {
                    "frames": done_frames,
                    "rss_mib": rss_mib(),
                    "cache_entries": len(cache),
                    "cache_mib": cache.nbytes / 2**20,
                    "elapsed_s": time.perf_counter() - start,
                }
            )
            if len(samples) % every == 0 or done_frames >= n_frames:
                log(f"  {done_frames} frames, RSS {samples[-1]['rss_mib']:.1f} MiB, cache {len(cache)} entries")
    finally:
        model.embedding_cache = None
        env.close()
    return {
        "backend": backend, "batch": batch, "window": every, "warmup_frames": warmup, "samples": samples,
        "cache_stats": cache.stats().__dict__,
    }


def section_cache(setup: Setup, frames: np.ndarray, batch: int, repeats: int) -> dict[str, Any]:
    log("cache: second pass over the same frames")
    cache = EmbeddingCache(max_entries=10_000)
    setup.torch.encode_images(frames, batch_size=batch, cache=cache)  # fill it

    def cached() -> int:
        setup.torch.encode_images(frames, batch_size=batch, cache=cache)
        return len(frames)

    def uncached() -> int:
        setup.torch.encode_images(frames, batch_size=batch)
        return len(frames)

    results = rate_table(interleaved({"no cache": uncached, "embedding cache (all hits)": cached}, repeats))
    keys_per_s = interleaved({"hash": lambda: len(vlmreward.models.cache.frame_keys(as_frame_batch(frames)))}, 5)
    return {"fps": results, "key_ms_per_frame": 1000 * keys_per_s["hash"]["s_per_item"], "stats": cache.stats().__dict__}


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model directory or hub id (default: random ViT-B/32)")
    parser.add_argument("--frames", type=int, default=64, help="frames per timed call (headline)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", default="32,64", help="headline batch sizes")
    parser.add_argument("--sweep", default="1,8,32,64", help="batch sizes of the batch sweep")
    parser.add_argument("--stream-frames", type=int, default=4000, help="frames of the memory stream")
    parser.add_argument("--stream-warmup", type=int, default=1000, help="frames before memory is judged")
    parser.add_argument("--stream-backend", default="torch", choices=["torch", "onnx", "int8"])
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, not a measurement")
    parser.add_argument("--out", default="scoring", help="results/<out>.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.repeats, args.batches, args.sweep, args.stream_frames, args.stream_warmup = 8, 1, "8", "1,8", 64, 16
    sections = [s for s in args.sections.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")

    path = args.model or str(vit_b32_directory())
    frames = render_cartpole_frames(args.frames)
    with tempfile.TemporaryDirectory(prefix="vlmreward-bench-onnx-") as onnx_cache:
        setup = Setup(path, onnx_cache)
        payload: dict[str, Any] = {
            "model": {
                "path": path if args.model else "random-weight ViT-B/32 (transformers CLIPConfig() defaults)",
                "parameters": sum(p.numel() for p in setup.torch.model.parameters()),
                "vision_parameters": sum(p.numel() for p in setup.torch.model.vision_model.parameters()),
                "image_size": setup.torch.image_size,
                "resize": setup.torch.resize,
            },
            "repeats": args.repeats,
        }
        batches = [int(b) for b in args.batches.split(",")]
        if "headline" in sections:
            payload["headline"] = section_headline(setup, frames, batches, args.repeats)
            payload["agreement"] = agreement(setup, frames)
        if "batch" in sections:
            payload["batch"] = section_batch(setup, frames, [int(b) for b in args.sweep.split(",")], args.repeats)
        if "resolution" in sections:
            payload["resolution"] = section_resolution(setup, frames[: min(len(frames), 32)], min(batches), args.repeats)
        if "threads" in sections:
            payload["threads"] = section_threads(setup, frames[: min(len(frames), 32)], min(batches), args.repeats)
        if "cache" in sections:
            payload["cache"] = section_cache(setup, frames[: min(len(frames), 32)], min(batches), args.repeats)
        if "memory" in sections:
            payload["memory"] = section_memory(
                setup, args.stream_frames, max(batches), every=8, backend=args.stream_backend, warmup=args.stream_warmup
            )
    payload["onnx_export_s"] = setup.export_s
    out = save_results(args.out, payload)
    log(f"wrote {out}")


def agreement(setup: Setup, frames: np.ndarray) -> dict[str, float]:
    """Cosine similarity of ONNX (fp32, int8) and PyTorch image embeddings on the benchmark frames."""
    reference = setup.torch.encode_images(frames).double()
    out = {}
    for name, model in (("fp32", setup.onnx), ("int8", setup.int8)):
        cosine = (model.encode_images(frames).double() * reference).sum(-1)
        out[f"{name}_min_cosine"] = float(cosine.min())
        out[f"{name}_mean_cosine"] = float(cosine.mean())
    return out


if __name__ == "__main__":
    main()
