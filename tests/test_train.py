"""Training from a sentence: run configs, short runs, checkpoints, interruption and resume, learning.

Every run goes through the real path: ``vlmreward.load_model`` (the tiny random CLIP of the
``tiny_hf_clip`` fixture), the VLM-rewarded vector environment, stable-baselines3, the
callbacks, checkpoints and videos. A random-weight CLIP teaches nothing, so the learning test
uses the pixel oracle (:class:`~vlmreward.rewards.oracles.CartPolePixelReward`) through the same
deferred-scoring path.
"""

from __future__ import annotations

import csv
import json
import pickle
import re
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from stable_baselines3 import DQN, PPO
from conftest import signal_when
from typer.testing import CliRunner

from vlmreward.errors import VLMRewardError
from vlmreward.rl.checkpoints import latest_checkpoint
from vlmreward.rl.config import ConfigError, RunConfig, apply_overrides, load_config, parse_config
from vlmreward.rl.train import resume, train

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _base(tmp_path: Path, model: Path | None = None, **changes) -> dict:
    """A small CartPole run config as a mapping (PPO, tiny CLIP, 2 envs)."""
    data = {
        "env": {"id": "CartPole-v1", "n_envs": 2},
        "reward": {
            "kind": "goal_baseline",
            "goal": "pole vertically upright on top of the cart",
            "baseline": "pole and cart",
            "alpha": 0.5,
        },
        "model": {"name": str(model) if model else None, "device": "cpu"},
        "algorithm": "PPO",
        "algorithm_kwargs": {"n_steps": 64, "batch_size": 64, "n_epochs": 2, "device": "cpu"},
        "total_steps": 512,
        "seed": 0,
        "output_dir": str(tmp_path / "runs"),
        "checkpoint_every": 256,
        "eval_every": None,
        "log": {"tensorboard": True},
    }
    data.update(changes)
    return data


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------------------------------
# config


@pytest.mark.parametrize("name", ["cartpole.yaml", "mountain_car.yaml", "humanoid_kneeling.yaml"])
def test_shipped_configs_load(name):
    config = load_config(REPO / "configs" / name)
    assert config.reward.kind == "goal_baseline" and config.reward.alpha == 0.5
    assert config.total_steps > 0 and config.model.name


def test_config_yaml_loads_with_defaults(tmp_path):
    path = _write_yaml(tmp_path / "run.yaml", _base(tmp_path, model=Path("some/model")))
    config = load_config(path)
    assert isinstance(config, RunConfig)
    assert (config.algorithm, config.env.n_envs, config.total_steps) == ("PPO", 2, 512)
    assert config.model.name == "some/model" and config.model.resize == "squash"
    assert config.scoring == "per_step" and config.mode == "replace" and config.weight == 1.0
    assert config.reward.goal == "pole vertically upright on top of the cart"


def test_set_overrides(tmp_path):
    data = _base(tmp_path)
    data["model"] = "openai/clip-vit-base-patch32"  # the string shortcut in YAML
    path = _write_yaml(tmp_path / "run.yaml", data)
    config = load_config(
        path,
        [
            "model=/path/to/tiny",
            "total_steps=2000",
            "reward.alpha=0.25",
            "model.device=cpu",
            "algorithm_kwargs.learning_rate=1e-3",
            "env.kwargs.max_episode_steps=100",
            "reward.goal=[a pole upright, an upright pole]",
            "scoring=deferred",
        ],
    )
    assert config.model.name == "/path/to/tiny" and config.model.device == "cpu"
    assert config.total_steps == 2000 and config.reward.alpha == 0.25
    assert config.algorithm_kwargs["learning_rate"] == pytest.approx(1e-3)
    assert config.env.kwargs == {"max_episode_steps": 100}
    assert config.reward.goal == ["a pole upright", "an upright pole"]
    assert config.deferred
    assert apply_overrides({"model": {"name": "x"}}, ["model.name=y"]) == {"model": {"name": "y"}}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (["reward.alpha=2"], ["reward.alpha", "[0, 1]"]),
        (["reward.colour=red"], ["reward.colour", "unknown key", "goal", "baseline", "alpha"]),
        (["flavour=1"], ["flavour", "unknown key", "total_steps", "algorithm"]),
        (["algorithm=A2C"], ["algorithm", "'A2C'", "'PPO', 'SAC' or 'DQN'"]),
        (["reward.kind=clip"], ["reward.kind", "'goal_baseline'", "'softmax_threshold'", "'ground_truth'"]),
        (["mode=both"], ["mode", "'replace' or 'add'"]),
        (["total_steps=0"], ["total_steps", "≥ 1"]),
        (["model.resize=stretch"], ["model.resize", "'squash', 'crop' or 'pad'"]),
        (["algorithm_kwargs.n_stepz=5"], ["algorithm_kwargs.n_stepz", "n_steps"]),
        (["algorithm_kwargs.seed=3"], ["algorithm_kwargs.seed", "top-level 'seed'"]),
        (["reward.baseline=null"], ["reward.baseline", "reward.alpha"]),
        (["model.name=null"], ["model.name", "--set model="]),
    ],
)
def test_config_errors_name_key_and_allowed_values(tmp_path, change, expected):
    path = _write_yaml(tmp_path / "run.yaml", _base(tmp_path, model=Path("m")))
    with pytest.raises(ConfigError) as info:
        load_config(path, change)
    message = str(info.value)
    for fragment in expected:
        assert fragment in message, message
    assert isinstance(info.value, VLMRewardError) and isinstance(info.value, ValueError)


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("env: {id: CartPole-v1\nreward: [", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listing)
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(_write_yaml(tmp_path / "ok.yaml", _base(tmp_path, model=Path("m"))), ["total_steps"])


def test_unknown_env_and_wrong_action_space(tmp_path):
    with pytest.raises(ConfigError, match="env.id"):
        train(parse_config(_base(tmp_path, env={"id": "NoSuchEnv-v9"}, reward={"kind": "ground_truth"})))
    with pytest.raises(ConfigError, match="SAC supports Box"):
        train(parse_config(_base(tmp_path, reward={"kind": "ground_truth"}, algorithm="SAC", algorithm_kwargs={})))


# ---------------------------------------------------------------------------------------------
# short runs


def _check_run_outputs(run_dir: Path, config: RunConfig) -> None:
    saved = load_config(run_dir / "config.yaml")
    assert saved == config  # the resolved config round-trips
    header = _csv_rows(run_dir / "logs" / "progress.csv")
    assert header, "progress.csv has no rows"
    columns = header[0].keys()
    assert {"rollout/vlm_return", "rollout/gt_return", "rollout/episode_length"} <= set(columns)
    assert any(row["rollout/vlm_return"] for row in header) and any(row["rollout/gt_return"] for row in header)
    assert list((run_dir / "logs").glob("events.out.tfevents.*")), "no tensorboard event file"
    episodes = _csv_rows(run_dir / "episodes.csv")
    assert episodes and set(episodes[0]) == {"timesteps", "env_index", "length", "vlm_return", "gt_return", "success",
                                             "success_fraction"}
    assert "rollout/ep_rew_mean" in (run_dir / "logs" / "columns.txt").read_text()  # the run says what SB3's column is
    for row in episodes:  # CartPole-v1: reward 1 per step, so the ground-truth return is the length
        assert float(row["gt_return"]) == pytest.approx(int(row["length"]))
    info = latest_checkpoint(run_dir)
    assert info.reason == "final" and info.num_timesteps == config.total_steps
    assert (run_dir / "final_model.zip").is_file()


def test_short_ppo_run_leaves_all_outputs(tmp_path, tiny_hf_clip, train_cli):
    import imageio.v2 as imageio

    config = parse_config(
        _base(
            tmp_path, model=tiny_hf_clip, eval_every=256, eval_episodes=1, video=True,
            env={"id": "CartPole-v1", "n_envs": 2, "kwargs": {"max_episode_steps": 100}},  # bounds evaluation time
        )
    )
    run_dir = train(config, progress_bar=False)
    _check_run_outputs(run_dir, config)
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["latest.json", "step_000000256", "step_000000512"]
    model = PPO.load(run_dir / "final_model.zip", device="cpu")
    assert model.num_timesteps == 512
    rows = _csv_rows(run_dir / "logs" / "progress.csv")
    assert any(row.get("eval/gt_return") for row in rows) and any(row.get("eval/vlm_return") for row in rows)
    videos = sorted((run_dir / "videos").glob("eval_*.mp4"))
    assert [v.name for v in videos] == ["eval_256.mp4", "eval_512.mp4"]
    assert (run_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # VLM vs GT return, redrawn at evaluations
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    tags = {v.tag for f in (run_dir / "logs").glob("events.out.tfevents.*") for e in EventFileLoader(str(f)).Load()
            for v in e.summary.value}
    assert {"custom_scalars__config__", "rollout/vlm_return", "rollout/gt_return"} <= tags  # one chart for both
    reader = imageio.get_reader(videos[0])
    first = reader.get_data(0)
    n_frames = sum(1 for _ in reader)
    reader.close()
    assert n_frames >= 8  # one per step of the first evaluation episode
    height, width, _ = first.shape
    assert width >= 600 and height > 400 and height % 16 == 0  # frame on top, reward plot below

    result = CliRunner().invoke(train_cli, ["evaluate-policy", str(run_dir), "--episodes", "2"])
    assert result.exit_code == 0, result.output
    assert "ground-truth return" in result.output and "VLM return" in result.output
    assert re.search(r"evaluation episode 2/2: \d+ steps, GT return", result.stderr), result.stderr  # progress per episode
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    assert evaluation["episodes"] == 2 and evaluation["num_timesteps"] == 512
    assert evaluation["mean_gt_return"] == pytest.approx(np.mean(evaluation["gt_returns"]))
    assert max(evaluation["lengths"]) <= 100  # env.kwargs reached gymnasium.make
    assert evaluation["success_rate"] is None  # plain CartPole-v1 reports no success
    assert (run_dir / "videos" / "evaluation.mp4").stat().st_size > 0
    # a second evaluation does not replace the first silently
    again = CliRunner().invoke(train_cli, ["evaluate-policy", str(run_dir), "--episodes", "1", "--no-video"])
    assert isinstance(again.exception, VLMRewardError) and "already holds evaluation.json" in str(again.exception)
    assert json.loads((run_dir / "evaluation.json").read_text())["episodes"] == 2
    again = CliRunner().invoke(train_cli, ["evaluate-policy", str(run_dir), "--episodes", "1", "--no-video", "--overwrite"])
    assert again.exit_code == 0 and json.loads((run_dir / "evaluation.json").read_text())["episodes"] == 1


@pytest.mark.parametrize("scoring", ["deferred", "overlapped"])
def test_short_dqn_deferred_run(tmp_path, tiny_hf_clip, monkeypatch, scoring):
    monkeypatch.setenv("VLMREWARD_CACHE_DIR", str(tmp_path / "cache"))
    data = _base(
        tmp_path,
        model=tiny_hf_clip,
        algorithm="DQN",
        scoring=scoring,
        score_batch_size=48,
        total_steps=384,
        checkpoint_every=128,
        algorithm_kwargs={"learning_starts": 64, "train_freq": 4, "buffer_size": 2000, "device": "cpu"},
    )
    data["model"]["batch_size"] = "auto"  # timed on the first scoring batch; the choice is written to batch_size.json
    config = parse_config(data)
    run_dir = train(config, progress_bar=False)
    _check_run_outputs(run_dir, config)
    info = latest_checkpoint(run_dir)
    assert info.replay_buffer is not None
    with np.load(info.replay_buffer, allow_pickle=False) as buffer:
        assert int(buffer["pos"]) * 2 == 384 and len(buffer["rewards"]) == 192
        assert np.all(buffer["rewards"] != 0)  # every placeholder replaced by its VLM reward
    assert DQN.load(run_dir / "final_model.zip", device="cpu").num_timesteps == 384
    (choice,) = json.loads((run_dir / "batch_size.json").read_text())  # model.batch_size: auto, one frame size
    assert choice["frame_size"] == [400, 600] and choice["batch_size"] in (8, 16, 32, 64, 128)
    assert choice["batch_size"] == int(min(choice["seconds_per_frame"], key=choice["seconds_per_frame"].get))


def test_ground_truth_run_logs_the_same_columns(tmp_path):
    config = parse_config(_base(tmp_path, reward={"kind": "ground_truth"}, total_steps=256, checkpoint_every=None))
    run_dir = train(config, progress_bar=False)
    episodes = _csv_rows(run_dir / "episodes.csv")
    assert episodes and all(float(r["vlm_return"]) == 0.0 for r in episodes)
    columns = _csv_rows(run_dir / "logs" / "progress.csv")[0].keys()
    assert {"rollout/vlm_return", "rollout/gt_return"} <= set(columns)
    assert latest_checkpoint(run_dir).reason == "final"


def test_episode_video_layout(tmp_path):
    import imageio.v2 as imageio

    from vlmreward.rl.video import write_episode_video

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (100, 150, 3), dtype=np.uint8) for _ in range(30)]
    rewards = list(np.sin(np.arange(30) / 4))
    rewards[5] = float("nan")  # a missing value leaves a gap, not a crash
    path = write_episode_video(tmp_path / "v" / "episode.mp4", frames, rewards, fps=10)
    reader = imageio.get_reader(path)
    first = reader.get_data(0)
    n_frames = sum(1 for _ in reader)
    reader.close()
    assert n_frames == 30
    height, width, _ = first.shape  # frames scaled to at least 448 wide, the plot strip below
    assert width >= 448 and height > 100 * 3 and width % 16 == 0 and height % 16 == 0
    assert not list(path.parent.glob(".*"))  # no temporary file left behind


def test_episode_video_shows_the_goal_and_fits_the_reward_axis_to_the_episode(tmp_path):
    import imageio.v2 as imageio

    from vlmreward.rl.video import _EpisodeVideo, write_episode_video

    frames = [np.full((100, 150, 3), (30, 160, 60), dtype=np.uint8) for _ in range(20)]
    rewards = [0.2 + 0.01 * t for t in range(20)]
    plain = write_episode_video(tmp_path / "plain.mp4", frames, rewards, fps=10)
    annotated = write_episode_video(tmp_path / "annotated.mp4", frames, rewards, fps=10, title="pole vertically upright",
                                    gt_rewards=[1.0] * 20, successes=[t < 10 for t in range(20)])
    read = lambda p: imageio.get_reader(p).get_data(0).astype(int)  # noqa: E731
    a, b = read(plain), read(annotated)
    assert b.shape[0] > a.shape[0]  # a goal line above, a status line under the frame
    assert abs(a[5:290, 5:440] - (30, 160, 60)).mean() < 8  # plain: the frame (scaled 3×) starts at the top
    assert abs(b[5:20, 5:440] - 255).mean() > 5 and abs(b[5:20, 5:440] - 255).mean() < 120  # text on white
    header = b.shape[0] - a.shape[0] - 16  # at least the goal band, within the 16-px padding of either
    assert abs(b[header + 40 : header + 280, 5:440] - (30, 160, 60)).mean() < 8  # the frame, under the goal

    fitted = _EpisodeVideo(tmp_path / "fitted.mp4", 10, 1000, "VLM reward")
    streamed = _EpisodeVideo(tmp_path / "streamed.mp4", 10, 1000, "VLM reward", max_buffer_bytes=5 * frames[0].nbytes)
    for video in (fitted, streamed):
        for frame, reward in zip(frames, rewards):
            video.add(frame, reward)
        video.close()
    lo, hi = fitted._strip.ylim
    assert lo < 0.2 < 0.39 < hi and (hi - lo) < 1.2 * 0.19  # the episode's range, a 5 % margin each side
    assert fitted._strip.xlim[1] == 19  # the episode's length
    assert streamed._strip.xlim[1] == 999  # too long to keep: streamed with the expected length


def test_cli_train_usage_errors(tmp_path, train_cli):
    result = CliRunner().invoke(train_cli, ["train"])
    assert result.exit_code == 2 and "--resume" in result.output
    path = _write_yaml(tmp_path / "run.yaml", _base(tmp_path, model=Path("m")))
    result = CliRunner().invoke(train_cli, ["train", str(path), "--set", "reward.alpha=3"])
    assert isinstance(result.exception, ConfigError) and "reward.alpha" in str(result.exception)


# ---------------------------------------------------------------------------------------------
# interruption and resume

_CLI_SCRIPT = """
import sys
import typer
from vlmreward.cli.train import evaluate_policy, train

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command("train")(train)
app.command("evaluate-policy")(evaluate_policy)
app(sys.argv[1:], prog_name="vlmreward")
"""


@pytest.mark.parametrize("signum,scoring", [(signal.SIGINT, "deferred"), (signal.SIGTERM, "deferred"),
                                            (signal.SIGTERM, "overlapped")])
def test_signal_writes_checkpoint_and_resume_finishes(tmp_path, tiny_hf_clip, signum, scoring):
    """Ctrl-C, and SIGTERM as a scheduler sends it, after the first renders (pygame/SDL is up and
    would swallow SIGTERM): a checkpoint, exit 128 + signal, and resume to the exact step count;
    overlapped, the checkpoint waits for the batch scored on the background thread."""
    total = 2000  # not a multiple of train_freq (24): the resumed run must still stop exactly there; long
    # enough that the run cannot finish between the first checkpoint and the signal on a loaded machine
    data = _base(
        tmp_path,
        algorithm="DQN",
        env={"id": "CartPole-v1", "n_envs": 1},
        scoring=scoring,
        score_batch_size=64,
        total_steps=total,
        checkpoint_every=100,
        run_name="killed",
        log={"tensorboard": True, "progress_every_s": 0.2},
        algorithm_kwargs={
            "learning_starts": 50, "train_freq": 24, "gradient_steps": 4, "buffer_size": 5000, "device": "cpu",
        },
    )
    config_path = _write_yaml(tmp_path / "run.yaml", data)
    script = tmp_path / "cli.py"
    script.write_text(_CLI_SCRIPT, encoding="utf-8")
    run_dir = tmp_path / "runs" / "killed"
    pointer = run_dir / "checkpoints" / "latest.json"

    log = tmp_path / "stderr.txt"
    with open(log, "w", encoding="utf-8") as err:
        returncode = signal_when([sys.executable, str(script), "train", str(config_path), "--set", f"model={tiny_hf_clip}"],
                                 pointer.exists, signum, err)
    sent_at = pointer.read_text(encoding="utf-8")  # the checkpoint the run had reached (diagnostics)
    stderr = log.read_text(encoding="utf-8")
    assert returncode == 128 + signum, f"{signal.Signals(signum).name} sent after checkpoint {sent_at}\n{stderr}"
    assert re.search(rf"resume with: \S*vlmreward train --resume {re.escape(str(run_dir))}\n", stderr), stderr
    assert f"interrupted ({signal.Signals(signum).name})" in stderr
    # progress lines reach a log file (not a terminal): step count, speed, ETA
    assert re.search(r"step [\d,]+/2,000 \(\d+%\) \| [\d,]+ steps/s \| ETA ", stderr), stderr

    info = latest_checkpoint(run_dir)
    assert info.reason == "interrupt" and 0 < info.num_timesteps < total
    state = info.load_state()
    assert state["num_timesteps"] == info.num_timesteps and {"python", "numpy", "torch"} <= set(state["rng"])
    model = DQN.load(info.model, device="cpu")
    assert model.num_timesteps == info.num_timesteps
    assert info.replay_buffer is not None
    assert info.replay_buffer.name == "replay_buffer.npz"
    with np.load(info.replay_buffer, allow_pickle=False) as buffer:  # data, not a pickle
        pos, rewards = int(buffer["pos"]), buffer["rewards"]
    assert info.num_timesteps - 1 <= pos <= info.num_timesteps and len(rewards) == pos  # the step in flight may be unstored
    assert np.all(rewards != 0)  # every deferred VLM reward was written in
    interrupted_at = info.num_timesteps

    with pytest.raises(ConfigError, match="cannot change when resuming"):
        resume(run_dir, ["reward.alpha=0.1"])
    assert resume(run_dir, progress_bar=False) == run_dir
    final = DQN.load(run_dir / "final_model.zip", device="cpu")
    assert final.num_timesteps == total
    done = latest_checkpoint(run_dir)
    assert done.reason == "final" and done.num_timesteps == total
    steps_logged = [int(row["time/total_timesteps"]) for row in _csv_rows(run_dir / "logs" / "progress.csv")
                    if row.get("time/total_timesteps")]
    assert min(steps_logged) < interrupted_at < max(steps_logged)  # one log across the interruption
    assert max(int(r["timesteps"]) for r in _csv_rows(run_dir / "episodes.csv")) > interrupted_at
    assert resume(run_dir, progress_bar=False) == run_dir  # a finished run stays finished


_FLAKY_REWARD = '''
import numpy as np


class FlakyReward:
    """Mean brightness + 0.5 (never 0); raises from its ``fail_from_call``-th call on, like a dead GPU."""

    def __init__(self, fail_from_call):
        self.calls = 0
        self.fail_from_call = fail_from_call

    def __call__(self, frames):
        self.calls += 1
        if self.calls >= self.fail_from_call:
            raise RuntimeError(f"reward model failed on call {self.calls}")
        frames = np.asarray(frames)
        frames = frames[None] if frames.ndim == 3 else frames
        return (frames.mean(axis=(1, 2, 3)) / 255.0 + 0.5).astype(np.float32)

    def from_embeddings(self, embeddings):
        return np.asarray(embeddings, dtype=np.float32).reshape(-1)

    def describe(self):
        return {"kind": "flaky"}
'''


@pytest.mark.parametrize("algorithm,scoring", [("PPO", "per_step"), ("DQN", "deferred"), ("DQN", "overlapped")])
def test_reward_model_crash_reraises_after_checkpoint(tmp_path, monkeypatch, algorithm, scoring):
    (tmp_path / "flaky_reward.py").write_text(_FLAKY_REWARD, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    changes = {
        "reward": {"kind": "custom", "factory": "flaky_reward:FlakyReward", "kwargs": {"fail_from_call": 150}},
        "checkpoint_every": None,
        "total_steps": 4096,
    }
    if algorithm == "DQN":
        changes.update(
            scoring=scoring, score_batch_size=32,  # overlapped: the failure surfaces when the batch is waited for
            algorithm_kwargs={"learning_starts": 400, "train_freq": 4, "buffer_size": 5000, "device": "cpu"},
            env={"id": "CartPole-v1", "n_envs": 1},
        )
        changes["reward"]["kwargs"]["fail_from_call"] = 12  # 11 batches of 32 frames, then a dead model
    config = parse_config(_base(tmp_path, algorithm=algorithm, **changes))
    with pytest.raises(RuntimeError, match="reward model failed") as info:
        train(config, progress_bar=False)
    assert any("checkpoint written to" in note for note in getattr(info.value, "__notes__", []))
    run_dir = next((tmp_path / "runs").iterdir())
    checkpoint = latest_checkpoint(run_dir)
    assert checkpoint.reason == "error" and checkpoint.num_timesteps > 0
    if algorithm == "PPO":
        # 149 steps × 2 envs scored; the rollout in flight (from 256) is dropped, not half-counted
        assert checkpoint.num_timesteps == 256
        assert PPO.load(checkpoint.model, device="cpu").num_timesteps == 256
    else:
        with np.load(checkpoint.replay_buffer, allow_pickle=False) as buffer:
            # 11 × 32 = 352 steps were scored; the unscored ones are dropped, none keeps a placeholder
            assert int(buffer["pos"]) == 352 and np.all(buffer["rewards"] > 0.5)
        assert DQN.load(checkpoint.model, device="cpu").num_timesteps >= 352


# ---------------------------------------------------------------------------------------------
# learning


@pytest.mark.slow
def test_ppo_learns_cartpole_from_pixels(tmp_path):
    """PPO with the pixel oracle as the only reward (deferred scoring) balances the pole.

    rl-zoo's CartPole PPO settings; 20 480 steps. A random policy gets about 20.
    """
    from vlmreward.rl.train import evaluate_run

    config = parse_config(
        _base(
            tmp_path,
            env={"id": "CartPole-v1", "n_envs": 8},
            reward={"kind": "cartpole_pixel_oracle"},
            mode="replace",
            scoring="deferred",
            score_batch_size=256,
            total_steps=20_480,
            checkpoint_every=None,
            algorithm_kwargs={
                "n_steps": 32, "batch_size": 256, "gae_lambda": 0.8, "gamma": 0.98, "n_epochs": 20,
                "ent_coef": 0.0, "learning_rate": "lin_1e-3", "clip_range": "lin_0.2", "device": "cpu",
            },
        )
    )
    start = time.monotonic()
    run_dir = train(config, progress_bar=False)
    trained = time.monotonic() - start
    result = evaluate_run(run_dir, episodes=10, deterministic=True, video=False)
    episodes = _csv_rows(run_dir / "episodes.csv")
    first = np.mean([float(r["gt_return"]) for r in episodes[:50]])
    print(
        f"\nPPO from pixel-oracle rewards, {config.total_steps} steps in {trained:.0f} s: "
        f"first 50 training episodes {first:.1f}; deterministic evaluation "
        f"{result['mean_gt_return']:.1f} ± {result['std_gt_return']:.1f} over 10 episodes "
        f"{[int(r) for r in result['gt_returns']]}"
    )
    assert result["mean_gt_return"] >= 150


def test_preemption_signals_raise_in_the_main_thread_and_survive_a_library_handler():
    import os as _os

    from vlmreward.rl.signals import Preempted, exit_code, preemption_signals, restore_handlers, shielded

    before = signal.getsignal(signal.SIGTERM)
    with preemption_signals():
        for signum in (signal.SIGTERM, signal.SIGUSR1):
            with pytest.raises(Preempted) as caught:
                _os.kill(_os.getpid(), signum)
                time.sleep(1)  # the handler runs at the next bytecode; never reached
            assert caught.value.signum == signum and exit_code(caught.value) == 128 + signum
        signal.signal(signal.SIGTERM, lambda *a: None)  # what SDL does on its first render
        restore_handlers()  # KeepSignalHandlers does this at every step
        with pytest.raises(Preempted):
            _os.kill(_os.getpid(), signal.SIGTERM)
            time.sleep(1)
        with shielded():  # while the checkpoint after the first signal is written
            _os.kill(_os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
        assert _os.environ.get("SDL_NO_SIGNAL_HANDLERS") == "1"
    assert signal.getsignal(signal.SIGTERM) is before


def test_progress_line_reads_steps_speed_eta_and_returns():
    from vlmreward.rl.progress import ProgressLogCallback, format_duration

    now = [100.0]
    cb = ProgressLogCallback(1000, lambda: {"rollout/vlm_return": 12.5, "rollout/gt_return": 200.0,
                                             "rollout/success_rate": 0.25}, every_s=5, clock=lambda: now[0])
    cb.model = type("M", (), {"num_timesteps": 100})()
    cb._init_callback()
    cb.num_timesteps, now[0] = 300, 110.0
    assert cb.line(now[0]) == "step 300/1,000 (30%) | 20 steps/s | ETA 35s | VLM return 12.5 | GT return 200 | success 25%"
    assert [format_duration(s) for s in (5, 185, 7620, float("inf"))] == ["5s", "3m 05s", "2h 07m", "?"]


def test_a_negative_or_too_large_seed_is_a_config_error(tmp_path):
    for seed in (-1, 2**32):
        with pytest.raises(ConfigError, match=r"seed: .*(greater than or equal to 0|less than 4294967296)"):
            parse_config(_base(tmp_path, seed=seed))


def test_running_mean_and_curves_from_an_episodes_csv(tmp_path):
    from vlmreward.rl.curves import running_mean, write_curves

    np.testing.assert_allclose(running_mean(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1.0, 2.0, 4.0, 6.0])
    csv_path = tmp_path / "episodes.csv"
    assert write_curves(csv_path, tmp_path / "c.png") is None  # no episodes yet: nothing drawn
    csv_path.write_text("timesteps,env_index,length,vlm_return,gt_return,success\n"
                        "10,0,10,1.5,10,0\n20,0,10,2.5,12,1\n30,1,10,3.0,15,\n", encoding="utf-8")
    out = write_curves(csv_path, tmp_path / "c.png", window=2, title="a pole upright")
    assert out is not None and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_damaged_or_replaced_state_pickle_is_one_clear_error(tmp_path):
    from vlmreward.rl.checkpoints import CheckpointError, CheckpointInfo

    ckpt = tmp_path / "step_64"
    ckpt.mkdir()
    info = CheckpointInfo(ckpt, 64, "periodic", "PPO")
    for content, phrase in ((b"", "cannot be read"), (b"\x80\x04garbage", "cannot be read"),
                            (pickle.dumps([1, 2, 3]), "is not a vlmreward checkpoint state")):
        (ckpt / "state.pkl").write_bytes(content)
        with pytest.raises(CheckpointError, match="is a pickle .* which can run code; pass --trust-run-dir"):
            info.load_state()  # an earlier version's pickle: refused unless trusted
        with pytest.raises(CheckpointError, match=phrase):
            info.load_state(trust=True)


def test_config_paths_resolve_from_the_config_file_and_set_paths_from_here(tmp_path, tiny_hf_clip, monkeypatch):
    import shutil

    from vlmreward.goals import DEFAULT_GOAL_FAMILY

    folder = tmp_path / "configs" / "mine"
    folder.mkdir(parents=True)
    shutil.copytree(tiny_hf_clip, folder / "clip")
    (folder / "family.yaml").write_text(yaml.safe_dump(DEFAULT_GOAL_FAMILY), encoding="utf-8")
    data = _base(tmp_path)
    data["model"] = {"name": "clip", "device": "cpu"}
    data["goals"] = {"family": "family.yaml"}
    data["reward"] = {"kind": "goal_family_softmax"}
    data["env"] = {"id": "CartPole-v1"}
    path = _write_yaml(folder / "run.yaml", data)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(path)
    assert config.model.name == str((folder / "clip").resolve())
    assert config.goals.family == str((folder / "family.yaml").resolve())
    # --set paths are read from the current directory; names that are no path stay as they are
    shutil.copytree(tiny_hf_clip, elsewhere / "other")
    assert load_config(path, ["model=other"]).model.name == str((elsewhere / "other").resolve())
    assert load_config(path, ["model=openai/clip-vit-base-patch32"]).model.name == "openai/clip-vit-base-patch32"


def test_resume_accepts_the_same_weights_at_another_path_and_refuses_others(tmp_path, tiny_hf_clip, tiny_hf_siglip):
    import shutil

    original = tmp_path / "models" / "clip"
    shutil.copytree(tiny_hf_clip, original)
    run_dir = train(parse_config(_base(tmp_path, model=original, total_steps=128, checkpoint_every=64)), progress_bar=False)
    assert json.loads((run_dir / "model_fingerprint.json").read_text())["model"] == str(original)
    moved = tmp_path / "elsewhere" / "clip"
    shutil.move(str(original), moved)  # the weights moved: the run resumes from their new place
    assert resume(run_dir, [f"model={moved}"], progress_bar=False) == run_dir
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["model"]["name"] == str(moved.resolve())
    with pytest.raises(ConfigError, match="holds other weights than the run was trained with"):
        resume(run_dir, [f"model={tiny_hf_siglip}"])


def test_checkpoints_without_the_replay_buffer_are_small_and_still_resume(tmp_path, tiny_hf_clip):
    data = _base(tmp_path, model=tiny_hf_clip, algorithm="DQN", env={"id": "CartPole-v1", "n_envs": 1},
                 total_steps=160, checkpoint_every=64, checkpoint_replay_buffer=False, run_name="lean",
                 algorithm_kwargs={"learning_starts": 32, "buffer_size": 1000, "device": "cpu"})
    config = parse_config({**data, "total_steps": 96})
    run_dir = train(config, progress_bar=False)
    info = latest_checkpoint(run_dir)
    assert info.replay_buffer is None and info.model.is_file()
    assert resume(run_dir, ["total_steps=160"], progress_bar=False) == run_dir
    assert DQN.load(run_dir / "final_model.zip", device="cpu").num_timesteps == 160


def test_a_replay_buffer_that_cannot_fit_in_memory_is_refused_before_anything_is_written(tmp_path):
    """buffer_size × (2 × observation + action + 12) bytes (CartPole: 2 × 16 + 8 + 12) is checked before SB3 allocates it."""
    data = _base(tmp_path, reward={"kind": "ground_truth"}, algorithm="DQN",
                 algorithm_kwargs={"buffer_size": 10**14, "device": "cpu"})
    with pytest.raises(ConfigError, match=r"replay buffer would need 5200000\.0 GB .*lower algorithm_kwargs\.buffer_size"):
        train(parse_config(data))
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_signal_while_a_checkpoint_is_written_leaves_the_previous_one_usable(tmp_path, monkeypatch):
    """A KeyboardInterrupt (Ctrl-C, SIGTERM through vlmreward.rl.signals) in the middle of writing a
    checkpoint: latest.json still names the previous, complete one; the next write cleans up."""
    from stable_baselines3 import DQN as _DQN
    from stable_baselines3.common.env_util import make_vec_env

    from vlmreward.rl.checkpoints import Checkpointer

    model = _DQN("MlpPolicy", make_vec_env("CartPole-v1", n_envs=1, seed=0), learning_starts=10, buffer_size=500,
                 device="cpu", seed=0)
    model.learn(64)
    checkpointer = Checkpointer(tmp_path, "DQN")
    first = checkpointer.save(model)
    model.learn(32, reset_num_timesteps=False)
    import vlmreward.rl.checkpoints as checkpoints

    def interrupted(buffer, path):  # the replay buffer is half written when the signal arrives
        path.write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints, "save_replay_buffer", interrupted)
    with pytest.raises(KeyboardInterrupt):
        checkpointer.save(model)
    info = latest_checkpoint(tmp_path)
    assert info.path == first and info.num_timesteps == 64 and info.replay_buffer.name == "replay_buffer.npz"
    assert list((tmp_path / "checkpoints").glob(".tmp-*"))  # the half-written one, never pointed at
    monkeypatch.undo()
    second = checkpointer.save(model)
    assert latest_checkpoint(tmp_path).path == second and not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_a_kill_between_renaming_a_checkpoint_and_updating_latest_json_resumes_from_the_renamed_one(tmp_path, monkeypatch):
    """The process dies after ``os.replace`` put the finished checkpoint in place and before
    latest.json named it (the race the kill trials found): the renamed one is complete, so resume
    takes it, and the next run's pruning still counts it (no orphan directory is left)."""
    from stable_baselines3 import DQN as _DQN
    from stable_baselines3.common.env_util import make_vec_env

    import vlmreward.rl.checkpoints as checkpoints
    from vlmreward.rl.checkpoints import Checkpointer

    model = _DQN("MlpPolicy", make_vec_env("CartPole-v1", n_envs=1, seed=0), learning_starts=10, buffer_size=500,
                 device="cpu", seed=0)
    model.learn(64)
    first = Checkpointer(tmp_path, "DQN", keep=2).save(model)
    model.learn(32, reset_num_timesteps=False)
    real_write = checkpoints.atomic_write_text

    def killed(path, text):  # noqa: ANN001
        if Path(path).name == "latest.json":
            raise KeyboardInterrupt
        real_write(path, text)

    monkeypatch.setattr(checkpoints, "atomic_write_text", killed)
    with pytest.raises(KeyboardInterrupt):
        Checkpointer(tmp_path, "DQN", keep=2).save(model)
    monkeypatch.undo()
    pointer = json.loads((tmp_path / "checkpoints" / "latest.json").read_text())
    assert pointer["checkpoint"] == first.name  # latest.json was not updated
    info = latest_checkpoint(tmp_path)
    assert info.num_timesteps == 96 and info.path.name == "step_000000096"
    model.learn(32, reset_num_timesteps=False)
    third = Checkpointer(tmp_path, "DQN", keep=2).save(model)
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*")) == ["step_000000096", third.name]
    assert json.loads((tmp_path / "checkpoints" / "latest.json").read_text())["history"] == ["step_000000096", third.name]
