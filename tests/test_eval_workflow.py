"""`vlmreward collect` → `evaluate` → `sweep`, end to end with tiny local models, plus calibration.

The sweep test counts the frames that reach each model class's vision tower (`_embed_pixels`,
wrapped with a counter on the class): exactly one image pass per model, and none at all when the
sweep is run again with new prompts (the embedding cache).
"""

from __future__ import annotations

import base64
import csv
import json
import math
import os
import re
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # before anything imports mujoco

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import vlmreward  # noqa: E402
from vlmreward.cli.main import app  # noqa: E402
from vlmreward.envs import success  # noqa: E402
from vlmreward.eval import (  # noqa: E402
    CalibrationError,
    calibrate_alpha,
    calibrate_threshold,
    detection_metrics,
    embed_dataset,
    epic_distance,
    load_dataset,
    pick_alpha_by_epic,
    threshold_for_precision,
)
from vlmreward.eval.embeddings import model_key  # noqa: E402
from vlmreward.models.base import VisionLanguageModel  # noqa: E402
from vlmreward.models.preprocess import PreprocessConfig  # noqa: E402

GOAL = "a pole standing upright on a cart"
BASELINE = "a pole on a cart"
NEGATIVE = "a pole that has fallen over"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SWEEP_FRAMES = 40

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_ok(result) -> None:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"


def assert_user_error(result, *phrases: str) -> str:
    assert result.exit_code == 2, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    with Image.open(path) as image:
        image.verify()


@pytest.fixture(scope="module")
def cartpole_sweep(tmp_path_factory) -> Path:
    """A scripted CartPole sweep of 40 frames (2 cart positions × 20 pole angles), through the CLI."""
    out = tmp_path_factory.mktemp("data") / "cartpole-sweep"
    assert_ok(run("collect", "vlmreward/CartPole-v1", "--out", out, "--policy", "scripted", "--frames", SWEEP_FRAMES))
    return out


# ---------------------------------------------------------------------------------------------
# collect


def test_collect_cartpole_sweep(cartpole_sweep):
    ds = load_dataset(cartpole_sweep)
    assert len(ds) == SWEEP_FRAMES and ds.render_size == (400, 600)
    angle, position = ds.table["pole_angle"], ds.table["cart_position"]
    assert angle.min() == pytest.approx(-0.4) and angle.max() == pytest.approx(0.4)
    assert sorted(set(position)) == pytest.approx([-1.8, 1.8])
    assert np.all(ds.table["cart_velocity"] == 0) and np.all(ds.table["pole_angular_velocity"] == 0)
    expected = [success.cartpole_upright([x, 0, a, 0]) for x, a in zip(position, angle)]
    np.testing.assert_array_equal(ds.label("is_success"), expected)
    assert 0 < ds.label("is_success").sum() < len(ds)
    np.testing.assert_array_equal(ds.table["gt_reward"], (np.abs(angle) <= 0.2095).astype(float))
    assert ds.metadata["labels"]["is_success"]["thresholds"]["CARTPOLE_UPRIGHT_MAX_ANGLE"] == success.CARTPOLE_UPRIGHT_MAX_ANGLE
    assert ds.metadata["state_variables"]["pole_angle"]["unit"] == "rad"
    assert ds.metadata["policy"]["kind"] == "scripted" and ds.metadata["landscape"]["x"] == "pole_angle"
    # the frames show what the state says: the pole leans the other way at -0.4 and +0.4 rad
    left, right = np.asarray(ds.frames[0]), np.asarray(ds.frames[19])
    assert not np.array_equal(left, right) and np.array_equal(left[:, ::-1].shape, right.shape)


def test_collect_random_episodes_is_seeded(tmp_path):
    out = tmp_path / "random"
    assert_ok(run("collect", "vlmreward/CartPole-v1", "--out", out, "--episodes", 2, "--seed", 3))
    ds = load_dataset(out)
    episodes, steps = ds.table["episode"], ds.table["step"]
    assert set(episodes) == {0, 1}
    for e in (0, 1):
        np.testing.assert_array_equal(steps[episodes == e], np.arange(1, (episodes == e).sum() + 1))
        last = np.nonzero(episodes == e)[0][-1]  # a random policy drops the pole long before 500 steps
        assert abs(ds.table["pole_angle"][last]) > 0.2095 or abs(ds.table["cart_position"][last]) > 2.4
    assert np.all(ds.table["gt_reward"] == 1.0)
    states = np.stack([ds.table[k] for k in ("cart_position", "cart_velocity", "pole_angle", "pole_angular_velocity")], 1)
    np.testing.assert_array_equal(ds.label("is_success"), [success.cartpole_upright(s) for s in states])
    again = tmp_path / "again"
    assert_ok(run("collect", "vlmreward/CartPole-v1", "--out", again, "--episodes", 2, "--seed", 3))
    np.testing.assert_array_equal(np.asarray(load_dataset(again).frames), np.asarray(ds.frames))
    capped = tmp_path / "capped"
    assert_ok(run("collect", "vlmreward/CartPole-v1", "--out", capped, "--episodes", 5, "--frames", 7))
    assert len(load_dataset(capped)) == 7


def test_collect_mountain_car_and_humanoid_sweeps(tmp_path):
    pytest.importorskip("mujoco")
    mc = tmp_path / "mc"
    assert_ok(run("collect", "vlmreward/MountainCarContinuousTextured-v0", "--out", mc, "--policy", "scripted", "--frames", 19))
    ds = load_dataset(mc)
    np.testing.assert_allclose(ds.table["car_position"], np.linspace(-1.2, 0.6, 19))
    np.testing.assert_array_equal(ds.label("is_success"), ds.table["car_position"] >= 0.45)
    np.testing.assert_array_equal(ds.table["gt_reward"], 100.0 * ds.label("is_success"))
    assert ds.label("is_success").sum() == 2 and ds.render_size == (224, 224)  # 0.5 and 0.6
    assert not np.array_equal(np.asarray(ds.frames[0]), np.asarray(ds.frames[-1]))  # the car moves

    hum = tmp_path / "humanoid"
    from vlmreward.envs.humanoid_poses import HUMANOID_POSES_SET_BY_HAND

    n_poses = len(HUMANOID_POSES_SET_BY_HAND)  # 16: two frames each (standing, then the pose)
    result = run("collect", "vlmreward/HumanoidTextured-v0", "--out", hum, "--policy", "scripted", "--frames", 2 * n_poses,
                 "--env-kwarg", "render_width=96", "--env-kwarg", "render_height=128")
    assert_ok(result)
    ds = load_dataset(hum)
    assert len(ds) == 2 * n_poses and ds.render_size == (128, 96)
    assert ds.metadata["task"] == "kneeling" and ds.metadata["env_kwargs"]["task"] == "kneeling"
    assert ds.metadata["landscape"] == {"x": "pose_fraction", "facet": "pose"}
    pose, t = ds.table["pose"], ds.table["pose_fraction"]
    assert len(set(pose)) == n_poses and set(t) == {0.0, 1.0}
    done = {p: i for i, p in enumerate(pose) if t[i] == 1.0}  # each pose fully reached
    for name in ("kneeling", "kneeling_one_knee", "sitting_on_heels"):
        assert ds.table["success_kneeling"][done[name]], name
    assert ds.table["success_arms_raised"][done["arms_raised"]] and ds.table["success_splits"][done["splits"]]
    for name in ("sitting_legs_forward", "lying_arms_up", "squat", "lunge"):
        assert not any(ds.table[f"success_{k}"][done[name]] for k in ("kneeling", "arms_raised", "splits")), name
    for name, task in [("lotus", "lotus"), ("hands_on_hips", "hands_on_hips"), ("standing_on_one_leg", "standing_on_one_leg"),
                       ("flamingo", "standing_on_one_leg")]:
        assert ds.table[f"success_{task}"][done[name]], name
    for name in ("hands_on_chest", "hands_touching_in_front", "walking_step"):
        assert not any(ds.table[f"success_{k}"][done[name]] for k in ("hands_on_hips", "arms_crossed", "standing_on_one_leg")), name
    assert all(ds.table["success_standing"][t == 0.0])  # fraction 0 is standing
    np.testing.assert_array_equal(ds.label("is_success"), ds.table["success_kneeling"])
    np.testing.assert_array_equal(ds.table["gt_reward"], ds.table["success_kneeling"].astype(float))
    assert ds.table["torso_height"][done["kneeling"]] < 1.0 < ds.table["torso_height"][0]


def test_collect_from_a_trained_run(tmp_path):
    pytest.importorskip("vlmreward.rl.train")
    import gymnasium as gym
    from stable_baselines3 import PPO

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(
        "env: {id: vlmreward/CartPole-v1}\nreward: {kind: ground_truth}\nalgorithm: PPO\ntotal_steps: 64\n"
    )
    PPO("MlpPolicy", gym.make("vlmreward/CartPole-v1"), seed=0, device="cpu").save(run_dir / "final_model.zip")
    out = tmp_path / "policy-data"
    assert_ok(run("collect", "vlmreward/CartPole-v1", "--out", out, "--policy", run_dir, "--episodes", 1))
    ds = load_dataset(out)
    assert ds.metadata["policy"]["kind"] == "run" and ds.metadata["policy"]["source"] == "final model"
    assert len(ds) >= 1 and set(ds.table["episode"]) == {0}
    assert_user_error(run("collect", "vlmreward/MountainCarContinuousTextured-v0", "--out", tmp_path / "x", "--policy", run_dir),
                      "trained on 'vlmreward/CartPole-v1'")


def test_collect_bad_input(tmp_path, cartpole_sweep):
    assert_user_error(run("collect", "Pendulum-v1", "--out", tmp_path / "p", "--policy", "scripted"), "no scripted sweep for Pendulum-v1")
    assert_user_error(run("collect", "vlmreward/CartPole-v1", "--out", tmp_path / "p", "--policy", "greedy"),
                      "neither 'random', 'scripted', 'expert' nor an existing run directory")
    assert_user_error(run("collect", "vlmreward/CartPole-v1", "--out", tmp_path / "p", "--policy", "scripted", "--episodes", 3),
                      "has no episodes")
    assert_user_error(run("collect", "NoSuchEnv-v0", "--out", tmp_path / "p"), "unknown environment 'NoSuchEnv-v0'")
    assert_user_error(run("collect", "vlmreward/CartPole-v1", "--out", tmp_path / "p", "--env-kwarg", "colour"), "KEY=VALUE")
    assert_user_error(run("collect", "vlmreward/CartPole-v1", "--out", cartpole_sweep, "--frames", 3), "already exists", "--overwrite")
    assert_user_error(run("collect", "vlmreward/CartPole-v1", "--out", tmp_path / "p", "--frames", 0), "at least 1")
    assert not (tmp_path / "p").exists()


# ---------------------------------------------------------------------------------------------
# evaluate


def test_evaluate_writes_metrics_plots_and_report(cartpole_sweep, tiny_hf_clip, hf_clip_model, tmp_path):
    out = tmp_path / "eval"
    cache = tmp_path / "cache"
    args = ("evaluate", cartpole_sweep, "--model", tiny_hf_clip, "--goal", GOAL, "--baseline", BASELINE,
            "--alpha", 0, "--alpha", 1, "--target-precision", 0.3, "--device", "cpu", "--cache-dir", cache, "--out", out)
    result = run(*args)
    assert_ok(result)
    assert "one image pass" in result.stdout and "AP" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["name"] for r in metrics["results"]] == ["α = 0", "α = 1"]
    for r in metrics["results"]:
        for key in ("average_precision", "roc_auc", "best_f1", "best_threshold", "epic_distance",
                    "epic_distance_to_label", "pearson", "spearman"):
            assert isinstance(r[key], float) and math.isfinite(r[key]), (key, r[key])
        assert 0 <= r["average_precision"] <= 1 and 0 <= r["epic_distance"] <= 1
        assert len(r["pr_curve"]["precision"]) == len(r["pr_curve"]["thresholds"]) + 1
    assert metrics["dataset"]["positives"] == int(load_dataset(cartpole_sweep).label().sum())
    assert metrics["dataset"]["label"] == "is_success" and metrics["dataset"]["reference"] == "gt_reward"
    assert metrics["model"]["parameters"] == sum(p.numel() for p in hf_clip_model.model.parameters())
    assert any("600x400" in n and "224x224" in n and "resized" in n for n in metrics["notes"]), metrics["notes"]
    assert metrics["calibration"]["alpha_by_epic"]["alpha"] in (0.0, 1.0)

    # the metrics are those of the reward computed directly on the frames (no cache involved)
    ds = load_dataset(cartpole_sweep)
    for alpha, r in zip((0.0, 1.0), metrics["results"]):
        direct = vlmreward.GoalBaselineReward(hf_clip_model, GOAL, BASELINE, alpha=alpha)(np.array(ds.frames))
        assert r["average_precision"] == pytest.approx(detection_metrics(direct, ds.label()).average_precision, abs=1e-6)
        assert r["epic_distance"] == pytest.approx(epic_distance(direct, ds.table["gt_reward"]), abs=1e-5)

    pngs = {name: out / f"{name}.png" for name in ("landscape", "pr_curve", "reward_by_label", "frames")}
    for path in pngs.values():
        assert_png(path)
    assert set(metrics["plots"]) == set(pngs)
    report = (out / "report.html").read_text(encoding="utf-8")
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', report)
    assert sorted(base64.b64decode(u) for u in uris) == sorted(p.read_bytes() for p in pngs.values())
    assert "<script" not in report and 'src="http' not in report  # self-contained
    ap = metrics["results"][0]["average_precision"]
    assert f"{ap:.4g}" in report and GOAL in report and "EPIC distance" in report

    assert_user_error(run(*args), "already holds metrics.json, report.html from an earlier run")
    again = run(*args, "--overwrite")
    assert_ok(again)
    assert "cached embeddings" in again.stdout
    assert json.loads((out / "metrics.json").read_text())["embedding_cache"]["hit"] is True


def test_evaluate_softmax_reward(cartpole_sweep, tiny_hf_clip, tmp_path):
    out = tmp_path / "softmax"
    assert_ok(run("evaluate", cartpole_sweep, "--model", tiny_hf_clip, "--goal", GOAL, "--negative", NEGATIVE,
                  "--temperature", 0.01, "--temperature", 1.0, "--target-precision", 0.2, "--device", "cpu",
                  "--no-cache", "--out", out))
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["name"] for r in metrics["results"]] == ["τ = 0.01", "τ = 1"]
    assert all(r["reward"]["kind"] == "softmax_threshold" for r in metrics["results"])
    assert all(0 < r["reward_stats"]["min"] <= r["reward_stats"]["max"] < 1 for r in metrics["results"])
    chosen = metrics["results"][0]["threshold_at_precision"]
    assert chosen["precision"] >= 0.2 and chosen["recall"] > 0
    assert not (cartpole_sweep / "embeddings_cache").exists()


def test_evaluate_bad_input(cartpole_sweep, tiny_hf_clip, tmp_path):
    base = ("evaluate", cartpole_sweep, "--model", tiny_hf_clip, "--goal", GOAL, "--device", "cpu", "--no-cache",
            "--out", tmp_path / "e")
    assert_user_error(run(*base, "--label", "success_kneeling"), "no label 'success_kneeling'", "'is_success'")
    assert_user_error(run(*base, "--reference", "human_score"), "no reference reward 'human_score'", "'gt_reward'")
    assert_user_error(run(*base, "--x", "torso_height"), "no state variable 'torso_height'", "'pole_angle'")
    assert_user_error(run(*base, "--alpha", 0.5), "needs --baseline")
    assert_user_error(run(*base, "--temperature", 0.1), "needs --negative")
    missing = ("evaluate", tmp_path / "nope", "--model", tiny_hf_clip, "--goal", GOAL, "--device", "cpu")
    assert_user_error(run(*missing), "does not exist", "vlmreward collect")
    assert not (tmp_path / "e").exists()


def test_evaluate_without_success_labels_needs_them_only_when_asked(tmp_path, tiny_hf_clip):
    data = tmp_path / "pendulum"
    assert_ok(run("collect", "Pendulum-v1", "--out", data, "--frames", 6, "--env-kwarg", "g=9.81"))
    out = tmp_path / "e"
    result = run("evaluate", data, "--model", tiny_hf_clip, "--goal", "a pendulum pointing up", "--device", "cpu", "--out", out)
    assert_ok(result)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["results"][0]["average_precision"] is None and math.isfinite(metrics["results"][0]["epic_distance"])
    assert any("no success label" in n for n in metrics["notes"])
    assert_user_error(run("evaluate", data, "--model", tiny_hf_clip, "--goal", "up", "--device", "cpu",
                          "--target-precision", 0.9, "--out", out, "--overwrite"), "no label 'is_success'")


# ---------------------------------------------------------------------------------------------
# sweep


@pytest.fixture()
def pixel_counter(monkeypatch):
    """Frames through each backend's vision tower: ``{"hf": n, "open_clip": n}``, counted on the classes."""
    from vlmreward.models.hf import HFModel
    from vlmreward.models.openclip import OpenCLIPModel

    counts = {"hf": 0, "open_clip": 0}
    for key, cls in (("hf", HFModel), ("open_clip", OpenCLIPModel)):
        original = cls._embed_pixels

        def counting(self, pixels, _original=original, _key=key):
            counts[_key] += int(pixels.shape[0])
            return _original(self, pixels)

        monkeypatch.setattr(cls, "_embed_pixels", counting)
    return counts


def test_sweep_runs_one_image_pass_per_model(cartpole_sweep, tiny_hf_clip, tiny_open_clip, tmp_path, pixel_counter):
    arch, checkpoint = tiny_open_clip
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text(
        f"plain:\n  goal: {GOAL}\n  baseline: {BASELINE}\n"
        "descriptive:\n"
        "  goal: [a cart on a track with a pole balanced vertically on top, a pole upright]\n"
        "  baseline: a cart with a pole\n"
        f"  negatives: [{NEGATIVE}]\n"
    )
    cache, out = tmp_path / "cache", tmp_path / "sweep"
    models = ("--model", tiny_hf_clip, "--models", f"open_clip:{arch}@{checkpoint}")
    common = ("--alpha", 0, "--alpha", 1, "--device", "cpu", "--cache-dir", cache, "--batch-size", 16)
    result = run("sweep", cartpole_sweep, *models, "--prompts", prompts, *common, "--out", out)
    assert_ok(result)
    assert pixel_counter == {"hf": SWEEP_FRAMES, "open_clip": SWEEP_FRAMES}  # each frame once per model
    assert "2 image pass(es), 0 from the cache" in result.stdout

    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # per model: 2 prompt sets × 2 α, plus the softmax reward of the set with negatives
    assert len(rows) == 2 * (2 * 2 + 1)
    assert {r["prompt_set"] for r in rows} == {"plain", "descriptive"}
    assert {r["setting"] for r in rows} == {"alpha=0", "alpha=1", "temperature=0.01"}
    for r in rows:
        assert 0 <= float(r["average_precision"]) <= 1 and 0 <= float(r["epic_distance"]) <= 1
    params = {r["model"]: int(r["parameters"]) for r in rows}
    assert len(params) == 2 and all(p > 10_000 for p in params.values())
    assert (out / "results.md").read_text().count("\n| ") == len(rows) + 1
    for name in ("scaling.png", "prompts.png"):
        assert_png(out / name)
    report = (out / "report.html").read_text(encoding="utf-8")
    assert report.count("data:image/png;base64,") == 2
    summary = json.loads((out / "sweep.json").read_text())
    assert [m["cache_hit"] for m in summary["models"]] == [False, False]

    # new prompts and parameters: everything from the cache, no image pass
    prompts2 = tmp_path / "prompts2.yaml"
    prompts2.write_text("prompt_sets:\n  terse:\n    goal: upright pole\n    baseline: pole\n")
    out2 = tmp_path / "sweep2"
    again = run("sweep", cartpole_sweep, *models, "--prompts", prompts2, "--alpha", 0.25, "--device", "cpu",
                "--cache-dir", cache, "--out", out2)
    assert_ok(again)
    assert pixel_counter == {"hf": SWEEP_FRAMES, "open_clip": SWEEP_FRAMES}
    assert "0 image pass(es), 2 from the cache" in again.stdout
    with open(out2 / "results.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 2


def test_sweep_bad_input(cartpole_sweep, tiny_hf_clip, tmp_path):
    prompts = tmp_path / "p.yaml"
    base = ("sweep", cartpole_sweep, "--model", tiny_hf_clip, "--device", "cpu", "--no-cache", "--out", tmp_path / "s")
    assert_user_error(run(*base, "--prompts", prompts), "prompts file", "does not exist")
    prompts.write_text("plain: {goal: [a, b}\n")
    assert_user_error(run(*base, "--prompts", prompts), "not valid YAML")
    prompts.write_text("plain: {baseline: a pole}\n")
    assert_user_error(run(*base, "--prompts", prompts), "prompt set 'plain' has no goal")
    prompts.write_text("plain: {goal: a pole, negative: [x]}\n")
    assert_user_error(run(*base, "--prompts", prompts), "unknown key(s) ['negative']")
    prompts.write_text("plain: {goal: a pole}\n")
    assert_user_error(run(*base, "--prompts", prompts, "--model", "open_clip:RN50@"), "MODEL@CHECKPOINT")
    assert_user_error(run(*base, "--prompts", prompts, "--alpha", 2), "alpha must be in [0, 1]")


# ---------------------------------------------------------------------------------------------
# embedding cache keys


def test_embedding_cache_keys(cartpole_sweep, tiny_hf_clip, hf_clip_model, tmp_path, pixel_counter):
    assert model_key(hf_clip_model) == model_key(vlmreward.load_model(tiny_hf_clip))
    assert model_key(hf_clip_model) != model_key(vlmreward.load_model(tiny_hf_clip, resize="crop"))
    other = vlmreward.load_model(tiny_hf_clip)
    with torch.no_grad():
        next(other.model.vision_model.parameters()).add_(0.01)  # other weights, same name
    assert model_key(other) != model_key(hf_clip_model)

    ds = load_dataset(cartpole_sweep)
    first = embed_dataset(hf_clip_model, ds, cache_dir=tmp_path)
    second = embed_dataset(hf_clip_model, ds, cache_dir=tmp_path)
    assert not first.cache_hit and second.cache_hit and pixel_counter["hf"] == len(ds)
    np.testing.assert_array_equal(first.embeddings, second.embeddings)
    np.testing.assert_allclose(np.linalg.norm(first.embeddings, axis=1), 1.0, atol=1e-5)
    first.path.write_bytes(b"damaged")  # a damaged cache file is recomputed
    assert not embed_dataset(hf_clip_model, ds, cache_dir=tmp_path).cache_hit

    from vlmreward.eval.dataset import save_dataset

    frames = np.array(ds.frames[:5])
    frames[0, 0, 0] = 255 - frames[0, 0, 0]
    table = {k: v[:5] for k, v in ds.table.items() if k != "frame"}
    changed = load_dataset(save_dataset(tmp_path / "changed", frames, table, ds.metadata))
    assert embed_dataset(hf_clip_model, changed, cache_dir=tmp_path).dataset_key != first.dataset_key


# ---------------------------------------------------------------------------------------------
# calibration


class FakeModel(VisionLanguageModel):
    """A model whose prompts embed to given vectors (no vision tower needed: embeddings are given)."""

    backend = "fake"

    def __init__(self, texts: dict[str, np.ndarray]) -> None:
        d = len(next(iter(texts.values())))
        super().__init__(name="fake", embed_dim=d, context_length=77,
                         preprocess_config=PreprocessConfig(image_size=8, mean=(0, 0, 0), std=(1, 1, 1)),
                         device=torch.device("cpu"), dtype=torch.float32)
        self.texts = texts

    def _embed_pixels(self, pixels):  # pragma: no cover - not used
        raise AssertionError("no image pass expected")

    def _embed_prompts(self, prompts):
        return torch.tensor(np.stack([self.texts[p] for p in prompts]), dtype=torch.float32)

    def count_tokens(self, prompt):
        return 3


def test_threshold_for_precision_on_hand_made_scores():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    labels = np.array([1, 1, 0, 1, 0, 0], dtype=bool)
    exact = threshold_for_precision(scores, labels, 1.0)
    assert (exact.threshold, exact.precision, exact.recall, exact.predicted_positives) == (0.8, 1.0, pytest.approx(2 / 3), 2)
    relaxed = threshold_for_precision(scores, labels, 0.75)
    assert (relaxed.threshold, relaxed.precision, relaxed.recall) == (0.6, 0.75, 1.0)
    assert threshold_for_precision(scores, labels, 0.5).threshold == 0.6  # same recall: the highest β
    with pytest.raises(CalibrationError, match=r"no threshold reaches precision 0.9.*best is 0.5"):
        threshold_for_precision([0.9, 0.1], [False, True], 0.9)
    with pytest.raises(CalibrationError, match="no success"):
        threshold_for_precision([0.9, 0.1], [False, False], 0.5)


def test_calibrated_threshold_gives_that_precision_to_the_binary_reward(unit_vectors):
    texts = {"goal": unit_vectors(1, 8, seed=1)[0], "other": unit_vectors(1, 8, seed=2)[0]}
    model = FakeModel(texts)
    x = unit_vectors(200, 8, seed=3)
    margin = x @ texts["goal"] - x @ texts["other"]  # what p(goal | x) increases with
    labels = margin + 0.1 * np.random.default_rng(0).standard_normal(200) > 0.2
    choice = calibrate_threshold(model, x, "goal", ["other"], labels, target_precision=0.8, temperature=0.05)
    binary = vlmreward.SoftmaxThresholdReward(model, "goal", ["other"], temperature=0.05, threshold=choice.threshold)
    predicted = binary.from_embeddings(x) == 1.0
    assert predicted.sum() == choice.predicted_positives
    assert labels[predicted].mean() == pytest.approx(choice.precision) and choice.precision >= 0.8
    assert labels[predicted].sum() / labels.sum() == pytest.approx(choice.recall)


def test_pick_alpha_by_epic_on_hand_made_rewards():
    rng = np.random.default_rng(0)
    reference = rng.standard_normal(50)
    choice = pick_alpha_by_epic({0.0: rng.standard_normal(50), 0.5: 3 * reference + 1, 1.0: -reference}, reference)
    assert choice.alpha == 0.5 and choice.epic_distance == pytest.approx(0.0, abs=1e-7)
    assert choice.distances[1.0] == pytest.approx(1.0)
    with pytest.raises(CalibrationError, match="undefined for every α"):
        pick_alpha_by_epic({0.0: reference}, np.ones(50))


def test_calibrate_alpha_finds_the_alpha_of_the_reference(unit_vectors):
    g, b = np.eye(6)[0], np.eye(6)[1]
    model = FakeModel({"goal": g, "base": b})
    x = unit_vectors(100, 6, seed=4)
    d = (g - b) / np.linalg.norm(g - b)
    reference = 1 - 0.5 * ((x - g) @ d) ** 2  # VLM-RM's reward at α = 1, by hand
    choice = calibrate_alpha(model, x, "goal", "base", reference, alphas=[0.0, 0.5, 1.0])
    assert choice.alpha == 1.0 and choice.epic_distance == pytest.approx(0.0, abs=1e-3)
    assert choice.distances[0.0] > choice.distances[0.5] > choice.distances[1.0]


def test_evaluate_and_sweep_run_on_the_onnx_runtime(cartpole_sweep, tiny_hf_clip, tmp_path, monkeypatch):
    """Every command loads its model through one ModelSpec, so --runtime onnx reaches evaluate and sweep too."""
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("VLMREWARD_CACHE_DIR", str(tmp_path / "vlmreward-cache"))  # where the export is cached
    torch_out, onnx_out = tmp_path / "torch", tmp_path / "onnx"
    common = ("--model", tiny_hf_clip, "--goal", GOAL, "--device", "cpu", "--no-cache")
    assert_ok(run("evaluate", cartpole_sweep, *common, "--out", torch_out))
    assert_ok(run("evaluate", cartpole_sweep, *common, "--runtime", "onnx", "--quantize", "int8", "--out", onnx_out))
    torch_metrics = json.loads((torch_out / "metrics.json").read_text())
    onnx_metrics = json.loads((onnx_out / "metrics.json").read_text())
    assert onnx_metrics["model"]["runtime"] == "onnx-int8" and torch_metrics["model"]["runtime"] == "torch"
    assert onnx_metrics["model"]["backend"] == torch_metrics["model"]["backend"] == "hf"
    assert (tmp_path / "vlmreward-cache" / "onnx").is_dir()
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text(f"prompt_sets:\n  upright:\n    goal: {GOAL}\n")
    assert_ok(run("sweep", cartpole_sweep, "--model", tiny_hf_clip, "--prompts", prompts, "--alpha", 0, "--device", "cpu",
                  "--runtime", "onnx", "--no-cache", "--out", tmp_path / "sweep"))
    with open(tmp_path / "sweep" / "results.csv", newline="", encoding="utf-8") as f:
        (row,) = list(csv.DictReader(f))
    # float32 ONNX embeddings equal PyTorch's to 1e-4 (tests/test_onnx.py): the same average precision
    assert float(row["average_precision"]) == pytest.approx(torch_metrics["results"][0]["average_precision"], abs=1e-3)
