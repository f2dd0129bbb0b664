"""`vlmreward score` (and `models`, `--version`) end to end, in-process through typer's CliRunner."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import imageio
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vlmreward import GoalBaselineReward, SoftmaxThresholdReward
from vlmreward.cli.main import app

GOAL = "a pole standing upright on a cart"
BASELINE = "a pole on a cart"
NEGATIVE = "a pole that has fallen over"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def score(input_path, out, model_dir, *extra):
    """``vlmreward score`` on the CPU with the tiny CLIP; returns the CliRunner result."""
    return run("score", input_path, "--model", model_dir, "--goal", GOAL, "--device", "cpu", "--out", out, *extra)


def assert_ok(result) -> None:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"


def assert_user_error(result, phrase: str) -> str:
    """Exit code 2, exactly one stderr line ``error: ...`` containing ``phrase``, no traceback."""
    assert result.exit_code == 2, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert phrase in lines[0], lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def check_outputs(
    out: Path, n_frames: int, softmax: bool = False, resize: str = "squash"
) -> tuple[list[dict[str, str]], np.ndarray]:
    """rewards.csv (columns, rows, finite rewards), rewards.png (valid PNG), score.json; returns (rows, rewards)."""
    columns, rows = read_csv(out / "rewards.csv")
    assert columns == ["frame", "source", "reward"] + (["p_goal"] if softmax else [])
    assert len(rows) == n_frames
    assert [int(r["frame"]) for r in rows] == list(range(n_frames))
    rewards = np.array([float(r["reward"]) for r in rows])
    assert np.isfinite(rewards).all()
    png = out / "rewards.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    with Image.open(png) as image:
        image.verify()
    summary = json.loads((out / "score.json").read_text())
    assert summary["frames"] == n_frames
    assert summary["reward"]["goal"] == [GOAL]
    assert summary["model"]["resize"] == resize
    assert not list(out.glob("*.partial"))
    return rows, rewards


# ---------------------------------------------------------------------------------------------
# inputs, written once per module


def write_mp4(path: Path, frames: np.ndarray) -> Path:
    writer = imageio.v2.get_writer(path, format="FFMPEG", fps=10, macro_block_size=8, ffmpeg_log_level="error")
    for frame in frames:
        writer.append_data(frame)
    writer.close()
    return path


def write_gif(path: Path, frames: np.ndarray) -> Path:
    """Frames marked in a corner: Pillow's GIF writer merges identical consecutive frames."""
    marked = frames.copy()
    marked[:, :2, :16] = (np.arange(len(frames), dtype=np.uint8) * 16)[:, None, None, None]
    imageio.v3.imwrite(path, marked, plugin="pillow", duration=100, loop=0)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, cartpole_frames) -> dict[str, Path]:
    """The CartPole frames as .npy, .npz, a folder of PNGs, .mp4 and .gif."""
    root = tmp_path_factory.mktemp("inputs")
    np.save(root / "cartpole.npy", cartpole_frames)
    np.savez_compressed(root / "cartpole.npz", frames=cartpole_frames)
    folder = root / "cartpole_png"
    folder.mkdir()
    for i, frame in enumerate(cartpole_frames):
        Image.fromarray(frame).save(folder / f"frame_{i:04d}.png")
    return {
        "npy": root / "cartpole.npy",
        "npz": root / "cartpole.npz",
        "png": folder,
        "mp4": write_mp4(root / "cartpole.mp4", cartpole_frames),
        "gif": write_gif(root / "cartpole.gif", cartpole_frames),
    }


@pytest.fixture(scope="module")
def api_rewards(hf_clip_model, cartpole_frames) -> np.ndarray:
    """GoalBaselineReward(goal, baseline, alpha=0.5) of the CartPole frames through the Python API."""
    return GoalBaselineReward(hf_clip_model, GOAL, BASELINE, alpha=0.5)(cartpole_frames)


# ---------------------------------------------------------------------------------------------
# scoring


@pytest.mark.parametrize("kind", ["npy", "npz", "png"])
def test_lossless_inputs_match_python_api(kind, inputs, tiny_hf_clip, api_rewards, tmp_path):
    out = tmp_path / "out"
    result = score(inputs[kind], out, tiny_hf_clip, "--baseline", BASELINE, "--alpha", "0.5", "--batch-size", "5")
    assert_ok(result)
    rows, rewards = check_outputs(out, 12)
    np.testing.assert_allclose(rewards, api_rewards, rtol=0, atol=1e-5)
    if kind == "png":
        assert [r["source"] for r in rows] == [f"frame_{i:04d}.png" for i in range(12)]
    else:
        assert [r["source"] for r in rows] == [f"cartpole.{kind}#{i}" for i in range(12)]
    summary = json.loads((out / "score.json").read_text())
    assert summary["reward"] == {
        "kind": "goal_baseline", "model": str(tiny_hf_clip), "goal": [GOAL], "baseline": [BASELINE], "alpha": 0.5,
    }
    assert summary["input"] == str(inputs[kind])
    assert summary["model"]["name"] == str(tiny_hf_clip)
    assert summary["stats"]["mean"] == pytest.approx(float(api_rewards.mean()), abs=1e-5)
    # nothing but the summary on stdout, nothing at all on stderr
    assert result.stderr == ""
    assert result.stdout.splitlines()[0].startswith("scored 12 frames")
    assert str(out / "rewards.csv") in result.stdout


def test_mp4(inputs, tiny_hf_clip, api_rewards, tmp_path):
    out = tmp_path / "out"
    assert_ok(score(inputs["mp4"], out, tiny_hf_clip, "--baseline", BASELINE, "--alpha", "0.5"))
    rows, rewards = check_outputs(out, 12)
    assert [r["source"] for r in rows] == [f"cartpole.mp4#{i}" for i in range(12)]
    np.testing.assert_allclose(rewards, api_rewards, atol=0.05)  # lossy video, same pictures


def test_gif_with_open_clip_checkpoint(inputs, tiny_open_clip, tmp_path):
    arch, checkpoint = tiny_open_clip
    out = tmp_path / "out"
    result = run(
        "score", inputs["gif"], "--model", f"open_clip:{arch}", "--checkpoint", checkpoint,
        "--goal", GOAL, "--device", "cpu", "--out", out, "--resize", "pad",
    )
    assert_ok(result)
    rows, _ = check_outputs(out, 12, resize="pad")
    assert [r["source"] for r in rows] == [f"cartpole.gif#{i}" for i in range(12)]
    summary = json.loads((out / "score.json").read_text())
    assert summary["model"]["name"] == f"open_clip:{arch}"
    assert summary["model"]["backend"] == "open_clip"


def test_softmax_threshold_writes_p_goal_and_binary_reward(
    inputs, tiny_hf_clip, hf_clip_model, cartpole_frames, tmp_path
):
    p_api = SoftmaxThresholdReward(hf_clip_model, GOAL, [NEGATIVE])(cartpole_frames)
    threshold = float(np.median(p_api))  # some frames on each side
    out = tmp_path / "out"
    result = score(
        inputs["npy"], out, tiny_hf_clip, "--negative", NEGATIVE, "--threshold", repr(threshold), "--batch-size", "4"
    )
    assert_ok(result)
    rows, rewards = check_outputs(out, 12, softmax=True)
    p_goal = np.array([float(r["p_goal"]) for r in rows])
    np.testing.assert_allclose(p_goal, p_api, atol=1e-5)
    assert set(rewards) <= {0.0, 1.0}
    assert 0 < rewards.sum() < 12
    confident = np.abs(p_goal - threshold) > 1e-5
    np.testing.assert_array_equal(rewards[confident], (p_goal >= threshold)[confident].astype(float))
    summary = json.loads((out / "score.json").read_text())
    assert summary["reward"]["kind"] == "softmax_threshold"
    assert summary["reward"]["threshold"] == pytest.approx(threshold)
    assert summary["reward"]["negatives"] == [NEGATIVE]


def test_softmax_dense_reward_is_p_goal(inputs, tiny_hf_clip, hf_clip_model, cartpole_frames, tmp_path):
    out = tmp_path / "out"
    negatives = [NEGATIVE, "an empty room"]
    args = ["--negative", negatives[0], "--negative", negatives[1], "--temperature", "0.05"]
    assert_ok(score(inputs["npz"], out, tiny_hf_clip, *args))
    rows, rewards = check_outputs(out, 12, softmax=True)
    assert rewards.tolist() == [float(r["p_goal"]) for r in rows]
    expected = SoftmaxThresholdReward(hf_clip_model, GOAL, negatives, temperature=0.05)(cartpole_frames)
    np.testing.assert_allclose(rewards, expected, atol=1e-5)


def test_folder_with_two_image_sizes(tmp_path, cartpole_frames, tiny_hf_clip, hf_clip_model):
    folder = tmp_path / "mixed"
    folder.mkdir()
    frames = [
        cartpole_frames[0],  # 400 × 600
        cartpole_frames[1, 100:300, 150:450],  # 200 × 300
        cartpole_frames[2],
        cartpole_frames[3, :200, :300],
    ]
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{i}.png")
    out = tmp_path / "out"
    assert_ok(score(folder, out, tiny_hf_clip, "--batch-size", "8"))
    rows, rewards = check_outputs(out, 4)
    assert [r["source"] for r in rows] == ["0.png", "1.png", "2.png", "3.png"]
    reward = GoalBaselineReward(hf_clip_model, GOAL)
    expected = np.concatenate([reward(frame) for frame in frames])
    np.testing.assert_allclose(rewards, expected, atol=1e-5)


def test_single_image_and_default_out_dir(tmp_path, cartpole_frames, tiny_hf_clip, monkeypatch):
    Image.fromarray(cartpole_frames[5]).save(tmp_path / "still.png")
    monkeypatch.chdir(tmp_path)
    result = run("score", "still.png", "--model", tiny_hf_clip, "--goal", GOAL, "--device", "cpu")
    assert_ok(result)
    rows, _ = check_outputs(tmp_path / "scores" / "still", 1)
    assert rows[0]["source"] == "still.png"


def test_long_prompt_with_truncate(inputs, tiny_hf_clip, tmp_path):
    long_goal = "a pole " * 60
    out = tmp_path / "out"
    args = ("score", inputs["npy"], "--model", tiny_hf_clip, "--goal", long_goal, "--device", "cpu", "--out", out)
    assert_user_error(run(*args), "tokens")
    assert_ok(run(*args, "--truncate"))
    assert len(read_csv(out / "rewards.csv")[1]) == 12


# ---------------------------------------------------------------------------------------------
# errors: exit 2, one line "error: ...", no traceback


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, cartpole_frames) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad")
    np.save(root / "float.npy", cartpole_frames[:3].astype(np.float32) / 255)
    np.save(root / "rank.npy", cartpole_frames[:3, :, :, 0])
    np.save(root / "empty.npy", cartpole_frames[:0])
    (root / "x.png").write_bytes(b"\x13\x37 definitely not a png " * 20)
    (root / "frames.csv").write_text("a,b\n")
    return {p.name: p for p in root.iterdir()}


@pytest.mark.parametrize(
    "name, phrase",
    [
        ("float.npy", "astype(np.uint8)"),
        ("rank.npy", "shape (3, 400, 600)"),
        ("empty.npy", "zero frames"),
        ("x.png", "not a valid image"),
        ("frames.csv", "unsupported file type"),
        ("missing.npy", "does not exist"),
    ],
)
def test_bad_input_file(name, phrase, bad_inputs, tiny_hf_clip, tmp_path):
    path = bad_inputs.get(name, tmp_path / name)
    out = tmp_path / "out"
    assert_user_error(score(path, out, tiny_hf_clip), phrase)
    assert not (out / "rewards.csv").exists()


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["--goal", ""], "prompt is empty"),
        (["--alpha", "1.5", "--baseline", BASELINE], "alpha must be in [0, 1]"),
        (["--alpha", "0.5"], "needs a baseline prompt"),
        (["--negative", NEGATIVE, "--temperature", "0"], "temperature must be > 0"),
        (["--threshold", "0.5"], "needs --negative"),
        (["--temperature", "0.1"], "needs --negative"),
        (["--negative", NEGATIVE, "--baseline", BASELINE], "--baseline and --alpha"),
        (["--negative", GOAL], "must differ from the goal"),
        (["--batch-size", "0"], "--batch-size"),
        (["--dtype", "int8"], "dtype"),
        (["--device", "nonsense"], "is not a device"),
    ],
)
def test_bad_parameters(args, phrase, inputs, tiny_hf_clip, tmp_path):
    result = score(inputs["npy"], tmp_path / "o", tiny_hf_clip, *args)
    assert_user_error(result, phrase)


def test_empty_goal_alone(inputs, tiny_hf_clip, tmp_path):
    result = run("score", inputs["npy"], "--model", tiny_hf_clip, "--goal", "", "--out", tmp_path / "o")
    assert_user_error(result, "prompt is empty")


def test_unknown_model(inputs, tmp_path):
    result = run("score", inputs["npy"], "--model", "open_clip:NoSuchArch/x", "--goal", GOAL, "--out", tmp_path / "o")
    assert_user_error(result, "no architecture 'NoSuchArch'")


def test_missing_model_directory(inputs, tmp_path):
    result = run("score", inputs["npy"], "--model", str(tmp_path / "no-model"), "--goal", GOAL, "--out", tmp_path / "o")
    assert_user_error(result, "does not exist")


def test_parameter_errors_come_before_reading_frames(bad_inputs, tiny_hf_clip, tmp_path):
    result = score(bad_inputs["float.npy"], tmp_path / "o", tiny_hf_clip, "--alpha", "1.5", "--baseline", BASELINE)
    assert_user_error(result, "alpha")


def test_usage_errors_still_exit_2(inputs, tiny_hf_clip):
    assert run("score", inputs["npy"], "--model", tiny_hf_clip).exit_code == 2  # no --goal
    assert run("score", inputs["npy"], "--goal", GOAL).exit_code == 2  # no --model
    assert run("score", inputs["npy"], "--model", tiny_hf_clip, "--goal", GOAL, "--resize", "zoom").exit_code == 2


# ---------------------------------------------------------------------------------------------
# the other commands


def test_version():
    from vlmreward import __version__

    result = run("--version")
    assert_ok(result)
    assert result.stdout.strip() == f"vlmreward {__version__}"


def test_models_lists_open_clip_pairs():
    result = run("models")
    assert_ok(result)
    lines = result.stdout.splitlines()
    assert "open_clip:ViT-B-32/openai" in lines
    assert sum(line.startswith("open_clip:") for line in lines) > 50
    assert "Hugging Face" in result.stdout and "save_pretrained" in result.stdout


def test_outputs_are_never_overwritten_silently(tiny_hf_clip, cartpole_frames, tmp_path, monkeypatch):
    """score, evaluate and sweep refuse an output folder that holds an earlier run's files, before
    loading any model; --overwrite replaces them. A dataset's frames.npy is scored into a folder
    named after its dataset, so two datasets do not share scores/frames/."""
    from vlmreward.eval.collect import collect

    monkeypatch.chdir(tmp_path)
    data = collect("vlmreward/CartPole-v1", tmp_path / "sweep_a", "scripted", frames=6).path
    assert_ok(run("score", data / "frames.npy", "--model", tiny_hf_clip, "--goal", GOAL, "--device", "cpu"))
    assert (tmp_path / "scores" / "sweep_a" / "score.json").is_file()
    first = (tmp_path / "scores" / "sweep_a" / "score.json").read_text()
    assert_user_error(
        run("score", data / "frames.npy", "--model", "no/such-model", "--goal", "other", "--device", "cpu"),
        "already holds rewards.csv, rewards.png, score.json from an earlier run; pass --overwrite",
    )
    assert (tmp_path / "scores" / "sweep_a" / "score.json").read_text() == first
    assert_ok(run("score", data / "frames.npy", "--model", tiny_hf_clip, "--goal", "other", "--device", "cpu", "--overwrite"))
    assert (tmp_path / "scores" / "sweep_a" / "score.json").read_text() != first

    common = ["--model", tiny_hf_clip, "--goal", GOAL, "--device", "cpu", "--no-cache", "--out", tmp_path / "ev"]
    assert_ok(run("evaluate", data, *common))
    assert_user_error(run("evaluate", data, *common), "already holds metrics.json, report.html")
    assert_ok(run("evaluate", data, *common, "--overwrite"))
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text(f"upright:\n  goal: {GOAL}\n", encoding="utf-8")
    sweep = ["--model", tiny_hf_clip, "--prompts", prompts, "--device", "cpu", "--no-cache", "--out", tmp_path / "sw"]
    assert_ok(run("sweep", data, *sweep))
    assert_user_error(run("sweep", data, *sweep), "already holds results.csv, sweep.json")
