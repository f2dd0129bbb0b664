"""Bad input, two tables (issue 25). ``CASES``: each row is a command line, the exit code it must
give and the words its one ``error:`` line (or typer's usage error) must hold, with no traceback
and nothing written where the command would write. ``API_CASES``: each row a Python call that must
raise a :class:`~vlmreward.errors.VLMRewardError` naming the problem. A new command or public
function adds its rows here.

Placeholders: ``{clip}`` a tiny CLIP, ``{notok}`` the same without tokenizer files, ``{gif}`` the
example GIF, ``{trunc}`` an MP4 cut short, ``{data}`` a collected dataset, ``{config}`` a run
config, ``{run}`` a finished run directory, ``{tmp}`` this test's folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from vlmreward.cli.main import app

REPO = Path(__file__).resolve().parents[1]

SCORE = ["score", "{gif}", "--model", "{clip}", "--out", "{tmp}/out"]
EVALUATE = ["evaluate", "{data}", "--model", "{clip}", "--out", "{tmp}/out"]
SWEEP = ["sweep", "{data}", "--model", "{clip}", "--out", "{tmp}/out"]

CASES: list[tuple[str, list[str], int, list[str]]] = [
    # --- score: frames, prompts, models, parameters
    ("score: no such input", ["score", "{tmp}/missing.mp4", "--model", "{clip}", "--goal", "a pole"], 2, ["does not exist"]),
    ("score: a truncated video", ["score", "{trunc}", "--model", "{clip}", "--goal", "a pole", "--out", "{tmp}/out"], 2,
     ["ends after", "declares about 40", "truncated"]),
    ("score: a text file as video", ["score", "{tmp}/notes.mp4", "--model", "{clip}", "--goal", "a pole"], 2, ["cannot read video"]),
    ("score: an empty goal", SCORE + ["--goal", "  "], 2, ["goal"]),
    ("score: no goal", SCORE, 2, ["--goal"]),
    ("score: alpha above 1", SCORE + ["--goal", "a pole", "--baseline", "a cart", "--alpha", "1.5"], 2, ["alpha", "[0, 1]"]),
    ("score: alpha without baseline", SCORE + ["--goal", "a pole", "--alpha", "0.5"], 2, ["baseline"]),
    ("score: temperature 0", SCORE + ["--goal", "a pole", "--negative", "a cart", "--temperature", "0"], 2, ["temperature", "> 0"]),
    ("score: threshold above 1", SCORE + ["--goal", "a pole", "--negative", "a cart", "--threshold", "2"], 2, ["threshold"]),
    ("score: unknown reward kind", SCORE + ["--goal", "a pole", "--reward-kind", "nope"], 2, ["nope"]),
    ("score: unknown model", ["score", "{gif}", "--model", "open_clip:NoSuchArch/none", "--goal", "a pole"], 2, ["NoSuchArch"]),
    ("score: weights not available offline", ["score", "{gif}", "--model", "openai/clip-vit-base-patch32", "--goal", "a"], 2,
     ["--model DIR", "vlmreward-demo/tiny-clip"]),
    ("score: a model folder without tokenizer", ["score", "{gif}", "--model", "{notok}", "--goal", "a pole"], 2,
     ["no usable tokenizer files", "same reward"]),
    ("score: an empty model folder", ["score", "{gif}", "--model", "{tmp}/empty", "--goal", "a pole"], 2, ["config.json"]),
    ("score: existing output", SCORE + ["--goal", "a pole"], 2, ["--overwrite"]),
    ("score: batch size 0", SCORE + ["--goal", "a pole", "--batch-size", "0"], 2, ["batch"]),
    ("score: bad device", SCORE + ["--goal", "a pole", "--device", "tpu9"], 2, ["--device"]),
    # --- evaluate and sweep
    ("evaluate: not a dataset", ["evaluate", "{tmp}", "--model", "{clip}", "--goal", "a pole"], 2, ["frames"]),
    ("evaluate: temperature 0", EVALUATE + ["--goal", "a pole", "--negative", "a cart", "--temperature", "0"], 2,
     ["--temperature must be > 0"]),
    ("evaluate: negative temperature", EVALUATE + ["--goal", "a pole", "--negative", "a cart", "--temperature", "-1"], 2,
     ["--temperature must be > 0"]),
    ("evaluate: temperature without negatives", EVALUATE + ["--goal", "a pole", "--temperature", "0.1"], 2, ["--negative"]),
    ("evaluate: alpha and negative", EVALUATE + ["--goal", "a pole", "--negative", "a cart", "--alpha", "0.5"], 2, ["--alpha"]),
    ("evaluate: unknown label column", EVALUATE + ["--goal", "a pole", "--label", "nope"], 2, ["nope"]),
    ("evaluate: weights not available offline", ["evaluate", "{data}", "--model", "openai/clip-vit-base-patch32", "--goal", "a"],
     2, ["--model DIR"]),
    ("sweep: no prompts file", SWEEP + ["--prompts", "{tmp}/none.yaml"], 2, ["none.yaml"]),
    ("sweep: prompts not a mapping", SWEEP + ["--prompts", "{tmp}/list.yaml"], 2, ["list.yaml"]),
    ("sweep: temperature 0", SWEEP + ["--prompts", "{tmp}/prompts.yaml", "--temperature", "0"], 2, ["--temperature must be > 0"]),
    # --- train and evaluate-policy
    ("train: no such config", ["train", "{tmp}/none.yaml"], 2, ["none.yaml"]),
    ("train: not YAML", ["train", "{tmp}/broken.yaml"], 2, ["broken.yaml"]),
    ("train: unknown key", ["train", "{config}", "--set", "nope=1"], 2, ["nope", "unknown key"]),
    ("train: bad value", ["train", "{config}", "--set", "total_steps=-5"], 2, ["total_steps"]),
    ("train: unknown environment", ["train", "{config}", "--set", "env.id=NoSuchEnv-v9"], 2, ["env.id", "NoSuchEnv"]),
    ("train: config and --resume", ["train", "{config}", "--resume", "{run}"], 2, ["not both"]),
    ("train: resume a non-run", ["train", "--resume", "{tmp}"], 2, ["not a run directory"]),
    ("train: resume changing the reward", ["train", "--resume", "{run}", "--set", "reward.kind=ground_truth"], 2, ["reward"]),
    ("train: weights not available offline", ["train", "{config}", "--set", "model=openai/clip-vit-base-patch32",
                                              "--set", "reward.kind=goal_baseline", "--set", "reward.goal=a pole"], 2,
     ["--set model=DIR"]),
    ("evaluate-policy: not a run", ["evaluate-policy", "{tmp}"], 2, ["not a run directory"]),
    ("evaluate-policy: zero episodes", ["evaluate-policy", "{run}", "--episodes", "0"], 2, ["episodes"]),
    # --- collect, relabel, demo
    ("collect: unknown environment", ["collect", "NoSuchEnv-v9", "--out", "{tmp}/c"], 2, ["NoSuchEnv-v9"]),
    ("collect: unknown policy", ["collect", "vlmreward/VLMRM-CartPole-v0", "--out", "{tmp}/c", "--policy", "{tmp}/none"], 2,
     ["none"]),
    ("collect: existing dataset", ["collect", "vlmreward/VLMRM-CartPole-v0", "--out", "{data}", "--frames", "4"], 2, ["{data}"]),
    ("relabel: no such source", ["relabel", "{tmp}/none", "--config", "{config}", "--out", "{tmp}/r"], 2, ["none"]),
    ("relabel: bad mode", ["relabel", "{data}", "--config", "{config}", "--out", "{tmp}/r", "--mode", "both"], 2, ["replace"]),
    ("demo: existing folder", ["demo", "--out", "{data}"], 2, ["--overwrite"]),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_hf_clip) -> dict[str, str]:
    import imageio.v3 as iio

    from vlmreward.eval.collect import collect
    from vlmreward.models.testing import render_cartpole_frames
    from vlmreward.rl.config import parse_config
    from vlmreward.rl.train import train

    root = tmp_path_factory.mktemp("bad-inputs")
    notok = root / "notok"
    shutil.copytree(tiny_hf_clip, notok)
    for p in notok.iterdir():
        if p.name.startswith(("tokenizer", "vocab", "merges", "special_tokens")):
            p.unlink()
    full = root / "full.mp4"
    iio.imwrite(full, render_cartpole_frames(40), fps=20, plugin="FFMPEG", output_params=["-movflags", "+faststart"])
    (root / "trunc.mp4").write_bytes(full.read_bytes()[: full.stat().st_size * 6 // 10])
    collect("vlmreward/VLMRM-CartPole-v0", root / "data", "scripted", frames=8)
    config = {"env": {"id": "vlmreward/VLMRM-CartPole-v0", "n_envs": 1, "kwargs": {"episode_length": 16}},
              "reward": {"kind": "cartpole_pixel_oracle"}, "algorithm": "PPO",
              "algorithm_kwargs": {"n_steps": 32, "batch_size": 32, "n_epochs": 1, "device": "cpu"},
              "total_steps": 32, "output_dir": str(root / "runs"), "run_name": "done", "eval_every": None,
              "video": False, "log": {"tensorboard": False}}
    (root / "run.yaml").write_text(yaml.safe_dump(config))
    run = train(parse_config(config), progress_bar=False)
    return {"clip": str(tiny_hf_clip), "notok": str(notok), "gif": str(REPO / "examples" / "cartpole.gif"),
            "trunc": str(root / "trunc.mp4"), "data": str(root / "data"), "config": str(root / "run.yaml"), "run": str(run)}


@pytest.mark.parametrize("name,argv,code,words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(inputs, tmp_path, name, argv, code, words):
    (tmp_path / "notes.mp4").write_text("not a video")
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken.yaml").write_text("env: [unclosed\n")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "prompts.yaml").write_text(yaml.safe_dump({"pole": {"goal": ["a pole upright"], "negatives": ["a cart"]}}))
    if name == "score: existing output":
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "rewards.csv").write_text("frame,reward\n")
    values = {**inputs, "tmp": str(tmp_path)}
    args = [a.format(**values) for a in argv]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(app, args)
    assert result.exit_code == code, f"{name}: exit {result.exit_code}\n{result.output}"
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    usage = "Usage:" in result.stderr
    assert len(errors) == 1 or usage and not errors, result.stderr
    text = " ".join(result.stderr.split())
    for word in words:
        assert word.format(**values) in text, f"{name}: {word!r} not in {text!r}"
    if name != "score: existing output":
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


# ---------------------------------------------------------------------------------------------
# the Python API: a bad call raises a VLMRewardError subclass whose message names the problem


def _api_cases():
    import numpy as np

    import vlmreward
    from vlmreward import media
    from vlmreward.envs import make_vlm_vec_env
    from vlmreward.rewards.registry import build_reward
    from vlmreward.rl.config import parse_config

    frames = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    return [
        ("load_model: empty name", lambda m, d: vlmreward.load_model(""), ["model"]),
        ("load_model: missing folder", lambda m, d: vlmreward.load_model(str(d / "none")), ["none"]),
        ("load_model: resize mode", lambda m, d: vlmreward.load_model(m.name, resize="stretch"), ["resize"]),
        ("load_model: unknown open_clip arch", lambda m, d: vlmreward.load_model("open_clip:NoSuchArch/x"), ["NoSuchArch"]),
        ("load_model: no tokenizer", lambda m, d: vlmreward.load_model(str(d / "notok")), ["no usable tokenizer files"]),
        ("encode_images: float frames", lambda m, d: m.encode_images(frames.astype(np.float32)), ["uint8"]),
        ("encode_images: 2-D frame", lambda m, d: m.encode_images(frames[0, :, :, 0]), ["[N, H, W, 3]"]),
        ("encode_images: 4 channels", lambda m, d: m.encode_images(np.zeros((1, 8, 8, 4), np.uint8)), ["3"]),
        ("encode_images: batch size 0", lambda m, d: m.encode_images(frames, batch_size=0), ["batch_size"]),
        ("encode_images: negative batch size", lambda m, d: m.encode_images(frames, batch_size=-3), ["batch_size"]),
        ("encode_text: empty prompt", lambda m, d: m.encode_text(""), ["empty"]),
        ("encode_text: no prompts", lambda m, d: m.encode_text([]), ["prompt"]),
        ("encode_text: too long", lambda m, d: m.encode_text("pole " * 200), ["tokens"]),
        ("goal-baseline: alpha 2", lambda m, d: vlmreward.GoalBaselineReward(m, "a", "b", alpha=2.0), ["alpha"]),
        ("goal-baseline: alpha nan", lambda m, d: vlmreward.GoalBaselineReward(m, "a", "b", alpha=float("nan")), ["alpha"]),
        ("goal-baseline: alpha without baseline", lambda m, d: vlmreward.GoalBaselineReward(m, "a", None, alpha=0.5), ["baseline"]),
        ("softmax: temperature 0", lambda m, d: vlmreward.SoftmaxThresholdReward(m, "a", ["b"], temperature=0.0), ["temperature"]),
        ("softmax: no negatives", lambda m, d: vlmreward.SoftmaxThresholdReward(m, "a", []), ["negative"]),
        ("softmax: threshold 1.5", lambda m, d: vlmreward.SoftmaxThresholdReward(m, "a", ["b"], threshold=1.5), ["threshold"]),
        ("reward: float frames", lambda m, d: vlmreward.GoalBaselineReward(m, "a")(frames.astype(np.float64)), ["uint8"]),
        ("build_reward: unknown kind", lambda m, d: build_reward("nope", {}, m), ["nope"]),
        ("build_reward: unknown parameter", lambda m, d: build_reward("goal_baseline", {"goal": "a", "alfa": 1}, m), ["alfa"]),
        ("build_reward: missing goal", lambda m, d: build_reward("goal_baseline", {}, m), ["goal"]),
        ("build_reward: vqa on CLIP", lambda m, d: build_reward("vqa", {"goal": "a"}, m), ["vqa"]),
        ("parse_config: unknown algorithm", lambda m, d: parse_config({"env": {"id": "CartPole-v1"}, "algorithm": "XYZ"}),
         ["algorithm"]),
        ("parse_config: no env", lambda m, d: parse_config({"algorithm": "PPO"}), ["env"]),
        ("parse_config: n_envs 0", lambda m, d: parse_config({"env": {"id": "CartPole-v1", "n_envs": 0}}), ["n_envs"]),
        ("make_vlm_vec_env: score_batch_size 0",
         lambda m, d: make_vlm_vec_env("CartPole-v1", 1, vlmreward.GoalBaselineReward(m, "a"), deferred=True, score_batch_size=0),
         ["score_batch_size"]),
        ("make_vlm_vec_env: mode", lambda m, d: make_vlm_vec_env("CartPole-v1", 1, vlmreward.GoalBaselineReward(m, "a"), mode="both"),
         ["mode"]),
        ("make_vlm_vec_env: weight inf",
         lambda m, d: make_vlm_vec_env("CartPole-v1", 1, vlmreward.GoalBaselineReward(m, "a"), weight=float("inf")), ["weight"]),
        ("iter_frames: missing file", lambda m, d: list(media.iter_frames(d / "none.mp4")), ["does not exist"]),
        ("iter_frames: truncated video", lambda m, d: list(media.iter_frames(d / "trunc.mp4")), ["truncated"]),
        ("resume: not a run", lambda m, d: __import__("vlmreward.rl.train", fromlist=["resume"]).resume(d), ["not a run directory"]),
        ("evaluate_run: zero episodes",
         lambda m, d: __import__("vlmreward.rl.train", fromlist=["evaluate_run"]).evaluate_run(d / "runs" / "done", 0), ["episodes"]),
    ]


API_CASES = _api_cases()


@pytest.mark.parametrize("name,call,words", API_CASES, ids=[c[0] for c in API_CASES])
def test_bad_api_call_raises_one_clear_error(inputs, hf_clip_model, name, call, words):
    from vlmreward.errors import VLMRewardError

    root = Path(inputs["data"]).parent
    with pytest.raises(VLMRewardError) as info:
        call(hf_clip_model, root)
    message = str(info.value)
    assert "\n" not in message.strip() or len(message) < 2000
    for word in words:
        assert word in message, f"{name}: {word!r} not in {message!r}"
