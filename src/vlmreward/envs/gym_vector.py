"""A gymnasium ``VectorEnv`` wrapper: all sub-environments' frames scored in one forward pass per step.

The stable-baselines3 ``VecEnv`` counterpart, with deferred and overlapped scoring, is
:class:`~vlmreward.envs.vector.VLMRewardVecEnvWrapper`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from vlmreward.envs.episodes import EpisodeAccounts, EpisodeRecord
from vlmreward.envs.wrappers import NotRenderableError, RewardMode, _check_mode, combine_rewards, goal_info_key, score_frames
from vlmreward.errors import InvalidParameterError
from vlmreward.rewards.base import RewardModel
from vlmreward.rewards.video import is_clip_reward

__all__ = ["VLMRewardVectorWrapper"]


class VLMRewardVectorWrapper(gym.vector.VectorWrapper):
    """Gymnasium ``VectorEnv`` wrapper: all sub-environments' frames scored in one forward pass.

    Works with gymnasium's default ``NEXT_STEP`` auto-reset (the step after an episode's end only
    resets; its reward stays 0, as gymnasium returns it) and with auto-reset disabled. Rewards
    ``float32 [num_envs]``: ``weight · r_vlm`` or ``r_env + weight · r_vlm``; infos gain
    ``"gt_reward"`` and ``"vlm_reward"`` arrays.

    Raises:
        NotRenderableError: the vector environment does not render ``rgb_array``.
        InvalidParameterError: ``SAME_STEP`` auto-reset (the reached state is gone before it could
            be rendered), unknown ``mode`` or non-finite ``weight``.
    """

    def __init__(self, env: gym.vector.VectorEnv, reward_model: RewardModel, mode: RewardMode = "replace", weight: float = 1.0) -> None:
        super().__init__(env)
        _check_mode(mode, weight)
        if env.render_mode != "rgb_array":
            raise NotRenderableError(
                f"the vector environment has render_mode={env.render_mode!r}; create it with "
                "gymnasium.make_vec(env_id, num_envs, render_mode='rgb_array')."
            )
        autoreset = env.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
        if autoreset == gym.vector.AutoresetMode.SAME_STEP:
            raise InvalidParameterError(
                "SAME_STEP auto-reset resets a finished sub-environment before it can be rendered; "
                "use the default NEXT_STEP mode."
            )
        if is_clip_reward(reward_model):
            raise InvalidParameterError(
                "clip rewards (episode and window video rewards) keep each episode's frames through auto-resets; wrap an SB3 "
                "VecEnv with VLMRewardVecEnvWrapper (vlmreward.envs.make_vlm_vec_env) instead."
            )
        self.reward_model = reward_model
        self.mode = mode
        self.weight = float(weight)
        self._resetting = np.zeros(self.num_envs, dtype=bool)
        self.episodes = EpisodeAccounts(self.num_envs)

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        self._resetting[:] = False
        self.episodes.clear_running()
        return self.env.reset(seed=seed, options=options)

    def step(self, actions):
        obs, rewards, terminations, truncations, infos = self.env.step(actions)
        gt = np.asarray(rewards, dtype=np.float32)
        vlm = np.zeros(self.num_envs, dtype=np.float32)
        live = ~self._resetting
        if live.any():
            frames = np.stack(self.env.render())  # one frame per sub-environment
            key, goals = goal_info_key(self.reward_model), None
            if key is not None:  # gymnasium vector infos: one array per key
                values = infos.get(key)
                goals = [None if values is None else values[i] for i in np.flatnonzero(live)]
            vlm[live] = score_frames(self.reward_model, frames[live], goals)
        out = combine_rewards(gt, vlm, self.mode, self.weight)
        out[self._resetting] = gt[self._resetting]
        dones = np.logical_or(terminations, truncations) & live
        success = infos.get("is_success", np.full(self.num_envs, None, dtype=object))
        reported = infos.get("_is_success", np.ones(self.num_envs, dtype=bool))  # gymnasium's mask of set entries
        self.episodes.add(vlm, gt, dones, [success[i] if reported[i] else None for i in range(self.num_envs)], live)
        self._resetting = np.logical_or(terminations, truncations)
        infos = {**infos, "gt_reward": gt, "vlm_reward": vlm}
        return obs, out, terminations, truncations, infos

    def pop_episodes(self) -> list[EpisodeRecord]:
        """Episodes finished since the last call."""
        return self.episodes.pop_finished()
