"""Clip rewards (episode_video, window_video, episode_info_oracle): the X-CLIP model, the reward kinds,
and their frames kept through vectorised environments, auto-resets and deferred buffers."""

from __future__ import annotations

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
import pytest
import torch
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.vec_env import DummyVecEnv

import vlmreward
from vlmreward.envs import RenderFrame, VLMRewardVecEnvWrapper, VLMRewardWrapper
from vlmreward.errors import InvalidFramesError, InvalidParameterError, ModelNotFoundError
from vlmreward.models.video import VideoLanguageModel, uniform_frame_indices
from vlmreward.rewards.registry import build_reward, validate_params
from vlmreward.rewards.video import EpisodeVideoReward, WindowVideoReward, clip_step_rewards
from vlmreward.rl.deferred import DeferredReplayBuffer, DeferredRolloutBuffer, attach_reward_source


# ---------------------------------------------------------------- the model
@pytest.fixture(scope="module")
def xclip(tiny_xclip) -> VideoLanguageModel:
    return vlmreward.load_model(str(tiny_xclip))


def _clips(lengths, size=48, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8) for n in lengths]


def test_xclip_loads_by_model_type_and_scores_as_its_own_forward_pass(xclip, tiny_xclip):
    """``similarity`` equals ``XCLIPModel.forward``'s ``logits_per_video / logit_scale.exp()`` and
    ``encode_videos`` its normalised ``get_video_features``, on the same pixels."""
    from transformers import AutoTokenizer, XCLIPModel

    assert isinstance(xclip, VideoLanguageModel) and xclip.num_frames == 8 and xclip.embed_dim == 16
    reference = XCLIPModel.from_pretrained(tiny_xclip).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_xclip)
    clips = _clips([3, 8, 21])
    prompts = ["a robot arm opening a drawer", "a robot arm pressing a button"]
    pixels = xclip.preprocess_clips(clips)
    assert pixels.shape == (3, 8, 3, 224, 224)
    tokens = tokenizer(prompts, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = reference(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask, pixel_values=pixels)
        features = reference.get_video_features(pixel_values=pixels).pooler_output
    torch.testing.assert_close(xclip.similarity(clips, prompts, batch_size=2), out.logits_per_video / reference.logit_scale.exp())
    torch.testing.assert_close(xclip.encode_videos(clips), torch.nn.functional.normalize(features, dim=-1))
    # each clip was sampled to 8 evenly spread frames, first and last kept
    np.testing.assert_array_equal(pixels[0, -1], xclip.preprocess_clips([clips[0][-1:]])[0, 0])


def test_uniform_frame_indices():
    np.testing.assert_array_equal(uniform_frame_indices(8, 8), np.arange(8))
    np.testing.assert_array_equal(uniform_frame_indices(1, 4), [0, 0, 0, 0])
    np.testing.assert_array_equal(uniform_frame_indices(128, 8), np.rint(np.linspace(0, 127, 8)))
    assert uniform_frame_indices(3, 8)[-1] == 2
    with pytest.raises(InvalidParameterError):
        uniform_frame_indices(0, 8)


def test_bad_clips_and_wrong_models_are_one_clear_error(xclip, tiny_hf_clip):
    with pytest.raises(InvalidFramesError, match="E, T, H, W, 3"):
        xclip.encode_videos(np.zeros((4, 8, 8, 3), np.uint8))
    with pytest.raises(InvalidFramesError, match="T ≥ 1"):
        xclip.similarity([np.zeros((0, 8, 8, 3), np.uint8)], "a robot")
    clip_model = vlmreward.load_model(str(tiny_hf_clip))
    with pytest.raises(InvalidParameterError, match="video-language model"):
        EpisodeVideoReward(clip_model, goal="a robot")
    with pytest.raises(InvalidParameterError, match="contrastive model"):
        build_reward("goal_baseline", {"goal": "a robot"}, xclip)
    with pytest.raises(InvalidParameterError, match="not both"):
        EpisodeVideoReward(xclip)
    with pytest.raises(ModelNotFoundError, match="X-CLIP"):
        vlmreward.load_model(str(_bert_dir(tiny_hf_clip)))


def _bert_dir(tmp):
    """A directory of a model type no backend loads (a BERT config)."""
    from transformers import BertConfig

    path = tmp.parent / "not-a-vlm"
    BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8).save_pretrained(path)
    return path


def test_episode_and_window_rewards_of_one_episode(xclip):
    """``reward(frames)`` of one episode: RoboCLIP's sparse reward is 0 but at the last step, where
    it is the clip's similarity with the goal; the window reward scores the last k frames at each step."""
    frames = _clips([11])[0]
    goal = ["a robot arm opening a drawer", "the drawer is open"]
    episode = build_reward("episode_video", {"goal": goal}, xclip)
    rewards = episode(frames)
    assert rewards.dtype == np.float32 and rewards.shape == (11,)
    assert np.all(rewards[:-1] == 0)
    expected = xclip.similarity([frames], goal).mean().item()
    assert rewards[-1] == pytest.approx(expected, abs=1e-6)
    window = build_reward("window_video", {"goal": goal, "window": 4}, xclip)
    dense = window(frames)
    for t in [0, 2, 3, 10]:
        clip = frames[max(0, t - 3) : t + 1]
        assert dense[t] == pytest.approx(xclip.similarity([clip], goal).mean().item(), abs=1e-6)


def test_demonstration_video_goal(xclip, tmp_path):
    """RoboCLIP's demonstration goal: cosine of the episode's and the demonstration's video embeddings."""
    demo = _clips([12], size=32, seed=3)[0]
    path = tmp_path / "demo.gif"
    iio.imwrite(path, demo, duration=50, loop=0)
    reward = build_reward("episode_video", {"demo_video": str(path)}, xclip)
    episode = _clips([9])[0]
    expected = (xclip.encode_videos([episode]) @ xclip.encode_videos([iio.imread(path)[..., :3]])[0]).item()
    assert reward(episode)[-1] == pytest.approx(expected, abs=1e-6)
    with pytest.raises(InvalidParameterError, match="does not exist"):
        build_reward("episode_video", {"demo_video": str(tmp_path / "missing.gif")}, xclip)


def test_reward_params_validate(xclip):
    with pytest.raises(Exception, match="window"):
        validate_params("window_video", {"goal": "a robot", "window": 0})
    with pytest.raises(InvalidParameterError, match="alpha: unknown parameter"):
        validate_params("episode_video", {"goal": "a robot", "alpha": 0.5})


# ---------------------------------------------------------------- episodes through the wrappers
class CounterEnv(gym.Env):
    """Episodes of random lengths (3–13 steps); the frame after step t of an episode is filled with
    (t, length, episode number). It logs every frame it renders, per episode, for the independent check."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, render_mode="rgb_array"):
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0, 255, (2,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.episodes: list[list[np.ndarray]] = []
        self.info_log: list[list[float]] = []

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.length = 0, int(self.np_random.integers(3, 14))
        self.episodes.append([])
        self.info_log.append([])
        return np.array([0, self.length], np.float32), {}

    def step(self, action):
        self.t += 1
        reward = float(action) + 0.5 * self.t
        self.info_log[-1].append(reward)
        return np.array([self.t, self.length], np.float32), reward, self.t >= self.length, False, {"signal": reward}

    def render(self):
        frame = np.zeros((8, 8, 3), np.uint8)
        frame[..., 0], frame[..., 1], frame[..., 2] = self.t, self.length, len(self.episodes) % 256
        self.episodes[-1].append(frame)
        return frame


class PixelClipReward:
    """A cheap clip reward of the same protocol: the mean red value of 4 sampled frames plus the green of the last."""

    clip_info_key = None

    def __init__(self, mode="episode", window=None):
        self.clip_mode, self.window = mode, window
        self.batch_sizes: list[int] = []

    def clip_indices(self, length):
        return uniform_frame_indices(length, 4)

    def score_clips(self, clips, infos=None):
        self.batch_sizes.append(len(clips))
        return np.array([c[..., 0].mean() + c[-1, 0, 0, 1] / 100.0 for c in clips], np.float32)

    __call__ = clip_step_rewards

    def describe(self):
        return {"kind": "pixel_clip"}


def _vec(reward, n_envs=3, deferred=False, max_steps=None, score_batch_size=16):
    def make(i):
        def thunk():
            env = CounterEnv()
            if max_steps:
                env = gym.wrappers.TimeLimit(env, max_steps)  # truncations too
            env.reset(seed=100 + i)
            return RenderFrame(env)

        return thunk

    venv = DummyVecEnv([make(i) for i in range(n_envs)])
    venv.seed(0)
    return VLMRewardVecEnvWrapper(venv, reward, deferred=deferred, score_batch_size=score_batch_size)


def _expected(venv, reward):
    """Per sub-environment, the concatenated per-step rewards of its finished episodes computed directly."""
    out = []
    for env in venv.venv.envs:
        finished = env.unwrapped.episodes[:-1]  # the last one is still running (or empty, just reset)
        out.append(np.concatenate([clip_step_rewards(reward, np.stack(ep)) for ep in finished if ep]))
    return out


@pytest.mark.parametrize("mode,window", [("episode", None), ("window", 3), ("prefix", None)])
def test_per_step_clip_rewards_equal_a_per_episode_computation(mode, window):
    reward = PixelClipReward(mode, window)
    venv = _vec(reward, max_steps=9)
    venv.reset()
    got = [[] for _ in range(venv.num_envs)]
    rng = np.random.default_rng(0)
    for _ in range(60):
        venv.step_async(rng.integers(0, 2, venv.num_envs))
        _, _, dones, infos = venv.step_wait()
        for i, info in enumerate(infos):
            got[i].append(info["vlm_reward"])
    for i, expected in enumerate(_expected(venv, reward)):
        assert len(expected) > 30
        np.testing.assert_allclose(got[i][: len(expected)], expected, rtol=0, atol=1e-6)
    if mode == "episode":
        assert sum(np.count_nonzero(g) for g in got) >= 10  # many episodes ended, across truncations


def _ppo(reward, deferred):
    venv = _vec(reward, deferred=deferred, max_steps=9, score_batch_size=20)
    model = PPO("MlpPolicy", venv, n_steps=24, batch_size=24, n_epochs=1, seed=0, device="cpu",
                rollout_buffer_class=DeferredRolloutBuffer if deferred else None)
    attach_reward_source(model)
    snapshots = []

    from stable_baselines3.common.callbacks import BaseCallback

    class Snap(BaseCallback):
        def _on_step(self):
            return True

        def _on_rollout_end(self):
            snapshots.append(self.model.rollout_buffer.rewards.copy())

    model.learn(3 * 72, callback=Snap())
    return snapshots, model


@pytest.mark.parametrize("mode,window", [("episode", None), ("window", 3), ("prefix", None)])
def test_deferred_rollout_buffer_gets_clip_rewards_at_the_right_transitions(mode, window):
    """PPO: the deferred buffer's rewards equal per-step scoring's bit for bit (episode rewards at the
    episodes' last transitions, through auto-resets and time-limit truncations, bootstrap included),
    and the clips of many steps and sub-environments were scored together."""
    per_step, _ = _ppo(PixelClipReward(mode, window), deferred=False)
    deferred_reward = PixelClipReward(mode, window)
    deferred, _ = _ppo(deferred_reward, deferred=True)
    assert len(per_step) == len(deferred) == 3
    for a, b in zip(per_step, deferred):
        np.testing.assert_array_equal(a, b)
    assert max(deferred_reward.batch_sizes) > 3


def test_deferred_replay_buffer_clip_rewards_equal_a_per_episode_computation():
    """DQN (replay buffer, wrapped around): every stored transition's reward is the straightforward
    per-episode computation's, written at the episode's last transition."""
    reward = PixelClipReward("episode")
    venv = _vec(reward, deferred=True, score_batch_size=12)
    model = DQN("MlpPolicy", venv, buffer_size=300, learning_starts=40, train_freq=8, gradient_steps=1,
                batch_size=8, seed=0, device="cpu", replay_buffer_class=DeferredReplayBuffer)
    attach_reward_source(model)
    model.learn(90)
    model.replay_buffer.score_pending()
    stored = model.replay_buffer.rewards[: model.replay_buffer.pos]  # [steps, n_envs]
    for i, expected in enumerate(_expected(venv, reward)):
        assert len(expected) > 15
        np.testing.assert_array_equal(stored[: len(expected), i], expected)
    assert np.count_nonzero(stored) >= 10


def test_single_environment_wrapper_and_the_info_oracle():
    """``VLMRewardWrapper`` gives the same per-step rewards; ``episode_info_oracle`` reads the
    per-step ``info`` values kept with the frames (mean over the sampled steps, at the episode's end)."""
    oracle = build_reward("episode_info_oracle", {"key": "signal", "num_frames": 4, "scale": 2.0})
    env = VLMRewardWrapper(CounterEnv(), oracle)
    rewards = []
    env.reset(seed=3)
    for _ in range(30):
        _, r, term, trunc, info = env.step(1)
        rewards.append(info["vlm_reward"])
        if term or trunc:
            env.reset()
    inner = env.unwrapped
    expected = []
    for values in inner.info_log[:-1]:  # finished episodes
        if values:
            step = np.zeros(len(values))
            step[-1] = 2.0 * np.mean(np.asarray(values)[uniform_frame_indices(len(values), 4)])
            expected.append(step)
    expected = np.concatenate(expected)
    np.testing.assert_allclose(rewards[: len(expected)], expected, rtol=1e-6)
    assert np.count_nonzero(expected) >= 4
    with pytest.raises(InvalidParameterError, match="missing"):
        oracle.score_clips([np.zeros((2, 4, 4, 3), np.uint8)], [[1.0, None]])


def test_window_reward_with_xclip_in_a_vector_environment(xclip):
    """The real model through the deferred path equals the per-step path (to float rounding of batches)."""
    reward = WindowVideoReward(xclip, goal="a robot arm opening a drawer", window=4)
    a, b = _vec(reward, n_envs=2), _vec(reward, n_envs=2, deferred=True, score_batch_size=64)
    a.reset(), b.reset()
    got_a = []
    for _ in range(10):
        actions = np.ones(2, dtype=np.int64)
        a.step_async(actions), b.step_async(actions)
        got_a.append(a.step_wait()[3])
        b.step_wait()
    per_step = np.array([[info["vlm_reward"] for info in infos] for infos in got_a], np.float32)
    np.testing.assert_allclose(b.collect(), per_step, rtol=0, atol=1e-5)


def test_score_command_treats_a_video_as_one_episode(tiny_xclip, tmp_path):
    """``vlmreward score VIDEO --reward-kind episode_video``: zeros, and the video's score at its last frame."""
    import csv
    from pathlib import Path

    from typer.testing import CliRunner

    from vlmreward.cli.main import app

    gif = Path(__file__).resolve().parents[1] / "examples" / "cartpole.gif"
    result = CliRunner().invoke(app, ["score", str(gif), "--model", str(tiny_xclip), "--reward-kind", "episode_video",
                                      "--goal", "pole upright", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "s" / "rewards.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    values = np.array([float(r["reward"]) for r in rows])
    frames = iio.imread(gif)[..., :3]
    model = vlmreward.load_model(str(tiny_xclip))
    assert len(values) == len(frames) and np.all(values[:-1] == 0)
    assert values[-1] == pytest.approx(model.similarity([frames], "pole upright").item(), abs=1e-5)
    bad = CliRunner().invoke(app, ["score", str(gif), "--model", str(tiny_xclip), "--goal", "pole upright"])
    assert bad.exit_code == 2 and "episode_video" in bad.output


@pytest.mark.parametrize("mode,window", [("episode", None), ("window", 3), ("prefix", None)])
def test_dataset_clip_rewards_are_the_per_episode_computation(mode, window):
    """``evaluate``'s replay of a dataset's episodes (rows out of order, clips scored two at a time)
    gives each row the reward the per-episode computation gives its step."""
    from types import SimpleNamespace

    from vlmreward.eval.episodes import dataset_clip_rewards

    rng = np.random.default_rng(5)
    lengths = [4, 1, 7, 5]
    episode = np.concatenate([np.full(n, e) for e, n in enumerate(lengths)])
    step = np.concatenate([np.arange(1, n + 1) for n in lengths])
    frames = rng.integers(0, 256, (len(step), 6, 6, 3), dtype=np.uint8)
    order = rng.permutation(len(step))
    table = {"episode": episode[order], "step": step[order]}
    dataset = SimpleNamespace(table=table, frames=frames[order], column=lambda name, what="": table[name])
    reward = PixelClipReward(mode, window)
    got = dataset_clip_rewards(reward, dataset, clips_per_batch=2)
    assert max(reward.batch_sizes) == 2  # scored as they came, two clips a call
    for e in range(len(lengths)):
        rows = np.flatnonzero(table["episode"] == e)
        rows = rows[np.argsort(table["step"][rows])]
        np.testing.assert_array_equal(got[rows], clip_step_rewards(reward, dataset.frames[rows]))
