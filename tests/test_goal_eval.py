"""The offline path per goal: collect a MiniWorldGoals dataset, AP per goal type, prompt templates swept."""

from __future__ import annotations

import os

os.environ.setdefault("PYGLET_HEADLESS", "true")  # before anything imports miniworld / pyglet

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import typer
import yaml
from typer.testing import CliRunner

from vlmreward.eval import load_dataset
from vlmreward.eval.collect import collect

REPO = Path(__file__).resolve().parents[1]
ENV_ID = "vlmreward/MiniWorldGoals-v0"


def _app() -> typer.Typer:
    from vlmreward.cli.main import app

    return app


@pytest.fixture(scope="module")
def goal_sweep(tmp_path_factory) -> Path:
    """A scripted MiniWorldGoals dataset: 36 frames of 48 × 48, goals of all three types."""
    out = tmp_path_factory.mktemp("goal-data") / "miniworld-goals"
    result = collect(
        ENV_ID, out, "scripted", frames=36, seed=0,
        env_kwargs={"render_width": 48, "render_height": 48, "family": str(REPO / "configs" / "goals" / "miniworld_objects.yaml")},
    )
    assert result.frames == 36
    return out


def test_collect_records_each_frames_goal_and_its_success(goal_sweep):
    data = load_dataset(goal_sweep)
    assert data.frames.shape == (36, 48, 48, 3)
    assert {"goal", "goal_key", "goal_type", "is_success", "object_distance", "state_kind"} <= set(data.table)
    types = set(data.table["goal_type"].tolist())
    assert types == {"find", "lift", "place"}
    labels = data.label("is_success")
    assert 0.3 < labels.mean() < 0.7  # about half of the set states achieve their goal
    for goal_type in types:
        mask = data.table["goal_type"] == goal_type
        assert labels[mask].any() and not labels[mask].all()
    assert data.metadata["goal_family"]["name"] == "miniworld_objects" and data.metadata["goal_set"] == "train"
    assert not any("purple" in g for g in data.table["goal"].tolist())  # training goals
    np.testing.assert_array_equal(data.table["gt_reward"], labels.astype(float))
    # the labels agree with the simple geometry of each state kind
    kinds = data.table["state_kind"]
    assert labels[kinds == "carrying_object"].all() and not labels[kinds == "carrying_other"].any()
    assert labels[kinds == "next_to_target"].all() and not labels[np.isin(kinds, ["away_from_target", "carried_at_target"])].any()


def test_collect_random_episodes_from_the_goal_environment(tmp_path):
    result = collect(ENV_ID, tmp_path / "episodes", "random", episodes=2, max_steps=5, seed=1,
                     env_kwargs={"render_width": 32, "render_height": 32, "obs_type": "state"})
    data = load_dataset(result.path)
    assert len(data) == 10 and set(data.table["step"].tolist()) == {1, 2, 3, 4, 5}
    assert len(set(data.table["goal"].tolist())) <= 2  # one goal per episode


def test_evaluate_reports_ap_per_goal_type(goal_sweep, tiny_hf_clip, tmp_path):
    out = tmp_path / "evaluation"
    result = CliRunner().invoke(
        _app(),
        ["evaluate", str(goal_sweep), "--model", str(tiny_hf_clip), "--out", str(out), "--temperature", "0.01",
         "--temperature", "0.1", "--family-negatives", "same_template", "--template", "find=a photo of a {object}"],
    )
    assert result.exit_code == 0, result.output
    assert "goal_type find" in result.output and "goal_type place" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["group_by"] == "goal_type" and metrics["prompts"]["per_frame_goals"]
    assert metrics["prompts"]["templates"] == {"find": ["a photo of a {object}"]}
    assert len(metrics["results"]) == 2
    for r in metrics["results"]:
        assert r["reward"]["kind"] == "goal_family_softmax" and r["reward"]["negatives"] == "same_template"
        assert set(r["groups"]) == {"find", "lift", "place"}
        for g in r["groups"].values():
            assert 0.0 <= g["average_precision"] <= 1.0 and g["frames"] == 12 and 0 < g["positives"] < 12
            assert g["pr_curve"]["precision"] and g["pr_curve"]["recall"]
    for name in ("pr_curve_by_group.png", "metric_by_group.png", "report.html", "landscape.png"):
        assert (out / name).stat().st_size > 0
    assert "Metrics per goal_type" in (out / "report.html").read_text()


def test_evaluate_per_frame_goals_matches_the_reward(goal_sweep, hf_clip_model, tmp_path):
    from vlmreward.eval import evaluate_dataset
    from vlmreward.rewards import GoalFamilySoftmaxReward

    data = load_dataset(goal_sweep)
    result = evaluate_dataset(data, hf_clip_model, None, tmp_path / "ev", temperatures=[0.05], report=False)
    reward = GoalFamilySoftmaxReward(hf_clip_model, data.metadata["goal_family"], temperature=0.05)
    expected = reward.score_with_goals(np.array(data.frames), data.table["goal_key"].tolist())
    np.testing.assert_allclose(result.results[0].rewards, expected, rtol=1e-5, atol=1e-7)


def test_evaluate_goal_errors(goal_sweep, tiny_hf_clip, tmp_path):
    runner = CliRunner()
    res = runner.invoke(_app(), ["evaluate", str(goal_sweep), "--model", str(tiny_hf_clip), "--alpha", "0.5", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "each frame is scored against its own goal" in res.output
    res = runner.invoke(_app(), ["evaluate", str(goal_sweep), "--model", str(tiny_hf_clip), "--group-by", "colourz", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "colourz" in res.output
    res = runner.invoke(_app(), ["evaluate", str(goal_sweep), "--model", str(tiny_hf_clip), "--template", "open={object}", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "does not have" in res.output


def test_sweep_compares_prompt_templates_per_goal_type(goal_sweep, tiny_hf_clip, tmp_path):
    out = tmp_path / "sweep"
    prompts = REPO / "configs" / "prompts" / "miniworld_goal_templates.yaml"
    result = CliRunner().invoke(
        _app(), ["sweep", str(goal_sweep), "--model", str(tiny_hf_clip), "--prompts", str(prompts), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    with open(out / "results.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    sets = list(yaml.safe_load(prompts.read_text())["goal_templates"])
    assert sorted({r["prompt_set"] for r in rows}) == sorted(sets)
    assert {r["group"] for r in rows} == {"all", "find", "lift", "place"} and len(rows) == 4 * len(sets)
    assert all(r["reward"] == "goal_family_softmax" and 0 <= float(r["average_precision"]) <= 1 for r in rows)
    by_set = {r["prompt_set"]: r for r in rows if r["group"] == "find"}
    assert by_set["instruction"]["average_precision"] != by_set["photo"]["average_precision"]  # different prompts
    assert (out / "prompts_by_group.png").stat().st_size > 0 and (out / "report.html").is_file()


def test_goal_templates_file_errors(goal_sweep, tiny_hf_clip, tmp_path):
    from vlmreward.eval.sweep import PromptFileError, parse_prompt_sets

    with pytest.raises(PromptFileError, match="negatives 'most'"):
        parse_prompt_sets({"goal_templates": {"a": {}}, "negatives": "most"})
    with pytest.raises(PromptFileError, match="needs k"):
        parse_prompt_sets({"goal_templates": {"a": {}}, "negatives": "k_sampled"})
    with pytest.raises(PromptFileError, match="goal_templates.a.find"):
        parse_prompt_sets({"goal_templates": {"a": {"find": []}}})
    with pytest.raises(PromptFileError, match="unknown top-level"):
        parse_prompt_sets({"goal_templates": {"a": {}}, "temperature": 1})
    sets = parse_prompt_sets({"goal_templates": {"a": {"find": "the {object}"}}, "negatives": "k_sampled", "k": 3})
    assert sets["a"].templates == {"find": ["the {object}"]} and sets["a"].k == 3
