"""`vlmreward demo`: collect, score, evaluate and train offline with a tiny random CLIP it writes."""

from __future__ import annotations

from typer.testing import CliRunner

from vlmreward.cli.main import app


def test_demo_runs_every_step_offline_and_refuses_to_overwrite(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # nothing may be downloaded
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--steps", "128"])
    assert result.exit_code == 0, result.output
    for step in ("1/5", "2/5", "3/5", "4/5", "5/5"):
        assert step in result.stderr
    assert (out / "tiny-clip" / "model.safetensors").is_file()
    assert (out / "cartpole-sweep" / "frames.npy").is_file() and (out / "scores.csv").read_text().count("\n") == 121
    assert (out / "evaluation" / "report.html").is_file() and (out / "evaluation" / "metrics.json").is_file()
    assert (out / "runs" / "cartpole" / "final_model.zip").is_file() and (out / "runs" / "cartpole" / "curves.png").is_file()
    assert "trained PPO for 128 steps (the main job, configs/cartpole.yaml, trains DQN)" in result.stderr
    hints = result.stdout
    assert f"--model {out / 'tiny-clip'}" in hints and f"--set model={out / 'tiny-clip'}" in hints
    assert "demo --model" not in hints and "train configs/cartpole.yaml" in hints
    assert "evaluate-policy " in hints and "vlmreward evaluate-policy" in hints  # the executable, typed as it can be
    again = CliRunner().invoke(app, ["demo", "--out", str(out), "--steps", "128"])
    assert again.exit_code == 2 and "is not empty; pass --overwrite" in again.stderr
