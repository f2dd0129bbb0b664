"""An in-memory, bounded cache of image embeddings keyed by frame content.

Evaluation datasets, parameter sweeps and environments that revisit the same rendered states
(CartPole at rest, a reset pose) score identical frames again and again. :class:`EmbeddingCache`
keeps the unit embedding of each distinct frame, so a repeated frame costs a hash instead of a
pass through the vision tower::

    cache = EmbeddingCache(max_bytes=64 * 2**20)
    model.embedding_cache = cache                  # every encode_images call (and reward) uses it
    model.encode_images(frames, cache=cache)       # or one call

The key is a SHA-1 digest of the frame's shape and bytes (about 0.4 ms for a 400 × 600 frame on
a CPU with SHA instructions; a cryptographic hash so that two different frames never share an
embedding by accident: a collision of 160-bit digests is out of reach) plus the model's identity,
so one cache may serve several models. Least recently used entries are evicted first once
``max_entries`` or ``max_bytes`` would be exceeded; memory stays bounded however long the
stream (``tests/test_cache.py``, ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from vlmreward.errors import InvalidParameterError

__all__ = ["EmbeddingCache", "CacheStats", "frame_keys", "ENTRY_OVERHEAD_BYTES"]

ENTRY_OVERHEAD_BYTES = 320
"""Bytes an entry costs besides its embedding: the 20-byte key object (53 bytes), the NumPy array
object (112) and the ordered dict's slot with its share of the table (about 240 in all on CPython
3.11, 64-bit); ``tests/test_cache.py`` checks with ``tracemalloc``
that the real cost per entry stays below this figure plus the embedding."""


@dataclass(frozen=True)
class CacheStats:
    """Counters of an :class:`EmbeddingCache`.

    Attributes:
        hits: frames served without a vision-tower pass of their own (found in the cache, or a
            repeat of another frame of the same batch).
        misses: distinct frames that had to be embedded.
        evictions: entries dropped to stay within the bounds.
        entries: entries held now.
        nbytes: bytes held now (embeddings plus :data:`ENTRY_OVERHEAD_BYTES` per entry).
    """

    hits: int
    misses: int
    evictions: int
    entries: int
    nbytes: int

    @property
    def hit_rate(self) -> float:
        """``hits / (hits + misses)``, 0 before any lookup."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


def frame_keys(frames: torch.Tensor, namespace: bytes = b"") -> list[bytes]:
    """One key per frame: SHA-1 of ``namespace``, the frame's shape and its bytes.

    Args:
        frames: ``uint8 [N, H, W, 3]`` (any device; copied to the host if needed).
        namespace: bytes mixed into every key, e.g. the model's identity.

    Returns:
        ``N`` digests of 20 bytes, equal exactly for frames with equal shape and pixels.
    """
    host = frames.detach().cpu().numpy()
    shape = repr(tuple(host.shape[1:])).encode()
    keys = []
    for frame in host:
        digest = hashlib.sha1(namespace, usedforsecurity=False)
        digest.update(shape)
        digest.update(np.ascontiguousarray(frame).data)
        keys.append(digest.digest())
    return keys


class EmbeddingCache:
    """Least-recently-used cache of unit image embeddings, bounded in entries and/or bytes.

    Args:
        max_entries: most embeddings held, or None for no count bound.
        max_bytes: most bytes held (each entry: ``4·D`` bytes of ``float32`` embedding plus
            :data:`ENTRY_OVERHEAD_BYTES`), or None for no byte bound. At least one bound is required.

    Raises:
        InvalidParameterError: no bound, or a bound below 1.

    Embeddings are kept as ``float32`` NumPy arrays on the host (one copy each, never a view of a
    batch, so an entry holds only its own ``D`` floats) and returned on the model's device.
    Not thread-safe: share one cache between threads only behind a lock.
    """

    def __init__(self, max_entries: int | None = None, max_bytes: int | None = None) -> None:
        if max_entries is None and max_bytes is None:
            raise InvalidParameterError(
                "EmbeddingCache needs a bound: max_entries (e.g. 100_000) or max_bytes (e.g. 256 * 2**20)."
            )
        for name, value in (("max_entries", max_entries), ("max_bytes", max_bytes)):
            if value is not None and int(value) < 1:
                raise InvalidParameterError(f"{name} must be at least 1; got {value}.")
        self.max_entries = None if max_entries is None else int(max_entries)
        self.max_bytes = None if max_bytes is None else int(max_bytes)
        self._entries: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._nbytes = 0
        self._hits = self._misses = self._evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: bytes) -> bool:
        return key in self._entries

    @property
    def nbytes(self) -> int:
        """Bytes held: embeddings plus :data:`ENTRY_OVERHEAD_BYTES` per entry."""
        return self._nbytes

    def stats(self) -> CacheStats:
        """The counters so far (:class:`CacheStats`)."""
        return CacheStats(self._hits, self._misses, self._evictions, len(self._entries), self._nbytes)

    def clear(self) -> None:
        """Drop every entry (the counters are kept)."""
        self._entries.clear()
        self._nbytes = 0

    def get(self, key: bytes) -> np.ndarray | None:
        """The embedding ``float32 [D]`` stored under ``key`` (marked most recently used), or None."""
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: bytes, embedding: np.ndarray | torch.Tensor) -> None:
        """Store a copy of ``embedding`` (``[D]``, stored as ``float32``) under ``key``, evicting as needed.

        An embedding larger than ``max_bytes`` on its own is not stored.
        """
        if isinstance(embedding, torch.Tensor):
            embedding = embedding.detach().float().cpu().numpy()
        value = np.array(np.asarray(embedding, dtype=np.float32).reshape(-1), copy=True)  # owns its D floats
        size = value.nbytes + ENTRY_OVERHEAD_BYTES
        if self.max_bytes is not None and size > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._nbytes -= old.nbytes + ENTRY_OVERHEAD_BYTES
        self._entries[key] = value
        self._nbytes += size
        while self._entries and (
            (self.max_entries is not None and len(self._entries) > self.max_entries)
            or (self.max_bytes is not None and self._nbytes > self.max_bytes)
        ):
            _, dropped = self._entries.popitem(last=False)
            self._nbytes -= dropped.nbytes + ENTRY_OVERHEAD_BYTES
            self._evictions += 1

    def lookup(self, keys: list[bytes]) -> tuple[dict[int, np.ndarray], dict[bytes, list[int]]]:
        """Split a batch's keys into hits and misses, counting them.

        Args:
            keys: one key per frame (:func:`frame_keys`).

        Returns:
            ``(hits, misses)``: ``hits`` maps a frame index to its embedding ``float32 [D]``;
            ``misses`` maps each missing key to the indices of the frames that share it (in the
            order first seen), so a frame repeated within the batch is embedded once.
        """
        hits: dict[int, np.ndarray] = {}
        misses: dict[bytes, list[int]] = {}
        for i, key in enumerate(keys):
            if key in misses:
                misses[key].append(i)
                continue
            value = self.get(key)
            if value is None:
                misses[key] = [i]
            else:
                hits[i] = value
        self._hits += len(keys) - len(misses)
        self._misses += len(misses)
        return hits, misses

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"EmbeddingCache(max_entries={self.max_entries}, max_bytes={self.max_bytes}, entries={s.entries}, "
            f"nbytes={s.nbytes}, hits={s.hits}, misses={s.misses}, evictions={s.evictions})"
        )

