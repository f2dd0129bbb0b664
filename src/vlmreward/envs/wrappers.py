"""Gymnasium wrappers: render every step and reward the agent with a VLM reward model.

* :class:`VLMRewardWrapper`: one environment, scored step by step.
* :class:`RenderFrame`: renders after every step into ``info["frame"]``, *before* a vector
  environment's auto-reset, so that :class:`~vlmreward.envs.vector.VLMRewardVecEnvWrapper` can
  score the frames of all sub-environments in one forward pass.

The environment's own reward is kept in ``info["gt_reward"]`` (ground truth, for evaluation and
logging); ``info["is_success"]`` is left as the environment sets it.

Goal-aware reward models declare the ``info`` key they read as data, ``goal_info_key`` (e.g.
:class:`~vlmreward.rewards.GoalFamilySoftmaxReward`: ``"goal"``), and are called
``reward_model(frames, goals=...)`` with the value of that key of the step that reached each
frame (:func:`goal_info_key`, :func:`score_frames`); the others are called ``reward_model(frames)``.
"""

from __future__ import annotations

from typing import Any, Literal, SupportsFloat

import gymnasium as gym
import numpy as np

from vlmreward.errors import InvalidFramesError, InvalidParameterError, VLMRewardError
from vlmreward.envs.clips import ClipAssembler, score_clips_batched
from vlmreward.rewards.base import RewardModel
from vlmreward.rewards.video import is_clip_reward

__all__ = [
    "VLMRewardWrapper",
    "RenderFrame",
    "RewardMode",
    "combine_rewards",
    "check_rgb_render",
    "NotRenderableError",
    "goal_info_key",
    "score_frames",
]

RewardMode = Literal["replace", "add"]


class NotRenderableError(VLMRewardError, ValueError):
    """An environment that does not render ``rgb_array`` frames."""


def check_rgb_render(env: gym.Env) -> None:
    """Raise unless ``env`` renders RGB frames (``render_mode="rgb_array"``).

    Raises:
        NotRenderableError: with the ``gymnasium.make`` call that fixes it.
    """
    mode = getattr(env, "render_mode", None)
    if mode != "rgb_array":
        env_id = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
        modes = env.metadata.get("render_modes", [])
        fix = (
            f"create it with gymnasium.make({env_id!r}, render_mode='rgb_array')"
            if "rgb_array" in modes
            else f"it supports only {modes or 'no'} render modes; a VLM reward needs rgb_array frames"
        )
        raise NotRenderableError(f"environment {env_id} has render_mode={mode!r}: {fix}.")


def _check_mode(mode: str, weight: float) -> None:
    if mode not in ("replace", "add"):
        raise InvalidParameterError(f"mode={mode!r}: use 'replace' (VLM reward only) or 'add' (environment + VLM reward).")
    if not np.isfinite(weight):
        raise InvalidParameterError(f"weight must be a finite number; got {weight}.")


def combine_rewards(gt_reward: np.ndarray, vlm_reward: np.ndarray, mode: RewardMode, weight: float) -> np.ndarray:
    """The reward the agent sees, ``float32``.

    ``"replace"``: ``weight · r_vlm``; ``"add"``: ``r_env + weight · r_vlm``.
    """
    scaled = np.float32(weight) * np.asarray(vlm_reward, dtype=np.float32)
    if mode == "replace":
        return scaled
    return np.asarray(gt_reward, dtype=np.float32) + scaled


def goal_info_key(reward_model: RewardModel) -> str | None:
    """The ``info`` key whose per-step value a goal-aware reward model scores frames against, or None.

    A reward model is goal-aware when it declares the key as its ``goal_info_key`` attribute.
    """
    key = getattr(reward_model, "goal_info_key", None)
    return str(key) if key else None


def score_frames(reward_model: RewardModel, frames: np.ndarray, goals: list[Any] | None = None) -> np.ndarray:
    """``float32 [N]`` rewards of ``frames``: ``reward_model(frames, goals=goals)`` for a goal-aware
    model (``goals`` from :func:`goal_info_key`), else ``reward_model(frames)``."""
    if goals is not None:
        return np.asarray(reward_model(frames, goals=goals), dtype=np.float32)  # type: ignore[call-arg]
    return np.asarray(reward_model(frames), dtype=np.float32)


def _rendered(env: gym.Env) -> np.ndarray:
    frame = env.render()
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
        raise InvalidFramesError(
            f"{type(env.unwrapped).__name__}.render() returned {type(frame).__name__} "
            f"{getattr(frame, 'shape', '')} {getattr(frame, 'dtype', '')}; expected a uint8 RGB array [H, W, 3]."
        )
    return frame


class VLMRewardWrapper(gym.Wrapper):
    """Replace (or augment) an environment's reward with a VLM reward of the rendered next state.

    After each ``step`` the environment is rendered (``rgb_array``, ``uint8 [H, W, 3]``) and
    scored by ``reward_model``; the reward returned is ``weight · r_vlm`` (``mode="replace"``,
    VLM-RM's set-up) or ``r_env + weight · r_vlm`` (``mode="add"``), as a Python float.
    ``info["gt_reward"]`` keeps the environment's reward, ``info["vlm_reward"]`` the VLM's. A
    goal-aware reward model scores the frame against the step's ``info["goal"]``. A clip reward
    (:mod:`vlmreward.rewards.video`) scores the episode at its last step (an episode reward) or the
    last ``window`` frames at every step (a window reward), 0 otherwise (:mod:`vlmreward.envs.clips`).

    For many environments, score all frames of a step in one batch with
    :class:`~vlmreward.envs.vector.VLMRewardVecEnvWrapper` instead.

    Args:
        env: an environment created with ``render_mode="rgb_array"``.
        reward_model: any :class:`~vlmreward.rewards.base.RewardModel`.
        mode: ``"replace"`` or ``"add"``.
        weight: scale of the VLM reward.

    Raises:
        NotRenderableError: ``env`` does not render ``rgb_array`` frames.
        InvalidParameterError: unknown ``mode`` or a non-finite ``weight``.
    """

    def __init__(self, env: gym.Env, reward_model: RewardModel, mode: RewardMode = "replace", weight: float = 1.0) -> None:
        super().__init__(env)
        check_rgb_render(env)
        _check_mode(mode, weight)
        self.reward_model = reward_model
        self.mode = mode
        self.weight = float(weight)
        self.goal_key = goal_info_key(reward_model)
        self.clips = ClipAssembler(reward_model, 1) if is_clip_reward(reward_model) else None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        if self.clips is not None:
            self.clips.reset()
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, gt_reward, terminated, truncated, info = self.env.step(action)
        info["gt_reward"] = float(gt_reward)
        if self.clips is not None:  # a clip reward: the episode's (or window's) clip when one is due, else 0
            due = self.clips.add([_rendered(self.env)], [terminated or truncated], [info])
            vlm_reward = np.zeros(1, dtype=np.float32)
            vlm_reward[due.slots] = score_clips_batched(self.reward_model, due, 1)
        else:
            goals = None if self.goal_key is None else [info.get(self.goal_key)]
            vlm_reward = score_frames(self.reward_model, _rendered(self.env)[None], goals)
        info["vlm_reward"] = float(vlm_reward[0])
        reward = combine_rewards(np.float32(gt_reward), vlm_reward, self.mode, self.weight)
        return obs, float(reward[0]), terminated, truncated, info


class RenderFrame(gym.Wrapper):
    """Render after every step: ``info["frame"]`` (``uint8 [H, W, 3]``) and ``info["gt_reward"]``.

    Put it innermost on each sub-environment of a vector environment, so the frame shows the state
    the step reached even when the vector environment resets the sub-environment right after.

    Raises:
        NotRenderableError: ``env`` does not render ``rgb_array`` frames.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        check_rgb_render(env)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["frame"] = _rendered(self.env)
        info["gt_reward"] = float(reward)
        return obs, reward, terminated, truncated, info
