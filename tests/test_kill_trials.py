"""Kill trials (issue 25): SIGKILL a CartPole run at 20 moments, some while a checkpoint is being
written, resume after each, and check independently of vlmreward's own code that

* each resume started from the newest intact checkpoint on disk (manifest re-hashed here);
* the finished run took exactly ``total_steps`` steps;
* no log step appears twice and none is missing: ``progress.csv``'s step counts strictly increase,
  ``evaluations.jsonl`` holds each evaluation step once, and ``episodes.csv`` holds exactly the
  episodes SB3's own counter (``_episode_num``, saved in the model) counted, each once.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

TOTAL = 2400
TRIALS = 20


def _config(tmp_path: Path) -> dict:
    return {
        "env": {"id": "vlmreward/VLMRM-CartPole-v0", "n_envs": 2, "kwargs": {"episode_length": 50}},
        "reward": {"kind": "cartpole_pixel_oracle"},
        "scoring": "deferred",
        "score_batch_size": 64,
        "algorithm": "DQN",
        "algorithm_kwargs": {"learning_starts": 64, "train_freq": 8, "gradient_steps": 1, "buffer_size": 4000,
                             "device": "cpu"},
        "total_steps": TOTAL,
        "seed": 0,
        "output_dir": str(tmp_path / "runs"),
        "run_name": "killed",
        "checkpoint_every": 96,
        "keep_checkpoints": 2,
        "eval_every": 400,
        "eval_episodes": 1,
        "video": False,
        "log": {"tensorboard": True, "progress_every_s": 0.05},
    }


def _intact(path: Path) -> bool:
    """The checkpoint's files have the sizes and SHA-256 its manifest lists (computed here)."""
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    for name, entry in manifest["files"].items():
        file = path / name
        if not file.is_file() or file.stat().st_size != entry["size"]:
            return False
        if hashlib.sha256(file.read_bytes()).hexdigest() != entry["sha256"]:
            return False
    return True


def _newest_intact_step(run_dir: Path) -> int | None:
    steps = []
    for path in (run_dir / "checkpoints").glob("step_*"):
        if path.is_dir() and _intact(path):
            steps.append(json.loads((path / "manifest.json").read_text())["num_timesteps"])
    return max(steps) if steps else None


def _latest_step(run_dir: Path) -> int:
    try:
        return int(json.loads((run_dir / "checkpoints" / "latest.json").read_text())["num_timesteps"])
    except (OSError, ValueError, KeyError):
        return -1


def _wait(condition, proc: subprocess.Popen, timeout: float = 120) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.0005)


def _kill(proc: subprocess.Popen, run_dir: Path, log: Path, rng: np.random.Generator, moment: str) -> None:
    """SIGKILL ``proc`` at ``moment``: ``"startup"`` (a random time after it started, often before it
    trained), ``"training"`` (a random time after it started training), or ``"checkpoint"`` (while
    its second checkpoint is being written: a ``.tmp-*`` directory exists)."""
    if moment == "startup":
        time.sleep(float(rng.uniform(0.0, 3.0)))
    else:
        _wait(lambda: "resuming " in log.read_text(), proc)
        if moment == "training":
            time.sleep(float(rng.uniform(0.0, 1.5)))
        else:
            start = _latest_step(run_dir)
            _wait(lambda: _latest_step(run_dir) > start, proc)  # one new checkpoint, so that the run advances
            _wait(lambda: any((run_dir / "checkpoints").glob(".tmp-*")), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sigkill_at_twenty_moments_then_resume_is_exact(tmp_path):
    from stable_baselines3 import DQN

    config_path = tmp_path / "run.yaml"
    config_path.write_text(yaml.safe_dump(_config(tmp_path)))
    run_dir = tmp_path / "runs" / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SDL_VIDEODRIVER": "dummy"}
    cli = [sys.executable, "-m", "vlmreward.cli.main", "train"]
    rng = np.random.default_rng(0)
    logs = tmp_path / "logs"
    logs.mkdir()

    first = subprocess.Popen(cli + [str(config_path)], stdout=subprocess.DEVNULL, stderr=open(logs / "0.txt", "w"), env=env)
    deadline = time.monotonic() + 120
    while not (run_dir / "checkpoints" / "latest.json").exists() and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.01)
    assert first.poll() is None, (logs / "0.txt").read_text()
    first.send_signal(signal.SIGKILL)  # the first kill: right after the first checkpoint
    first.wait()

    moments = [("checkpoint", "training", "training", "startup")[i % 4] for i in range(1, TRIALS)]
    resumed_from = []
    for trial, moment in enumerate(moments + [None], start=1):
        expected = _newest_intact_step(run_dir)
        assert expected is not None
        log = logs / f"{trial}.txt"
        proc = subprocess.Popen(cli + ["--resume", str(run_dir)], stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env)
        if moment is None:  # the last resume runs to the end
            assert proc.wait(timeout=600) == 0, log.read_text()
        else:
            _kill(proc, run_dir, log, rng, moment)
        text = log.read_text()
        started = re.search(r"resuming \S+ at (\d+) of \d+ steps", text)
        if started:  # a kill at start-up may come before
            assert int(started.group(1)) == expected, f"trial {trial}: resumed at {started.group(1)}, newest intact {expected}"
            resumed_from.append(int(started.group(1)))
        else:
            assert moment == "startup", f"trial {trial} ({moment}) did not say where it resumed:\n{text}"
    assert len(resumed_from) >= 15 and resumed_from == sorted(resumed_from) and resumed_from[-1] > resumed_from[0]

    final = DQN.load(run_dir / "final_model.zip", device="cpu")
    assert final.num_timesteps == TOTAL
    with open(run_dir / "logs" / "progress.csv", newline="") as f:
        steps = [int(float(r["time/total_timesteps"])) for r in csv.DictReader(f) if r.get("time/total_timesteps")]
    assert steps == sorted(set(steps)) and steps[-1] == TOTAL, steps
    evaluations = [json.loads(line)["step"] for line in (run_dir / "evaluations.jsonl").read_text().splitlines()]
    assert evaluations == sorted(set(evaluations)) and evaluations[-1] == TOTAL, evaluations
    with open(run_dir / "episodes.csv", newline="") as f:
        episodes = list(csv.DictReader(f))
    assert len(episodes) == final._episode_num  # every episode SB3 counted, none twice
    ends = [(int(r["timesteps"]), int(r["env_index"])) for r in episodes]
    assert len(set(ends)) == len(ends) and ends == sorted(ends, key=lambda e: e[0])
    assert all(int(r["length"]) == 50 for r in episodes)
    # TensorBoard: each resumed writer's file starts by purging the steps after its checkpoint
    # (SessionLog START at checkpoint + 1, TensorBoard's own mechanism for a restart)
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    purges = []
    for path in sorted((run_dir / "logs").glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime):
        for event in EventFileLoader(str(path)).Load():
            if event.HasField("session_log") and event.session_log.status == event.session_log.START:
                purges.append(event.step)
                break
    assert purges and all(p - 1 in resumed_from for p in purges) and purges[-1] == resumed_from[-1] + 1, (purges, resumed_from)
