"""The in-memory embedding cache: hits skip the vision tower, results do not change, memory is bounded."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

import vlmreward
from vlmreward.errors import InvalidParameterError
from vlmreward.models.cache import ENTRY_OVERHEAD_BYTES, EmbeddingCache, frame_keys


@pytest.fixture(scope="module")
def distinct_frames(cartpole_frames) -> np.ndarray:
    """The CartPole frames with repeats removed (rendering is pixel-exact: 12 frames hold 10 distinct ones)."""
    keys = frame_keys(torch.from_numpy(cartpole_frames))
    first = sorted({key: i for i, key in reversed(list(enumerate(keys)))}.values())
    assert len(first) >= 8
    return cartpole_frames[first]


def test_rendered_cartpole_frames_repeat(cartpole_frames, distinct_frames):
    """Why the cache pays even in RL: a random CartPole episode renders pixel-identical frames."""
    assert len(distinct_frames) < len(cartpole_frames)


@pytest.fixture()
def counted_model(tiny_hf_clip):
    """A fresh tiny CLIP whose ``frames_embedded`` counts the frames that reach its vision tower."""
    model = vlmreward.load_model(tiny_hf_clip)
    model.frames_embedded = 0
    original = model._embed_pixels

    def counting(pixels):
        model.frames_embedded += len(pixels)
        return original(pixels)

    model._embed_pixels = counting
    return model


def test_hits_skip_the_vision_tower_and_give_the_same_embeddings(counted_model, distinct_frames):
    n = len(distinct_frames)
    cache = EmbeddingCache(max_entries=100)
    plain = counted_model.encode_images(distinct_frames)
    assert counted_model.frames_embedded == n
    first = counted_model.encode_images(distinct_frames, cache=cache)
    assert counted_model.frames_embedded == 2 * n and len(cache) == n
    second = counted_model.encode_images(distinct_frames[::-1], cache=cache)
    assert counted_model.frames_embedded == 2 * n  # all were hits
    torch.testing.assert_close(first, plain, atol=1e-5, rtol=0)
    torch.testing.assert_close(second, first.flip(0), atol=0, rtol=0)
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.entries) == (n, n, n) and stats.hit_rate == 0.5


def test_repeats_within_a_batch_are_embedded_once(counted_model, distinct_frames):
    frames = distinct_frames[[0, 1, 0, 0, 2, 1]]
    cache = EmbeddingCache(max_entries=10)
    out = counted_model.encode_images(frames, cache=cache, batch_size=2)
    assert counted_model.frames_embedded == 3
    torch.testing.assert_close(out, counted_model.encode_images(frames), atol=1e-5, rtol=0)
    assert cache.stats().hits == 3 and cache.stats().misses == 3


def test_a_partly_cached_batch_embeds_only_the_new_frames(counted_model, distinct_frames):
    cache = EmbeddingCache(max_entries=100)
    counted_model.encode_images(distinct_frames[:5], cache=cache)
    counted_model.frames_embedded = 0
    out = counted_model.encode_images(distinct_frames, cache=cache)
    assert counted_model.frames_embedded == len(distinct_frames) - 5
    torch.testing.assert_close(out, counted_model.encode_images(distinct_frames), atol=1e-5, rtol=0)


def test_the_model_default_cache_serves_rewards(counted_model, cartpole_frames):
    counted_model.embedding_cache = EmbeddingCache(max_bytes=1 << 20)
    reward = vlmreward.GoalBaselineReward(counted_model, goal="a pole upright on a cart", baseline="a cart", alpha=0.5)
    first = reward(cartpole_frames)
    second = reward(cartpole_frames)
    assert counted_model.frames_embedded == len(set(frame_keys(torch.from_numpy(cartpole_frames))))
    np.testing.assert_array_equal(first, second)


def test_one_cache_serves_two_models_without_mixing_them(tiny_hf_clip, tiny_open_clip, distinct_frames):
    arch, checkpoint = tiny_open_clip
    a = vlmreward.load_model(tiny_hf_clip)
    b = vlmreward.load_model(f"open_clip:{arch}", checkpoint=checkpoint)
    cache = EmbeddingCache(max_entries=100)
    frames = distinct_frames[:3]
    ea, eb = a.encode_images(frames, cache=cache), b.encode_images(frames, cache=cache)
    assert len(cache) == 6 and cache.stats().hits == 0
    torch.testing.assert_close(a.encode_images(frames, cache=cache), ea)
    torch.testing.assert_close(b.encode_images(frames, cache=cache), eb)


def test_keys_depend_on_content_and_shape():
    frames = torch.zeros(3, 4, 6, 3, dtype=torch.uint8)
    frames[1, 0, 0, 0] = 1
    keys = frame_keys(frames)
    assert keys[0] == keys[2] != keys[1] and all(len(k) == 20 for k in keys)
    assert frame_keys(torch.zeros(1, 6, 4, 3, dtype=torch.uint8))[0] != keys[0]  # same bytes, other shape
    assert frame_keys(frames, b"model-a")[0] != frame_keys(frames, b"model-b")[0]


def test_least_recently_used_entries_are_evicted_first():
    cache = EmbeddingCache(max_entries=3)
    for key in (b"a", b"b", b"c"):
        cache.put(key, np.full(4, ord(key), dtype=np.float32))
    assert cache.get(b"a") is not None  # "a" is now the most recently used
    cache.put(b"d", np.zeros(4, dtype=np.float32))
    assert b"b" not in cache and all(k in cache for k in (b"a", b"c", b"d"))
    assert cache.stats().evictions == 1 and len(cache) == 3


def test_byte_bound_counts_embeddings_and_overhead():
    per_entry = 512 * 4 + ENTRY_OVERHEAD_BYTES
    cache = EmbeddingCache(max_bytes=10 * per_entry)
    for i in range(25):
        cache.put(i.to_bytes(4, "little"), np.ones(512, dtype=np.float32))
        assert cache.nbytes <= 10 * per_entry
    assert len(cache) == 10 and cache.nbytes == 10 * per_entry
    cache.put(b"huge", np.ones(10_000, dtype=np.float32))  # larger than the bound alone: not stored
    assert b"huge" not in cache and len(cache) == 10


def test_stored_embeddings_are_copies_not_views_of_a_batch():
    batch = np.ones((1000, 512), dtype=np.float32)
    cache = EmbeddingCache(max_entries=10)
    cache.put(b"x", batch[0])
    stored = cache.get(b"x")
    assert stored.base is None and stored.nbytes == 512 * 4  # keeps 2 KB alive, not the 2 MB batch
    batch[0] = 0
    assert stored[0] == 1


def test_memory_stays_bounded_over_a_long_stream():
    """100 000 distinct embeddings through a 1000-entry cache: traced memory never passes the bound."""
    d = 512
    bound = 1000 * (d * 4 + ENTRY_OVERHEAD_BYTES)
    cache = EmbeddingCache(max_entries=1000)
    rows = np.random.default_rng(0).standard_normal((100, d)).astype(np.float32)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for i in range(100_000):
            cache.put(i.to_bytes(8, "little"), rows[i % 100])
            if i == 999:
                filled = tracemalloc.get_traced_memory()[0] - base
        current = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert len(cache) == 1000 and cache.stats().evictions == 99_000
    assert filled <= bound and current <= bound  # the real cost per entry is within ENTRY_OVERHEAD_BYTES
    assert current <= 1.1 * filled  # flat after the cache filled up


@pytest.mark.parametrize("kwargs", [{}, {"max_entries": 0}, {"max_bytes": -1}])
def test_bad_bounds_are_clear_errors(kwargs):
    with pytest.raises(InvalidParameterError):
        EmbeddingCache(**kwargs)
