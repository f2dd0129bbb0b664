"""Many goals, one agent: goal-conditioned training and evaluation on a goal family (Baumli et al.).

The short run goes through the real path (the tiny random CLIP of the ``tiny_hf_clip`` fixture as
reward model and goal text encoder, the goal-conditioned vector environment with deferred
scoring, PPO on dict observations, the callbacks and ``vlmreward evaluate-policy``). A random CLIP
teaches nothing, so the learning test trains on the simulator-state oracle
(:class:`~vlmreward.envs.goal_conditioning.GoalStateOracleReward`) through the same path, and
evaluates the policy on held-out goals against a random policy.
"""

from __future__ import annotations

import os

os.environ.setdefault("PYGLET_HEADLESS", "true")  # before anything imports miniworld / pyglet

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vlmreward.rl.config import ConfigError, load_config, parse_config
from vlmreward.rl.train import train

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _goal_run(tmp_path: Path, model: Path | None, **changes) -> dict:
    data = {
        "env": {
            "id": "vlmreward/MiniWorldGoals-v0",
            "n_envs": 2,
            "kwargs": {"obs_type": "state", "render_width": 32, "render_height": 32, "room_size": 3.0,
                       "num_objects": 3, "max_episode_steps": 16},
        },
        "goals": {"family": str(REPO / "configs" / "goals" / "miniworld_objects.yaml"), "negatives": "same_template"},
        "reward": {"kind": "goal_family_softmax", "temperature": 0.05},
        "model": {"name": str(model) if model else None, "device": "cpu"},
        "algorithm": "PPO",
        "policy": "MultiInputPolicy",
        "scoring": "deferred",
        "score_batch_size": 24,
        "algorithm_kwargs": {"n_steps": 32, "batch_size": 32, "n_epochs": 1, "device": "cpu"},
        "total_steps": 128,
        "seed": 0,
        "output_dir": str(tmp_path / "runs"),
        "checkpoint_every": None,
        "eval_every": 128,
        "eval_episodes": 2,
        "video": True,
        "log": {"tensorboard": False},
    }
    data.update(changes)
    return data


def test_shipped_goal_configs_load(monkeypatch):
    monkeypatch.chdir(REPO)  # the configs name the family file relative to the repository root
    vlm = load_config(REPO / "configs" / "miniworld_goals.yaml")
    assert vlm.reward.kind == "goal_family_softmax" and vlm.goals is not None and vlm.policy == "MultiInputPolicy"
    assert vlm.goals.load_family().name == "miniworld_objects" and vlm.model.name
    oracle = load_config(REPO / "configs" / "miniworld_goals_oracle.yaml")
    assert oracle.reward.kind == "goal_state_oracle" and not oracle.needs_vlm


def test_goal_config_errors():
    base = _goal_run(Path("/tmp"), Path("/nowhere"))
    with pytest.raises(ConfigError, match="needs a goals section"):
        parse_config({**base, "goals": None})
    with pytest.raises(ConfigError, match="goals.split.held_out: .*'pink' is not in goal family|'pink' is not in goal family"):
        parse_config({**base, "goals": {"split": {"by": "colour", "held_out": ["pink"]}}})
    with pytest.raises(ConfigError, match="k is required"):
        parse_config({**base, "goals": {"negatives": "k_sampled"}})
    with pytest.raises(ConfigError, match="goals.bogus: unknown key; allowed keys in goals: family, split"):
        parse_config({**base, "goals": {"bogus": 1}})
    with pytest.raises(ConfigError, match="does not exist"):
        parse_config({**base, "goals": {"family": "/nowhere/family.yaml"}})


def test_short_goal_conditioned_run_logs_per_goal_type_and_evaluates_held_out_goals(tmp_path, tiny_hf_clip, train_cli):
    config = parse_config(_goal_run(tmp_path, tiny_hf_clip))
    run_dir = train(config, progress_bar=False)
    assert load_config(run_dir / "config.yaml") == config  # the goals section round-trips

    episodes = _rows(run_dir / "episodes.csv")
    assert episodes and {"goal_type", "goal"} <= set(episodes[0])
    types = {r["goal_type"] for r in episodes}
    assert types and types <= {"find", "lift", "place"}
    assert all("purple" not in r["goal"] for r in episodes)  # training goals only (purple is held out)
    assert all(r["success"] in ("0", "1") for r in episodes)

    progress = _rows(run_dir / "logs" / "progress.csv")
    columns = set(progress[0])
    for goal_type in types:
        assert f"rollout/success_rate/{goal_type}" in columns and f"rollout/vlm_return/{goal_type}" in columns
    assert {"rollout/vlm_return", "rollout/success_rate", "eval/success_rate", "eval_held_out/success_rate",
            "rollout/success_rate_held", "eval/success_rate_held"} <= columns
    assert list((run_dir / "videos").glob("eval_*.mp4"))

    result = CliRunner().invoke(train_cli, ["evaluate-policy", str(run_dir), "--episodes", "3", "--no-video"])
    assert result.exit_code == 0, result.output
    assert "train goals:" in result.output and "held_out goals:" in result.output
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    assert evaluation["goal_set"] == "train" and set(evaluation["goal_sets"]) == {"train", "held_out"}
    for name, part in evaluation["goal_sets"].items():
        assert part["episodes"] == 3 and len(part["goals"]) == 3
        assert set(part["success_rate_by_goal_type"]) <= {"find", "lift", "place"}
        assert all(("purple" in g) == (name == "held_out") for g in part["goals"])
    assert evaluation["reward"]["kind"] == "goal_family_softmax" and evaluation["reward"]["negatives"] == "same_template"

    from vlmreward.eval import collect, load_dataset  # frames of the trained goal-conditioned policy

    from vlmreward.rl.run_policy import load_run_policy  # eval does not import rl: the caller loads the policy

    collected = collect("vlmreward/MiniWorldGoals-v0", tmp_path / "policy-data", load_run_policy(run_dir), frames=6, seed=0)
    data = load_dataset(collected.path)
    assert len(data) == 6 and data.metadata["policy"]["kind"] == "run"
    assert data.metadata["env_kwargs"]["family"]["name"] == "miniworld_objects"
    assert not any("purple" in g for g in data.table["goal"].tolist())


def test_goal_run_without_a_vlm_uses_the_bag_of_words_encoder(tmp_path):
    from stable_baselines3 import PPO

    config = parse_config(_goal_run(
        tmp_path, None, reward={"kind": "goal_state_oracle"}, scoring="per_step", eval_every=None, total_steps=64,
        goals={"types": ["find"], "split": {"by": "object", "held_out": ["ball"]}, "encoder_dim": 8},
        algorithm_kwargs={"n_steps": 32, "batch_size": 32, "n_epochs": 1, "device": "cpu",
                          "policy_kwargs": {"features_extractor_class": "GoalFiLMExtractor"}},
    ))
    run_dir = train(config, progress_bar=False)
    model = PPO.load(run_dir / "final_model.zip", device="cpu")
    assert model.observation_space["goal"].shape == (8,)
    assert type(model.policy.features_extractor).__name__ == "GoalFiLMExtractor"
    assert all(r["goal_type"] == "find" and "ball" not in r["goal"] for r in _rows(run_dir / "episodes.csv"))


class _RandomPolicy:
    """Uniformly random actions, with ``predict`` as SB3's algorithms have it."""

    def __init__(self, action_space, seed: int) -> None:
        self.action_space = action_space
        self.action_space.seed(seed)

    def predict(self, obs, deterministic=True):  # noqa: ARG002
        return self.action_space.sample(), None


@pytest.mark.slow
def test_oracle_trained_agent_beats_a_random_one_on_held_out_find_goals(tmp_path):
    """PPO on the state oracle through the goal-conditioned path (dict observations with the goal's
    text embedding, deferred scoring of each frame against its goal) learns Find on the training
    colours and carries it over to the held-out colour (configs/miniworld_goals_oracle.yaml)."""
    from vlmreward.rl.evaluation import evaluate_episodes
    from vlmreward.rl.train import build_reward_model, evaluate_run, make_eval_env

    config = load_config(
        REPO / "configs" / "miniworld_goals_oracle.yaml",
        [f"output_dir={tmp_path / 'runs'}", "log.tensorboard=false",
         f"goals.family={REPO / 'configs' / 'goals' / 'miniworld_objects.yaml'}"],
    )
    start = time.monotonic()
    run_dir = train(config, progress_bar=False)
    trained = time.monotonic() - start
    evaluation = evaluate_run(run_dir, episodes=40, video=False, deterministic=False)
    held_out = evaluation["goal_sets"]["held_out"]
    assert all("purple" in g for g in held_out["goals"])

    reward_model = build_reward_model(config)
    env = make_eval_env(config, reward_model, goal_set="held_out")
    random_result = evaluate_episodes(_RandomPolicy(env.action_space, 0), env, 40, seed=config.seed + 1_000_003)
    env.close()
    episodes = _rows(run_dir / "episodes.csv")
    first = np.mean([float(r["success"]) for r in episodes[:100]])
    last = np.mean([float(r["success"]) for r in episodes[-100:]])
    print(
        f"\nFind from the state oracle, {config.total_steps} steps in {trained:.0f} s: training success "
        f"{first:.2f} (first 100 episodes) -> {last:.2f} (last 100); evaluation over 40 episodes (sampled actions): "
        f"training goals {evaluation['goal_sets']['train']['success_rate']:.2f}, held-out goals "
        f"{held_out['success_rate']:.2f}; random policy on held-out goals {random_result.success_rate:.2f}"
    )
    assert held_out["success_rate"] >= random_result.success_rate + 0.25
    assert evaluation["goal_sets"]["train"]["success_rate"] >= random_result.success_rate + 0.25


def test_goal_state_oracle_follows_the_reward_protocol():
    """Goal-aware by data (``goal_info_key``), called ``reward(frames, goals=...)`` like the goal-family reward."""
    import math

    from vlmreward.envs.goal_conditioning import GoalState, GoalStateOracleReward
    from vlmreward.envs.wrappers import goal_info_key, score_frames
    from vlmreward.errors import VLMRewardError
    from vlmreward.rewards.registry import build_reward

    reward = build_reward("goal_state_oracle")
    assert isinstance(reward, GoalStateOracleReward) and goal_info_key(reward) == "goal_state"
    near = GoalState("red ball", "find", 0.0, 0.0, False, False, math.nan, False, 5.0)
    done = GoalState("red ball", "find", 0.1, 0.0, False, False, math.nan, True, 5.0)
    frames = np.zeros((2, 4, 4, 3), np.uint8)
    np.testing.assert_allclose(score_frames(reward, frames, [near, done]), [0.5, 1.0])  # (1 + cos 0) / 2 · 0.5 · e^0; success
    np.testing.assert_array_equal(reward(frames, goals=[near, done]), reward.score_with_goals(frames, [near, done]))
    with pytest.raises(VLMRewardError, match="goal_state"):
        reward(frames)
