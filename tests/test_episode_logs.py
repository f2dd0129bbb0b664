"""What a newcomer reads after a run is true (issue 29): every episode SB3 counted is in
``episodes.csv`` and the progress lines, episodes are plotted at the step they ended, evaluations
are points on the curves, a repeating evaluation says why, and hints name the command to type.

The runs use ``cartpole_pixel_oracle`` (a reward read off the rendered frames, no model) through
the same deferred scoring a VLM reward takes, so they take seconds.
"""

from __future__ import annotations

import csv
import logging
import os
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import DQN

from vlmreward.rl.config import parse_config
from vlmreward.rl.report import read_evaluations
from vlmreward.rl.train import resume, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _dqn_config(tmp_path: Path, total_steps: int) -> dict:
    """configs/cartpole.yaml's shape: DQN, 4 environments, 200-step episodes, deferred scoring, and
    ``learning_starts`` beyond the run, so nothing but the end of the run scores the last batch."""
    return {
        "env": {"id": "vlmreward/VLMRM-CartPole-v0", "n_envs": 4, "kwargs": {"episode_length": 200}},
        "reward": {"kind": "cartpole_pixel_oracle"},
        "scoring": "deferred",
        "score_batch_size": 100_000,
        "algorithm": "DQN",
        "algorithm_kwargs": {"learning_starts": 1000, "train_freq": 64, "gradient_steps": 1, "buffer_size": 5000,
                             "device": "cpu"},
        "total_steps": total_steps,
        "seed": 0,
        "output_dir": str(tmp_path / "runs"),
        "run_name": "cartpole",
        "checkpoint_every": None,
        "eval_every": None,
        "log": {"tensorboard": False, "progress_every_s": 3600},
    }


def test_a_900_step_deferred_dqn_run_logs_every_episode_sb3_counted_also_after_resume(tmp_path, caplog):
    """The issue's run: 900 steps of DQN, whose replay buffer is never sampled (learning_starts 1000),
    so its rewards stay in the last scoring batch. Each sub-environment ends an episode every 200 of
    its steps (800 of the run's), so the episodes end at steps 800 and, after a resume at 900 (a
    fresh reset), 900 + 800 = 1700."""
    caplog.set_level(logging.INFO, logger="vlmreward.rl")
    run_dir = train(parse_config(_dqn_config(tmp_path, 900)), progress_bar=False)
    rows = _rows(run_dir / "episodes.csv")
    counted = DQN.load(run_dir / "final_model.zip", device="cpu")._episode_num  # SB3's own episode counter
    assert counted == 4 and len(rows) == counted
    assert [int(r["timesteps"]) for r in rows] == [800] * 4 and sorted(int(r["env_index"]) for r in rows) == [0, 1, 2, 3]
    assert all(int(r["length"]) == 200 and float(r["vlm_return"]) != 0 for r in rows)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert lines and "no episode finished yet" not in lines[-1] and "VLM return" in lines[-1]

    caplog.clear()
    resume(run_dir, ["total_steps=1800"], progress_bar=False)
    rows = _rows(run_dir / "episodes.csv")
    counted = DQN.load(run_dir / "final_model.zip", device="cpu")._episode_num
    assert counted == 8 and len(rows) == counted
    assert [int(r["timesteps"]) for r in rows] == [800] * 4 + [1700] * 4


def _ppo_config(tmp_path: Path, **changes) -> dict:
    """2 environments, 40-step episodes (ends at the run's steps 80, 160, 240), 64-step rollouts (the
    deferred scoring batch, larger than a rollout, is scored at each rollout's end: 128, 256)."""
    data = {
        "env": {"id": "vlmreward/VLMRM-CartPole-v0", "n_envs": 2, "kwargs": {"episode_length": 40}},
        "reward": {"kind": "cartpole_pixel_oracle"},
        "scoring": "deferred",
        "score_batch_size": 100_000,
        "algorithm": "PPO",
        "algorithm_kwargs": {"n_steps": 64, "batch_size": 64, "n_epochs": 1, "device": "cpu"},
        "total_steps": 256,
        "seed": 0,
        "output_dir": str(tmp_path / "runs"),
        "run_name": "run",
        "checkpoint_every": 128,
        "eval_every": 128,
        "eval_episodes": 2,
        "video": False,
        "log": {"tensorboard": False},
    }
    data.update(changes)
    return data


def test_curves_plot_each_episode_at_the_step_it_ended_and_every_evaluation_as_a_point(tmp_path):
    from vlmreward.rl.curves import curves_figure

    run_dir = train(parse_config(_ppo_config(tmp_path)), progress_bar=False)
    rows = _rows(run_dir / "episodes.csv")
    assert [int(r["timesteps"]) for r in rows] == [80, 80, 160, 160, 240, 240]  # scored at 128 and 256
    evaluations = read_evaluations(run_dir / "evaluations.jsonl")
    assert [e["step"] for e in evaluations] == [128, 256]  # the final evaluation included
    fig = curves_figure(run_dir / "episodes.csv", evaluations, window=100)
    top, right, bottom = fig.axes  # twinx() made the right axis before the lower panel
    for line in top.get_lines() + right.get_lines()[:2] + bottom.get_lines()[:2]:  # per episode and running means
        np.testing.assert_array_equal(line.get_xdata(), [80, 80, 160, 160, 240, 240])
    (points,) = [line for line in right.get_lines() if line.get_marker() == "o"]  # evaluations' mean GT returns
    np.testing.assert_array_equal(points.get_xdata(), [128, 256])
    np.testing.assert_allclose(np.asarray(points.get_ydata(), dtype=float), [e["mean_gt_return"] for e in evaluations])
    success = [line for line in bottom.get_lines() if line.get_label() == "evaluation success"]
    assert len(success) == 1 and list(success[0].get_xdata()) == [128, 256]
    np.testing.assert_allclose(np.asarray(success[0].get_ydata(), dtype=float), [e["success_rate"] for e in evaluations])
    assert (run_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_a_checkpoint_writes_the_episodes_up_to_its_step_before_it_is_saved(tmp_path, monkeypatch):
    """The episodes that ended at step 800 are scored by the replay buffer's first sample (after
    the rollout ending at 1024) and reported to the callback only at its next step, after the
    checkpoint at the start of the next rollout: the checkpoint writes them first, so a run killed
    just after it has them."""
    from vlmreward.rl.checkpoints import Checkpointer

    seen: list[tuple[int, int]] = []
    original = Checkpointer._write

    def spy(self, model, reason, num_timesteps):  # noqa: ANN001
        path = original(self, model, reason, num_timesteps)
        seen.append((self.last.num_timesteps, len(_rows(tmp_path / "runs" / "cartpole" / "episodes.csv"))))
        return path

    monkeypatch.setattr(Checkpointer, "_write", spy)
    config = _dqn_config(tmp_path, 1280)
    config.update(checkpoint_every=1000)
    train(parse_config(config), progress_bar=False)
    assert seen == [(1024, 4), (1280, 4)]


def test_progress_line_counts_episodes_that_wait_for_deferred_scoring():
    from vlmreward.rl.progress import ProgressLogCallback

    waiting = [3]
    cb = ProgressLogCallback(1000, lambda: {}, every_s=5, clock=lambda: 110.0, unscored_episodes=lambda: waiting[0])
    cb.model = type("M", (), {"num_timesteps": 0})()
    cb._init_callback()
    cb.num_timesteps = 800
    assert cb.line(110.0).endswith("| 3 more episodes finished, waiting for deferred scoring")
    waiting[0] = 0
    assert cb.line(110.0).endswith("| no episode finished yet")


class _Constant:
    """A policy that always answers ``action``, or its step parity with ``parity``."""

    def __init__(self, action: int | None) -> None:
        self.action = action

    def predict(self, obs, deterministic=True):  # noqa: ANN001, ARG002
        return (self.action if self.action is not None else int(obs[2] > 0)), None


@pytest.mark.parametrize("action,seeds,expected", [
    (1, [0], "the policy took one action in all steps"),
    (None, [0], "all 3 episodes took the same action sequence"),
    (None, None, ""),
])
def test_an_evaluation_whose_episodes_repeat_says_why(action, seeds, expected):
    """CartPole from one fixed start (the same seed each episode) under a deterministic policy
    repeats itself; from different starts it does not."""
    from vlmreward.rl.evaluation import evaluate_episodes

    env = gym.make("CartPole-v1")
    if seeds is not None:  # every reset from the same state
        env = _SameStart(env, seeds[0])
    result = evaluate_episodes(_Constant(action), env, 3, seed=7)
    assert result.remark() == expected
    assert result.to_dict()["remark"] == expected
    if action is not None:
        assert result.distinct_actions == 1


class _SameStart(gym.Wrapper):
    def __init__(self, env: gym.Env, seed: int) -> None:
        super().__init__(env)
        self.fixed = seed

    def reset(self, **kwargs):  # noqa: ANN003
        kwargs["seed"] = self.fixed
        return self.env.reset(**kwargs)


@pytest.mark.parametrize("command,option", [
    ("score", "--model DIR"), ("evaluate", "--model DIR"), ("train", "--set model=DIR"),
])
def test_the_missing_weights_error_names_the_option_of_the_command(command, option, tmp_path):
    """The hub is unreachable in the tests (conftest): a hub id that is not cached is the error."""
    from typer.testing import CliRunner

    from vlmreward.cli.main import app

    repo = Path(__file__).resolve().parents[1]
    gif = str(repo / "examples" / "cartpole.gif")
    argv = {
        "score": ["score", gif, "--model", "openai/clip-vit-base-patch32", "--goal", "a pole"],
        "evaluate": ["evaluate", str(tmp_path / "data"), "--model", "openai/clip-vit-base-patch32", "--goal", "a pole"],
        "train": ["train", str(repo / "configs" / "cartpole.yaml"), "--set", f"output_dir={tmp_path / 'runs'}"],
    }[command]
    if command == "evaluate":
        from vlmreward.eval.collect import collect

        collect("vlmreward/VLMRM-CartPole-v0", tmp_path / "data", "scripted", frames=8)
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: model 'openai/clip-vit-base-patch32'"), result.stderr
    assert f"point at a local copy with {option}" in lines[0]
    assert "vlmreward-demo/tiny-clip" in lines[0] and f"{option.replace('DIR', 'vlmreward-demo/tiny-clip')}" in lines[0]
    assert "load_model(" not in lines[0] and "demo --model" not in lines[0]
    assert not (tmp_path / "runs").exists()


def test_hints_name_the_executable_as_it_can_be_typed(tmp_path, monkeypatch):
    from vlmreward.cli.console import command_name

    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    exe = bin_dir / "vlmreward"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(exe), "train"])
    monkeypatch.setenv("PATH", "/usr/bin")
    assert command_name() == os.path.join("venv", "bin", "vlmreward")  # not on PATH: the path, relative here
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin")
    assert command_name() == "vlmreward"  # on PATH, this very one
    other = tmp_path / "other"
    other.mkdir()
    (other / "vlmreward").write_text("#!/bin/sh\n")
    (other / "vlmreward").chmod(0o755)
    monkeypatch.setenv("PATH", f"{other}{os.pathsep}{bin_dir}")
    assert command_name() == os.path.join("venv", "bin", "vlmreward")  # another installation comes first on PATH
