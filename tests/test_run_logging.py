"""What a training run writes for people: report.html, evaluations.jsonl, logs/columns.txt, and
Weights & Biases (offline mode: nothing leaves the machine)."""

from __future__ import annotations

import csv
import json
import re
import time
from pathlib import Path

import pytest

from vlmreward.rl.config import ConfigError, parse_config
from vlmreward.rl.report import read_evaluations
from vlmreward.rl.train import resume, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(tmp_path: Path, **changes) -> dict:
    """The paper's CartPole (it reports success every step) with its own reward: seconds, no VLM."""
    data = {
        "env": {"id": "vlmreward/VLMRM-CartPole-v0", "n_envs": 2, "kwargs": {"episode_length": 40}},
        "reward": {"kind": "ground_truth"},
        "algorithm": "PPO",
        "algorithm_kwargs": {"n_steps": 64, "batch_size": 64, "n_epochs": 1, "device": "cpu"},
        "total_steps": 256,
        "seed": 0,
        "output_dir": str(tmp_path / "runs"),
        "run_name": "run",
        "checkpoint_every": 128,
        "eval_every": 128,
        "eval_episodes": 2,
        "video": True,
        "log": {"tensorboard": False},
    }
    data.update(changes)
    return data


def test_report_evaluations_and_columns_are_written_and_survive_resume(tmp_path):
    run_dir = train(parse_config(_config(tmp_path)), progress_bar=False)
    evaluations = read_evaluations(run_dir / "evaluations.jsonl")
    assert [e["step"] for e in evaluations] == [128, 256]
    for e in evaluations:  # the paper's rule beside the last-step rule, from the same episodes
        held = [f >= 0.5 for f in e["success_fractions"]]
        assert e["success_rate_held"] == pytest.approx(sum(held) / len(held))
        assert e["success_rate"] == pytest.approx(sum(e["successes"]) / len(e["successes"]))
    report = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "vlmreward/VLMRM-CartPole-v0" in report and "ground_truth" in report
    assert report.count('src="data:image/png;base64,') == 1  # curves.png embedded
    assert 'href="videos/eval_128.mp4"' in report and 'href="videos/eval_256.mp4"' in report
    assert "success (held ≥ 50 %)" in report and "256 of 256" in report
    assert "rollout/ep_rew_mean" in (run_dir / "logs" / "columns.txt").read_text(encoding="utf-8")
    rows = [r for r in csv.DictReader((run_dir / "logs" / "progress.csv").read_text().splitlines()) if r.get("rollout/ep_rew_mean")]
    assert rows and all(float(r["rollout/ep_rew_mean"]) == pytest.approx(float(r["rollout/gt_return"])) for r in rows)  # columns.txt

    resume(run_dir, ["total_steps=384"], progress_bar=False)
    steps = [e["step"] for e in read_evaluations(run_dir / "evaluations.jsonl")]
    assert steps == [128, 256, 384]  # the earlier evaluations are still in the report after a resume
    assert "384 of 384" in (run_dir / "report.html").read_text(encoding="utf-8")


def test_read_evaluations_keeps_the_latest_of_a_repeated_evaluation_and_skips_damage(tmp_path):
    path = tmp_path / "evaluations.jsonl"
    lines = [{"prefix": "eval", "step": 10, "mean_gt_return": 1.0}, {"prefix": "eval_held_out", "step": 10, "mean_gt_return": 2.0},
             {"prefix": "eval", "step": 20, "mean_gt_return": 3.0}, {"prefix": "eval", "step": 20, "mean_gt_return": 4.0}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n{not json\n", encoding="utf-8")
    rows = read_evaluations(path)
    assert [(r["prefix"], r["step"], r["mean_gt_return"]) for r in rows] == [("eval", 10, 1.0), ("eval_held_out", 10, 2.0), ("eval", 20, 4.0)]
    assert read_evaluations(tmp_path / "missing.jsonl") == []


def test_wandb_offline_run_gets_every_logged_number_and_resume_continues_it(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    config = parse_config(_config(tmp_path, log={"tensorboard": False, "wandb": True, "wandb_mode": "offline"}))
    run_dir = train(config, progress_bar=False)
    run_id = (run_dir / "logs" / "wandb_run_id").read_text().strip()
    runs = list((run_dir / "logs" / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(runs) == 1
    records = b""
    for _ in range(300):  # W&B's service finishes writing the run file shortly after run.finish() returns
        records = (runs[0] / f"run-{run_id}.wandb").read_bytes()
        if b"eval/success_rate_held" in records:
            break
        time.sleep(0.1)
    for key in ("rollout/vlm_return", "rollout/gt_return", "rollout/success_rate_held", "eval/success_rate_held",
                "eval/gt_return", "train/value_loss"):
        assert key.encode() in records, key
    assert {"curves.png", "report.html"} <= {p.name for p in (runs[0] / "files").iterdir()}

    resume(run_dir, ["total_steps=384"], progress_bar=False)
    assert (run_dir / "logs" / "wandb_run_id").read_text().strip() == run_id  # the same W&B run, continued
    assert len(list((run_dir / "logs" / "wandb").glob(f"offline-run-*-{run_id}"))) >= 1


def test_wandb_output_logs_finite_numbers_at_their_step():
    from vlmreward.rl.wandb_log import WandbOutputFormat

    class Run:
        def __init__(self):
            self.logged = []

        def log(self, data, step):
            self.logged.append((step, data))

    output = WandbOutputFormat.__new__(WandbOutputFormat)  # the writer without a W&B run behind it
    output.run = Run()
    output.write({"rollout/vlm_return": 1.5, "eval/success_rate": 1, "time/fps": float("nan"), "note": "text",
                  "flag": True, "hidden": 2.0}, {"hidden": ("wandb",)}, step=128)
    assert output.run.logged == [(128, {"rollout/vlm_return": 1.5, "eval/success_rate": 1.0})]


def test_wandb_without_the_package_is_a_config_error(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ConfigError, match=re.escape('log.wandb: the wandb package is not installed: pip install -e ".[wandb]"')):
        parse_config(_config(tmp_path, log={"wandb": True}))


def test_sigterm_during_the_final_evaluation_leaves_a_checkpoint_and_resume_evaluates_once(tmp_path):
    """A preemption while the final evaluation runs (the long silent part of a MiniWorld run): exit
    143 with a checkpoint at the last step and no final model; --resume only evaluates, once."""
    import signal
    import sys

    import yaml
    from conftest import signal_when

    from vlmreward.rl.checkpoints import latest_checkpoint

    data = _config(tmp_path, eval_every=10**6, eval_episodes=400, video=False,  # only the final evaluation, a long one
                   env={"id": "vlmreward/VLMRM-CartPole-v0", "n_envs": 2, "kwargs": {"episode_length": 200}})
    config_path = tmp_path / "run.yaml"
    config_path.write_text(yaml.safe_dump(data), encoding="utf-8")
    run_dir = tmp_path / "runs" / "run"
    log = tmp_path / "stderr.txt"
    with open(log, "w", encoding="utf-8") as err:  # "took": the last step's progress line; the final evaluation starts
        returncode = signal_when([str(Path(sys.executable).parent / "vlmreward"), "train", str(config_path)],
                                 lambda: "took" in log.read_text(encoding="utf-8"), signal.SIGTERM, err, delay=1.0)
    stderr = log.read_text(encoding="utf-8")
    assert returncode == 128 + signal.SIGTERM, stderr
    info = latest_checkpoint(run_dir)
    assert info.reason == "interrupt" and info.num_timesteps == 256
    assert not (run_dir / "final_model.zip").exists() and not (run_dir / "evaluations.jsonl").exists()

    resume(run_dir, ["eval_episodes=3"], progress_bar=False)
    assert (run_dir / "final_model.zip").is_file() and latest_checkpoint(run_dir).reason == "final"
    assert [(e["step"], e["episodes"]) for e in read_evaluations(run_dir / "evaluations.jsonl")] == [(256, 3)]
