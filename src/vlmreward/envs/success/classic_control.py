"""CartPole's and MountainCar's ground-truth success (:mod:`vlmreward.envs.success`): functions of
the environment's state vector."""

from __future__ import annotations

from typing import Any

import numpy as np

from vlmreward.errors import InvalidParameterError

__all__ = [
    "CARTPOLE_UPRIGHT_MAX_ANGLE",
    "CARTPOLE_MAX_CART_POSITION",
    "MOUNTAIN_CAR_GOAL_POSITION",
    "cartpole_upright",
    "mountain_car_at_flag",
]

# --------------------------------------------------------------------------------------------
# CartPole
# --------------------------------------------------------------------------------------------

CARTPOLE_UPRIGHT_MAX_ANGLE: float = 0.1
"""Largest ``|pole angle|`` (rad, ≈ 5.7°) that counts as "pole vertically upright".

gymnasium's CartPole ends the episode at ``|θ| > 12°`` (0.2095 rad): that is the edge of the
recoverable region, where a pole is visibly leaning and about to fall, not "upright". Half of it
(rounded to 0.1 rad) keeps the label for poles that a person looking at the frame calls
vertical (VLM-RM's goal prompt: "pole vertically upright on top of the cart")."""

CARTPOLE_MAX_CART_POSITION: float = 2.4
"""Largest ``|cart position|`` (m): gymnasium's CartPole termination bound ``x_threshold``;
its rendering spans exactly ``[-2.4, 2.4]``, so beyond it the cart is off-screen."""


def cartpole_upright(
    state: np.ndarray | Any,
    max_angle: float = CARTPOLE_UPRIGHT_MAX_ANGLE,
    max_cart_position: float = CARTPOLE_MAX_CART_POSITION,
) -> bool:
    """Whether a CartPole state has the pole upright and the cart on the track.

    Args:
        state: gymnasium's CartPole state or observation, 4 numbers
            ``(cart position m, cart velocity m/s, pole angle rad, pole angular velocity rad/s)``.
        max_angle: largest ``|pole angle|`` in rad (default :data:`CARTPOLE_UPRIGHT_MAX_ANGLE`).
        max_cart_position: largest ``|cart position|`` in m (default :data:`CARTPOLE_MAX_CART_POSITION`).
    """
    s = np.asarray(state, dtype=np.float64).reshape(-1)
    if s.shape != (4,):
        raise InvalidParameterError(
            f"cartpole_upright needs CartPole's 4-number state (x, x_dot, theta, theta_dot), got shape "
            f"{np.shape(state)}; pass env.unwrapped.state or the observation."
        )
    return bool(abs(s[2]) < max_angle and abs(s[0]) <= max_cart_position)


# --------------------------------------------------------------------------------------------
# MountainCar
# --------------------------------------------------------------------------------------------

MOUNTAIN_CAR_GOAL_POSITION: float = 0.45
"""Position of the flag (``goal_position`` of gymnasium's ``MountainCarContinuous-v0``), in the
environment's position units; the environment's own goal (its +100 reward needs this position
and a non-negative velocity)."""


def mountain_car_at_flag(state: np.ndarray | Any, goal_position: float = MOUNTAIN_CAR_GOAL_POSITION) -> bool:
    """Whether a MountainCar state has the car at (or past) the flag: ``position >= goal_position``.

    Args:
        state: ``(position, velocity)`` of MountainCar(Continuous); only ``state[0]`` is read.
        goal_position: the flag's position (default :data:`MOUNTAIN_CAR_GOAL_POSITION`).
    """
    s = np.asarray(state, dtype=np.float64).reshape(-1)
    if s.shape != (2,):
        raise InvalidParameterError(
            f"mountain_car_at_flag needs MountainCar's 2-number state (position, velocity), got shape "
            f"{np.shape(state)}; pass env.unwrapped.state or the observation."
        )
    return bool(s[0] >= goal_position)
