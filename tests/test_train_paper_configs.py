"""The paper's MountainCar and Humanoid configs: they start, feed textured frames to the reward
model through the training path, and train for a few hundred steps with a tiny local model."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from vlmreward.rl.config import load_config  # noqa: E402
from vlmreward.rl.train import build_reward_model, make_training_env, train  # noqa: E402

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


class FrameRecorder:
    """A reward model that keeps the frames it is asked to score (and delegates the scoring)."""

    def __init__(self, inner):
        self.inner = inner
        self.frames: list[np.ndarray] = []

    def __call__(self, frames):
        self.frames.extend(np.asarray(frames))
        return self.inner(frames)

    def from_embeddings(self, embeddings):
        return self.inner.from_embeddings(embeddings)

    def describe(self):
        return self.inner.describe()


def _overrides(tiny_hf_clip, tmp_path) -> list[str]:
    return [
        f"model={tiny_hf_clip}", "model.device=cpu", "total_steps=300", "env.n_envs=2",
        "env.kwargs.max_episode_steps=50", "score_batch_size=32", "checkpoint_every=200",
        "eval_every=null", "video=false", f"output_dir={tmp_path}",
        "algorithm_kwargs.learning_starts=100", "algorithm_kwargs.train_freq=50",
        "algorithm_kwargs.gradient_steps=5", "algorithm_kwargs.batch_size=32", "algorithm_kwargs.buffer_size=1000",
    ]


@pytest.mark.parametrize("name, min_colours", [("mountain_car.yaml", 1000), ("humanoid_kneeling.yaml", 300)])
def test_paper_config_renders_textured_frames_and_trains(name, min_colours, tiny_hf_clip, tmp_path):
    if name.startswith("humanoid"):
        pytest.importorskip("mujoco")
    config = load_config(CONFIGS / name, _overrides(tiny_hf_clip, tmp_path))
    recorder = FrameRecorder(build_reward_model(config))
    venv = make_training_env(config, recorder, seed=0)
    venv.reset()
    for _ in range(3):
        venv.step(np.stack([venv.action_space.sample() for _ in range(venv.num_envs)]))
    if hasattr(venv, "collect"):
        venv.collect()  # deferred scoring: score what is stored
    venv.close()
    assert len(recorder.frames) == 3 * 2
    frame = recorder.frames[-1]
    assert frame.shape == (224, 224, 3) and frame.dtype == np.uint8  # the model's input size
    colours = len(np.unique(frame.reshape(-1, 3), axis=0))
    assert colours >= min_colours, colours  # textured, not a flat drawing
    top = frame[:10].reshape(-1, 3).mean(axis=0)
    assert top[2] > top[0]  # sky at the top of the picture

    run_dir = train(config, progress_bar=False)
    assert (run_dir / "final_model.zip").is_file() and (run_dir / "config.yaml").is_file()
    assert any((run_dir / "checkpoints").iterdir())
    episodes = (run_dir / "episodes.csv").read_text().splitlines()
    assert len(episodes) >= 2 and "vlm_return" in episodes[0] and "gt_return" in episodes[0]
