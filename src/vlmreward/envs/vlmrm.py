"""The VLM-RM reference environments, CartPole and MountainCarContinuous, as the paper ran them.

Rocamonde et al. (ICLR 2024, appendix C.1) changed gymnasium's classic-control tasks so that a
reward model, not the environment, decides what the agent learns: "the termination leaks
information about the task completion … any positive reward function will lead to the agent
solving the CartPole task". These classes follow the reference code
(``vlmrm/envs/classic_control/clip_rewarded_*.py`` at commit 811d820) step for step; every
difference is listed in ``docs/reproducing-vlmrm.md``.

* :class:`VLMRMCartPoleEnv` (``vlmreward/VLMRM-CartPole-v0``): gymnasium's physics and 600 × 400
  rendering; never ends on failure; after each step the pole angle is wrapped into ``[-π, π)``
  and the cart position clipped to ``±2.4``; ``info["is_success"]`` = gymnasium's failure test
  (``|θ| > 12°`` or ``|x| > 2.4`` on the state the step produced) is *not* met.
* :class:`VLMRMMountainCarEnv` (``vlmreward/VLMRM-MountainCarContinuous-v0``): gymnasium's
  physics; once ``x ≥ 0.45`` the goal is absorbing (success stays true, ``x`` held at ≤ 0.45);
  rendered 600 × 400 from a background picture and a car sprite rotated with the slope.

Both end every episode after ``episode_length`` steps (200), with ``terminated=True`` as the
reference does (``time_limit="terminate"``: no bootstrapping from the last state) or
``truncated=True`` (``time_limit="truncate"``: the time limit is not part of the task, the
learner bootstraps). Neither is registered with a gymnasium ``TimeLimit``.
"""

from __future__ import annotations

import math
import os
from typing import Any, Literal, get_args

import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.envs.classic_control.continuous_mountain_car import Continuous_MountainCarEnv

from vlmreward.envs.textures import texture_files
from vlmreward.errors import InvalidParameterError

__all__ = [
    "TimeLimitMode",
    "TIME_LIMIT_MODES",
    "VLMRM_EPISODE_LENGTH",
    "EpisodeClock",
    "VLMRMCartPoleEnv",
    "VLMRMMountainCarEnv",
    "CAR_CLEARANCE_PX",
]

TimeLimitMode = Literal["terminate", "truncate"]
TIME_LIMIT_MODES: tuple[str, ...] = get_args(TimeLimitMode)
VLMRM_EPISODE_LENGTH = 200
"""The reference configs' ``episode_length`` for CartPole and MountainCar (paper, appendix C.1)."""
CAR_CLEARANCE_PX = 15
"""Pixels between the terrain line and the car sprite's centre in the reference's renderer."""


class EpisodeClock:
    """Counts an episode's steps and ends it after ``episode_length`` of them.

    Args:
        episode_length: steps per episode, ≥ 1.
        time_limit: ``"terminate"`` (the reference: ``terminated=True`` at the last step) or
            ``"truncate"`` (``truncated=True``, as gymnasium's ``TimeLimit``).

    Raises:
        InvalidParameterError: ``episode_length < 1`` or an unknown ``time_limit``.
    """

    def __init__(self, episode_length: int, time_limit: str) -> None:
        if isinstance(episode_length, bool) or not isinstance(episode_length, (int, np.integer)) or episode_length < 1:
            raise InvalidParameterError(f"episode_length must be an integer ≥ 1; got {episode_length!r}.")
        if time_limit not in TIME_LIMIT_MODES:
            raise InvalidParameterError(
                f"time_limit={time_limit!r}: use 'terminate' (the VLM-RM reference: terminated=True at the last step) "
                "or 'truncate' (truncated=True, the learner bootstraps)."
            )
        self.episode_length = int(episode_length)
        self.time_limit = time_limit
        self.steps = 0

    def reset(self) -> None:
        self.steps = 0

    def tick(self) -> tuple[bool, bool]:
        """Count one step; ``(terminated, truncated)`` for it."""
        self.steps += 1
        done = self.steps >= self.episode_length
        return done and self.time_limit == "terminate", done and self.time_limit == "truncate"


class VLMRMCartPoleEnv(CartPoleEnv):
    """CartPole as VLM-RM trains it: no termination on failure, fixed-length episodes.

    Observations ``float32 [4]`` ``(x m, ẋ m/s, θ rad, θ̇ rad/s)`` within ``±4.8``, unbounded,
    ``±π``, unbounded (the reference's bounds); actions 0 (push left) and 1 (push right); frames
    ``uint8 [400, 600, 3]`` (gymnasium's renderer). The step reward is ``1.0`` while the state is
    inside gymnasium's bounds (``info["is_success"]``) and ``0.0`` outside: the ground-truth
    return counts the steps the pole was up. (The reference passes on gymnasium's reward, 1
    until the first failure and 0 afterwards with a warning at every later step; the agent never
    sees either, its reward is the VLM's.)

    Args:
        render_mode: None or ``"rgb_array"``.
        episode_length: steps per episode (default 200, the reference's).
        time_limit: ``"terminate"`` (default, the reference's) or ``"truncate"``; see :class:`EpisodeClock`.
        sutton_barto_reward: gymnasium's option; has no effect here (the reward is the success).
    """

    def __init__(
        self,
        render_mode: str | None = None,
        episode_length: int = VLMRM_EPISODE_LENGTH,
        time_limit: TimeLimitMode = "terminate",
        sutton_barto_reward: bool = False,
    ) -> None:
        super().__init__(render_mode=render_mode, sutton_barto_reward=sutton_barto_reward)
        self.clock = EpisodeClock(episode_length, time_limit)
        f32max = np.finfo(np.float32).max
        high = np.array([self.x_threshold * 2, f32max, math.pi, f32max], dtype=np.float32)
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.steps_beyond_terminated = None  # gymnasium's episode-over bookkeeping: ours never ends on failure
        _, _, failed, _, info = super().step(action)
        x, x_dot, theta, theta_dot = self.state
        theta = (theta + math.pi) % (2 * math.pi) - math.pi
        x = float(np.clip(x, -self.x_threshold, self.x_threshold))
        self.state = np.array((x, x_dot, theta, theta_dot), dtype=np.float64)
        info["is_success"] = not failed
        terminated, truncated = self.clock.tick()
        return np.array(self.state, dtype=np.float32), float(not failed), terminated, truncated, info

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        self.clock.reset()
        obs, info = super().reset(seed=seed, options=options)
        info["is_success"] = True  # gymnasium starts within ±0.05 of upright and centred
        return obs, info


class VLMRMMountainCarEnv(Continuous_MountainCarEnv):
    """MountainCarContinuous as VLM-RM trains it: an absorbing goal, fixed-length episodes and a
    picture-textured rendering.

    Observations ``float32 [2]`` ``(x, ẋ)`` and actions ``float32 [1]`` in ``[-1, 1]`` are
    gymnasium's, as is the step reward (``+100`` when ``x ≥ 0.45`` with ``ẋ ≥ 0``, minus
    ``0.1 a²``). Once ``x ≥ 0.45`` the episode is a success for good: ``x`` is held at ≤ 0.45
    after every later step and ``info["is_success"]`` stays true until the episode ends after
    ``episode_length`` steps. The success flag is cleared at every reset (the reference forgets
    to, so there every episode after the first success counts as successful from its start).

    Frames ``uint8 [400, 600, 3]``, drawn as the reference draws them: the background picture
    flipped upside down, the car sprite flipped and rotated by ``-degrees(atan(1.35 cos 3x))``,
    centred at ``((x + 1.2) · s, 15 + h(x) · s)`` with ``s = 600 / 1.8`` and
    ``h(x) = 0.45 sin 3x + 0.55``, then the whole picture flipped back (pygame's ``rotate`` and
    ``blit``).

    Args:
        render_mode: None or ``"rgb_array"``.
        episode_length: steps per episode (default 200, the reference's).
        time_limit: ``"terminate"`` (default, the reference's) or ``"truncate"``.
        textures: ``"ours"`` (default; drawn by vlmreward) or ``"reference"`` (the reference's
            pictures, downloaded once); see :mod:`vlmreward.envs.textures`.
        textures_dir: a local copy of the reference pictures (with ``textures="reference"``).
        goal_velocity: gymnasium's.

    Raises:
        InvalidParameterError: a bad ``episode_length``, ``time_limit``, ``textures`` or render mode.
        TexturesNotAvailableError: reference textures neither cached nor downloadable.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}
    PICTURES = ("mountain_car_background.png", "mountain_car.png")

    def __init__(
        self,
        render_mode: str | None = None,
        episode_length: int = VLMRM_EPISODE_LENGTH,
        time_limit: TimeLimitMode = "terminate",
        textures: str = "ours",
        textures_dir: str | os.PathLike | None = None,
        goal_velocity: float = 0.0,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise InvalidParameterError(f"render_mode={render_mode!r}: the VLM-RM MountainCar renders 'rgb_array' frames.")
        super().__init__(render_mode=render_mode, goal_velocity=goal_velocity)
        self.clock = EpisodeClock(episode_length, time_limit)
        self.textures, self.textures_dir = textures, textures_dir
        self.texture_paths = texture_files(textures, self.PICTURES, textures_dir)  # fails here, not at the first frame
        self.success = False
        self._pictures: tuple[Any, Any] | None = None

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        _, reward, _, _, info = super().step(action)  # gymnasium's "terminated" (goal reached) does not end it
        x, x_dot = self.state
        if x >= self.goal_position:
            self.success = True
        if self.success:
            x = min(float(x), self.goal_position)
        self.state = np.array((x, x_dot), dtype=np.float64)
        info["is_success"] = self.success
        terminated, truncated = self.clock.tick()
        return np.array(self.state, dtype=np.float32), float(reward), terminated, truncated, info

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        self.clock.reset()
        self.success = False
        obs, info = super().reset(seed=seed, options=options)
        info["is_success"] = False
        return obs, info

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """The current frame, ``uint8 [400, 600, 3]``; None without a render mode."""
        if self.render_mode is None:
            return None
        import pygame  # gymnasium[classic-control]'s renderer; no pygame.init(): only surfaces are used

        if self._pictures is None:
            background = pygame.image.load(os.fspath(self.texture_paths["mountain_car_background.png"]))
            car = pygame.image.load(os.fspath(self.texture_paths["mountain_car.png"]))
            self._pictures = (pygame.transform.flip(background, False, True), pygame.transform.flip(car, False, True))
        background, car = self._pictures
        scale = self.screen_width / (self.max_position - self.min_position)
        surface = pygame.Surface((self.screen_width, self.screen_height))
        surface.fill((255, 255, 255))
        surface.blit(background, (0, 0))
        position = float(self.state[0])
        rotated = pygame.transform.rotate(car, -math.degrees(math.atan(math.cos(3 * position) * 0.45 * 3)))
        rect = rotated.get_rect()
        rect.center = ((position - self.min_position) * scale, CAR_CLEARANCE_PX + self._height(position) * scale)
        surface.blit(rotated, rect)
        surface = pygame.transform.flip(surface, False, True)
        return np.ascontiguousarray(pygame.surfarray.array3d(surface).transpose(1, 0, 2))

    def close(self) -> None:
        self._pictures = None
        super().close()
