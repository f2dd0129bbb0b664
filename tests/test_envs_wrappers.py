"""VLM rewards inside environments: single, vectorised, and deferred into the learner's buffers."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv

import vlmreward
from vlmreward.envs import RenderFrame, VLMRewardVecEnvWrapper, VLMRewardVectorWrapper, VLMRewardWrapper, make_vlm_vec_env
from vlmreward.rewards.oracles import CartPolePixelReward
from vlmreward.envs.wrappers import NotRenderableError
from vlmreward.errors import InvalidParameterError, VLMRewardError
from vlmreward.rl.deferred import DeferredReplayBuffer, DeferredRolloutBuffer, attach_reward_source

SHORT_EPISODES = {"max_episode_steps": 15}  # time-limit truncations as well as terminations


class CountingReward:
    """Wraps a reward model and records every batch it scores (sizes, call count)."""

    def __init__(self, inner):
        self.inner = inner
        self.batch_sizes: list[int] = []

    def __call__(self, frames):
        self.batch_sizes.append(len(frames))
        return self.inner(frames)

    def from_embeddings(self, embeddings):
        return self.inner.from_embeddings(embeddings)

    def describe(self):
        return self.inner.describe()


@pytest.fixture(scope="module")
def clip_reward(hf_clip_model):
    return vlmreward.GoalBaselineReward(hf_clip_model, "a pole vertically upright on top of a cart", "a cart", alpha=0.5)


def test_oracle_reads_the_pole_angle_from_pixels():
    env = gym.make("CartPole-v1", render_mode="rgb_array")
    env.reset(seed=3)
    oracle = CartPolePixelReward()
    for _ in range(10):
        obs, _, terminated, _, _ = env.step(0)
        assert abs(oracle(env.render())[0] - np.cos(obs[2])) < 2e-3
        if terminated:
            break
    env.close()


def test_single_env_wrapper_scores_the_reached_state(clip_reward):
    env = VLMRewardWrapper(gym.make("CartPole-v1", render_mode="rgb_array"), clip_reward)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(1)
    assert isinstance(reward, float)
    assert reward == pytest.approx(float(clip_reward(env.render())[0]), abs=1e-6)
    assert info["gt_reward"] == 1.0 and info["vlm_reward"] == pytest.approx(reward, abs=1e-7)

    added = VLMRewardWrapper(gym.make("CartPole-v1", render_mode="rgb_array"), clip_reward, mode="add", weight=2.0)
    added.reset(seed=0)
    _, reward, _, _, info = added.step(1)
    assert reward == pytest.approx(1.0 + 2.0 * info["vlm_reward"], abs=1e-6)


def test_environments_that_do_not_render_frames_are_rejected(clip_reward):
    with pytest.raises(NotRenderableError, match="render_mode='rgb_array'"):
        VLMRewardWrapper(gym.make("CartPole-v1"), clip_reward)
    with pytest.raises(NotRenderableError, match="RenderFrame"):
        VLMRewardVecEnvWrapper(DummyVecEnv([lambda: gym.make("CartPole-v1", render_mode="rgb_array")]), clip_reward)
    with pytest.raises(InvalidParameterError, match="mode"):
        VLMRewardWrapper(gym.make("CartPole-v1", render_mode="rgb_array"), clip_reward, mode="multiply")


def test_vec_env_scores_all_sub_environments_in_one_batch_before_auto_reset():
    counting = CountingReward(CartPolePixelReward())
    venv = make_vlm_vec_env("CartPole-v1", 3, counting, seed=0, env_kwargs=SHORT_EPISODES)
    venv.reset()
    rng = np.random.default_rng(0)
    saw_done = False
    for _ in range(40):
        obs, rewards, dones, infos = venv.step(rng.integers(2, size=3))
        assert rewards.dtype == np.float32 and rewards.shape == (3,)
        for i, info in enumerate(infos):
            assert info["gt_reward"] == 1.0 and "frame" not in info
            state = info["terminal_observation"] if dones[i] else obs[i]
            # the reward is of the state the step reached, even when the sub-environment was reset
            assert abs(rewards[i] - np.cos(state[2])) < 2e-3
            saw_done |= bool(dones[i])
    assert saw_done and set(counting.batch_sizes) == {3}
    episodes = venv.pop_episodes()
    assert episodes and all(1 <= e.length <= 15 and e.gt_return == e.length for e in episodes)
    assert all(0.0 < e.vlm_return <= e.length for e in episodes)


def test_gymnasium_vector_wrapper_matches_single_env_scoring():
    oracle = CartPolePixelReward()
    vec = VLMRewardVectorWrapper(gym.make_vec("CartPole-v1", 2, vectorization_mode="sync", render_mode="rgb_array", **SHORT_EPISODES), oracle)
    singles = [gym.make("CartPole-v1", render_mode="rgb_array", **SHORT_EPISODES) for _ in range(2)]
    vec.reset(seed=0)  # sub-environment i gets seed 0 + i
    for i, env in enumerate(singles):
        env.reset(seed=i)
    resetting = np.zeros(2, dtype=bool)
    for t in range(40):
        actions = np.array([t % 2, (t // 3) % 2])
        _, rewards, term, trunc, infos = vec.step(actions)
        for i, env in enumerate(singles):
            if resetting[i]:
                env.reset()
                assert rewards[i] == 0.0  # gymnasium's reset step: no transition, no reward
                continue
            env.step(int(actions[i]))
            assert rewards[i] == pytest.approx(oracle(env.render())[0], abs=1e-7)
        resetting = term | trunc
    assert vec.pop_episodes()


class BufferRecorder(BaseCallback):
    """Copies what the learner is about to train on at each rollout end."""

    def __init__(self):
        super().__init__()
        self.snapshots: list[dict[str, np.ndarray]] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        buffer = getattr(self.model, "rollout_buffer", None)
        if buffer is not None and buffer.full:
            self.snapshots.append({k: getattr(buffer, k).copy() for k in ("rewards", "returns", "advantages")})


def _ppo_run(reward_model, deferred: bool, steps: int = 3 * 64, overlap: bool = False) -> tuple[list, dict]:
    venv = make_vlm_vec_env(
        "CartPole-v1", 2, reward_model, deferred=deferred, score_batch_size=10, seed=0, env_kwargs=SHORT_EPISODES,
        overlap=overlap,
    )
    model = PPO(
        "MlpPolicy", venv, n_steps=32, batch_size=32, n_epochs=2, seed=0, device="cpu",
        rollout_buffer_class=DeferredRolloutBuffer if deferred else None,
    )
    attach_reward_source(model)
    recorder = BufferRecorder()
    model.learn(steps, callback=recorder)
    return recorder.snapshots, model.policy.state_dict()


@pytest.mark.parametrize("overlap", [False, True], ids=["deferred", "overlapped"])
def test_deferred_rollout_buffer_equals_per_step_scoring_exactly(overlap):
    """PPO: rewards, returns and advantages the learner trains on are bit-identical, across
    terminations and time-limit truncations (bootstrapped with γV), and so are the trained weights;
    also with each batch scored on a background thread while the environments step (overlapped)."""
    per_step, weights_a = _ppo_run(CartPolePixelReward(), deferred=False)
    deferred, weights_b = _ppo_run(CartPolePixelReward(), deferred=True, overlap=overlap)
    assert len(per_step) == len(deferred) == 3
    for a, b in zip(per_step, deferred):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for key in weights_a:
        torch.testing.assert_close(weights_a[key], weights_b[key], rtol=0, atol=0)


def test_deferred_rollout_buffer_with_a_vlm_matches_per_step(clip_reward):
    """With a real (tiny) VLM the batches differ in size, so matrix products round differently:
    equal up to float32 rounding (measured: 1 ulp)."""
    per_step, _ = _ppo_run(clip_reward, deferred=False, steps=64)
    deferred, _ = _ppo_run(clip_reward, deferred=True, steps=64)
    np.testing.assert_allclose(per_step[0]["rewards"], deferred[0]["rewards"], rtol=0, atol=1e-6)


def test_overlapped_scoring_with_a_vlm_equals_deferred_bit_for_bit(clip_reward):
    """The tiny CLIP: overlapped scoring scores the same batches as deferred scoring, so the rewards,
    returns and advantages are identical to the bit (per-step scoring differs by float rounding)."""
    deferred, _ = _ppo_run(clip_reward, deferred=True, steps=64)
    overlapped, _ = _ppo_run(clip_reward, deferred=True, steps=64, overlap=True)
    for key in deferred[0]:
        np.testing.assert_array_equal(deferred[0][key], overlapped[0][key], err_msg=key)


class SlowReward:
    """The CartPole oracle, 0.2 s a call, recording each call's thread and (start, end) times."""

    def __init__(self, fail_on_call: int | None = None):
        self.inner, self.calls, self.fail_on_call = CartPolePixelReward(), [], fail_on_call

    def __call__(self, frames):
        import threading
        import time

        start = time.perf_counter()
        time.sleep(0.2)
        self.calls.append((threading.current_thread().name, start, time.perf_counter(), len(frames)))
        if self.fail_on_call == len(self.calls):
            raise RuntimeError("scoring failed")
        return self.inner(frames)

    def describe(self):
        return self.inner.describe()


def test_overlapped_scoring_runs_on_a_background_thread_while_the_environments_step():
    import time

    reward = SlowReward()
    venv = make_vlm_vec_env("CartPole-v1", 2, reward, deferred=True, score_batch_size=8, overlap=True, seed=0,
                            env_kwargs=SHORT_EPISODES)
    venv.reset()
    step_times = []
    for t in range(11):  # batches are handed over at steps 4 and 8 (8 frames each)
        venv.step(np.array([t % 2, 1 - t % 2]))
        step_times.append(time.perf_counter())
    rewards = venv.collect()  # waits for the batch in flight, then scores the last 3 steps here
    venv.close()
    assert rewards.shape == (11, 2) and np.all(rewards > 0)
    (w1, s1, e1, n1), (w2, s2, e2, n2), (main, *_, n3) = reward.calls
    assert w1.startswith("vlmreward-scoring") and w2.startswith("vlmreward-scoring") and main == "MainThread"
    assert (n1, n2, n3) == (8, 8, 6)
    # steps 5-7 were taken while the first batch was being scored (the environments did not wait);
    # the 8th, which fills the next batch, waited for it
    assert step_times[6] < e1 <= step_times[7] < s2
    with pytest.raises(InvalidParameterError, match="deferred=True"):
        make_vlm_vec_env("CartPole-v1", 1, reward, overlap=True)


def test_a_background_batch_that_raises_surfaces_at_the_next_wait_and_its_steps_are_scored_again():
    reward = SlowReward(fail_on_call=1)
    venv = make_vlm_vec_env("CartPole-v1", 2, reward, deferred=True, score_batch_size=8, overlap=True, seed=0,
                            env_kwargs=SHORT_EPISODES)
    venv.reset()
    for t in range(6):
        venv.step(np.array([t % 2, 1 - t % 2]))
    assert venv.pending_steps == 6 and venv.unscored_episodes == 0
    with pytest.raises(RuntimeError, match="scoring failed"):
        venv.collect()
    rewards = venv.collect()  # the failed batch's frames were kept: scored again, with the rest
    assert rewards.shape == (6, 2) and np.all(rewards > 0) and [c[3] for c in reward.calls] == [8, 8, 4]
    venv.close()


def _dqn_run(deferred: bool, overlap: bool = False):
    reward = CountingReward(CartPolePixelReward())
    venv = make_vlm_vec_env(
        "CartPole-v1", 2, reward, deferred=deferred, score_batch_size=8, seed=0, env_kwargs=SHORT_EPISODES, overlap=overlap
    )
    model = DQN(
        "MlpPolicy", venv, buffer_size=40, learning_starts=30, train_freq=8, gradient_steps=2, batch_size=16,
        seed=0, device="cpu", replay_buffer_class=DeferredReplayBuffer if deferred else None,
    )
    attach_reward_source(model)
    model.learn(200)
    if deferred:
        model.replay_buffer.score_pending()
    return model, reward


@pytest.mark.parametrize("overlap", [False, True], ids=["deferred", "overlapped"])
def test_deferred_replay_buffer_equals_per_step_scoring_exactly(overlap):
    """DQN with a 40-transition buffer (wrapped around several times): the buffer's rewards and the
    trained Q-network are bit-identical; deferred scoring ran in batches, not per step (overlapped:
    on a background thread)."""
    per_step, per_step_reward = _dqn_run(deferred=False)
    deferred, deferred_reward = _dqn_run(deferred=True, overlap=overlap)
    assert per_step.replay_buffer.full and deferred.replay_buffer.full
    np.testing.assert_array_equal(per_step.replay_buffer.rewards, deferred.replay_buffer.rewards)
    np.testing.assert_array_equal(per_step.replay_buffer.dones, deferred.replay_buffer.dones)
    np.testing.assert_array_equal(per_step.replay_buffer.timeouts, deferred.replay_buffer.timeouts)
    for key, value in per_step.q_net.state_dict().items():
        torch.testing.assert_close(value, deferred.q_net.state_dict()[key], rtol=0, atol=0)
    assert set(per_step_reward.batch_sizes) == {2}
    assert max(deferred_reward.batch_sizes) >= 8 and sum(deferred_reward.batch_sizes) == sum(per_step_reward.batch_sizes)


def test_deferred_buffer_without_its_environment_is_an_error():
    venv = make_vlm_vec_env("CartPole-v1", 1, CartPolePixelReward(), deferred=False, seed=0)
    model = DQN("MlpPolicy", venv, replay_buffer_class=DeferredReplayBuffer, device="cpu")
    with pytest.raises(VLMRewardError, match="deferred"):
        attach_reward_source(model)
    deferred_env = make_vlm_vec_env("CartPole-v1", 1, CartPolePixelReward(), deferred=True, seed=0)
    plain = DQN("MlpPolicy", deferred_env, device="cpu")
    with pytest.raises(VLMRewardError, match="deferred"):
        attach_reward_source(plain)


def test_render_frame_puts_the_reached_frame_in_info():
    env = RenderFrame(gym.make("CartPole-v1", render_mode="rgb_array"))
    env.reset(seed=0)
    _, reward, _, _, info = env.step(0)
    assert info["frame"].shape == (400, 600, 3) and info["frame"].dtype == np.uint8
    np.testing.assert_array_equal(info["frame"], env.render())
    assert info["gt_reward"] == reward


@pytest.mark.parametrize("deferred", [False, True])
def test_episode_records_carry_the_fraction_of_steps_the_goal_held(deferred):
    """VLM-RM's success rule (goal held in ≥ 50 % of steps) needs every step's info["is_success"];
    the fraction is checked against the infos the environment returned, step by step."""
    import vlmreward.envs  # noqa: F401  (registers the paper environments)

    venv = make_vlm_vec_env("vlmreward/VLMRM-CartPole-v0", 2, CartPolePixelReward(), seed=0, deferred=deferred,
                            env_kwargs={"episode_length": 25})
    venv.reset()
    rng = np.random.default_rng(0)
    held, expected = [[], []], []
    for _ in range(60):
        _, _, dones, infos = venv.step(rng.integers(2, size=2))
        for i, info in enumerate(infos):
            held[i].append(bool(info["is_success"]))
            if dones[i]:
                expected.append((i, np.mean(held[i]), held[i][-1]))
                held[i] = []
    if deferred:
        venv.collect()
    records = venv.pop_episodes()
    assert len(records) == len(expected) == 4
    got = sorted((r.env_index, r.success_fraction, r.success) for r in records)
    for (i, fraction, last), (j, f, s) in zip(sorted(expected), got):
        assert i == j and f == pytest.approx(fraction) and s == last
    assert any(0 < f < 1 for _, f, _ in got)  # random actions: the pole falls part-way through
