"""``batch_size: auto`` (vlmreward.models.autotune): the fastest batch size per frame, timed once and cached."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from vlmreward.models.autotune import BATCH_CANDIDATES, autotune_batch_size, autotune_key
from vlmreward.models.spec import ModelSpec


class _TimedModel:
    """A model whose forward pass of ``b`` frames sleeps ``cost[b]`` seconds (a known fastest size per frame)."""

    name, backend, runtime, image_size, resize = "timed", "fake", "torch", 8, "squash"
    device, dtype = torch.device("cpu"), torch.float32

    def __init__(self, cost):
        self.cost, self.calls = cost, []

    def _encode_batch(self, batch, step):
        self.calls.append(step)
        time.sleep(self.cost[step])
        return torch.zeros(len(batch), 4)


def test_the_fastest_size_per_frame_is_chosen_then_read_from_the_cache(tmp_path):
    # seconds per frame: 8 → 5 ms, 16 → 2.5 ms, 32 → 1.25 ms, 64 → 2 ms: 32 is the fastest per frame
    cost = {8: 0.040, 16: 0.040, 32: 0.040, 64: 0.128}
    model = _TimedModel(cost)
    cache = tmp_path / "autotune.json"
    choice = autotune_batch_size(model, (6, 10), candidates=(8, 16, 32, 64), repeats=2, cache_path=cache)
    assert choice.batch_size == 32 and not choice.cached
    assert model.calls == [8, 8, 8, 16, 16, 32, 32, 64, 64, 32, 64]  # one warm-up, two passes each, the two fastest again
    for b, seconds in choice.seconds_per_frame.items():
        assert cost[b] / b <= seconds < cost[b] / b + 0.02 / b
    stored = json.loads(cache.read_text())[autotune_key(model, (6, 10))]
    assert stored["batch_size"] == 32

    model.calls.clear()
    again = autotune_batch_size(model, (6, 10), candidates=(8, 16, 32, 64), cache_path=cache)
    assert again.cached and again.batch_size == 32 and model.calls == []  # nothing timed
    other = autotune_batch_size(model, (7, 10), candidates=(8, 16), repeats=1, cache_path=cache)  # another frame size
    assert not other.cached and other.batch_size == 16 and len(json.loads(cache.read_text())) == 2

    cache.write_text("{damaged")
    model.calls.clear()
    assert not autotune_batch_size(model, (6, 10), candidates=(8, 16), repeats=1, cache_path=cache).cached
    assert model.calls == [8, 8, 16, 16, 8]  # warm-up, one pass each, the two fastest (16 first) again
    with pytest.raises(Exception, match="candidates ≥ 1"):
        autotune_batch_size(model, (6, 10), candidates=(0, 8), cache_path=cache)


def test_a_model_loaded_with_auto_tunes_on_first_use_and_embeds_as_a_fixed_size_does(tiny_hf_clip, tmp_path, monkeypatch):
    monkeypatch.setenv("VLMREWARD_CACHE_DIR", str(tmp_path / "cache"))
    model = ModelSpec(str(tiny_hf_clip), device="cpu", batch_size="auto").load()
    fixed = ModelSpec(str(tiny_hf_clip), device="cpu", batch_size=64).load()
    assert model.autotune and not fixed.autotune and model.batch_choices == {}
    frames = np.random.default_rng(0).integers(0, 256, (20, 30, 40, 3), dtype=np.uint8)
    out = model.encode_images(frames)
    (choice,) = model.batch_choices.values()
    assert choice.frame_size == (30, 40) and choice.batch_size in BATCH_CANDIDATES
    assert choice.batch_size == min(choice.seconds_per_frame, key=choice.seconds_per_frame.get)
    assert model.batch_size_for((30, 40)) == choice.batch_size and fixed.batch_size_for((30, 40)) == 64
    torch.testing.assert_close(out, fixed.encode_images(frames), atol=1e-5, rtol=0)
    reloaded = ModelSpec(str(tiny_hf_clip), device="cpu", batch_size="auto").load()
    reloaded.encode_images(frames[:2])
    assert reloaded.batch_choices[(30, 40)].cached and reloaded.batch_choices[(30, 40)].batch_size == choice.batch_size


def test_evaluate_batch_size_auto_records_the_choice_and_bad_values_are_one_line(tiny_hf_clip, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from vlmreward.cli.main import app
    from vlmreward.config.model import ModelConfig

    monkeypatch.setenv("VLMREWARD_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()
    data = tmp_path / "ds"
    result = runner.invoke(app, ["collect", "vlmreward/CartPole-v1", "--out", str(data), "--episodes", "1", "--max-steps", "6"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evaluate", str(data), "--model", str(tiny_hf_clip), "--goal", "a pole upright",
                                 "--batch-size", "auto", "--device", "cpu", "--out", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    model = json.loads((tmp_path / "eval" / "metrics.json").read_text())["model"]
    (choice,) = model["batch_choices"]
    assert model["batch_size"] == "auto" and choice["frame_size"] == [400, 600]
    assert set(choice["seconds_per_frame"]) == {str(b) for b in BATCH_CANDIDATES}
    assert choice["batch_size"] == int(min(choice["seconds_per_frame"], key=choice["seconds_per_frame"].get))
    assert ModelConfig(name="m", batch_size="auto").spec().batch_size == "auto"
    with pytest.raises(ValueError):
        ModelConfig(name="m", batch_size="fast")
    script = tmp_path / "cli.py"
    script.write_text("import sys\nfrom vlmreward.cli.main import app\napp(sys.argv[1:], prog_name='vlmreward')\n")
    for value in ("0", "fast"):
        out = subprocess.run([sys.executable, str(script), "evaluate", str(data), "--model", str(tiny_hf_clip), "--goal",
                              "a pole", "--batch-size", value, "--out", str(tmp_path / "bad")], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 2 and "--batch-size must be a number of frames ≥ 1 or 'auto'" in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


def test_score_batch_size_auto_records_the_choice_and_scores_as_a_fixed_size(tiny_hf_clip, tmp_path, monkeypatch):
    import csv

    from typer.testing import CliRunner

    from vlmreward.cli.main import app

    monkeypatch.setenv("VLMREWARD_CACHE_DIR", str(tmp_path / "cache"))
    frames = tmp_path / "frames.npy"
    np.save(frames, np.random.default_rng(1).integers(0, 256, (10, 32, 48, 3), dtype=np.uint8))
    runner = CliRunner()
    rewards = {}
    for value in ("auto", "3"):
        out = tmp_path / f"scores-{value}"
        result = runner.invoke(app, ["score", str(frames), "--model", str(tiny_hf_clip), "--goal", "a pole upright",
                                     "--batch-size", value, "--device", "cpu", "--out", str(out)])
        assert result.exit_code == 0, result.output
        with open(out / "rewards.csv", newline="") as f:
            rewards[value] = [float(row["reward"]) for row in csv.DictReader(f)]
        summary = json.loads((out / "score.json").read_text())
        assert summary["batch_size"] == (value if value == "auto" else 3)
    (choice,) = json.loads((tmp_path / "scores-auto" / "score.json").read_text())["model"]["batch_choices"]
    assert choice["frame_size"] == [32, 48] and choice["batch_size"] in BATCH_CANDIDATES
    np.testing.assert_allclose(rewards["auto"], rewards["3"], rtol=0, atol=1e-5)


def test_a_compiled_or_autocast_model_is_tuned_apart():
    """The key holds what changes the per-frame cost beyond the weights: compile mode and autocast."""
    model = _TimedModel({8: 0.01})
    plain = autotune_key(model, (6, 10))
    model.compile_mode = "default"  # what load_model(compile=True) sets
    compiled = autotune_key(model, (6, 10))
    model.autocast_dtype = torch.bfloat16
    assert len({plain, compiled, autotune_key(model, (6, 10))}) == 3
