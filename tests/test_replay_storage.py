"""Compact replay-buffer checkpoints (vlmreward.rl.replay_storage): exact round trips, size, errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env

from vlmreward.errors import VLMRewardError
from vlmreward.rl.replay_storage import (
    ReplayStorageError,
    check_replay_buffer_fits,
    load_replay_buffer,
    replay_buffer_bytes,
    save_replay_buffer,
)


def _fill(buffer, venv, steps: int, seed: int = 0) -> None:
    """Random-action transitions stored as SB3's OffPolicyAlgorithm._store_transition stores them."""
    venv.seed(seed)
    venv.action_space.seed(seed)
    obs = venv.reset()
    for _ in range(steps):
        actions = np.array([venv.action_space.sample() for _ in range(venv.num_envs)])
        new_obs, rewards, dones, infos = venv.step(actions)
        next_obs = {k: v.copy() for k, v in new_obs.items()} if isinstance(new_obs, dict) else new_obs.copy()
        for i, done in enumerate(dones):
            if done and infos[i].get("terminal_observation") is not None:
                terminal = infos[i]["terminal_observation"]
                if isinstance(next_obs, dict):
                    for k in next_obs:
                        next_obs[k][i] = terminal[k]
                else:
                    next_obs[i] = terminal
        buffer.add(obs, next_obs, actions.reshape(venv.num_envs, -1) if buffer.action_dim > 1 else actions, rewards, dones, infos)
        obs = new_obs


def _arrays(buffer) -> dict[str, np.ndarray]:
    out = {name: getattr(buffer, name).copy() for name in ("actions", "rewards", "dones", "timeouts")}
    if isinstance(buffer, DictReplayBuffer):
        for k in buffer.observations:
            out[f"obs.{k}"] = buffer.observations[k].copy()
            out[f"next.{k}"] = buffer.next_observations[k].copy()
    else:
        out["obs"] = buffer.observations.copy()
        if getattr(buffer, "next_observations", None) is not None:
            out["next"] = buffer.next_observations.copy()
    return out


def _cartpole(n_envs: int = 2, max_steps: int = 30):
    return make_vec_env("CartPole-v1", n_envs=n_envs, seed=0, env_kwargs={"max_episode_steps": max_steps})


@pytest.mark.parametrize("steps", [0, 1, 57, 200, 413])  # empty, one row, partly filled, exactly full, wrapped twice
def test_round_trip_is_exact_for_partly_filled_full_and_wrapped_buffers(tmp_path, steps):
    venv = _cartpole(max_steps=15)
    make = lambda: ReplayBuffer(200, venv.observation_space, venv.action_space, n_envs=2, handle_timeout_termination=True)  # noqa: E731
    original = make()
    _fill(original, venv, steps)
    assert original.dones.any() == original.timeouts.any() == (steps > 15)  # episodes ended: next observations differ
    path = save_replay_buffer(original, tmp_path / "rb.npz")
    restored = make()
    load_replay_buffer(restored, path)
    assert (restored.pos, restored.full) == (original.pos, original.full)
    a, b = _arrays(original), _arrays(restored)
    for name in a:
        assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), name
    if steps:  # and the samples an algorithm draws are the same
        ref, got = original.sample(32), None
        np.random.seed(1)
        ref = original.sample(32)
        np.random.seed(1)
        got = restored.sample(32)
        for x, y in zip(ref, got):
            assert (x is None and y is None) or np.array_equal(x.numpy(), y.numpy())


def test_dict_and_optimize_memory_usage_buffers_round_trip(tmp_path):
    venv = make_vec_env(lambda: gym.wrappers.TimeLimit(_DictCartPole(), 25), n_envs=2, seed=0)
    make = lambda: DictReplayBuffer(64, venv.observation_space, venv.action_space, n_envs=2)  # noqa: E731
    original = make()
    _fill(original, venv, 90)
    restored = make()
    load_replay_buffer(restored, save_replay_buffer(original, tmp_path / "dict.npz"))
    for name, values in _arrays(original).items():
        assert np.array_equal(values, _arrays(restored)[name]), name

    box = _cartpole()
    make = lambda: ReplayBuffer(  # noqa: E731
        100, box.observation_space, box.action_space, n_envs=2, optimize_memory_usage=True, handle_timeout_termination=False
    )
    for steps in (40, 130):
        original = make()
        _fill(original, box, steps)
        restored = make()
        load_replay_buffer(restored, save_replay_buffer(original, tmp_path / f"opt{steps}.npz"))
        assert (restored.pos, restored.full) == (original.pos, original.full)
        for name, values in _arrays(original).items():
            assert np.array_equal(values, _arrays(restored)[name]), name


class _DictCartPole(gym.ObservationWrapper):
    def __init__(self):
        super().__init__(gym.make("CartPole-v1").unwrapped)
        box = self.env.observation_space
        self.observation_space = gym.spaces.Dict({"state": box, "pixels": gym.spaces.Box(0, 255, (3, 4, 4), np.uint8)})

    def observation(self, obs):
        return {"state": obs, "pixels": np.full((3, 4, 4), int(abs(obs[0]) * 100) % 256, np.uint8)}


@pytest.mark.parametrize("env_id", ["vlmreward/VLMRM-CartPole-v0", "vlmreward/VLMRM-Humanoid-v0"])
def test_file_is_at_most_1_2_times_the_raw_transitions(tmp_path, env_id):
    """Raw bytes of a transition: one observation, the action, a float32 reward and a done byte
    (the issue's Humanoid case: float64 observations of 376, half the buffer filled)."""
    import vlmreward.envs  # noqa: F401  (registers the environments)

    venv = make_vec_env(env_id, n_envs=1, seed=0)
    steps = 1000
    buffer = ReplayBuffer(2 * steps, venv.observation_space, venv.action_space, n_envs=1, handle_timeout_termination=True)
    _fill(buffer, venv, steps)
    assert buffer.dones.any()
    path = save_replay_buffer(buffer, tmp_path / "rb.npz")
    raw = buffer.observations[0, 0].nbytes + buffer.actions[0, 0].nbytes + 4 + 1
    per_transition = path.stat().st_size / steps
    sb3_pickle = 2 * steps * (2 * buffer.observations[0, 0].nbytes + buffer.actions[0, 0].nbytes + 12) / steps
    assert per_transition <= 1.2 * raw, (per_transition, raw)
    assert per_transition < sb3_pickle / 3


def test_damaged_or_foreign_files_are_one_clear_error(tmp_path):
    venv = _cartpole()
    buffer = ReplayBuffer(50, venv.observation_space, venv.action_space, n_envs=2)
    _fill(buffer, venv, 20)
    good = save_replay_buffer(buffer, tmp_path / "rb.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ReplayStorageError, match="cannot be read"):
        load_replay_buffer(ReplayBuffer(50, venv.observation_space, venv.action_space, n_envs=2), truncated)
    with pytest.raises(ReplayStorageError, match="buffer_size"):
        load_replay_buffer(ReplayBuffer(60, venv.observation_space, venv.action_space, n_envs=2), good)
    other = gym.spaces.Box(-1, 1, (5,), np.float32)
    with pytest.raises(ReplayStorageError, match="another configuration"):
        load_replay_buffer(ReplayBuffer(50, other, venv.action_space, n_envs=2), good)


def test_memory_estimate_equals_what_sb3_allocates_and_refuses_what_cannot_fit():
    spaces = [
        (gym.spaces.Box(-1, 1, (17,), np.float64), gym.spaces.Box(-1, 1, (6,), np.float64)),
        (gym.spaces.Box(0, 255, (3, 8, 8), np.uint8), gym.spaces.Discrete(3)),
        (gym.spaces.Dict({"a": gym.spaces.Box(0, 1, (4,), np.float32), "b": gym.spaces.Discrete(5)}), gym.spaces.Discrete(2)),
    ]
    for obs_space, action_space in spaces:
        cls = DictReplayBuffer if isinstance(obs_space, gym.spaces.Dict) else ReplayBuffer
        buffer = cls(100, obs_space, action_space, n_envs=1)
        obs = buffer.observations.values() if isinstance(buffer.observations, dict) else [buffer.observations]
        allocated = 2 * sum(o.nbytes for o in obs) + sum(getattr(buffer, n).nbytes for n in ("actions", "rewards", "dones", "timeouts"))
        assert replay_buffer_bytes(obs_space, action_space, 100) == allocated
    check_replay_buffer_fits(10, "buffer_size", available=100)
    with pytest.raises(VLMRewardError, match=r"1000\.0 GB but 0\.0 GB.*lower buffer_size"):
        check_replay_buffer_fits(10**12, "buffer_size", available=10)
