"""The CUDA path of ``encode_images`` (batch splitting on out-of-memory, pinned non-blocking copies,
autocast), tested for correctness on the CPU: CI has no GPU.

Out-of-memory is simulated by a model whose vision tower raises ``torch.cuda.OutOfMemoryError`` for
batches above a size, as CUDA would; the copies and autocast are checked by what ``encode_images``
asks of torch for a model placed on ``cuda``.
"""

from __future__ import annotations

import copy
import logging
import warnings

import pytest
import torch

import vlmreward
from vlmreward.errors import InvalidParameterError
from vlmreward.models.hf import HFModel
from vlmreward.models.registry import _resolve_autocast


class _OutOfMemoryAbove(HFModel):
    """The tiny CLIP, with a GPU that holds at most ``limit`` frames a forward pass."""

    limit = 3
    passes: list[int]

    def _embed_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        self.passes.append(len(pixels))
        if len(pixels) > self.limit:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (simulated): {len(pixels)} frames")
        return super()._embed_pixels(pixels)


@pytest.fixture()
def small_gpu_model(tiny_hf_clip):
    model = vlmreward.load_model(tiny_hf_clip)
    model.__class__ = _OutOfMemoryAbove
    model.passes = []
    return model


def test_out_of_memory_batches_are_split_until_they_fit(small_gpu_model, hf_clip_model, cartpole_frames, caplog):
    expected = hf_clip_model.encode_images(cartpole_frames)
    with caplog.at_level(logging.WARNING, logger="vlmreward.models.base"):
        out = small_gpu_model.encode_images(cartpole_frames, batch_size=12)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    assert small_gpu_model.passes[:3] == [12, 6, 3]  # 12 and 6 fail, then halves of halves
    assert sum(n for n in small_gpu_model.passes if n <= 3) == 12
    assert "ran out of GPU memory" in caplog.text
    # the size that fits is remembered: the next call runs without a failed attempt
    small_gpu_model.passes.clear()
    torch.testing.assert_close(small_gpu_model.encode_images(cartpole_frames, batch_size=12), expected, atol=1e-5, rtol=0)
    assert max(small_gpu_model.passes) <= 3 and sum(small_gpu_model.passes) == 12


def test_odd_batches_split_unevenly_and_keep_order(small_gpu_model, hf_clip_model, cartpole_frames):
    frames = cartpole_frames[:7]
    torch.testing.assert_close(small_gpu_model.encode_images(frames, batch_size=7), hf_clip_model.encode_images(frames), atol=1e-5, rtol=0)
    assert small_gpu_model.passes[:2] == [7, 4]


def test_one_frame_that_does_not_fit_raises(small_gpu_model, cartpole_frames):
    small_gpu_model.limit = 0
    with pytest.raises(torch.cuda.OutOfMemoryError):
        small_gpu_model.encode_images(cartpole_frames[:4])
    assert small_gpu_model.passes == [4, 2, 1]


def test_cpu_runs_one_plain_pass_per_batch(hf_clip_model, cartpole_frames, monkeypatch):
    """On the CPU nothing changes: no pinning, no autocast, one pass per batch_size frames."""
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: pytest.fail("pinned memory on the CPU path"))
    monkeypatch.setattr(torch, "autocast", lambda *a, **k: pytest.fail("autocast on the CPU path"))
    passes = []
    original = hf_clip_model._embed_pixels
    monkeypatch.setattr(hf_clip_model, "_embed_pixels", lambda pixels: passes.append(len(pixels)) or original(pixels))
    hf_clip_model.encode_images(cartpole_frames, batch_size=5)
    assert passes == [5, 5, 2]


def test_frames_reach_a_gpu_from_pinned_memory_without_blocking(hf_clip_model, monkeypatch):
    calls = []
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: calls.append("pin_memory") or self)
    monkeypatch.setattr(torch.Tensor, "to", lambda self, *a, **k: calls.append(("to", a, k)) or self)
    model = copy.copy(hf_clip_model)
    model.device = torch.device("cuda:0")
    frames = torch.zeros(2, 8, 8, 3, dtype=torch.uint8)
    assert model._to_device(frames) is frames
    assert calls == ["pin_memory", ("to", (torch.device("cuda:0"),), {"non_blocking": True})]


def test_autocast_on_cuda_follows_the_weight_dtype_or_the_option(hf_clip_model):
    model = copy.copy(hf_clip_model)
    assert model.autocast_dtype is None  # float32 weights: no autocast by default
    assert not isinstance(model._autocast(), torch.autocast)
    model.device = torch.device("cuda")
    assert not isinstance(model._autocast(), torch.autocast)
    model.autocast_dtype = torch.bfloat16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a CPU-only build warns that it disables CUDA autocast
        context = model._autocast()
    assert isinstance(context, torch.autocast) and context.device == "cuda" and context.fast_dtype == torch.bfloat16
    model.device = torch.device("cpu")
    assert not isinstance(model._autocast(), torch.autocast)  # never off CUDA


def test_half_weights_autocast_to_their_dtype(tiny_hf_clip):
    assert vlmreward.load_model(tiny_hf_clip, dtype="bf16").autocast_dtype == torch.bfloat16
    assert vlmreward.load_model(tiny_hf_clip, dtype="fp16").autocast_dtype == torch.float16


def test_encode_runs_under_the_autocast_context(hf_clip_model, cartpole_frames, monkeypatch):
    entered = []

    class Recording:
        def __enter__(self):
            entered.append(True)

        def __exit__(self, *exc):
            return False

    model = copy.copy(hf_clip_model)
    monkeypatch.setattr(model, "_autocast", lambda: Recording())
    model.encode_images(cartpole_frames[:5], batch_size=2)
    assert len(entered) == 3


def test_autocast_option_resolves_on_cuda_and_is_refused_elsewhere():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert _resolve_autocast("fp16", cuda) == torch.float16
    assert _resolve_autocast(True, cuda) == torch.bfloat16
    assert _resolve_autocast(None, cpu) is None and _resolve_autocast(False, cpu) is False
    with pytest.raises(InvalidParameterError, match="bf16"):
        _resolve_autocast("float32", cuda)
    with pytest.raises(InvalidParameterError, match="CUDA devices only"):
        _resolve_autocast("bf16", cpu)
