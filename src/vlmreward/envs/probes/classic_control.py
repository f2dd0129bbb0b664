"""Probes of gymnasium's classic-control environments: CartPole and MountainCarContinuous
(and their subclasses: ``vlmreward/CartPole-v1``, ``vlmreward/MountainCarContinuousTextured-v0``,
the ``VLMRM-`` ids).

Sweeps: CartPole, a grid over pole angle (``±0.4`` rad, the upright label is ``|θ| < 0.1``)
and cart position (``±1.8`` m), velocities zero; MountainCar, the car at evenly spaced positions
over the whole track ``[-1.2, 0.6]``, velocity zero. Both set ``env.unwrapped.state``.
"""

from __future__ import annotations

import math

import numpy as np

from vlmreward.envs import success
from vlmreward.envs.probes import EnvProbe, register_probe

__all__ = ["CartPoleProbe", "MountainCarProbe", "CARTPOLE_SWEEP_MAX_ANGLE", "CARTPOLE_SWEEP_MAX_POSITION"]

CARTPOLE_SWEEP_MAX_ANGLE = 0.4
"""The CartPole sweep's pole angles span ``[-0.4, 0.4]`` rad (±23°): upright (``|θ| < 0.1``) is a quarter."""

CARTPOLE_SWEEP_MAX_POSITION = 1.8
"""The CartPole sweep's cart positions span ``[-1.8, 1.8]`` m (the track is ±2.4 m)."""


def grid_lines(n: int) -> int:
    """Lines of a 2-D sweep of ``n`` points: a divisor of ``n`` near ``sqrt(n / 10)`` (≈ 10× more points per line)."""
    target = math.sqrt(n / 10.0)
    divisors = [d for d in range(1, n + 1) if n % d == 0 and d <= max(1.0, 2 * target)]
    return min(divisors, key=lambda d: abs(d - target))


@register_probe("gymnasium.envs.classic_control.cartpole:CartPoleEnv")
class CartPoleProbe(EnvProbe):
    """CartPole (gymnasium's and every subclass): cart and pole state, upright label, a grid sweep."""

    family = "cartpole"
    landscape_x = "pole_angle"
    episode_reward_definition = (
        "CartPole's step reward: 1 for every step, the one that ends the episode included (gymnasium)"
    )
    sweep_reward_definition = (
        "1 while the state is inside gymnasium's termination bounds (|pole_angle| <= 0.2095 rad = 12 deg and "
        "|cart_position| <= 2.4 m), else 0: the per-step reward CartPole pays for keeping the pole up"
    )
    sweep_landscape = ("pole_angle", None)

    def state_variables(self):
        return {
            "cart_position": {"type": "float", "unit": "m", "description": "cart position; the track spans ±2.4 m"},
            "cart_velocity": {"type": "float", "unit": "m/s", "description": "cart velocity"},
            "pole_angle": {
                "type": "float", "unit": "rad",
                "description": "pole angle from vertical; 0 upright, positive leaning towards +x (right)",
            },
            "pole_angular_velocity": {"type": "float", "unit": "rad/s", "description": "pole angular velocity"},
        }

    def labels(self):
        return {
            "is_success": {
                "definition": "pole upright and cart on the track: |pole_angle| < "
                f"{success.CARTPOLE_UPRIGHT_MAX_ANGLE} rad and |cart_position| <= {success.CARTPOLE_MAX_CART_POSITION} m",
                "detector": "vlmreward.envs.success.cartpole_upright",
                "thresholds": {
                    "CARTPOLE_UPRIGHT_MAX_ANGLE": success.CARTPOLE_UPRIGHT_MAX_ANGLE,
                    "CARTPOLE_MAX_CART_POSITION": success.CARTPOLE_MAX_CART_POSITION,
                },
            }
        }

    def state_row(self):
        x, x_dot, theta, theta_dot = (float(v) for v in np.asarray(self.env.unwrapped.state, dtype=np.float64))
        return {"cart_position": x, "cart_velocity": x_dot, "pole_angle": theta, "pole_angular_velocity": theta_dot}

    def label_row(self, info):
        return {"is_success": success.cartpole_upright(self.env.unwrapped.state)}

    def sweep(self, n):
        n_pos = grid_lines(n)
        per_line = n // n_pos
        positions = np.linspace(-CARTPOLE_SWEEP_MAX_POSITION, CARTPOLE_SWEEP_MAX_POSITION, n_pos) if n_pos > 1 else [0.0]
        angles = np.linspace(-CARTPOLE_SWEEP_MAX_ANGLE, CARTPOLE_SWEEP_MAX_ANGLE, per_line) if per_line > 1 else [0.0]
        for line, x in enumerate(positions):
            for i, theta in enumerate(angles):
                self.env.unwrapped.state = np.array([x, 0.0, theta, 0.0], dtype=np.float64)
                yield line, i, {}

    def sweep_reward(self):
        u = self.env.unwrapped
        x, _, theta, _ = np.asarray(u.state, dtype=np.float64)
        return float(abs(x) <= u.x_threshold and abs(theta) <= u.theta_threshold_radians)

    @property
    def sweep_description(self):
        return (
            f"grid over pole angle in [-{CARTPOLE_SWEEP_MAX_ANGLE}, {CARTPOLE_SWEEP_MAX_ANGLE}] rad (fastest) and cart "
            f"position in [-{CARTPOLE_SWEEP_MAX_POSITION}, {CARTPOLE_SWEEP_MAX_POSITION}] m (one 'episode' per cart "
            "position), velocities 0, set in env.unwrapped.state"
        )


@register_probe("gymnasium.envs.classic_control.continuous_mountain_car:Continuous_MountainCarEnv")
class MountainCarProbe(EnvProbe):
    """MountainCarContinuous (gymnasium's and every subclass): car state, at-the-flag label, a sweep along the track."""

    family = "mountain_car"
    landscape_x = "car_position"
    episode_reward_definition = (
        "MountainCarContinuous's step reward: +100 on reaching the flag, minus 0.1 * action^2 every step"
    )
    sweep_reward_definition = "100 if car_position >= goal_position (the flag) else 0: the step reward at action 0"
    sweep_landscape = ("car_position", None)
    sweep_description = (
        "the car at evenly spaced positions over the track [-1.2, 0.6], velocity 0, set in env.unwrapped.state"
    )

    def state_variables(self):
        return {
            "car_position": {
                "type": "float", "unit": "position units",
                "description": "car position on the track [-1.2, 0.6]; the valley bottom is near -0.52, the flag "
                f"at {self.goal}",
            },
            "car_velocity": {"type": "float", "unit": "position units/step", "description": "car velocity"},
        }

    @property
    def goal(self) -> float:
        return float(getattr(self.env.unwrapped, "goal_position", success.MOUNTAIN_CAR_GOAL_POSITION))

    def labels(self):
        return {
            "is_success": {
                "definition": f"the car at or past the flag: car_position >= {self.goal}",
                "detector": "vlmreward.envs.success.mountain_car_at_flag",
                "thresholds": {"goal_position": self.goal},
            }
        }

    def state_row(self):
        position, velocity = (float(v) for v in np.asarray(self.env.unwrapped.state, dtype=np.float64))
        return {"car_position": position, "car_velocity": velocity}

    def label_row(self, info):
        return {"is_success": success.mountain_car_at_flag(self.env.unwrapped.state, self.goal)}

    def sweep(self, n):
        u = self.env.unwrapped
        for i, x in enumerate(np.linspace(u.min_position, u.max_position, n) if n > 1 else [-0.5]):
            u.state = np.array([x, 0.0], dtype=np.float64)
            yield 0, i, {}

    def sweep_reward(self):
        return 100.0 if success.mountain_car_at_flag(self.env.unwrapped.state, self.goal) else 0.0
