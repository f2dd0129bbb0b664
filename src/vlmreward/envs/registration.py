"""Gymnasium ids of VLM-RM's environments, with ground-truth ``info["is_success"]``.

- ``vlmreward/CartPole-v1``: gymnasium's CartPole-v1 (600 × 400 frames, 500 steps) with
  :func:`~vlmreward.envs.success.cartpole_upright`;
- ``vlmreward/MountainCarContinuousTextured-v0``:
  :class:`~vlmreward.envs.mountain_car.TexturedMountainCarEnv` (224 × 224 textured frames,
  999 steps) with :func:`~vlmreward.envs.success.mountain_car_at_flag`;
- ``vlmreward/HumanoidTextured-v0``: :class:`~vlmreward.envs.humanoid.TexturedHumanoidEnv`
  (224 × 224 from the front camera, 200 steps as the VLM-RM reference config, no early termination) with the detector of its
  ``task``; needs MuJoCo;
- ``vlmreward/VLMRM-CartPole-v0``, ``vlmreward/VLMRM-MountainCarContinuous-v0``,
  ``vlmreward/VLMRM-Humanoid-v0``: the VLM-RM reference code's environments, step for step
  (:mod:`vlmreward.envs.vlmrm`, :mod:`vlmreward.envs.vlmrm_humanoid`): no termination on
  failure, fixed-length episodes (``episode_length``, ``time_limit``), the reference's renders
  and camera; ``textures="ours" | "reference"``. They end their episodes themselves (no
  gymnasium ``TimeLimit``);
- ``vlmreward/MiniWorldGoals-v0``: :class:`~vlmreward.envs.miniworld_goals.MiniWorldGoalsEnv`
  (language goals about coloured objects in a MiniWorld room, 100 steps) with the detectors of
  its goal types; needs MiniWorld.
- ``vlmreward/AndroidOpenApp-v0``: :class:`~vlmreward.envs.android.AndroidOpenAppEnv` (open the
  app a goal names, on android_env's fake simulator or an Android emulator, 10 steps) with
  success from the foreground activity; needs the ``android`` extra.

- ``vlmreward/MetaWorld-<task>-v3`` (``drawer-open``, ``door-open``, ``button-press``,
  ``window-open``, ``sweep-into``, ``soccer``, ... :data:`~vlmreward.envs.metaworld.METAWORLD_TASKS`):
  :class:`~vlmreward.envs.metaworld.MetaWorldEnv`, Meta-World's v3 task with its own success as
  ``info["is_success"]`` and upright corner-camera frames; it ends its episodes itself
  (``episode_length``, default 500, ``time_limit``); needs the ``metaworld`` extra.

Entry points are strings, so registering imports neither MuJoCo, MiniWorld nor the environment modules;
``import vlmreward.envs`` registers them. Keyword arguments of ``gymnasium.make`` reach the
constructors (``task``, ``render_width``, ``render_height``, ``high_quality_render``), and
``max_episode_steps`` overrides the time limit.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from vlmreward.envs.metaworld import METAWORLD_TASKS, metaworld_env_id
from vlmreward.envs.success import cartpole_upright

__all__ = [
    "register_envs",
    "CartPoleWithSuccessEnv",
    "CARTPOLE_ID",
    "MOUNTAIN_CAR_ID",
    "HUMANOID_ID",
    "HUMANOID_EPISODE_STEPS",
    "MINIWORLD_GOALS_ID",
    "MINIWORLD_GOALS_EPISODE_STEPS",
    "ANDROID_OPEN_APP_ID",
    "ANDROID_OPEN_APP_EPISODE_STEPS",
    "VLMRM_CARTPOLE_ID",
    "VLMRM_MOUNTAIN_CAR_ID",
    "VLMRM_HUMANOID_ID",
]

CARTPOLE_ID = "vlmreward/CartPole-v1"
MOUNTAIN_CAR_ID = "vlmreward/MountainCarContinuousTextured-v0"
HUMANOID_ID = "vlmreward/HumanoidTextured-v0"
HUMANOID_EPISODE_STEPS = 200
MINIWORLD_GOALS_ID = "vlmreward/MiniWorldGoals-v0"
ANDROID_OPEN_APP_ID = "vlmreward/AndroidOpenApp-v0"
ANDROID_OPEN_APP_EPISODE_STEPS = 10
"""Default AndroidOpenApp episode length: one tap opens an app from the home screen; a wrong app
costs two more (home, then the right icon)."""
VLMRM_CARTPOLE_ID = "vlmreward/VLMRM-CartPole-v0"
VLMRM_MOUNTAIN_CAR_ID = "vlmreward/VLMRM-MountainCarContinuous-v0"
VLMRM_HUMANOID_ID = "vlmreward/VLMRM-Humanoid-v0"
MINIWORLD_GOALS_EPISODE_STEPS = 100
"""Default MiniWorldGoals episode length: crossing the default 5 m room takes about 35 steps of
0.15 m and turning up to 12 of 15°, a Pick-and-place twice that."""
"""Default fixed Humanoid episode length (steps of 5 × 3 ms = 15 ms, i.e. 1.5 s); override with
``gymnasium.make(HUMANOID_ID, max_episode_steps=...)``."""


class CartPoleWithSuccessEnv(CartPoleEnv):
    """gymnasium's CartPole with ``info["is_success"]`` = pole upright and cart on the track.

    Dynamics, reward, termination and rendering (``uint8 [400, 600, 3]``) are gymnasium's; the
    detector is :func:`~vlmreward.envs.success.cartpole_upright` (``|θ| < 0.1`` rad, ``|x| ≤ 2.4``).
    """

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)
        info["is_success"] = cartpole_upright(self.state)
        return obs, reward, terminated, truncated, info

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = super().reset(seed=seed, options=options)
        info["is_success"] = cartpole_upright(self.state)
        return obs, info


def register_envs() -> None:
    """Register the ids with gymnasium; calling it again is a no-op."""
    specs: list[dict[str, Any]] = [
        dict(
            id=CARTPOLE_ID,
            entry_point="vlmreward.envs.registration:CartPoleWithSuccessEnv",
            max_episode_steps=500,
            reward_threshold=475.0,
        ),
        dict(
            id=MOUNTAIN_CAR_ID,
            entry_point="vlmreward.envs.mountain_car:TexturedMountainCarEnv",
            max_episode_steps=999,
            reward_threshold=90.0,
        ),
        dict(
            id=HUMANOID_ID,
            entry_point="vlmreward.envs.humanoid:TexturedHumanoidEnv",
            max_episode_steps=HUMANOID_EPISODE_STEPS,
        ),
        dict(
            id=MINIWORLD_GOALS_ID,
            entry_point="vlmreward.envs.miniworld_goals:MiniWorldGoalsEnv",
            max_episode_steps=MINIWORLD_GOALS_EPISODE_STEPS,
        ),
        dict(
            id=ANDROID_OPEN_APP_ID,
            entry_point="vlmreward.envs.android:AndroidOpenAppEnv",
            max_episode_steps=ANDROID_OPEN_APP_EPISODE_STEPS,
        ),
        dict(id=VLMRM_CARTPOLE_ID, entry_point="vlmreward.envs.vlmrm:VLMRMCartPoleEnv"),
        dict(id=VLMRM_MOUNTAIN_CAR_ID, entry_point="vlmreward.envs.vlmrm:VLMRMMountainCarEnv"),
        dict(id=VLMRM_HUMANOID_ID, entry_point="vlmreward.envs.vlmrm_humanoid:VLMRMHumanoidEnv"),
    ]
    for task in METAWORLD_TASKS:
        specs.append(
            dict(
                id=metaworld_env_id(task),
                entry_point="vlmreward.envs.metaworld:MetaWorldEnv",
                kwargs={"task": task},
            )
        )
    for spec in specs:
        if spec["id"] not in gym.registry:
            gym.register(**spec)
