"""``compile=`` (``model.compile``, issue 28's GPU path): the scoring forward pass under
``torch.compile`` gives the eager results (CPU here, so CI runs it), bad values are refused, and
the tests marked ``gpu`` check half precision and compilation on CUDA where a GPU is lent
(``benchmarks/run_all.py --device cuda``)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import vlmreward
from vlmreward.errors import InvalidParameterError
from vlmreward.models.testing import render_cartpole_frames

needs_compiler = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                    reason="torch.compile's CPU back-end needs a C++ compiler")


@needs_compiler
@pytest.mark.timeout(600)
def test_a_compiled_vision_tower_gives_the_eager_embeddings(tiny_hf_clip):
    frames = render_cartpole_frames(6)
    eager = vlmreward.load_model(tiny_hf_clip)
    compiled = vlmreward.load_model(tiny_hf_clip, compile=True)
    assert compiled.compile_mode == "default" and hasattr(compiled._embed_pixels, "_torchdynamo_orig_callable")
    want = eager.encode_images(frames).numpy()
    for batch in (frames, frames[:3]):  # two batch sizes: dynamic shapes, no wrong reuse
        got = compiled.encode_images(batch).numpy()
        np.testing.assert_allclose(got, want[: len(batch)], rtol=0, atol=1e-5)


@needs_compiler
@pytest.mark.timeout(600)
def test_a_compiled_generative_forward_gives_the_eager_vqa_reward(tmp_path):
    from vlmreward.models.testing_vlms import build_qwen2_5_vl
    from vlmreward.rewards.registry import build_reward

    path = build_qwen2_5_vl(tmp_path / "qwen")
    frames = render_cartpole_frames(2)
    params = {"goal": "a pole upright", "output": "log_odds"}
    eager = build_reward("vqa", params, vlmreward.load_model(str(path)))(frames)
    compiled_model = vlmreward.load_model(str(path), compile=True)
    assert hasattr(compiled_model.model.forward, "_torchdynamo_orig_callable")
    np.testing.assert_allclose(build_reward("vqa", params, compiled_model)(frames), eager, rtol=0, atol=1e-4)


def test_bad_compile_values_are_refused(tiny_hf_clip):
    from vlmreward.config import ConfigError
    from vlmreward.rl.config import parse_config

    with pytest.raises(InvalidParameterError, match="compile='fast': use True, False or a torch.compile mode"):
        vlmreward.load_model(tiny_hf_clip, compile="fast")
    with pytest.raises(InvalidParameterError, match="runtime='onnx' does not run one"):
        vlmreward.load_model(tiny_hf_clip, compile=True, runtime="onnx")
    base = {"env": {"id": "CartPole-v1"}, "reward": {"kind": "ground_truth"}, "algorithm": "PPO", "total_steps": 8}
    assert parse_config({**base, "model": {"name": "x", "compile": "max-autotune"}}).model.spec().compile == "max-autotune"
    with pytest.raises(ConfigError, match="model.compile"):
        parse_config({**base, "model": {"name": "x", "compile": "fast"}})


gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("options", [{"dtype": "bf16"}, {"autocast": "fp16"}, {"dtype": "bf16", "compile": True}],
                         ids=["bf16", "autocast-fp16", "bf16-compile"])
def test_half_precision_and_compile_on_cuda_stay_close_to_float32(tiny_hf_clip, options):
    frames = render_cartpole_frames(16)
    want = vlmreward.load_model(tiny_hf_clip, device="cpu").encode_images(frames).numpy()
    got = vlmreward.load_model(tiny_hf_clip, device="cuda", **options).encode_images(frames).numpy()
    cosine = (got * want).sum(1)  # both unit vectors
    assert cosine.min() > 0.999, cosine.min()


@pytest.mark.gpu
@gpu
def test_cuda_egl_rendering_of_mujoco_works_headless():
    pytest.importorskip("metaworld")
    import os

    import gymnasium as gym

    import vlmreward.envs  # noqa: F401

    assert os.environ.get("MUJOCO_GL", "egl") == "egl"
    env = gym.make("vlmreward/MetaWorld-reach-v3", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    env.close()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.std() > 0
