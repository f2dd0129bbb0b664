"""What a reward kind declares (issue 24): the registry's metadata, how the commands choose a kind
and read its options from it, its settings' names, and model-free kinds without --model or --goal."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from vlmreward.cli.main import app
from vlmreward.errors import InvalidParameterError
from vlmreward.eval.settings import RewardSetting, reward_settings
from vlmreward.rewards.oracles import CartPolePixelReward
from vlmreward.rewards.params import RewardParams
from vlmreward.rewards.registry import RewardKind, reward_kind, shorthands
from vlmreward.rewards.selection import check_value, choose_kind, default_kind, gather_params
from vlmreward.rewards.shorthands import Shorthand, SweepParameter

GOAL = "a pole standing upright on a cart"
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# ---------------------------------------------------------------------------------------------
# the declarations


def test_builtin_kinds_declare_what_the_commands_used_to_hard_code():
    baseline, softmax, family = reward_kind("goal_baseline"), reward_kind("softmax_threshold"), reward_kind("goal_family_softmax")
    assert [s.option for s in baseline.shorthands] == ["--baseline", "--alpha"]
    assert [s.option for s in softmax.shorthands] == ["--negative", "--temperature", "--threshold"]
    assert baseline.sweep.symbol == "α" and baseline.sweep.grid == (0.0, 0.5, 1.0) and baseline.sweep.needs == "baseline"
    assert softmax.sweep.param == family.sweep.param == "temperature"
    assert baseline.prompts == ("goal", "baseline") and softmax.prompts == ("goal", "negatives") and family.prompts == ()
    assert (baseline.family, reward_kind("vqa").family, reward_kind("episode_video").family) == ("contrastive", "generative", "video")
    assert reward_kind("episode_video").mode == "episode" and reward_kind("window_video").mode == "clip"
    assert reward_kind("cartpole_pixel_oracle").model == "none" and reward_kind("ground_truth").environment_reward
    assert {"--baseline", "--negative", "--alpha", "--temperature", "--threshold"} <= {s.option for s in shorthands()}


def test_declarations_are_checked():
    class P(RewardParams):
        scale: float = 1.0

    with pytest.raises(InvalidParameterError, match="sweep parameter 'alpha' is not one of its parameters"):
        RewardKind("k", object, P, sweep=SweepParameter("alpha", "α", (0.0,)))
    with pytest.raises(InvalidParameterError, match="no command already has"):
        Shorthand("scale", "--model", "clashes with the model option")
    with pytest.raises(InvalidParameterError, match="no command already has"):
        Shorthand("scale", "scale", "not an option")


# ---------------------------------------------------------------------------------------------
# choosing a kind from the options


@pytest.mark.parametrize(
    "given, per_frame, kind",
    [
        ({"goal": [GOAL]}, False, "goal_baseline"),
        ({"goal": [GOAL], "baseline": ["a pole"], "alpha": 0.5}, False, "goal_baseline"),
        ({"goal": [GOAL], "negatives": ["a fallen pole"]}, False, "softmax_threshold"),
        ({}, True, "goal_family_softmax"),
    ],
)
def test_the_prompts_choose_the_most_specific_default_kind(given, per_frame, kind):
    assert choose_kind(None, given, per_frame_goals=per_frame).name == kind


def test_options_of_another_kind_are_refused_in_one_line_naming_both():
    with pytest.raises(InvalidParameterError, match=r"--baseline and --alpha belong to the goal-baseline reward, but "
                                                    r"--negative selects the softmax reward"):
        choose_kind(None, {"goal": [GOAL], "negatives": ["n"], "baseline": ["b"]})
    with pytest.raises(InvalidParameterError, match=r"--temperature sets the softmax reward, which needs --negative"):
        choose_kind(None, {"goal": [GOAL], "temperature": 0.1})
    with pytest.raises(InvalidParameterError, match=r"reward kind 'cartpole_pixel_oracle': alpha: unknown parameter"):
        choose_kind("cartpole_pixel_oracle", {"alpha": 0.5})
    with pytest.raises(InvalidParameterError, match="no reward kind fits these options"):
        choose_kind(None, {})
    assert default_kind(set()) is None


def test_each_value_is_checked_by_the_kinds_own_field():
    kind = reward_kind("goal_baseline")
    assert check_value(kind, "alpha", "0.25") == 0.25
    with pytest.raises(InvalidParameterError, match=r"^--alpha must be in \[0, 1\]; got 1.5\.$"):
        check_value(kind, "alpha", 1.5)
    with pytest.raises(InvalidParameterError, match=r"temperature is given twice"):
        gather_params(reward_kind("softmax_threshold"), {"goal": [GOAL], "temperature": 0.1}, {"temperature": 0.2})


def test_settings_vary_the_declared_parameter_with_its_symbol():
    settings = reward_settings(None, {"goal": [GOAL], "baseline": ["a pole"]})
    assert [s.name for s in settings] == ["α = 0", "α = 0.25", "α = 0.5", "α = 0.75", "α = 1"]  # with_needs
    assert [s.ascii_name for s in reward_settings(None, {"goal": [GOAL]})] == ["alpha=0"]
    settings = reward_settings(None, {"goal": [GOAL], "negatives": ["n"], "temperature": [0.01, 1.0]})
    assert [s.name for s in settings] == ["τ = 0.01", "τ = 1"] and {s.kind for s in settings} == {"softmax_threshold"}
    with pytest.raises(InvalidParameterError, match=r"α = 0.5 needs --baseline"):
        reward_settings(None, {"goal": [GOAL], "alpha": [0.5]})
    other = RewardSetting("episode_info_oracle", (("scale", 2.0), ("statistic", "max")))
    assert other.name == "episode info oracle, scale = 2, statistic = max"
    assert other.ascii_name == "episode_info_oracle,scale=2,statistic=max"


# ---------------------------------------------------------------------------------------------
# model-free kinds


def test_a_model_free_kind_scores_without_model_or_goal(cartpole_frames, tmp_path):
    frames = tmp_path / "frames.npy"
    np.save(frames, cartpole_frames)
    out = tmp_path / "out"
    result = run("score", frames, "--reward-kind", "cartpole_pixel_oracle", "--out", out)
    assert result.exit_code == 0, result.output
    with open(out / "rewards.csv", newline="") as f:
        rewards = np.array([float(r["reward"]) for r in csv.DictReader(f)], dtype=np.float32)
    np.testing.assert_allclose(rewards, CartPolePixelReward()(cartpole_frames), atol=1e-6)
    summary = json.loads((out / "score.json").read_text())
    assert summary["model"] is None and summary["reward"]["kind"] == "cartpole_pixel_oracle"
    assert result.output.splitlines()[0].endswith("(cartpole_pixel_oracle reward)")


def test_a_kind_that_needs_a_model_says_so_without_one(cartpole_frames, tmp_path):
    frames = tmp_path / "frames.npy"
    np.save(frames, cartpole_frames[:2])
    line = one_error_line(run("score", frames, "--goal", GOAL, "--out", tmp_path / "o"))
    assert "reward kind 'goal_baseline' scores frames with a vision-language model; give one with --model" in line
    line = one_error_line(run("score", frames, "--reward-kind", "softmax_threshold", "--goal", GOAL, "--out", tmp_path / "o"))
    assert "reward kind 'softmax_threshold' needs --negative" in line
    assert not (tmp_path / "o").exists()


def test_a_model_free_kind_evaluates_without_model_or_goal(tmp_path):
    from vlmreward.eval import load_dataset
    from vlmreward.eval.metrics import detection_metrics

    data = tmp_path / "cartpole"
    assert run("collect", "vlmreward/CartPole-v1", "--out", data, "--policy", "scripted", "--frames", 12).exit_code == 0
    out = tmp_path / "evaluation"
    result = run("evaluate", data, "--reward-kind", "cartpole_pixel_oracle", "--no-cache", "--out", out)
    assert result.exit_code == 0, result.output
    (metrics,) = json.loads((out / "metrics.json").read_text())["results"]
    dataset = load_dataset(data)
    expected = CartPolePixelReward()(np.asarray(dataset.frames))
    ap = detection_metrics(expected, dataset.label("is_success")).average_precision
    assert metrics["average_precision"] == pytest.approx(ap, abs=1e-9) and metrics["name"] == "CartPole pixel oracle"
    assert "no model" in result.output


def test_an_option_of_a_kind_chosen_only_by_name_says_how_to_choose_it():
    with pytest.raises(InvalidParameterError, match=r"--param statistic=\.\.\. belongs to the episode info oracle reward and "
                                                    r"the progress info oracle reward, but the prompts select the goal-baseline "
                                                    r"reward; choose it with --reward-kind episode_info_oracle or progress_info_oracle"):
        choose_kind(None, {"goal": [GOAL], "statistic": "max"})


def test_a_kind_with_an_unknown_family_or_mode_is_refused():
    with pytest.raises(InvalidParameterError, match="family='diffusion'"):
        RewardKind("k", object, family="diffusion")
    with pytest.raises(InvalidParameterError, match="mode='trajectory'"):
        RewardKind("k", object, mode="trajectory")


def test_a_repeated_option_gives_one_value_to_a_kind_that_does_not_vary_it():
    (setting,) = reward_settings("episode_info_oracle", {"scale": [2.0]})
    assert setting.get("scale") == 2.0
    with pytest.raises(InvalidParameterError, match=r"(--scale|--param scale=\.\.\.) takes one value with reward kind 'episode_info_oracle'"):
        reward_settings("episode_info_oracle", {"scale": [1.0, 2.0]})
