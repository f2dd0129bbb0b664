"""`vlmreward relabel` on Minari datasets the tests make themselves (issue 16)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml
from conftest import signal_when
from typer.testing import CliRunner

minari = pytest.importorskip("minari")

import vlmreward.envs  # noqa: E402,F401  (registers the environments)
from vlmreward.cli.main import app  # noqa: E402
from vlmreward.relabel import relabel_dataset, reward_from_config  # noqa: E402
from vlmreward.relabel.core import files_checksum  # noqa: E402
from vlmreward.relabel.minari_format import MinariAdapter, record_episode  # noqa: E402
from vlmreward.rewards.oracles import CartPolePixelReward  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def minari_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


def _make_dataset(dataset_id: str, env: gym.Env, episodes: int) -> None:
    minari.create_dataset_from_buffers(dataset_id, [record_episode(env, seed) for seed in range(episodes)], env=env,
                                       algorithm_name="random", description="test data", data_format="arrow")


def _config(path: Path, model: Path | None, **reward) -> Path:
    data = {"reward": reward or {"kind": "cartpole_pixel_oracle"}}
    if model is not None:
        data["model"] = {"name": str(model), "device": "cpu"}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


GOAL = {"kind": "goal_baseline", "goal": "pole vertically upright on top of the cart", "baseline": "pole and cart", "alpha": 0.5}


def test_image_observations_relabelled_with_a_clip_equal_direct_scoring_with_provenance(tmp_path, minari_root, tiny_hf_clip):
    env = gym.wrappers.AddRenderObservation(
        gym.make("vlmreward/VLMRM-CartPole-v0", episode_length=12, render_mode="rgb_array"), render_only=False)
    _make_dataset("test/pixels-v0", env, 3)
    source_sum = files_checksum(minari_root / "test" / "pixels-v0")
    result = CliRunner().invoke(app, ["relabel", "test/pixels-v0", "--config", str(_config(tmp_path / "r.yaml", tiny_hf_clip, **GOAL)),
                                      "--out", "test/pixels-vlm-v0", "--batch-frames", "20"])
    assert result.exit_code == 0, result.output
    assert "relabelled 3 episodes (36 frames)" in result.output and "frames: image observations ('pixels')" in result.output

    reward_model, _ = reward_from_config(tmp_path / "r.yaml")
    source, relabelled = minari.load_dataset("test/pixels-v0"), minari.load_dataset("test/pixels-vlm-v0")
    assert relabelled.total_episodes == 3 and relabelled.total_steps == 36
    for original, new in zip(source.iterate_episodes(), relabelled.iterate_episodes()):
        direct = reward_model(original.observations["pixels"][1:])  # the frame each step reached, one episode at a time
        np.testing.assert_allclose(new.rewards, direct, atol=2e-5)
        np.testing.assert_array_equal(new.infos["original_reward"][1:, 0], original.rewards)
        np.testing.assert_array_equal(new.observations["pixels"], original.observations["pixels"])  # pixels unchanged
        np.testing.assert_array_equal(new.actions, original.actions)
        np.testing.assert_array_equal(new.terminations, original.terminations)
    provenance = json.loads(relabelled.storage.metadata["vlmreward"])
    assert provenance["source"] == {"format": "minari", "id": "test/pixels-v0", "sha256": source_sum}
    assert provenance["reward"]["kind"] == "goal_baseline" and provenance["reward"]["alpha"] == 0.5
    assert provenance["model"]["name"] and len(provenance["model"]["weights_fingerprint"]) == 32
    assert provenance["mode"] == "replace" and provenance["vlmreward_version"]
    diagnostics = provenance["diagnostics"]  # 12 steps of CartPole: the pole never falls, its reward is always 1
    assert diagnostics["episodes"] == 3 and "constant" in diagnostics["epic_note"]
    assert "all positive" in diagnostics["detection_note"]
    assert files_checksum(minari_root / "test" / "pixels-v0") == source_sum  # the source is untouched
    assert not list(minari_root.rglob("*.vlmreward-partial"))


def test_diagnostics_equal_scikit_learn_and_a_direct_epic(tmp_path):
    from sklearn.metrics import average_precision_score, roc_auc_score

    from vlmreward.relabel.core import _diagnostics, _save_scores

    rng = np.random.default_rng(0)
    scores = [rng.normal(size=n).astype(np.float32) for n in (5, 7)]
    source = [rng.normal(size=n) for n in (5, 7)]
    success = [rng.random(n) < 0.5 for n in (5, 7)]
    (tmp_path / "scores").mkdir()
    for i, values in enumerate(scores):
        _save_scores(tmp_path, i, values)
    out = _diagnostics(tmp_path, 2, {i: (source[i], success[i]) for i in range(2)})
    vlm, src, labels = np.concatenate(scores).astype(np.float64), np.concatenate(source), np.concatenate(success)
    assert out["average_precision"] == pytest.approx(average_precision_score(labels, vlm))
    assert out["roc_auc"] == pytest.approx(roc_auc_score(labels, vlm))
    rho = np.corrcoef(vlm, src)[0, 1]
    assert out["epic_distance_to_source_reward"] == pytest.approx(np.sqrt((1 - rho) / 2))  # Gleave et al., def. 4.3


def test_states_are_rendered_by_restoring_the_simulator_and_add_mode_keeps_the_reward(tmp_path, minari_root):
    """CartPole logged without pixels: each state is written back and rendered; the pixel oracle
    (cos of the pole angle measured on the frame) then matches the logged angle."""
    _make_dataset("test/states-v0", gym.make("vlmreward/VLMRM-CartPole-v0", episode_length=15), 4)
    adapter = MinariAdapter("test/states-v0", "test/states-oracle-v0")
    assert "restoring VLMRMCartPoleEnv states" in adapter.frames_from
    relabel_dataset(adapter, CartPolePixelReward(), mode="add", batch_frames=7)
    source, relabelled = minari.load_dataset("test/states-v0"), minari.load_dataset("test/states-oracle-v0")
    for original, new in zip(source.iterate_episodes(), relabelled.iterate_episodes()):
        np.testing.assert_array_equal(new.rewards, original.rewards)  # add: the reward is kept
        vlm = new.infos["vlm_reward"][1:, 0]
        np.testing.assert_allclose(vlm, np.cos(original.observations[1:, 2]), atol=3e-3)


def test_a_killed_relabel_resumes_without_scoring_an_episode_twice(tmp_path, minari_root, tiny_hf_clip):
    _make_dataset("test/long-v0", gym.make("vlmreward/VLMRM-CartPole-v0", episode_length=10), 16)
    config = _config(tmp_path / "r.yaml", tiny_hf_clip, **GOAL)
    command = [str(Path(sys.executable).parent / "vlmreward"), "relabel", "test/long-v0", "--config", str(config),
               "--out", "test/long-vlm-v0", "--batch-frames", "10"]
    partial = minari_root / "test" / "long-vlm-v0.vlmreward-partial" / "scores"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SDL_VIDEODRIVER": "dummy"}
    with open(tmp_path / "stderr.txt", "w", encoding="utf-8") as log:
        signal_when(command, lambda: len(list(partial.glob("*.npy"))) >= 4, signal.SIGKILL, log, env=env)
    saved = {p.name: p.stat().st_mtime_ns for p in partial.glob("*.npy")}
    assert 4 <= len(saved) < 16, "the kill should land part-way through scoring"

    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{len(saved)} episodes were scored by an earlier, interrupted run" in result.stdout
    uninterrupted = CliRunner().invoke(app, ["relabel", "test/long-v0", "--config", str(config), "--out", "test/once-v0"])
    assert uninterrupted.exit_code == 0, uninterrupted.output
    resumed, once = minari.load_dataset("test/long-vlm-v0"), minari.load_dataset("test/once-v0")
    assert resumed.total_episodes == once.total_episodes == 16
    for a, b in zip(resumed.iterate_episodes(), once.iterate_episodes()):
        np.testing.assert_allclose(a.rewards, b.rewards, atol=2e-5)  # every episode, once, as an uninterrupted run


def test_bad_inputs_are_one_line_and_leave_the_source_alone(tmp_path, minari_root, tiny_hf_clip):
    runner = CliRunner()
    config = _config(tmp_path / "r.yaml", None)
    _make_dataset("test/pendulum-v0", gym.make("Pendulum-v1", max_episode_steps=5), 2)  # states only, not restorable
    _make_dataset("test/cartpole-v0", gym.make("vlmreward/VLMRM-CartPole-v0", episode_length=5), 2)
    before = files_checksum(minari_root / "test" / "cartpole-v0")
    cases = [
        (["test/pendulum-v0"], "PendulumEnv's states cannot be restored"),
        (["test/missing-v0"], "is not in the local Minari root"),
        (["test/cartpole-v0", "--image-key", "pixels"], "not a dict"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["relabel", *args, "--config", str(config), "--out", "test/out-v0"])
        assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output, result.output
    assert runner.invoke(app, ["relabel", "test/cartpole-v0", "--config", str(config), "--out", "test/out-v0"]).exit_code == 0
    again = runner.invoke(app, ["relabel", "test/cartpole-v0", "--config", str(config), "--out", "test/out-v0"])
    assert again.exit_code == 2 and "already exists" in again.stderr and "--overwrite" in again.stderr
    assert runner.invoke(app, ["relabel", "test/cartpole-v0", "--config", str(config), "--out", "test/out-v0",
                               "--overwrite"]).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: x\n", encoding="utf-8")
    result = runner.invoke(app, ["relabel", "test/cartpole-v0", "--config", str(bad), "--out", "test/out2-v0"])
    assert result.exit_code == 2 and "needs a reward section" in result.stderr
    for episode_file in (minari_root / "test" / "cartpole-v0" / "data").rglob("*.arrow"):
        corrupt = tmp_path / "corrupt"
        if not corrupt.exists():
            import shutil

            shutil.copytree(minari_root / "test" / "cartpole-v0", corrupt)
            target = corrupt / episode_file.relative_to(minari_root / "test" / "cartpole-v0")
            target.write_bytes(b"not arrow")
    result = runner.invoke(app, ["relabel", str(tmp_path / "corrupt"), "--config", str(config), "--out", "test/out3-v0"])
    assert result.exit_code == 2 and "cannot be read" in result.stderr, result.output
    assert files_checksum(minari_root / "test" / "cartpole-v0") == before


# ---------------------------------------------------------------------------------------------
# LeRobot (v3.0 format, read and written directly: see vlmreward.relabel.lerobot_format)


def _lerobot_episodes(n: int, length: int) -> list[dict]:
    env = gym.make("vlmreward/VLMRM-CartPole-v0", episode_length=length, render_mode="rgb_array")
    episodes = []
    for seed in range(n):
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        frames, states, actions, rewards, dones, success = [], [], [], [], [], []
        for _ in range(length):  # a LeRobot frame: the observation before its action, then the transition's reward
            frames.append(env.render())
            states.append(obs)
            action = env.action_space.sample()
            obs, reward, terminated, truncated, info = env.step(action)
            actions.append([float(action)])
            rewards.append(reward)
            dones.append(terminated or truncated)
            success.append(bool(info["is_success"]))
        episodes.append({"frames": np.stack(frames), "observation.state": np.stack(states), "action": np.array(actions),
                         "next.reward": np.array(rewards), "next.done": np.array(dones), "next.success": np.array(success)})
    env.close()
    return episodes


def test_lerobot_video_dataset_relabelled_with_a_clip_reads_back_in_lerobot_layout(tmp_path, tiny_hf_clip):
    import imageio.v2 as imageio
    import pyarrow.parquet as pq

    from vlmreward.relabel.lerobot_format import write_lerobot_dataset

    source = write_lerobot_dataset(tmp_path / "cartpole", _lerobot_episodes(3, 10), fps=30, task="balance the pole")
    before = files_checksum(source)
    out = tmp_path / "cartpole-vlm"
    config = _config(tmp_path / "r.yaml", tiny_hf_clip, **GOAL)
    result = CliRunner().invoke(app, ["relabel", str(source), "--config", str(config), "--out", str(out), "--batch-frames", "8"])
    assert result.exit_code == 0, result.output
    assert "relabelled 3 episodes (30 frames)" in result.output and "video feature 'observation.image'" in result.output

    reward_model, _ = reward_from_config(config)
    video = source / "videos" / "observation.image" / "chunk-000" / "file-000.mp4"
    reader = imageio.get_reader(video, "ffmpeg")
    decoded = np.stack([frame for frame in reader])  # an independent decode of the whole file
    reader.close()
    data = pq.read_table(out / "data" / "chunk-000" / "file-000.parquet")
    original = pq.read_table(source / "data" / "chunk-000" / "file-000.parquet")
    episodes = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    for episode in episodes:  # frame i is rewarded for the image of frame i + 1 (the last frame: its own)
        start, stop = episode["dataset_from_index"], episode["dataset_to_index"]
        frames = decoded[start:stop]
        expected = reward_model(np.concatenate([frames[1:], frames[-1:]]))
        np.testing.assert_allclose(np.asarray(data.column("next.reward"))[start:stop], expected, atol=2e-5)
        assert episode["stats/next.reward/count"] == [stop - start]
        assert episode["stats/next.reward/max"][0] == pytest.approx(float(expected.max()), abs=1e-5)
    np.testing.assert_array_equal(np.asarray(data.column("original_reward")), np.asarray(original.column("next.reward")))
    assert data.column("observation.state").to_pylist() == original.column("observation.state").to_pylist()
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["features"]["original_reward"] == {"dtype": "float32", "shape": [1], "names": None}
    assert info["vlmreward"]["source"] == {"format": "lerobot", "id": str(source), "sha256": before}
    assert json.loads((out / "meta" / "vlmreward.json").read_text())["model"]["weights_fingerprint"]
    stats = json.loads((out / "meta" / "stats.json").read_text())
    assert stats["next.reward"]["count"] == [30] and set(stats["original_reward"]) >= {"min", "max", "mean", "std", "q50"}
    assert (out / "videos" / "observation.image" / "chunk-000" / "file-000.mp4").read_bytes() == video.read_bytes()
    assert files_checksum(source) == before


def test_lerobot_image_dataset_add_mode_matches_the_logged_states(tmp_path):
    import pyarrow.parquet as pq

    from vlmreward.relabel.lerobot_format import LeRobotAdapter, write_lerobot_dataset

    episodes = _lerobot_episodes(2, 12)
    source = write_lerobot_dataset(tmp_path / "png", episodes, fps=10, video=False)  # lossless PNG frames
    relabel_dataset(LeRobotAdapter(source, tmp_path / "png-oracle"), CartPolePixelReward(), mode="add")
    data = pq.read_table(tmp_path / "png-oracle" / "data" / "chunk-000" / "file-000.parquet")
    np.testing.assert_array_equal(np.asarray(data.column("next.reward")), np.concatenate([e["next.reward"] for e in episodes]))
    vlm = np.asarray(data.column("next.vlm_reward")).reshape(2, 12)
    for e, episode in enumerate(episodes):
        angles = np.concatenate([episode["observation.state"][1:, 2], episode["observation.state"][-1:, 2]])
        np.testing.assert_allclose(vlm[e], np.cos(angles), atol=3e-3)


def test_lerobot_bad_inputs_are_one_line(tmp_path):
    from vlmreward.relabel.lerobot_format import write_lerobot_dataset

    runner = CliRunner()
    config = _config(tmp_path / "r.yaml", None)
    source = write_lerobot_dataset(tmp_path / "ds", _lerobot_episodes(1, 4), fps=10)
    old = tmp_path / "old"
    import shutil

    shutil.copytree(source, old)
    info = json.loads((old / "meta" / "info.json").read_text())
    (old / "meta" / "info.json").write_text(json.dumps({**info, "codebase_version": "v2.1"}))
    cases = [
        ([str(old), "--out", str(tmp_path / "o1")], "LeRobot format v2.1"),
        ([str(source), "--out", str(tmp_path / "o2"), "--image-key", "top"], "the dataset's cameras are ['observation.image']"),
        ([str(tmp_path / "nothing"), "--out", str(tmp_path / "o3"), "--format", "lerobot"], "neither a directory with meta/info.json"),
        ([str(source), "--out", str(source)], "already exists"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["relabel", *args, "--config", str(config)])
        assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output, result.output
