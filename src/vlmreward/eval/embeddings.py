"""Image embeddings of a dataset, computed once per (model, dataset) and cached on disk.

Every reward of :mod:`vlmreward.rewards` is a function of the unit image embeddings
(``from_embeddings``), so evaluating more prompts or reward parameters needs no second pass of
the vision tower: :func:`embed_dataset` runs that pass once and keeps the result as ``.npy``::

    CACHE_DIR/<model key>/<dataset key>.npy     float32 [N, D], unit rows
    CACHE_DIR/<model key>/<dataset key>.json    what the key stands for (model, dataset, sizes)

* The **model key** hashes what the embeddings depend on: the model's name and backend, its
  weights (names, shapes, dtypes and a sample of values of every parameter: cheap even for a
  ViT-g, and different for two checkpoints of one architecture), its weight dtype and its
  preprocessing (input size, mean, std, interpolation, resize mode).
* The **dataset key** hashes the content of ``frames.npy`` (BLAKE2b). The hash is memoised in
  ``CACHE_DIR/fingerprints.json`` by (path, size, modification time), so an unchanged dataset is
  not read again; a rewritten one gets a new key.

A cache file that cannot be read or has the wrong shape is recomputed (and overwritten).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from vlmreward._paths import atomic_write_bytes
from vlmreward.eval.dataset import FRAMES_FILE, Dataset
from vlmreward.models.base import VisionLanguageModel

__all__ = [
    "EmbeddingResult",
    "embed_dataset",
    "model_fingerprint",
    "model_key",
    "dataset_fingerprint",
    "count_parameters",
    "resize_note",
    "scores_embeddings",
    "frame_rewards",
    "DEFAULT_CACHE_SUBDIR",
]

DEFAULT_CACHE_SUBDIR = "embeddings_cache"
"""Default cache directory inside a dataset directory (``DATASET/embeddings_cache``)."""

_SAMPLE = 64  # values sampled from each end of every parameter for the model key
_CHUNK = 1 << 24


@dataclass(frozen=True)
class EmbeddingResult:
    """Image embeddings of a dataset.

    Attributes:
        embeddings: ``float32 [N, D]`` NumPy array, unit L2 rows, in frame order.
        cache_hit: whether they were read from the cache (no image pass ran).
        path: the cache file, or None without a cache.
        model_key, dataset_key: the two halves of the cache key (hex; ``dataset_key`` is empty
            without a cache, as the frames are then not hashed).
    """

    embeddings: np.ndarray
    cache_hit: bool
    path: Path | None
    model_key: str
    dataset_key: str


def count_parameters(model: VisionLanguageModel) -> int | None:
    """Parameters of the underlying network (both towers), ``sum(p.numel())``; None if unknown."""
    network = getattr(model, "model", None)
    if not isinstance(network, torch.nn.Module):
        return None
    return int(sum(p.numel() for p in network.parameters()))


def model_fingerprint(model: VisionLanguageModel) -> dict[str, Any]:
    """What a model's image embeddings depend on, as a JSON-serialisable dict (see the module docstring)."""
    cfg = model.preprocess_config
    fingerprint: dict[str, Any] = {
        "name": model.name,
        "backend": getattr(model, "backend", type(model).__name__),
        "runtime": getattr(model, "runtime", "torch"),
        "class": type(model).__name__,
        "embed_dim": model.embed_dim,
        "dtype": str(model.dtype).removeprefix("torch."),
        "preprocess": {
            "image_size": cfg.image_size,
            "mean": list(cfg.mean),
            "std": list(cfg.std),
            "interpolation": cfg.interpolation,
            "resize": cfg.resize,
            "crop_rounding": cfg.crop_rounding,
            "antialias": cfg.antialias,
        },
    }
    network = getattr(model, "model", None)
    if isinstance(network, torch.nn.Module):
        digest = hashlib.blake2b(digest_size=16)
        with torch.no_grad():
            for name, p in network.state_dict().items():
                flat = p.detach().reshape(-1)
                sample = torch.cat([flat[:_SAMPLE], flat[-_SAMPLE:]]) if flat.numel() > 2 * _SAMPLE else flat
                digest.update(f"{name}:{tuple(p.shape)}:{p.dtype}".encode())
                digest.update(sample.float().cpu().numpy().tobytes())
        fingerprint["weights"] = digest.hexdigest()
        fingerprint["parameters"] = count_parameters(model)
    return fingerprint


def model_key(model: VisionLanguageModel, fingerprint: dict[str, Any] | None = None) -> str:
    """Hex key (16 characters) of :func:`model_fingerprint` (pass it if already computed)."""
    text = json.dumps(fingerprint if fingerprint is not None else model_fingerprint(model), sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _hash_file(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def dataset_fingerprint(dataset: Dataset, cache_dir: str | os.PathLike | None = None) -> str:
    """BLAKE2b of ``frames.npy`` (hex, 32 characters), memoised in ``cache_dir/fingerprints.json``."""
    frames_file = (dataset.path / FRAMES_FILE).resolve()
    stat = frames_file.stat()
    token = f"{frames_file}|{stat.st_size}|{stat.st_mtime_ns}"
    memo_file = Path(cache_dir) / "fingerprints.json" if cache_dir is not None else None
    memo: dict[str, str] = {}
    if memo_file is not None and memo_file.is_file():
        try:
            memo = json.loads(memo_file.read_text(encoding="utf-8"))
            if not isinstance(memo, dict):
                memo = {}
        except (OSError, ValueError):
            memo = {}
    if token in memo:
        return str(memo[token])
    fingerprint = _hash_file(frames_file)
    if memo_file is not None:
        memo = {k: v for k, v in memo.items() if not k.startswith(f"{frames_file}|")}
        memo[token] = fingerprint
        atomic_write_bytes(memo_file, json.dumps(memo, indent=1).encode())
    return fingerprint


def _read_cache(path: Path, n: int, d: int) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        array = np.load(path, allow_pickle=False)
    except Exception:  # noqa: BLE001 - a damaged cache is recomputed
        return None
    if array.dtype != np.float32 or array.shape != (n, d) or not np.all(np.isfinite(array)):
        return None
    return array


def scores_embeddings(reward: Any) -> bool:
    """Whether ``reward`` scores its model's image embeddings (``from_embeddings`` and a ``model``
    that embeds images), so a cached image pass serves it. A model-free reward's ``from_embeddings``
    takes its own features (the CartPole pixel oracle's), not a VLM's."""
    return callable(getattr(reward, "from_embeddings", None)) and hasattr(getattr(reward, "model", None), "encode_images")


def frame_rewards(
    reward: Any, frames: np.ndarray, batch_size: int | None = None, progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """``reward(frames)`` in batches, for rewards without ``from_embeddings`` (generative VLMs):
    ``float32 [N]`` for uint8 frames ``[N, H, W, 3]`` (a memory map is read batch by batch).

    Args:
        reward: any frame reward (``__call__(frames) -> float32 [N]``).
        frames: the dataset's frames.
        batch_size: frames per call (default: the reward model's ``batch_size``, else 32).
        progress: called with the number of frames of each batch.
    """
    step = int(batch_size or getattr(getattr(reward, "model", None), "batch_size", None) or 32)
    out = []
    for start in range(0, len(frames), step):
        batch = np.array(frames[start : start + step])  # a writable copy of a memory-mapped slice
        out.append(np.asarray(reward(batch), dtype=np.float32))
        if progress is not None:
            progress(len(batch))
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def resize_note(model: VisionLanguageModel, render_size: tuple[int, int]) -> str | None:
    """A note when frames of ``render_size`` (``(H, W)``) are not the model's square input, else None."""
    h, w = render_size
    s = getattr(model, "image_size", None)
    if s is None or (h, w) == (s, s):  # a generative VLM's processor sizes images itself
        return None
    how = {
        "squash": "both sides scaled (aspect ratio not kept)",
        "crop": "shorter side scaled, then a centre crop (the sides of the frame are cut off)",
        "pad": "longer side scaled, then padded to a square",
    }.get(model.resize, model.resize)
    return (
        f"frames are {w}x{h} pixels (width x height) but {model.name} takes {s}x{s}: they were resized with "
        f"resize={model.resize!r} ({how})."
    )


@torch.inference_mode()
def embed_dataset(
    model: VisionLanguageModel,
    dataset: Dataset,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> EmbeddingResult:
    """Unit image embeddings of every frame of ``dataset``, from the cache or from one image pass.

    Args:
        model: the vision-language model.
        dataset: a loaded dataset (frames memory-mapped; read in batches).
        cache_dir: the cache directory (created if needed); None to compute without caching.
        batch_size: frames per forward pass (default: the model's).
        progress: called with the number of frames of each embedded batch.

    Returns:
        :class:`EmbeddingResult` with ``float32 [N, D]`` embeddings on the CPU.

    Raises:
        InvalidFramesError: frames the model cannot take (never for a validated dataset).
    """
    n, d = len(dataset), model.embed_dim
    fingerprint = model_fingerprint(model)
    mkey = model_key(model, fingerprint)
    dkey = dataset_fingerprint(dataset, cache_dir) if cache_dir is not None else ""
    path = Path(cache_dir) / mkey / f"{dkey}.npy" if cache_dir is not None else None
    if path is not None:
        cached = _read_cache(path, n, d)
        if cached is not None:
            return EmbeddingResult(cached, True, path, mkey, dkey)

    step = model.batch_size_for(dataset.render_size) if batch_size is None else batch_size
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, step):
        chunk = np.array(dataset.frames[start : start + step])  # a writable copy of one batch (torch needs one)
        out[start : start + len(chunk)] = model.encode_images(chunk, batch_size=step).float().cpu().numpy()
        if progress is not None:
            progress(len(chunk))

    if path is not None:
        import io

        buffer = io.BytesIO()
        np.save(buffer, out, allow_pickle=False)
        atomic_write_bytes(path, buffer.getvalue())
        info = {
            "model": fingerprint,
            "dataset": str(dataset.path.resolve()),
            "dataset_key": dkey,
            "frames": n,
            "embed_dim": d,
            "render_size": list(dataset.render_size),
            "device": str(model.device),
        }
        atomic_write_bytes(path.with_suffix(".json"), (json.dumps(info, indent=2) + "\n").encode())
    return EmbeddingResult(out, False, path, mkey, dkey)
