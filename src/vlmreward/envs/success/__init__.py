"""Ground-truth success detectors for the VLM-RM environments (CartPole, MountainCar, Humanoid) and
MiniWorldGoals (Find, Lift, Place).

They label states as "goal reached" independently of any VLM, so that a policy trained on a
VLM reward can be scored by its ground-truth success rate, and a VLM reward can be evaluated
as a goal detector (precision / recall against these labels).

Classic control detectors take the environment's state vector; Humanoid detectors take the
MuJoCo ``(model, data)`` pair of gymnasium's ``Humanoid-v5`` model (any model with the same
body, geom and joint names), after ``mj_forward`` or a simulation step so that ``data.xpos``,
``data.xmat`` and ``data.geom_xpos`` are current. Positions are in metres, world frame, ``z`` up,
floor at ``z = 0``; the humanoid faces ``+x`` in its initial pose. Angles are in radians.

The Humanoid thresholds are calibrated on the model's own geometry (numbers in the constants'
docstrings) by setting joint angles by hand: standing straight with the feet on the floor puts
the torso at 1.29 m, the pelvis at 0.87 m and the knees at 0.42 m; kneeling upright on both knees
puts the knees at 0.08 m, the pelvis at 0.50 m and the torso at 0.93 m; sitting on the heels puts
the pelvis at 0.41 m. Body positions come from ``data.xpos`` / ``data.geom_xpos``, joint angles
from ``data.qpos``, all looked up by name with ``mujoco.mj_name2id``. This module does not import
MuJoCo at import time (only when a Humanoid detector runs).

MiniWorldGoals' detectors read a :class:`~vlmreward.envs.miniworld_goals.MiniWorldGoalsEnv`'s
agent and entities (duck-typed: this module does not import MiniWorld); positions are MiniWorld's
``(x, y, z)`` with the floor in ``(x, z)``, headings in radians.

One module per family: :mod:`~vlmreward.envs.success.classic_control`,
:mod:`~vlmreward.envs.success.humanoid`, :mod:`~vlmreward.envs.success.miniworld`; every name is
importable from here.
"""

from __future__ import annotations

from vlmreward.envs.success.classic_control import (
    CARTPOLE_UPRIGHT_MAX_ANGLE, CARTPOLE_MAX_CART_POSITION, MOUNTAIN_CAR_GOAL_POSITION, cartpole_upright,
    mountain_car_at_flag,
)
from vlmreward.envs.success.humanoid import (
    UPRIGHT_MAX_TILT, STANDING_MIN_TORSO_HEIGHT, KNEE_ON_FLOOR_MAX_HEIGHT, KNEELING_MIN_PELVIS_ABOVE_KNEE,
    KNEELING_MIN_KNEE_FLEXION, ARMS_RAISED_MIN_HAND_ABOVE_HEAD, SPLITS_MIN_FEET_DISTANCE,
    SPLITS_MAX_PELVIS_HEIGHT, SPLITS_MAX_KNEE_FLEXION, FOOT_ON_FLOOR_MAX_HEIGHT, LOTUS_MAX_PELVIS_HEIGHT,
    LOTUS_MIN_KNEE_SPREAD, LOTUS_MIN_FEET_INSIDE_KNEES, HANDS_ON_HIPS_MAX_DISTANCE, ARMS_CROSSED_MIN_OVERLAP,
    ONE_LEG_MIN_FOOT_HEIGHT, torso_tilt, humanoid_standing, humanoid_kneeling, humanoid_arms_raised,
    humanoid_splits, humanoid_lotus, humanoid_hands_on_hips, humanoid_arms_crossed,
    humanoid_standing_on_one_leg, HUMANOID_POSES, HumanoidPoseDetector,
)
from vlmreward.envs.success.miniworld import (
    FIND_MAX_BEARING, MINIWORLD_GOAL_TYPES, bearing, floor_distance, near_distance, find_success, lift_success,
    place_success, goal_success,
)

__all__ = [
    "FIND_MAX_BEARING",
    "MINIWORLD_GOAL_TYPES",
    "bearing",
    "floor_distance",
    "near_distance",
    "find_success",
    "lift_success",
    "place_success",
    "goal_success",
    "CARTPOLE_UPRIGHT_MAX_ANGLE",
    "CARTPOLE_MAX_CART_POSITION",
    "MOUNTAIN_CAR_GOAL_POSITION",
    "UPRIGHT_MAX_TILT",
    "STANDING_MIN_TORSO_HEIGHT",
    "KNEE_ON_FLOOR_MAX_HEIGHT",
    "KNEELING_MIN_PELVIS_ABOVE_KNEE",
    "KNEELING_MIN_KNEE_FLEXION",
    "ARMS_RAISED_MIN_HAND_ABOVE_HEAD",
    "SPLITS_MIN_FEET_DISTANCE",
    "SPLITS_MAX_PELVIS_HEIGHT",
    "SPLITS_MAX_KNEE_FLEXION",
    "FOOT_ON_FLOOR_MAX_HEIGHT",
    "LOTUS_MAX_PELVIS_HEIGHT",
    "LOTUS_MIN_KNEE_SPREAD",
    "LOTUS_MIN_FEET_INSIDE_KNEES",
    "HANDS_ON_HIPS_MAX_DISTANCE",
    "ARMS_CROSSED_MIN_OVERLAP",
    "ONE_LEG_MIN_FOOT_HEIGHT",
    "cartpole_upright",
    "mountain_car_at_flag",
    "torso_tilt",
    "humanoid_standing",
    "humanoid_kneeling",
    "humanoid_arms_raised",
    "humanoid_splits",
    "humanoid_lotus",
    "humanoid_hands_on_hips",
    "humanoid_arms_crossed",
    "humanoid_standing_on_one_leg",
    "HUMANOID_POSES",
    "HumanoidPoseDetector",
]
