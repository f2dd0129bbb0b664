"""Meta-World manipulation tasks (Farama's ``metaworld`` 3.x) as registered environments.

``gymnasium.make("vlmreward/MetaWorld-drawer-open-v3", render_mode="rgb_array")`` builds
:class:`MetaWorldEnv`: one Meta-World v3 task (a Sawyer arm; 39-dim state observation, 4-dim
action in ``[-1, 1]``: end-effector motion and gripper) whose object and goal positions are
drawn at each reset from the task's 50 variations (Meta-World's MT1, or ML1's training set with
the goal hidden from the observation), with:

* ``info["is_success"]``: Meta-World's own success (``info["success"]``, e.g. the drawer pulled
  out far enough), at every step and after reset (False);
* ``rgb_array`` frames from a named camera (``"corner"``, ``"corner2"``, ``"corner3"``,
  ``"corner4"``, ``"topview"``, ``"behindGripper"``, ``"gripperPOV"``) at ``render_width ×
  render_height``. The ``corner`` cameras of Meta-World's XML point with their up axis
  downwards, so their images come out upside down; ``upright=True`` (default) turns them by
  180°, which shows the scene as it stands (not mirrored);
* shadows and multisampling off unless ``high_quality_render`` (≈ 7× faster on a CPU: 44 ms
  against 310 ms per 224 × 224 frame measured here with EGL on llvmpipe);
* seeded resets: ``reset(seed=s)`` draws the same variation and the same state every time;
* fixed-length episodes of ``episode_length`` steps (at most Meta-World's 500), ended by
  truncation or, with ``time_limit="terminate"``, by termination (old gym's ``TimeLimit`` set
  ``done``, which RoboCLIP's learner treated as terminal);
* ``observe_time=True``: the fraction of the episode elapsed, ``t / episode_length``, appended to
  the observation (RoboCLIP's ``time=True``). A reward paid only at the episode's end is a
  function of the state only when the state says how far the episode is.

RoboCLIP trained on goal-hidden v2 tasks with 128-step episodes, time in the observation and the
default camera (``metaworld_envs.py``, ``MetaworldSparse``); RL-VLM-F on goal-observable tasks rendered from
corner cameras. ``configs/metaworld/`` sets these per run. MuJoCo and Meta-World are the
``metaworld`` extra; this module imports them, ``vlmreward.envs`` only names it by entry point.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from vlmreward.errors import InvalidParameterError, VLMRewardError

__all__ = ["MetaWorldEnv", "METAWORLD_TASKS", "METAWORLD_CAMERAS", "metaworld_env_id"]

METAWORLD_TASKS: tuple[str, ...] = (
    "drawer-open", "drawer-close", "door-open", "button-press", "button-press-topdown", "window-open",
    "window-close", "sweep-into", "soccer", "reach", "push", "pick-place", "faucet-open", "lever-pull",
)
"""Tasks registered as ``vlmreward/MetaWorld-<task>-v3``: RoboCLIP's and RL-VLM-F's and a few
easy ones (``reach``). Any other v3 task name works through ``task=`` on :class:`MetaWorldEnv`."""

METAWORLD_CAMERAS: tuple[str, ...] = ("corner", "corner2", "corner3", "corner4", "topview", "behindGripper", "gripperPOV")
_UPSIDE_DOWN = ("corner", "corner2", "corner3", "corner4")
DEFAULT_EPISODE_STEPS = 500
"""Meta-World's own episode length (``max_path_length``); ``max_episode_steps`` shortens it."""


def metaworld_env_id(task: str) -> str:
    """``"drawer-open"`` → ``"vlmreward/MetaWorld-drawer-open-v3"``."""
    return f"vlmreward/MetaWorld-{task}-v3"


def _import_metaworld() -> Any:
    try:
        import metaworld
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise VLMRewardError(
            f"Meta-World is not installed ({err}); install the extra: pip install 'vlmreward[metaworld]'."
        ) from None
    return metaworld


class MetaWorldEnv(gym.Env):
    """One Meta-World v3 task with success labels and upright camera frames.

    Args:
        task: the task's name without version (``"drawer-open"``) or with it (``"drawer-open-v3"``).
        render_mode: ``"rgb_array"`` or None.
        camera: one of :data:`METAWORLD_CAMERAS`.
        render_width, render_height: frame size in pixels.
        goal_observable: True: MT1's variations, the goal position in the last 3 observation
            entries; False: ML1's training variations, the goal hidden (zeros), as RoboCLIP used.
        upright: turn the upside-down corner cameras' images by 180°.
        high_quality_render: shadows and 4× multisampling (MuJoCo's defaults, slow on a CPU).
        task_seed: seed of the 50 variations (Meta-World's benchmark seed).
        episode_length: steps per episode, 1 to 500.
        time_limit: ``"truncate"`` (gymnasium's convention) or ``"terminate"`` the last step.
        observe_time: append ``t / episode_length`` (in ``[0, 1]``) to the observation.

    Raises:
        InvalidParameterError: an unknown task or camera, a non-positive frame size.
        VLMRewardError: Meta-World not installed.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 80}

    def __init__(
        self,
        task: str = "drawer-open",
        render_mode: str | None = None,
        camera: str = "corner",
        render_width: int = 224,
        render_height: int = 224,
        goal_observable: bool = True,
        upright: bool = True,
        high_quality_render: bool = False,
        task_seed: int = 0,
        episode_length: int = DEFAULT_EPISODE_STEPS,
        time_limit: str = "truncate",
        observe_time: bool = False,
    ) -> None:
        metaworld = _import_metaworld()
        name = task if task.endswith("-v3") else f"{task}-v3"
        if name not in metaworld.ALL_V3_ENVIRONMENTS:
            known = ", ".join(sorted(n.removesuffix("-v3") for n in metaworld.ALL_V3_ENVIRONMENTS))
            raise InvalidParameterError(f"Meta-World has no task {task!r}; its v3 tasks: {known}.")
        if camera not in METAWORLD_CAMERAS:
            raise InvalidParameterError(f"camera {camera!r} is not a Meta-World camera; use one of {', '.join(METAWORLD_CAMERAS)}.")
        if render_mode not in (None, "rgb_array"):
            raise InvalidParameterError(f"render_mode={render_mode!r}: Meta-World renders 'rgb_array' (or None).")
        if int(render_width) < 1 or int(render_height) < 1:
            raise InvalidParameterError(f"frame size must be positive; got {render_width} × {render_height}.")
        if not 1 <= int(episode_length) <= DEFAULT_EPISODE_STEPS:
            raise InvalidParameterError(f"episode_length must be 1 to {DEFAULT_EPISODE_STEPS} (Meta-World's limit); got {episode_length}.")
        if time_limit not in ("truncate", "terminate"):
            raise InvalidParameterError(f"time_limit={time_limit!r}: use 'truncate' or 'terminate'.")
        self.episode_length, self.time_limit, self.observe_time = int(episode_length), time_limit, bool(observe_time)
        self.task = name.removesuffix("-v3")
        self.camera = camera
        self.render_mode = render_mode
        self.goal_observable = bool(goal_observable)
        self.upright = bool(upright)
        benchmark = metaworld.MT1(name, seed=task_seed) if goal_observable else metaworld.ML1(name, seed=task_seed)
        self.tasks = list(benchmark.train_tasks)
        self.sim = metaworld.ALL_V3_ENVIRONMENTS[name](
            render_mode=render_mode, camera_name=camera, width=int(render_width), height=int(render_height)
        )
        if not high_quality_render:  # before the renderer's first frame creates its OpenGL context
            quality = self.sim.model.vis.quality
            quality.shadowsize, quality.offsamples = 0, 0
            self.sim.model.light_castshadow[:] = 0
        self.sim.set_task(self.tasks[0])
        space = self.sim.observation_space
        if self.observe_time:
            space = gym.spaces.Box(np.append(space.low, 0.0), np.append(space.high, 1.0), dtype=np.float64)
        self.observation_space = space
        self.action_space = self.sim.action_space
        self.variation: int | None = None
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Draw one of the task's variations (object and goal positions) and reset to it."""
        super().reset(seed=seed)
        self.variation = int(self.np_random.integers(len(self.tasks)))
        self.sim.set_task(self.tasks[self.variation])
        obs, info = self.sim.reset(seed=None if seed is None else int(self.np_random.integers(2**31)))
        self.t = 0
        return self._observation(obs), {**info, "is_success": False, "variation": self.variation}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, _, info = self.sim.step(np.asarray(action, dtype=np.float32))
        self.t += 1
        info = {**info, "is_success": bool(info.get("success", False))}
        end = self.t >= self.episode_length
        terminated = bool(terminated) or (end and self.time_limit == "terminate")
        truncated = end and self.time_limit == "truncate"
        return self._observation(obs), float(reward), terminated, truncated, info

    def _observation(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        return np.append(obs, self.t / self.episode_length) if self.observe_time else obs

    def render(self) -> np.ndarray | None:
        frame = self.sim.render()
        if frame is None:
            return None
        if self.upright and self.camera in _UPSIDE_DOWN:
            frame = frame[::-1, ::-1]
        return np.ascontiguousarray(frame)

    def close(self) -> None:
        self.sim.close()
