"""Frames of a logged episode: from its image observations, or rendered by restoring simulator states.

A transition's VLM reward scores the state the step reached (VLM-RM, eq. 1: ``R(s')``), so an
episode of ``T`` steps with ``T + 1`` observations gives ``T`` frames, those of observations
``1 … T``.

* **Image observations.** A ``Box`` of ``uint8 [H, W, 3]``, or such a ``Box`` inside a ``Dict``
  observation (the key named, or the only one): the frames are the observations themselves.
* **States only.** The environment is rebuilt (the dataset's ``EnvSpec``, ``render_mode=
  "rgb_array"``), each state written into it by a :class:`StateRestorer` registered for its class
  (matched through the MRO, as :mod:`vlmreward.envs.probes` does), and rendered:

  ========================================  ==========================================  ===========
  environment class                         state written                               source
  ========================================  ==========================================  ===========
  CartPole (gymnasium; VLM-RM's subclass)    ``env.state = observation`` (x, ẋ, θ, θ̇)   observation
  MountainCar, MountainCarContinuous         ``env.state = observation`` (x, ẋ)          observation
  MuJoCo environments (``MujocoEnv``)        ``set_state(qpos, qvel)``                   ``infos["qpos"]``,
                                                                                         ``infos["qvel"]``
  ========================================  ==========================================  ===========

  A MuJoCo observation omits the root position (and more), so it cannot be rendered from the
  observation alone: only datasets that logged ``qpos``/``qvel`` in their infos can. Any other
  environment without image observations is refused with one line (:class:`FramesUnavailableError`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import gymnasium as gym
import numpy as np

from vlmreward.errors import VLMRewardError

__all__ = ["FramesUnavailableError", "StateRestorer", "register_restorer", "restorer_for", "image_key", "FrameSource"]


class FramesUnavailableError(VLMRewardError, ValueError):
    """A dataset whose episodes give no frames: no image observations and no restorable simulator state."""


@dataclass(frozen=True)
class StateRestorer:
    """Writes a logged state into an environment so that ``render()`` draws it.

    Attributes:
        restore: ``restore(unwrapped_env, observation, infos_at_t)``.
        needs: what the state comes from, for messages (``"observation"``, ``"infos qpos/qvel"``).
        available: ``available(infos)``: whether an episode holds what ``restore`` needs.
    """

    restore: Callable[[Any, np.ndarray, Mapping[str, Any]], None]
    needs: str
    available: Callable[[Mapping[str, Any]], bool] = lambda infos: True


_RESTORERS: dict[str, StateRestorer] = {}


def register_restorer(class_path: str, restorer: StateRestorer) -> None:
    """Register ``restorer`` for environments whose class (or a base class) is ``module:Name``."""
    _RESTORERS[class_path] = restorer


def restorer_for(env: gym.Env) -> StateRestorer | None:
    """The restorer registered for ``env.unwrapped``'s class or its nearest base class, or None."""
    for cls in type(env.unwrapped).__mro__:
        restorer = _RESTORERS.get(f"{cls.__module__}:{cls.__qualname__}")
        if restorer is not None:
            return restorer
    return None


def _set_state_attribute(env: Any, observation: np.ndarray, infos: Mapping[str, Any]) -> None:
    env.state = np.array(observation, dtype=np.float64)


def _set_mujoco_state(env: Any, observation: np.ndarray, infos: Mapping[str, Any]) -> None:
    env.set_state(np.asarray(infos["qpos"], dtype=np.float64), np.asarray(infos["qvel"], dtype=np.float64))


for _path in ("gymnasium.envs.classic_control.cartpole:CartPoleEnv",
              "gymnasium.envs.classic_control.mountain_car:MountainCarEnv",
              "gymnasium.envs.classic_control.continuous_mountain_car:Continuous_MountainCarEnv"):
    register_restorer(_path, StateRestorer(_set_state_attribute, "observation"))
register_restorer(
    "gymnasium.envs.mujoco.mujoco_env:MujocoEnv",
    StateRestorer(_set_mujoco_state, "infos qpos/qvel", lambda infos: "qpos" in infos and "qvel" in infos),
)


def image_key(space: gym.Space, key: str | None = None) -> str | None:
    """Where the frames are in an observation space: ``""`` for an image ``Box``, the key of the
    image ``Box`` in a ``Dict`` (``key`` if given), or None when it has none.

    Raises:
        FramesUnavailableError: ``key`` names no ``uint8 [H, W, 3]`` entry, or several qualify and none is named.
    """
    def is_image(s: gym.Space) -> bool:
        return isinstance(s, gym.spaces.Box) and s.dtype == np.uint8 and len(s.shape) == 3 and s.shape[-1] == 3

    if isinstance(space, gym.spaces.Dict):
        images = [k for k, s in space.spaces.items() if is_image(s)]
        if key is not None:
            if key not in images:
                raise FramesUnavailableError(f"--image-key {key!r}: the observations' uint8 [H, W, 3] entries are {images or 'none'}.")
            return key
        if len(images) > 1:
            raise FramesUnavailableError(f"the observations hold several images {images}; choose one with --image-key.")
        return images[0] if images else None
    if key is not None:
        raise FramesUnavailableError(f"--image-key {key!r}: the observations are not a dict ({type(space).__name__}).")
    return "" if is_image(space) else None


class FrameSource:
    """The frames of a dataset's episodes (``uint8 [T, H, W, 3]``, one per step: the state reached).

    Args:
        observation_space: the dataset's observation space.
        make_env: builds the environment with ``render_mode="rgb_array"`` (only called when the
            observations hold no image), or None when the dataset names no environment.
        image_key: the ``Dict`` key holding the frames (see :func:`image_key`).

    Raises:
        FramesUnavailableError: no image observations, and no environment or no restorer for it.
    """

    def __init__(self, observation_space: gym.Space, make_env: Callable[[], gym.Env] | None, image_key_name: str | None = None) -> None:
        self.key = image_key(observation_space, image_key_name)
        self.env: gym.Env | None = None
        self.restorer: StateRestorer | None = None
        if self.key is not None:
            self.how = "image observations" + (f" ({self.key!r})" if self.key else "")
            return
        if make_env is None:
            raise FramesUnavailableError(
                "the dataset has no image observations and names no environment to render its states; "
                "relabel needs uint8 [H, W, 3] observations or a registered environment."
            )
        try:
            self.env = make_env()
        except Exception as err:  # noqa: BLE001 - any failure to build is the same message
            raise FramesUnavailableError(
                f"the dataset has no image observations and its environment cannot be built to render states ({err})."
            ) from err
        self.restorer = restorer_for(self.env)
        if self.restorer is None:
            name = type(self.env.unwrapped).__name__
            self.env.close()
            raise FramesUnavailableError(
                f"the dataset has no image observations and {name}'s states cannot be restored for rendering "
                "(vlmreward restores CartPole, MountainCar and MountainCarContinuous from observations, MuJoCo "
                "environments from infos qpos/qvel); record image observations instead."
            )
        self.env.reset(seed=0)
        self.how = f"rendered by restoring {type(self.env.unwrapped).__name__} states from the {self.restorer.needs}"

    def frames(self, observations: Any, infos: Mapping[str, Any] | None = None) -> np.ndarray:
        """``uint8 [T, H, W, 3]`` of an episode with ``T + 1`` observations (the first is the reset's).

        Raises:
            FramesUnavailableError: the episode lacks what the restorer needs (e.g. ``qpos``).
        """
        if self.key is not None:
            images = observations[self.key] if self.key else observations
            return np.ascontiguousarray(np.asarray(images, dtype=np.uint8)[1:])
        infos = infos or {}
        assert self.env is not None and self.restorer is not None
        if not self.restorer.available(infos):
            raise FramesUnavailableError(f"an episode has no {self.restorer.needs} to restore its states from.")
        out = []
        for t in range(1, len(observations)):
            step_infos = {k: v[t] for k, v in infos.items() if hasattr(v, "__len__") and len(v) > t}
            self.restorer.restore(self.env.unwrapped, np.asarray(observations[t]), step_infos)
            out.append(np.asarray(self.env.render(), dtype=np.uint8))
        if not out:
            return np.zeros((0, 1, 1, 3), dtype=np.uint8)
        return np.stack(out)

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
