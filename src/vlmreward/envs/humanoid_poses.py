"""Hand-set poses of gymnasium's Humanoid, for detector tests and labelled pose sweeps."""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from vlmreward.errors import InvalidParameterError

__all__ = ["HUMANOID_POSES_SET_BY_HAND", "ARMS_CROSSED_BEYOND_JOINT_LIMITS", "set_humanoid_pose"]

HUMANOID_POSES_SET_BY_HAND: dict[str, tuple[dict[str, float], float]] = {
    "kneeling": ({"right_knee": -90, "left_knee": -90}, 0.0),
    "kneeling_one_knee": ({"right_knee": -90, "left_hip_y": -90, "left_knee": -90}, 0.0),
    "sitting_on_heels": ({"right_knee": -160, "left_knee": -160, "right_hip_y": -30, "left_hip_y": -30}, 0.0),
    "arms_raised": (
        {"right_shoulder1": -85, "right_shoulder2": 20, "right_elbow": -90,
         "left_shoulder1": 85, "left_shoulder2": -20, "left_elbow": -90},
        0.0,
    ),
    "splits": ({"right_hip_y": -110, "left_hip_y": 20, "right_knee": -2, "left_knee": -2, "abdomen_y": 30}, 15.0),
    "sitting_legs_forward": ({"right_hip_y": -90, "left_hip_y": -90, "right_knee": -2, "left_knee": -2}, 0.0),
    "lying_arms_up": (
        {"right_shoulder1": -85, "right_shoulder2": 20, "right_elbow": -90,
         "left_shoulder1": 85, "left_shoulder2": -20, "left_elbow": -90},
        -90.0,
    ),
    "squat": ({"right_hip_y": -90, "left_hip_y": -90, "right_knee": -110, "left_knee": -110}, 20.0),
    "lunge": ({"right_hip_y": -110, "left_hip_y": 20, "right_knee": -60, "left_knee": -2, "abdomen_y": 30}, 15.0),
    "lotus": (
        {"right_hip_x": -25, "right_hip_z": -60, "right_hip_y": -40, "right_knee": -160,
         "left_hip_x": -25, "left_hip_z": -60, "left_hip_y": -40, "left_knee": -160},
        0.0,
    ),
    "hands_on_hips": (
        {"right_shoulder1": 45, "right_shoulder2": -65, "right_elbow": -30,
         "left_shoulder1": -45, "left_shoulder2": 65, "left_elbow": -30},
        0.0,
    ),
    "hands_on_chest": (
        {"right_shoulder1": 60, "right_shoulder2": -65, "right_elbow": 45,
         "left_shoulder1": -60, "left_shoulder2": 65, "left_elbow": 45},
        0.0,
    ),
    "hands_touching_in_front": (
        {"right_shoulder1": 60, "right_shoulder2": -30, "right_elbow": 5,
         "left_shoulder1": -60, "left_shoulder2": 30, "left_elbow": 5},
        0.0,
    ),
    "standing_on_one_leg": ({"left_hip_y": -90, "left_knee": -90}, 0.0),
    "flamingo": ({"left_knee": -90}, 0.0),
    "walking_step": ({"left_hip_y": -30, "left_knee": -60}, 0.0),
}
"""Hand-set poses: ``name → (joint angles in degrees, root pitch in degrees)`` (positive pitch
leans forward); the empty pose is gymnasium's standing pose. The success detectors are tested on
them and ``vlmreward collect`` sweeps towards them (so goal poses such as kneeling have positives).
Every angle is within its joint's range."""

ARMS_CROSSED_BEYOND_JOINT_LIMITS: tuple[dict[str, float], float] = (
    {"right_shoulder1": 80, "right_shoulder2": -30, "right_elbow": 0,
     "left_shoulder1": -80, "left_shoulder2": 30, "left_elbow": 0},
    0.0,
)
"""Arms crossed in front of the chest, each hand 8.6 cm past the midline: ``right_shoulder1`` at
80° and ``left_shoulder1`` at -80° are beyond their ranges (``[-85°, 60°]``, ``[-60°, 85°]``):
the model cannot cross its arms within them (:data:`vlmreward.envs.success.ARMS_CROSSED_MIN_OVERLAP`).
For the detector's test only; not in :data:`HUMANOID_POSES_SET_BY_HAND`."""


def set_humanoid_pose(model: Any, data: Any, joints: Mapping[str, float], pitch_deg: float = 0.0) -> None:
    """Put gymnasium's humanoid in a pose at rest with its lowest point on the floor.

    Sets ``data.qpos`` to the model's rest pose, the named hinge joints to ``joints`` (degrees),
    the root orientation to a pitch of ``pitch_deg`` degrees about ``y`` (positive leans forward),
    the root at ``x = y = 0``, velocities to zero, then lowers the body so that its lowest geom
    touches ``z = 0`` and runs ``mj_forward`` (positions and the tracking camera are current).

    Args:
        model, data: ``mujoco.MjModel`` / ``MjData`` of gymnasium's humanoid (``env.unwrapped``).
        joints: hinge joint name → angle in degrees (within the joint's range).
        pitch_deg: root pitch in degrees.

    Raises:
        InvalidParameterError: a joint name the model does not have.
    """
    import mujoco  # noqa: PLC0415

    data.qpos[:] = model.qpos0
    data.qvel[:] = 0
    for name, degrees in joints.items():
        j = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        if j < 0:
            raise InvalidParameterError(f"the humanoid model has no joint named {name!r}.")
        data.qpos[model.jnt_qposadr[j]] = math.radians(degrees)
    half = math.radians(pitch_deg) / 2
    data.qpos[0:2] = 0.0
    data.qpos[3:7] = [math.cos(half), 0.0, math.sin(half), 0.0]
    mujoco.mj_forward(model, data)
    lowest = np.inf
    for g in range(model.ngeom):
        if model.geom_bodyid[g] == 0:  # the floor (world body)
            continue
        z = data.geom_xpos[g, 2] - model.geom_size[g, 0]
        if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_CAPSULE:
            z -= abs(data.geom_xmat[g].reshape(3, 3)[2, 2]) * model.geom_size[g, 1]
        lowest = min(lowest, z)
    data.qpos[2] -= lowest
    mujoco.mj_forward(model, data)
