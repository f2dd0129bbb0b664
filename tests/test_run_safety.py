"""Nothing lost, nothing unsafe (issue 25): run state without pickles, checkpoints verified with a
fallback to the newest intact one, one process per run directory, and no code run by a crafted file.

The runs use model-free rewards (``ground_truth``, ``cartpole_pixel_oracle``) through the same
training path a VLM reward takes, so they take seconds.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

from vlmreward.rl.checkpoints import CheckpointError, latest_checkpoint, verify_checkpoint
from vlmreward.rl.config import parse_config
from vlmreward.rl.train import resume, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(tmp_path: Path, **changes) -> dict:
    """DQN on VLM-RM's CartPole with observation normalisation: every file a checkpoint can hold."""
    data = {
        "env": {"id": "vlmreward/VLMRM-CartPole-v0", "n_envs": 2, "kwargs": {"episode_length": 40},
                "normalize_observations": True},
        "reward": {"kind": "cartpole_pixel_oracle"},
        "scoring": "deferred",
        "score_batch_size": 64,
        "algorithm": "DQN",
        "algorithm_kwargs": {"learning_starts": 32, "train_freq": 16, "gradient_steps": 1, "buffer_size": 2000,
                             "device": "cpu"},
        "total_steps": 256,
        "seed": 0,
        "output_dir": str(tmp_path / "runs"),
        "run_name": "run",
        "checkpoint_every": 64,
        "keep_checkpoints": 3,
        "eval_every": None,
        "video": False,
        "log": {"tensorboard": False},
    }
    data.update(changes)
    return data


# ---------------------------------------------------------------------------------------------
# state without pickles


def test_random_states_and_normaliser_statistics_round_trip_without_pickles(tmp_path):
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from vlmreward.rl.run_state import (capture_rng_state, load_state, load_vec_normalize, restore_rng_state, save_state,
                                        save_vec_normalize)

    space = gym.spaces.Discrete(5)
    model = type("M", (), {"action_space": space})()
    random.seed(1), np.random.seed(2), torch.manual_seed(3), space.seed(4)
    save_state(tmp_path, {"num_timesteps": 77, "reason": "periodic", "time": 1.0, "rng": capture_rng_state(model)})
    assert not list(tmp_path.glob("*.pkl"))
    draws = (random.random(), np.random.rand(3).tolist(), torch.rand(2).tolist(), space.sample())
    random.seed(9), np.random.seed(9), torch.manual_seed(9), space.seed(9)
    state = load_state(tmp_path)
    restore_rng_state(state["rng"], model)
    assert state["num_timesteps"] == 77
    assert (random.random(), np.random.rand(3).tolist(), torch.rand(2).tolist(), space.sample()) == draws

    venv = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0), gamma=0.9, clip_obs=5.0)
    venv.reset()
    for _ in range(20):
        venv.step(np.array([venv.action_space.sample() for _ in range(2)]))
    save_vec_normalize(venv, tmp_path / "vecnormalize.npz")
    obs = np.random.default_rng(0).normal(size=(4, 4)).astype(np.float32)
    again = load_vec_normalize(tmp_path / "vecnormalize.npz", make_vec_env("CartPole-v1", n_envs=2, seed=0))
    frozen = load_vec_normalize(tmp_path / "vecnormalize.npz")  # no environment: normalize_obs only
    for other in (again, frozen):
        np.testing.assert_array_equal(other.normalize_obs(obs), venv.normalize_obs(obs))
        np.testing.assert_array_equal(other.obs_rms.mean, venv.obs_rms.mean)
        assert other.obs_rms.count == venv.obs_rms.count and other.gamma == 0.9 and other.clip_obs == 5.0
    assert frozen.training is False
    np.testing.assert_array_equal(again.normalize_reward(np.ones(2)), venv.normalize_reward(np.ones(2)))


class _Boom:
    """Unpickling this runs ``os.system``: a stand-in for any code a crafted pickle could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_pickle_in_a_checkpoint_runs_nothing(tmp_path):
    """An earlier version's state.pkl (no manifest) replaced by a pickle that runs a command, and a
    model.zip whose pickled entries do the same: resume refuses the first, and loads the model with
    every pickled entry rebuilt instead of unpickled. The command never runs."""
    import pickle

    from vlmreward.rl.builders import load_algorithm

    run_dir = train(parse_config(_config(tmp_path, total_steps=128)), progress_bar=False)
    marker = tmp_path / "ran"
    checkpoint = latest_checkpoint(run_dir).path
    for name in ("manifest.json", "state.json", "rng.npz"):
        (checkpoint / name).unlink()  # what an earlier version wrote: state.pkl, no manifest
    (checkpoint / "state.pkl").write_bytes(pickle.dumps(_Boom(marker)))
    with pytest.raises(CheckpointError, match="is a pickle .* which can run code; pass --trust-run-dir"):
        resume(run_dir, ["total_steps=192"], progress_bar=False)
    assert not marker.exists()

    archive = run_dir / "final_model.zip"
    with zipfile.ZipFile(archive) as z:
        members = {n: z.read(n) for n in z.namelist()}
    data = json.loads(members["data"])
    evil = base64.b64encode(pickle.dumps(_Boom(marker))).decode()
    serialized = [k for k, v in data.items() if isinstance(v, dict) and ":serialized:" in v]
    assert {"policy_class", "observation_space", "action_space", "_last_obs"} <= set(serialized)
    for key in serialized:
        data[key][":serialized:"] = evil
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(archive, "w") as z:
        for name, content in members.items():
            z.writestr(name, content)
    env = gym.make("vlmreward/VLMRM-CartPole-v0")
    config = parse_config(_config(tmp_path))
    model = load_algorithm(config, archive, env.observation_space, env.action_space, device="cpu")
    assert not marker.exists() and model.num_timesteps == 128
    assert model.predict(env.reset(seed=0)[0], deterministic=True)[0] in (0, 1)
    data["some_new_entry"] = {":type:": "x", ":serialized:": evil}  # what another SB3 version might add
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(archive, "w") as z:
        for name, content in members.items():
            z.writestr(name, content)
    with pytest.raises(Exception, match="some_new_entry as pickles"):
        load_algorithm(config, archive, env.observation_space, env.action_space, device="cpu")
    assert not marker.exists()


def test_image_observations_load_as_sb3_stored_them(tmp_path):
    """SB3 transposes channel-last images (VecTransposeImage) and stores the transposed space; the
    pickle-free loader gives it the same."""
    from stable_baselines3 import PPO

    from vlmreward.rl.builders import load_algorithm

    class Pixels(gym.Env):
        observation_space = gym.spaces.Box(0, 255, (40, 40, 3), np.uint8)
        action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):  # noqa: ANN001
            super().reset(seed=seed)
            return self.observation_space.sample(), {}

        def step(self, action):  # noqa: ANN001
            return self.observation_space.sample(), 0.0, False, False, {}

    model = PPO("CnnPolicy", Pixels(), n_steps=16, batch_size=16, device="cpu", seed=0)
    model.save(tmp_path / "m.zip")
    config = parse_config(_config(tmp_path, algorithm="PPO", policy="CnnPolicy", scoring="per_step",
                                  algorithm_kwargs={"n_steps": 16, "batch_size": 16, "device": "cpu"}))
    loaded = load_algorithm(config, tmp_path / "m.zip", Pixels.observation_space, Pixels.action_space, env=None, device="cpu")
    assert loaded.observation_space == model.observation_space and loaded.observation_space.shape == (3, 40, 40)
    obs = Pixels.observation_space.sample()
    assert loaded.predict(obs, deterministic=True)[0] == model.predict(obs, deterministic=True)[0]


# ---------------------------------------------------------------------------------------------
# verified checkpoints


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A DQN run with observation normalisation: checkpoints at 64, 128, 192 (kept) and 256 (final)."""
    tmp_path = tmp_path_factory.mktemp("finished")
    return train(parse_config(_config(tmp_path)), progress_bar=False)


CHECKPOINT_FILES = ["model.zip", "replay_buffer.npz", "vecnormalize.npz", "state.json", "rng.npz", "manifest.json"]


def test_a_checkpoint_holds_every_file_its_manifest_lists_and_no_pickle(finished_run):
    info = latest_checkpoint(finished_run)
    assert info.num_timesteps == 256 and info.reason == "final"
    assert sorted(p.name for p in info.path.iterdir()) == sorted(CHECKPOINT_FILES)
    manifest = json.loads((info.path / "manifest.json").read_text())
    assert sorted(manifest["files"]) == sorted(set(CHECKPOINT_FILES) - {"manifest.json"})
    assert manifest["num_timesteps"] == 256 and manifest["algorithm"] == "DQN"
    assert verify_checkpoint(info.path) is None
    assert not list(finished_run.rglob("*.pkl"))


@pytest.mark.parametrize("name", CHECKPOINT_FILES)
@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_a_damaged_file_of_the_newest_checkpoint_falls_back_to_the_previous_one(finished_run, tmp_path, name, damage, caplog):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    newest = latest_checkpoint(run_dir).path
    target = newest / name
    content = target.read_bytes()
    if damage == "flip":
        target.write_bytes(content[:-10] + bytes([content[-10] ^ 0xFF]) + content[-9:])
    elif damage == "truncate":
        target.write_bytes(content[: len(content) // 2])
    else:
        target.unlink()
    caplog.set_level(logging.WARNING, logger="vlmreward.rl")
    info = latest_checkpoint(run_dir)
    assert info.num_timesteps == 192 and info.path.name == "step_000000192"
    text = caplog.text
    assert f"{newest.name} is damaged" in text and "resuming from the newest intact checkpoint, step_000000192" in text
    if name != "manifest.json":
        assert name in text


def test_resume_from_the_fallback_checkpoint_reaches_the_total_and_no_intact_checkpoint_is_one_error(finished_run, tmp_path):
    from stable_baselines3 import DQN

    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    (run_dir / "final_model.zip").unlink()  # as if killed before the end
    model_file = latest_checkpoint(run_dir).path / "model.zip"
    model_file.write_bytes(model_file.read_bytes()[:100])
    resume(run_dir, progress_bar=False)
    assert DQN.load(run_dir / "final_model.zip", device="cpu").num_timesteps == 256
    rows = (run_dir / "logs" / "progress.csv").read_text().splitlines()
    steps = [float(r.split(",")[rows[0].split(",").index("time/total_timesteps")]) for r in rows[1:]]
    assert steps == sorted(set(steps))  # cut back to 192 before the resumed run logged on: no step twice

    for path in (run_dir / "checkpoints").glob("step_*"):
        (path / "state.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"no intact checkpoint in .*: step_000000256_1 is damaged: state.json has 2 bytes"):
        latest_checkpoint(run_dir)


def test_temporary_files_of_a_killed_write_are_removed_when_the_next_process_starts(finished_run, tmp_path):
    from vlmreward.rl.checkpoints import Checkpointer

    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    leftovers = [run_dir / "checkpoints" / ".tmp-1234abcd", run_dir / ".final_model.tmp.zip",
                 run_dir / ".evaluations.jsonl.x1y2.tmp", run_dir / "logs" / ".progress.csv.ab12.tmp"]
    leftovers[0].mkdir()
    (leftovers[0] / "model.zip").write_bytes(b"half")
    for p in leftovers[1:]:
        p.write_bytes(b"half")
    Checkpointer(run_dir, "DQN")
    assert not any(p.exists() for p in leftovers)
    assert latest_checkpoint(run_dir).num_timesteps == 256


# ---------------------------------------------------------------------------------------------
# one process per run directory


def test_a_second_process_on_a_run_directory_is_refused_and_a_killed_holder_is_taken_over(tmp_path):
    from vlmreward._locking import DirectoryInUseError, exclusive_directory

    folder = tmp_path / "run"
    folder.mkdir()
    code = ("import sys, time; from vlmreward._locking import exclusive_directory\n"
            "with exclusive_directory(sys.argv[1]):\n    print('held', flush=True); time.sleep(120)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DirectoryInUseError, match=rf"is in use by PID {holder.pid} on \S+ \(since .*-c"):
            with exclusive_directory(folder):
                pass
    finally:
        holder.kill()  # SIGKILL: no clean-up, the holder record stays behind
        holder.wait()
    assert (folder / ".lock-holder.json").is_file()
    with exclusive_directory(folder):  # the kernel freed the lock: taken over
        assert json.loads((folder / ".lock-holder.json").read_text())["pid"] == os.getpid()


def test_a_resume_while_the_run_trains_is_refused_in_one_line(tmp_path, train_cli):
    """Two processes, one run directory: the second is refused, naming the first's PID."""
    from typer.testing import CliRunner

    from vlmreward.cli.main import app

    data = _config(tmp_path, total_steps=200_000, checkpoint_every=64)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(data))
    log = open(tmp_path / "stderr.txt", "w")
    first = subprocess.Popen([sys.executable, "-m", "vlmreward.cli.main", "train", str(tmp_path / "run.yaml")],
                             stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "OMP_NUM_THREADS": "1"})
    run_dir = tmp_path / "runs" / "run"
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "checkpoints" / "latest.json").exists() and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert first.poll() is None, (tmp_path / "stderr.txt").read_text()
        result = CliRunner().invoke(app, ["train", "--resume", str(run_dir)])
        assert result.exit_code == 2
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and f"is in use by PID {first.pid}" in lines[0], result.stderr
        second = CliRunner().invoke(app, ["train", str(tmp_path / "run.yaml"), "--set", "total_steps=64"])
        assert second.exit_code == 0, second.output
        assert (tmp_path / "runs" / "run-2" / "final_model.zip").is_file()  # the same name: a directory of its own
    finally:
        first.kill()
        first.wait()
        log.close()


def test_two_runs_started_in_the_same_second_get_distinct_directories(tmp_path):
    import contextlib

    from vlmreward.rl.run_dir import new_run_dir

    config = parse_config(_config(tmp_path, run_name=None))
    with contextlib.ExitStack() as held:
        first, second = new_run_dir(config, held), new_run_dir(config, held)
        assert first != second and first.parent == second.parent == tmp_path / "runs"
        assert second.name.startswith(first.name)


def test_a_resumed_run_continues_its_means_and_warns_about_a_run_made_elsewhere(tmp_path, caplog):
    """The episode log's windows are refilled from episodes.csv (no pickled callback state): the
    first means a resumed run logs are those of the episodes before the checkpoint. A run directory
    without this machine's origin record warns that resuming it runs its config's code."""
    import csv

    config = _config(tmp_path, total_steps=128, checkpoint_every=None)
    config["env"]["normalize_observations"] = False
    run_dir = train(parse_config(config), progress_bar=False)
    with open(run_dir / "episodes.csv", newline="") as f:
        before = [float(r["vlm_return"]) for r in csv.DictReader(f)]
    from vlmreward.rl.callbacks import EpisodeLogCallback

    refilled = EpisodeLogCallback(run_dir / "episodes.csv", stats_window=100)
    refilled._refill()
    assert before and refilled.means()["rollout/vlm_return"] == pytest.approx(np.mean(before), rel=1e-5)

    caplog.set_level(logging.WARNING, logger="vlmreward.rl")
    resume(run_dir, ["total_steps=160"], progress_bar=False)
    assert "made elsewhere" not in caplog.text and "was made" not in caplog.text  # this machine's own run
    (run_dir / "origin.json").write_text(json.dumps({"host": "another-host", "uid": 12345}))
    resume(run_dir, ["total_steps=192"], progress_bar=False)
    assert "was made on another-host by user 12345: resuming it runs the code its config names" in caplog.text
    caplog.clear()
    resume(run_dir, ["total_steps=224"], progress_bar=False, trust=True)
    assert "was made" not in caplog.text
