"""A reward kind defined outside vlmreward (``tests/plugins/vlmreward_example_plugin.py``) works
through ``score``, ``evaluate``, ``sweep`` and a ``train`` config, found both by its entry point and
by its dotted path, with no change to ``src/``; and every path agrees with an independent
computation of its formula."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import vlmreward
from vlmreward.cli.main import app
from vlmreward.rewards.registry import UnknownRewardKindError, build_reward, reward_kind, reward_kinds

PLUGINS = Path(__file__).resolve().parent / "plugins"
DOTTED = "vlmreward_example_plugin:ScaledCosineReward"
GOAL = "a pole standing upright on a cart"
runner = CliRunner()


@pytest.fixture(autouse=True)
def plugin_installed(monkeypatch):
    """``tests/plugins`` on the path: its module imports, and its ``.dist-info`` is an installed distribution."""
    monkeypatch.syspath_prepend(str(PLUGINS))


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_ok(result) -> None:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"


def independent(model, frames, goal, scale, offset) -> np.ndarray:
    """``scale · x·g + offset`` from the model's embeddings, in float64."""
    x = model.encode_images(frames).double()
    g = model.encode_text([goal]).double().mean(0)
    return (scale * (x @ g) + offset).numpy()


@pytest.mark.parametrize("kind", ["scaled_cosine", DOTTED])
def test_plugin_kind_is_found_and_builds(kind, hf_clip_model, cartpole_frames):
    assert "scaled_cosine" in reward_kinds()  # listed from the entry point before it is loaded
    spec = reward_kind(kind)
    assert spec.origin == ("entry point" if kind == "scaled_cosine" else "dotted path") and spec.model == "required"
    reward = build_reward(kind, {"goal": GOAL, "scale": 2.0, "offset": -0.5}, hf_clip_model)
    np.testing.assert_allclose(reward(cartpole_frames), independent(hf_clip_model, cartpole_frames, GOAL, 2.0, -0.5), atol=1e-5)


def test_plugin_parameters_are_validated_with_its_params_model(hf_clip_model):
    with pytest.raises(vlmreward.VLMRewardError, match=r"scale: .*> 0.*its parameters: goal, scale, offset"):
        build_reward("scaled_cosine", {"goal": GOAL, "scale": -1}, hf_clip_model)
    with pytest.raises(vlmreward.VLMRewardError, match=r"alpha: unknown parameter"):
        build_reward("scaled_cosine", {"goal": GOAL, "alpha": 0.5}, hf_clip_model)
    with pytest.raises(UnknownRewardKindError, match="is not a reward kind.*'goal_baseline'"):
        reward_kind("no_such_kind")
    with pytest.raises(UnknownRewardKindError, match="cannot be imported"):
        reward_kind("no_such_module:Reward")
    with pytest.raises(UnknownRewardKindError, match="declares no parameters"):
        reward_kind("vlmreward_example_plugin:ScaledCosineParams.__init__")


@pytest.mark.parametrize("kind", ["scaled_cosine", DOTTED])
def test_score_with_a_plugin_kind(kind, tiny_hf_clip, hf_clip_model, cartpole_frames, tmp_path):
    frames = tmp_path / "frames.npy"
    np.save(frames, cartpole_frames)
    out = tmp_path / "out"
    assert_ok(run("score", frames, "--model", tiny_hf_clip, "--goal", GOAL, "--reward-kind", kind,
                  "--param", "scale=3", "--param", "offset=0.25", "--device", "cpu", "--out", out))
    with open(out / "rewards.csv", newline="") as f:
        rewards = np.array([float(r["reward"]) for r in csv.DictReader(f)])
    np.testing.assert_allclose(rewards, independent(hf_clip_model, cartpole_frames, GOAL, 3.0, 0.25), atol=1e-5)
    assert json.loads((out / "score.json").read_text())["reward"]["kind"] == "scaled_cosine"


def test_score_rejects_bad_plugin_input_in_one_line(tiny_hf_clip, cartpole_frames, tmp_path):
    frames = tmp_path / "frames.npy"
    np.save(frames, cartpole_frames[:2])
    for args, phrase in [
        (["--reward-kind", "no_such_kind"], "is not a reward kind"),
        (["--reward-kind", "scaled_cosine", "--param", "scale=-2"], "scale"),
        (["--reward-kind", "scaled_cosine", "--param", "oops"], "--param expects KEY=VALUE"),
        (["--reward-kind", "scaled_cosine", "--alpha", "0.5"], "alpha: unknown parameter"),
    ]:
        result = run("score", frames, "--model", tiny_hf_clip, "--goal", GOAL, "--device", "cpu", "--out", tmp_path / "o", *args)
        assert result.exit_code == 2, result.output
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and phrase in lines[0], result.stderr


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("plugin-data") / "cartpole"
    assert_ok(run("collect", "vlmreward/CartPole-v1", "--out", out, "--policy", "scripted", "--frames", 20))
    return out


def test_evaluate_and_sweep_with_a_plugin_kind(dataset, tiny_hf_clip, hf_clip_model, tmp_path):
    from vlmreward.eval import load_dataset

    data = load_dataset(dataset)
    expected = independent(hf_clip_model, np.array(data.frames), GOAL, 2.0, 0.0)
    out = tmp_path / "evaluation"
    assert_ok(run("evaluate", dataset, "--model", tiny_hf_clip, "--goal", GOAL, "--reward-kind", "scaled_cosine",
                  "--param", "scale=2", "--device", "cpu", "--out", out, "--no-cache"))
    metrics = json.loads((out / "metrics.json").read_text())
    (result,) = metrics["results"]
    assert result["reward"]["kind"] == "scaled_cosine" and result["reward"]["scale"] == 2.0
    from vlmreward.eval.metrics import detection_metrics

    assert result["average_precision"] == pytest.approx(detection_metrics(expected, data.label("is_success")).average_precision, abs=1e-6)

    prompts = tmp_path / "prompts.yaml"
    prompts.write_text(f"prompt_sets:\n  upright:\n    goal: {GOAL}\n    baseline: a pole on a cart\n")
    sweep_out = tmp_path / "sweep"
    assert_ok(run("sweep", dataset, "--model", tiny_hf_clip, "--prompts", prompts, "--alpha", "0",
                  "--reward-kind", DOTTED, "--param", "scale=2", "--device", "cpu", "--out", sweep_out, "--no-cache"))
    with open(sweep_out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["reward"] for r in rows] == ["goal_baseline", DOTTED]
    assert float(rows[1]["average_precision"]) == pytest.approx(float(result["average_precision"]), abs=1e-6)


@pytest.mark.parametrize("kind", ["scaled_cosine", DOTTED])
def test_train_config_with_a_plugin_kind(kind, tiny_hf_clip, tmp_path):
    from vlmreward.rl.config import parse_config
    from vlmreward.rl.train import build_reward_model, train

    data = {
        "env": {"id": "CartPole-v1", "n_envs": 2, "kwargs": {"max_episode_steps": 50}},
        "reward": {"kind": kind, "goal": GOAL, "scale": 2.0},
        "model": {"name": str(tiny_hf_clip), "device": "cpu"},
        "algorithm": "PPO", "algorithm_kwargs": {"n_steps": 64, "batch_size": 32, "n_epochs": 1},
        "total_steps": 128, "output_dir": str(tmp_path), "checkpoint_every": None, "eval_every": None, "video": False,
    }
    config = parse_config(data)
    assert config.reward.kind == kind and config.reward.scale == 2.0 and config.needs_vlm
    assert type(build_reward_model(config)).__name__ == "ScaledCosineReward"
    run_dir = train(config, progress_bar=False)
    assert (run_dir / "final_model.zip").is_file()
    with pytest.raises(vlmreward.VLMRewardError, match=r"reward.scale: .*> 0"):
        parse_config({**data, "reward": {"kind": kind, "goal": GOAL, "scale": 0}})
    with pytest.raises(vlmreward.VLMRewardError, match=r"reward.alpha: unknown key; allowed keys in reward: goal, scale, offset"):
        parse_config({**data, "reward": {"kind": kind, "goal": GOAL, "alpha": 1}})
    with pytest.raises(vlmreward.VLMRewardError, match=r"reward.kind: .*is not a reward kind"):
        parse_config({**data, "reward": {"kind": "no_such_kind"}})


def test_goal_baseline_through_the_registry_equals_the_class(hf_clip_model, cartpole_frames):
    direct = vlmreward.GoalBaselineReward(hf_clip_model, GOAL, "a pole on a cart", alpha=0.5)
    built = build_reward("goal_baseline", {"goal": GOAL, "baseline": "a pole on a cart", "alpha": 0.5}, hf_clip_model)
    assert built.describe() == direct.describe()
    torch.testing.assert_close(torch.from_numpy(built(cartpole_frames)), torch.from_numpy(direct(cartpole_frames)))


def test_model_backend_plugin_routes_its_prefix(tiny_hf_clip, hf_clip_model, cartpole_frames):
    from vlmreward.models.spec import ModelSpec

    import vlmreward_example_backend as backend

    model = ModelSpec(f"example:{tiny_hf_clip}", device="cpu", antialias=False, batch_size=5).load()
    assert backend.CALLS[-1]["antialias"] is False and backend.CALLS[-1]["resize"] == "squash"
    assert model.batch_size == 5 and model.antialias is False
    reference = vlmreward.load_model(tiny_hf_clip, antialias=False)
    torch.testing.assert_close(model.encode_images(cartpole_frames), reference.encode_images(cartpole_frames))
    with pytest.raises(vlmreward.VLMRewardError, match="backend prefix"):
        vlmreward.models.registry.register_backend("open_clip", backend.load)


def test_a_declared_sweep_parameter_and_shorthand_reach_every_command(dataset, tiny_hf_clip, hf_clip_model, tmp_path):
    """The plugin declares ``--scale`` (a shorthand), ``scale`` as its sweep parameter over
    (0.5, 1, 2) and the display name "Scaled cosine": score, evaluate, sweep, train and relabel take
    ``--scale``; sweep varies it over the declared grid; the reports show the display name."""
    from vlmreward.eval import load_dataset
    from vlmreward.eval.metrics import detection_metrics

    data = load_dataset(dataset)
    frames = np.array(data.frames)
    labels = data.label("is_success")

    # score: --scale 3 is --param scale=3
    out = tmp_path / "score"
    assert_ok(run("score", dataset / "frames.npy", "--model", tiny_hf_clip, "--goal", GOAL, "--reward-kind", "scaled_cosine",
                  "--scale", 3, "--device", "cpu", "--out", out))
    with open(out / "rewards.csv", newline="") as f:
        rewards = np.array([float(r["reward"]) for r in csv.DictReader(f)])
    np.testing.assert_allclose(rewards, independent(hf_clip_model, frames, GOAL, 3.0, 0.0), atol=1e-5)

    # evaluate: one curve per --scale value, named by the display name and the declared symbol
    out = tmp_path / "evaluation"
    assert_ok(run("evaluate", dataset, "--model", tiny_hf_clip, "--goal", GOAL, "--reward-kind", "scaled_cosine",
                  "--scale", 0.5, "--scale", 4, "--param", "offset=-1", "--device", "cpu", "--out", out, "--no-cache"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["name"] for r in metrics["results"]] == ["Scaled cosine, offset = -1, s = 0.5", "Scaled cosine, offset = -1, s = 4"]
    assert [r["reward"]["scale"] for r in metrics["results"]] == [0.5, 4.0]
    assert "Scaled cosine, offset = -1, s = 4" in (out / "report.html").read_text()
    with pytest.raises(AssertionError):
        assert_ok(run("evaluate", dataset, "--model", tiny_hf_clip, "--goal", GOAL, "--reward-kind", "scaled_cosine",
                      "--scale", 0, "--device", "cpu", "--out", tmp_path / "bad", "--no-cache"))
    bad = run("evaluate", dataset, "--model", tiny_hf_clip, "--goal", GOAL, "--reward-kind", "scaled_cosine",
              "--scale", 0, "--device", "cpu", "--out", tmp_path / "bad", "--no-cache")
    assert bad.exit_code == 2 and "--scale must be > 0" in bad.stderr

    # sweep: without --scale the declared grid, one row each, AP as an independent computation gives
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text(f"prompt_sets:\n  upright:\n    goal: {GOAL}\n")
    out = tmp_path / "sweep"
    assert_ok(run("sweep", dataset, "--model", tiny_hf_clip, "--prompts", prompts, "--reward-kind", "scaled_cosine",
                  "--device", "cpu", "--out", out, "--no-cache"))
    with open(out / "results.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["reward"] == "scaled_cosine"]
    assert [r["setting"] for r in rows] == ["scaled_cosine,scale=0.5", "scaled_cosine,scale=1", "scaled_cosine,scale=2"]
    for row, scale in zip(rows, (0.5, 1.0, 2.0)):
        expected = detection_metrics(independent(hf_clip_model, frames, GOAL, scale, 0.0), labels).average_precision
        assert float(row["average_precision"]) == pytest.approx(expected, abs=1e-5)
    report = (out / "report.html").read_text()
    assert "Scaled cosine" in report and "goal-baseline" in report
    assert json.loads((out / "sweep.json").read_text())["prompt_sets"]["upright"] == {"goal": [GOAL]}

    # train: --scale 2 is --set reward.scale=2; the run's report names the kind by its display name
    config = tmp_path / "run.yaml"
    config.write_text(
        "env: {id: CartPole-v1, n_envs: 1, kwargs: {max_episode_steps: 20}}\n"
        f"reward: {{kind: scaled_cosine, goal: {GOAL}}}\n"
        f"model: {{name: '{tiny_hf_clip}', device: cpu}}\n"
        "algorithm: PPO\nalgorithm_kwargs: {n_steps: 32, batch_size: 16, n_epochs: 1}\n"
        f"total_steps: 32\noutput_dir: '{tmp_path / 'runs'}'\ncheckpoint_every: null\neval_every: null\nvideo: false\n"
    )
    assert_ok(run("train", config, "--scale", 2, "--quiet"))
    (run_dir,) = (tmp_path / "runs").iterdir()
    import yaml

    assert yaml.safe_load((run_dir / "config.yaml").read_text())["reward"]["scale"] == 2.0
    assert "Scaled cosine (scaled_cosine)" in (run_dir / "report.html").read_text()


def test_relabel_takes_a_plugin_shorthand(tmp_path, monkeypatch, tiny_hf_clip, hf_clip_model):
    minari = pytest.importorskip("minari")
    import gymnasium as gym
    import yaml

    import vlmreward.envs  # noqa: F401  (registers the environments)
    from vlmreward.relabel.minari_format import record_episode

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    env = gym.wrappers.AddRenderObservation(
        gym.make("vlmreward/VLMRM-CartPole-v0", episode_length=6, render_mode="rgb_array"), render_only=False)
    minari.create_dataset_from_buffers("test/plugin-v0", [record_episode(env, 0)], env=env, algorithm_name="random",
                                       description="test data", data_format="arrow")
    config = tmp_path / "r.yaml"
    config.write_text(yaml.safe_dump({"reward": {"kind": "scaled_cosine", "goal": GOAL},
                                      "model": {"name": str(tiny_hf_clip), "device": "cpu"}}))
    assert_ok(run("relabel", "test/plugin-v0", "--config", config, "--out", "test/plugin-vlm-v0", "--scale", 4))
    source, relabelled = minari.load_dataset("test/plugin-v0"), minari.load_dataset("test/plugin-vlm-v0")
    (original,), (new,) = list(source.iterate_episodes()), list(relabelled.iterate_episodes())
    expected = independent(hf_clip_model, original.observations["pixels"][1:], GOAL, 4.0, 0.0)
    np.testing.assert_allclose(new.rewards, expected, atol=2e-5)
