"""``batch_size: auto``: the vision tower's batch size timed on this machine, chosen once and cached.

The fastest batch size per frame depends on the model, the device, the dtype, the frame size and
the number of threads: on a 2-core CPU a random-weight ViT-B/32 is faster per frame at 32 than at
64 (``benchmarks/RESULTS.md``). :func:`autotune_batch_size` times the model's whole image path
(preprocessing and vision tower: what :meth:`~vlmreward.models.base.VisionLanguageModel.encode_images`
runs, without an embedding cache) on random frames of the size asked: one warm-up pass of the smallest
of :data:`BATCH_CANDIDATES`, ``repeats`` timed passes of one batch of each (the first pass of a new
batch shape pays its allocations: the best time is kept), then one more pass of the two fastest
(the choice is between them), and keeps the size with the smallest seconds per frame. The choice is cached in ``autotune.json`` under
:func:`vlmreward._paths.cache_root` (``$VLMREWARD_CACHE_DIR``, else ``~/.cache/vlmreward``), keyed
by everything the timing depends on (:func:`autotune_key`), so a later run on the same machine
asks nothing. An explicit batch size (a number in a config or ``--batch-size``) is never tuned.

A model loaded with ``batch_size="auto"`` (:class:`~vlmreward.models.spec.ModelSpec`) tunes on its
first :meth:`encode_images` call for each frame size (``model.batch_choices`` keeps what was chosen,
reported in ``metrics.json`` by ``evaluate``). The batch size changes only how frames are chunked:
the embeddings are those of any other batch size up to float rounding.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from vlmreward._paths import atomic_write_text, cache_root
from vlmreward.errors import InvalidParameterError

__all__ = ["AUTO", "BATCH_CANDIDATES", "AUTOTUNE_FILE", "BatchChoice", "autotune_key", "autotune_batch_size"]

AUTO = "auto"
"""The ``batch_size`` value that asks for tuning."""
BATCH_CANDIDATES: tuple[int, ...] = (8, 16, 32, 64, 128)
"""Batch sizes timed (frames per forward pass of the vision tower)."""
AUTOTUNE_FILE = "autotune.json"


@dataclass
class BatchChoice:
    """What :func:`autotune_batch_size` chose.

    Attributes:
        batch_size: the fastest candidate per frame.
        seconds_per_frame: ``{batch size: best seconds per frame}`` for each candidate timed.
        cached: read from the cache file (nothing timed).
        key: the cache key (:func:`autotune_key`).
        frame_size: ``(H, W)`` of the frames timed.
    """

    batch_size: int
    seconds_per_frame: dict[int, float] = field(default_factory=dict)
    cached: bool = False
    key: str = ""
    frame_size: tuple[int, int] = (0, 0)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["seconds_per_frame"] = {str(k): v for k, v in self.seconds_per_frame.items()}
        out["frame_size"] = list(self.frame_size)
        return out


def autotune_key(model: Any, frame_size: tuple[int, int]) -> str:
    """What the timing depends on, as one string: the model (name, backend, runtime, class, image size,
    resize), device, dtype, autocast, ``torch.compile`` mode, frame size, PyTorch's thread count and the
    machine (processor, architecture)."""
    h, w = frame_size
    parts = [str(model.name), str(getattr(model, "backend", "")), str(getattr(model, "runtime", "torch")), type(model).__name__,
             f"S{getattr(model, 'image_size', '')}", str(getattr(model, "resize", "")), str(model.device),
             str(model.dtype).removeprefix("torch."), f"autocast={getattr(model, 'autocast_dtype', None)}",
             f"compile={getattr(model, 'compile_mode', None)}", f"{h}x{w}", f"threads{torch.get_num_threads()}",
             platform.machine(), platform.processor() or "", str(os.cpu_count())]
    return "|".join(parts)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # absent or damaged: tuned again and rewritten
    return data if isinstance(data, dict) else {}


def autotune_batch_size(model: Any, frame_size: tuple[int, int], *, candidates: Sequence[int] = BATCH_CANDIDATES,
                        repeats: int = 2, cache_path: str | os.PathLike | None = None, seed: int = 0) -> BatchChoice:
    """Time each candidate batch size on random ``uint8`` frames of ``frame_size`` and return the fastest per frame.

    Args:
        model: a :class:`~vlmreward.models.base.VisionLanguageModel` (its ``encode_images`` is timed).
        frame_size: ``(H, W)`` in pixels of the frames it will embed.
        candidates: batch sizes to time (each ≥ 1).
        repeats: timed passes of each candidate (the two fastest: one more), the best kept.
        cache_path: the cache file (default ``cache_root() / "autotune.json"``); read first, written after timing.
        seed: seed of the random frames.

    Returns:
        The :class:`BatchChoice`; ``cached`` when the cache held the key.

    Raises:
        InvalidParameterError: no candidate, a candidate < 1, ``repeats < 1`` or a frame size < 1.
    """
    candidates = sorted({int(c) for c in candidates})
    h, w = (int(v) for v in frame_size)
    if not candidates or candidates[0] < 1 or repeats < 1 or h < 1 or w < 1:
        raise InvalidParameterError(f"autotune needs candidates ≥ 1, repeats ≥ 1 and a frame size; got {candidates}, "
                                    f"{repeats}, {frame_size}.")
    path = Path(cache_path) if cache_path is not None else cache_root() / AUTOTUNE_FILE
    key = autotune_key(model, (h, w))
    entry = _read(path).get(key)
    if isinstance(entry, dict) and isinstance(entry.get("batch_size"), int) and entry["batch_size"] in candidates:
        timed = {int(k): float(v) for k, v in (entry.get("seconds_per_frame") or {}).items()}
        return BatchChoice(entry["batch_size"], timed, True, key, (h, w))
    frames = torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (candidates[-1], h, w, 3), dtype=np.uint8))

    def seconds_per_frame(b: int) -> float:
        start = time.perf_counter()
        with torch.inference_mode():  # encode_images' path without its embedding cache (random frames are not kept)
            model._encode_batch(frames[:b], b)
        if model.device.type == "cuda":
            torch.cuda.synchronize(model.device)
        return (time.perf_counter() - start) / b

    seconds_per_frame(candidates[0])  # warm-up (lazy initialisation, first allocations)
    timed = {b: min(seconds_per_frame(b) for _ in range(repeats)) for b in candidates}
    for b in sorted(timed, key=timed.__getitem__)[:2]:  # the two fastest again: the choice is between them
        timed[b] = min(timed[b], seconds_per_frame(b))
    choice = BatchChoice(min(timed, key=timed.__getitem__), timed, False, key, (h, w))
    data = _read(path)
    data[key] = {"batch_size": choice.batch_size, "seconds_per_frame": {str(k): v for k, v in timed.items()},
                 "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")
    except OSError:
        pass  # a read-only cache: the choice holds for this process
    return choice
