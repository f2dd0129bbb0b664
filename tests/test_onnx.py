"""The ONNX Runtime backend: agreement with PyTorch (fp32 and int8), the export cache, and its errors.

Agreement is measured on real rendered CartPole frames through the whole image path
(preprocessing, export, ONNX Runtime, normalisation) for the tiny transformers CLIP and the
tiny open_clip model, each loaded through ``load_model`` as a real checkpoint would be.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import vlmreward
from vlmreward.errors import BackendNotAvailableError, InvalidParameterError, VLMRewardError
from vlmreward.models.onnx import INT8_MIN_COSINE, ONNXModel, weights_fingerprint

pytest.importorskip("onnxruntime")

FP32_MIN_COSINE = 0.9999
"""The issue's bound for float32 ONNX against PyTorch (measured: above 0.999999)."""


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def torch_models(tiny_hf_clip, tiny_open_clip):
    arch, checkpoint = tiny_open_clip
    return {
        "hf": (str(tiny_hf_clip), {}),
        "open_clip": (f"open_clip:{arch}", {"checkpoint": checkpoint}),
    }


@pytest.fixture(scope="module")
def pairs(torch_models, onnx_cache):
    """``{kind: (torch model, fp32 ONNX model, int8 ONNX model)}``, loaded through ``load_model``."""
    out = {}
    for kind, (name, kwargs) in torch_models.items():
        reference = vlmreward.load_model(name, **kwargs)
        fp32 = vlmreward.load_model(name, runtime="onnx", onnx_cache_dir=onnx_cache, **kwargs)
        int8 = vlmreward.load_model(name, runtime="onnx", quantize="int8", onnx_cache_dir=onnx_cache, **kwargs)
        out[kind] = (reference, fp32, int8)
    return out


def _cosines(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    return (a.double() * b.double()).sum(-1).numpy()


@pytest.mark.parametrize("kind", ["hf", "open_clip"])
def test_fp32_embeddings_agree_with_pytorch(pairs, kind, cartpole_frames):
    reference, fp32, _ = pairs[kind]
    assert isinstance(fp32, ONNXModel) and fp32.runtime == "onnx" and fp32.backend == fp32.source.backend != "onnx" and fp32.quantize is None
    ours, theirs = fp32.encode_images(cartpole_frames), reference.encode_images(cartpole_frames)
    assert ours.shape == theirs.shape and ours.dtype == torch.float32
    torch.testing.assert_close(ours.norm(dim=-1), torch.ones(len(cartpole_frames)))
    assert _cosines(ours, theirs).min() >= FP32_MIN_COSINE
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


@pytest.mark.parametrize("kind", ["hf", "open_clip"])
def test_int8_embeddings_agree_within_the_stated_bound(pairs, kind, cartpole_frames):
    reference, _, int8 = pairs[kind]
    assert int8.runtime == "onnx-int8" and int8.onnx_path.name == "vision.int8.onnx"
    cosine = _cosines(int8.encode_images(cartpole_frames), reference.encode_images(cartpole_frames))
    assert cosine.min() >= INT8_MIN_COSINE, cosine
    assert cosine.min() < 1 - 1e-7  # it really is the quantised graph


@pytest.mark.parametrize("kind", ["hf", "open_clip"])
def test_rewards_and_text_match_pytorch(pairs, kind, cartpole_frames):
    reference, fp32, _ = pairs[kind]
    prompts = ["a pole vertically upright on top of a cart", "a pole and a cart"]
    torch.testing.assert_close(fp32.encode_text(prompts), reference.encode_text(prompts))  # text stays in PyTorch
    r_onnx = vlmreward.GoalBaselineReward(fp32, goal=prompts[0], baseline=prompts[1], alpha=0.5)(cartpole_frames)
    r_torch = vlmreward.GoalBaselineReward(reference, goal=prompts[0], baseline=prompts[1], alpha=0.5)(cartpole_frames)
    np.testing.assert_allclose(r_onnx, r_torch, atol=1e-4)


def test_dynamic_batch_axis(pairs, cartpole_frames):
    _, fp32, _ = pairs["hf"]
    full = fp32.encode_images(cartpole_frames)
    for batch_size in (1, 5, 12):
        torch.testing.assert_close(fp32.encode_images(cartpole_frames, batch_size=batch_size), full, atol=1e-5, rtol=0)


def test_second_load_reuses_the_cached_export(pairs, torch_models, onnx_cache, monkeypatch):
    name, kwargs = torch_models["hf"]
    _, first, first_int8 = pairs["hf"]

    def no_export(*args, **kwargs):
        raise AssertionError("the cached export should have been reused")

    monkeypatch.setattr(torch.onnx, "export", no_export)
    monkeypatch.setattr("onnxruntime.quantization.quantize_dynamic", no_export)
    again = vlmreward.load_model(name, runtime="onnx", onnx_cache_dir=onnx_cache, **kwargs)
    again_int8 = vlmreward.load_model(name, runtime="onnx", quantize="int8", onnx_cache_dir=onnx_cache, **kwargs)
    assert not again.exported and not again_int8.exported
    assert again.onnx_path == first.onnx_path and again_int8.onnx_path == first_int8.onnx_path
    meta = (first.export_dir / "meta.json").read_text()
    assert '"opset": 18' in meta and '"weights":' in meta
    assert not [p for p in onnx_cache.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_cache_key_follows_the_weights(tiny_hf_clip, onnx_cache, tmp_path):
    """Other weights of the same architecture and name get their own export."""
    model = vlmreward.load_model(tiny_hf_clip)
    before = weights_fingerprint(model.model)
    with torch.no_grad():
        model.model.visual_projection.weight.mul_(1.01)
    assert weights_fingerprint(model.model) != before
    changed = ONNXModel(model, cache_dir=tmp_path)
    assert changed.exported
    frames = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    assert _cosines(changed.encode_images(frames), model.encode_images(frames)).min() >= FP32_MIN_COSINE


def test_torchscript_exporter_agrees_too(tiny_open_clip, tmp_path, cartpole_frames):
    arch, checkpoint = tiny_open_clip
    reference = vlmreward.load_model(f"open_clip:{arch}", checkpoint=checkpoint)
    legacy = ONNXModel(reference, cache_dir=tmp_path, exporter="torchscript")
    assert '"exporter": "torchscript"' in (legacy.export_dir / "meta.json").read_text()
    assert _cosines(legacy.encode_images(cartpole_frames[:4]), reference.encode_images(cartpole_frames[:4])).min() >= FP32_MIN_COSINE


def test_missing_onnxruntime_is_a_clear_error(tiny_hf_clip, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(BackendNotAvailableError, match=r"vlmreward\[onnx\]") as info:
        vlmreward.load_model(tiny_hf_clip, runtime="onnx", onnx_cache_dir=tmp_path)
    assert isinstance(info.value, VLMRewardError) and isinstance(info.value, ImportError)
    assert not list(tmp_path.iterdir())


def test_unavailable_execution_provider_is_refused_before_exporting(hf_clip_model, tmp_path):
    with pytest.raises(InvalidParameterError, match="TensorrtExecutionProvider.*not available"):
        ONNXModel(hf_clip_model, cache_dir=tmp_path, providers=["TensorrtExecutionProvider"])
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"runtime": "tensorrt"}, r"runtime='tensorrt' is not a runtime; use one of 'torch', 'onnx'"),
        ({"backend": "tensorrt"}, r"runtime='tensorrt' is not a runtime"),  # the former name still reaches the check
        ({"backend": "onnx", "runtime": "torch"}, r"backend='onnx' is the former name of runtime='torch'"),
        ({"runtime": "onnx", "quantize": "int4"}, r"quantize='int4'"),
        ({"quantize": "int8"}, r"needs runtime='onnx'"),
        ({"runtime": "onnx", "dtype": "fp16"}, r"exports float32 weights"),
        ({"autocast": "bf16"}, r"CUDA devices only"),
    ],
)
def test_bad_options_are_clear_errors(tiny_hf_clip, tmp_path, kwargs, message):
    with pytest.raises(InvalidParameterError, match=message):
        vlmreward.load_model(tiny_hf_clip, onnx_cache_dir=tmp_path, **kwargs)


# ------------------------------------------------------------------ vlmreward score --runtime onnx


def _score(tmp_path, model_dir, frames_file, out_name, *extra):
    from typer.testing import CliRunner

    from vlmreward.cli.main import app

    args = ["score", frames_file, "--model", model_dir, "--goal", "a pole upright on a cart", "--device", "cpu",
            "--out", tmp_path / out_name, *extra]
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_scores_with_the_onnx_backend(tiny_hf_clip, cartpole_frames, tmp_path, monkeypatch):
    import csv
    import json

    monkeypatch.setenv("VLMREWARD_CACHE_DIR", str(tmp_path / "cache"))
    frames_file = tmp_path / "frames.npy"
    np.save(frames_file, cartpole_frames)
    results = {}
    for name, extra in {"torch": [], "onnx": ["--runtime", "onnx"], "int8": ["--backend", "onnx", "--quantize", "int8"]}.items():
        result = _score(tmp_path, tiny_hf_clip, frames_file, name, *extra)
        assert result.exit_code == 0, result.output
        with open(tmp_path / name / "rewards.csv", newline="") as f:
            results[name] = np.array([float(row["reward"]) for row in csv.DictReader(f)])
        summary = json.loads((tmp_path / name / "score.json").read_text())
        assert summary["model"]["runtime"] == {"torch": "torch", "onnx": "onnx", "int8": "onnx-int8"}[name]
        assert summary["model"]["quantize"] == ("int8" if name == "int8" else None)
    assert (tmp_path / "cache" / "onnx").is_dir()
    np.testing.assert_allclose(results["onnx"], results["torch"], atol=1e-4)
    np.testing.assert_allclose(results["int8"], results["torch"], atol=0.02)


def test_cli_option_errors(tiny_hf_clip, cartpole_frames, tmp_path):
    frames_file = tmp_path / "frames.npy"
    np.save(frames_file, cartpole_frames[:2])
    result = _score(tmp_path, tiny_hf_clip, frames_file, "x", "--quantize", "int8")
    assert result.exit_code == 2 and "error: quantize='int8' needs runtime='onnx'" in result.stderr
    result = _score(tmp_path, tiny_hf_clip, frames_file, "y", "--backend", "tensorrt")
    assert result.exit_code == 2 and "tensorrt" in result.output


def test_run_config_selects_the_onnx_backend(tiny_hf_clip, cartpole_frames, tmp_path, monkeypatch):
    from vlmreward.rl.config import ConfigError, parse_config
    from vlmreward.rl.train import build_reward_model

    monkeypatch.setenv("VLMREWARD_CACHE_DIR", str(tmp_path))
    data = {
        "env": {"id": "CartPole-v1"},
        "reward": {"kind": "goal_baseline", "goal": "a pole upright", "baseline": "a pole", "alpha": 0.5},
        "model": {"name": str(tiny_hf_clip), "device": "cpu", "runtime": "onnx", "quantize": "int8"},
        "algorithm": "DQN",
        "total_steps": 64,
    }
    reward = build_reward_model(parse_config(data))
    assert isinstance(reward.model, ONNXModel) and reward.model.quantize == "int8"
    torch_reward = build_reward_model(parse_config({**data, "model": {"name": str(tiny_hf_clip), "device": "cpu"}}))
    assert not isinstance(torch_reward.model, ONNXModel)
    np.testing.assert_allclose(reward(cartpole_frames), torch_reward(cartpole_frames), atol=0.02)
    with pytest.raises(ConfigError, match="model.quantize needs model.runtime: onnx"):
        parse_config({**data, "model": {"name": str(tiny_hf_clip), "quantize": "int8"}})
    # run directories written before the rename say backend:, and still load
    assert parse_config({**data, "model": {"name": str(tiny_hf_clip), "backend": "onnx", "quantize": "int8"}}).model.runtime == "onnx"
    with pytest.raises(ConfigError, match="former name of model.runtime"):
        parse_config({**data, "model": {"name": str(tiny_hf_clip), "backend": "onnx", "runtime": "torch"}})
