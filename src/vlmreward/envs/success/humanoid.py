"""The Humanoid's pose detectors (:mod:`vlmreward.envs.success`: the calibration of every threshold
on the model's own geometry); MuJoCo is imported only when a detector runs."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from vlmreward.errors import InvalidParameterError

if TYPE_CHECKING:  # pragma: no cover
    import mujoco

__all__ = [
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

HumanoidPoseDetector = Callable[["mujoco.MjModel", "mujoco.MjData"], bool]
"""A Humanoid pose detector: ``(model, data) -> bool``."""

# --------------------------------------------------------------------------------------------
# Humanoid
# --------------------------------------------------------------------------------------------

UPRIGHT_MAX_TILT: float = math.radians(30.0)
"""Largest angle (rad, 30°) between the torso's long axis (its body ``z`` axis) and the vertical
for the upright poses (standing, kneeling, arms raised, splits). It separates a person holding
the trunk up (hand-set standing, kneeling and splits poses: 0–15°) from one lying (90°), bent
over, falling or propped on a hand (≳ 30°)."""

STANDING_MIN_TORSO_HEIGHT: float = 1.1
"""Lowest torso height (m) for "standing". Standing straight with the feet on the floor puts the
torso at 1.29 m; kneeling upright at 0.93 m. 1.1 m (85 % of standing height) allows bent knees
but not kneeling or crouching. gymnasium's own "healthy" range starts at 1.0 m."""

KNEE_ON_FLOOR_MAX_HEIGHT: float = 0.12
"""Highest knee height (m; origin of the ``*_shin`` body, the knee) for "knee on the floor".
A knee resting on the floor is at 0.05 m (the shin capsule's radius is 0.049 m), 0.08 m when the
shin lies flat on its foot sphere (radius 0.075 m); standing it is at 0.42 m, in a deep squat
with the feet flat ≥ 0.14 m."""

KNEELING_MIN_PELVIS_ABOVE_KNEE: float = 0.15
"""Least height (m) of the pelvis above the lowest knee for "kneeling". Kneeling upright: 0.42 m;
sitting back on the heels: 0.36 m; sitting on the floor with the legs out in front (not
kneeling): 0.04 m."""

KNEELING_MIN_KNEE_FLEXION: float = math.radians(45.0)
"""Least flexion (rad, 45°) of the knee on the floor for "kneeling" (joint ``*_knee``, range
-160° to -2°, flexion = minus the angle). Kneeling upright bends it 90°, sitting on the heels
160°; a straight leg lying on the floor (sitting or lying down) bends it ≈ 2°."""

ARMS_RAISED_MIN_HAND_ABOVE_HEAD: float = 0.0
"""Least height (m) of each hand's centre above the head's centre for "arms raised". The arms
hang at 1.46 m beside a 1.59 m head in the initial pose; within the joint limits the hands reach
0.34 m above the head's centre (e.g. shoulders at ∓85°, ±20°, elbows at -90°). Hands level with
the head or higher need both upper arms raised."""

SPLITS_MIN_FEET_DISTANCE: float = 1.1
"""Least horizontal distance (m) between the feet's centres for "doing the splits". The hip to
foot-centre length is 0.75 m, so 1.1 m means the legs are spread by at least ≈ 95° (more than a
right angle); the hip joint limits allow at most 130° (front splits: one hip flexed 110°, the
other extended 20°), 1.38 m. Standing feet are 0.18 m apart, kneeling on one knee with the
other foot forward 0.77 m."""

SPLITS_MAX_PELVIS_HEIGHT: float = 0.6
"""Highest pelvis height (m) for "doing the splits" (lowered towards the floor): ≈ 0.6 m with
legs spread by 90°, 0.43 m at the joint limit; standing 0.87 m."""

SPLITS_MAX_KNEE_FLEXION: float = math.radians(30.0)
"""Largest flexion (rad, 30°) of either knee for "doing the splits": both legs are extended (a
lunge or a kneel with the feet far apart bends a knee 90° or more)."""

FOOT_ON_FLOOR_MAX_HEIGHT: float = 0.25
"""Highest height (m) of a foot sphere's centre (geoms ``*_foot``, radius 0.075 m) for "foot on
the floor": 0.075 m when resting, 0.25 m leaves room for the heel lifted or the foot on its side."""


LOTUS_MAX_PELVIS_HEIGHT: float = 0.35
"""Highest pelvis height (m) for "seated" in the lotus position. The hand-set lotus pose (thighs
turned out, knees on the floor, shins folded in) puts it at 0.26 m; sitting on the heels 0.41 m,
kneeling upright 0.50 m, standing 0.87 m."""

LOTUS_MIN_KNEE_SPREAD: float = 0.5
"""Least horizontal distance (m) between the knees for "knees facing outwards": 0.79 m in the
hand-set lotus pose, 0.18 m standing, sitting with the legs forward or on the heels."""

LOTUS_MIN_FEET_INSIDE_KNEES: float = 0.3
"""Least amount (m) by which the feet are closer together than the knees, horizontally, for
"feet facing inwards": 0.62 m in the hand-set lotus pose; legs spread straight (feet outside the
knees) give a negative amount."""

HANDS_ON_HIPS_MAX_DISTANCE: float = 0.2
"""Largest distance (m) from each hand's centre to the hip joint on its side (origin of the
``*_thigh`` body) for "hands on hips": 0.125 m in the hand-set pose; hands on the chest are
0.42 m away, hanging arms in the initial pose 0.57 m."""

ARMS_CROSSED_MIN_OVERLAP: float = 0.03
"""Least distance (m) each hand must be past the body's midline, on the other arm's side
(measured along the torso's left-right axis), for "arms crossed". Hands that only meet in front
of the chest are 1 cm short of the midline ("touching but not crossing is not valid", Table 2).
Within the model's joint limits the right hand cannot reach the left half of the body (a search
over the shoulder and elbow ranges in 5° steps gets it to 1.7 cm right of the midline), so no
reachable pose is "arms crossed": the paper's 0 % for this task may be the model's limit as much
as the reward's. The detector's positive test pose sets the shoulders beyond their limits
(:data:`~vlmreward.envs.humanoid_poses.ARMS_CROSSED_BEYOND_JOINT_LIMITS`)."""

ONE_LEG_MIN_FOOT_HEIGHT: float = 0.3
"""Least height (m) of the lifted foot's centre for "standing on one leg": 0.46 m with the thigh
raised and the knee bent 90°, 0.44 m with only the knee bent back; a walking step (hip 30°, knee
60°) lifts it to 0.18 m, a resting foot is at 0.075 m."""

CHEST_BAND = (-0.4, 0.1)
"""Heights (m) relative to the torso body's origin (at shoulder level, 1.29 m when standing) that
count as "in front of the chest" for crossed arms: from the lower waist to above the shoulders."""


def _require_mujoco() -> Any:
    import mujoco  # noqa: PLC0415 (optional dependency, imported only when a detector runs)

    return mujoco


def _id(model: Any, obj: str, name: str) -> int:
    mujoco = _require_mujoco()
    kind = {"body": mujoco.mjtObj.mjOBJ_BODY, "geom": mujoco.mjtObj.mjOBJ_GEOM, "joint": mujoco.mjtObj.mjOBJ_JOINT}[obj]
    i = mujoco.mj_name2id(model, kind, name)
    if i < 0:
        raise InvalidParameterError(
            f"the MuJoCo model has no {obj} named {name!r}; the Humanoid pose detectors need "
            f"gymnasium's Humanoid model (e.g. env.unwrapped.model of vlmreward/HumanoidTextured-v0)."
        )
    return int(i)


def _body_pos(model: Any, data: Any, name: str) -> np.ndarray:
    """World position (m) ``float64 [3]`` of a body's frame origin (``data.xpos``)."""
    return np.asarray(data.xpos[_id(model, "body", name)], dtype=np.float64)


def _geom_pos(model: Any, data: Any, name: str) -> np.ndarray:
    """World position (m) ``float64 [3]`` of a geom's centre (``data.geom_xpos``)."""
    return np.asarray(data.geom_xpos[_id(model, "geom", name)], dtype=np.float64)


def _joint_angle(model: Any, data: Any, name: str) -> float:
    """Angle (rad) of a hinge joint: its entry of ``data.qpos``."""
    return float(data.qpos[model.jnt_qposadr[_id(model, "joint", name)]])


def torso_tilt(model: "mujoco.MjModel", data: "mujoco.MjData") -> float:
    """Angle (rad, in ``[0, π]``) between the torso body's ``z`` axis and the world vertical."""
    rot = np.asarray(data.xmat[_id(model, "body", "torso")], dtype=np.float64).reshape(3, 3)
    return float(math.acos(float(np.clip(rot[2, 2], -1.0, 1.0))))


def _upright(model: Any, data: Any, max_tilt: float = UPRIGHT_MAX_TILT) -> bool:
    return torso_tilt(model, data) <= max_tilt


def humanoid_standing(model: "mujoco.MjModel", data: "mujoco.MjData") -> bool:
    """Standing: torso at least :data:`STANDING_MIN_TORSO_HEIGHT` (1.1 m) above the floor, trunk
    within :data:`UPRIGHT_MAX_TILT` (30°) of vertical and a foot on the floor (not airborne)."""
    torso_z = _body_pos(model, data, "torso")[2]
    feet_z = min(_geom_pos(model, data, "right_foot")[2], _geom_pos(model, data, "left_foot")[2])
    return bool(
        torso_z >= STANDING_MIN_TORSO_HEIGHT and _upright(model, data) and feet_z <= FOOT_ON_FLOOR_MAX_HEIGHT
    )


def humanoid_kneeling(model: "mujoco.MjModel", data: "mujoco.MjData") -> bool:
    """Kneeling: a knee on the floor (below :data:`KNEE_ON_FLOOR_MAX_HEIGHT`, 0.12 m) and bent by
    at least :data:`KNEELING_MIN_KNEE_FLEXION` (45°), the pelvis at least
    :data:`KNEELING_MIN_PELVIS_ABOVE_KNEE` (0.15 m) above that knee (not sitting on the floor),
    the trunk within :data:`UPRIGHT_MAX_TILT` (30°) of vertical and the torso below standing
    height. One knee down counts (a person on one knee is kneeling), as do both; sitting in the
    lotus position (:func:`humanoid_lotus`: knees spread, feet tucked in) does not."""
    pelvis_z = _body_pos(model, data, "pelvis")[2]
    torso_z = _body_pos(model, data, "torso")[2]
    if torso_z >= STANDING_MIN_TORSO_HEIGHT or not _upright(model, data) or humanoid_lotus(model, data):
        return False
    for side in ("right", "left"):
        knee_z = _body_pos(model, data, f"{side}_shin")[2]
        flexion = -_joint_angle(model, data, f"{side}_knee")
        if (
            knee_z <= KNEE_ON_FLOOR_MAX_HEIGHT
            and flexion >= KNEELING_MIN_KNEE_FLEXION
            and pelvis_z - knee_z >= KNEELING_MIN_PELVIS_ABOVE_KNEE
        ):
            return True
    return False


def humanoid_arms_raised(model: "mujoco.MjModel", data: "mujoco.MjData") -> bool:
    """Arms raised: both hands' centres at least :data:`ARMS_RAISED_MIN_HAND_ABOVE_HEAD` (0 m)
    above the head's centre, with the trunk within :data:`UPRIGHT_MAX_TILT` (30°) of vertical
    (hands "above the head" of a person lying down are not raised arms)."""
    head_z = _geom_pos(model, data, "head")[2]
    hands_z = min(_geom_pos(model, data, "right_hand")[2], _geom_pos(model, data, "left_hand")[2])
    return bool(hands_z - head_z >= ARMS_RAISED_MIN_HAND_ABOVE_HEAD and _upright(model, data))


def humanoid_splits(model: "mujoco.MjModel", data: "mujoco.MjData") -> bool:
    """Doing the splits: both feet on the floor (:data:`FOOT_ON_FLOOR_MAX_HEIGHT`), at least
    :data:`SPLITS_MIN_FEET_DISTANCE` (1.1 m) apart horizontally, both knees straight (bent by
    at most :data:`SPLITS_MAX_KNEE_FLEXION`, 30°), the pelvis lowered below
    :data:`SPLITS_MAX_PELVIS_HEIGHT` (0.6 m) and the trunk within :data:`UPRIGHT_MAX_TILT` (30°)
    of vertical. Front and side splits count alike (only the horizontal distance is used)."""
    right, left = _geom_pos(model, data, "right_foot"), _geom_pos(model, data, "left_foot")
    feet_apart = float(np.hypot(right[0] - left[0], right[1] - left[1]))
    feet_down = max(right[2], left[2]) <= FOOT_ON_FLOOR_MAX_HEIGHT
    knees_straight = all(
        -_joint_angle(model, data, f"{side}_knee") <= SPLITS_MAX_KNEE_FLEXION for side in ("right", "left")
    )
    pelvis_z = _body_pos(model, data, "pelvis")[2]
    return bool(
        feet_down
        and feet_apart >= SPLITS_MIN_FEET_DISTANCE
        and knees_straight
        and pelvis_z <= SPLITS_MAX_PELVIS_HEIGHT
        and _upright(model, data)
    )


def _horizontal_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.hypot(a[0] - b[0], a[1] - b[1]))


def humanoid_lotus(model: "mujoco.MjModel", data: "mujoco.MjData") -> bool:
    """Lotus position (Table 2: "seated; both knees on the floor facing outwards, feet facing
    inwards"): the pelvis below :data:`LOTUS_MAX_PELVIS_HEIGHT` (0.35 m), both knees on the floor
    (:data:`KNEE_ON_FLOOR_MAX_HEIGHT`, 0.12 m), the knees at least :data:`LOTUS_MIN_KNEE_SPREAD`
    (0.5 m) apart, the feet at least :data:`LOTUS_MIN_FEET_INSIDE_KNEES` (0.3 m) closer together
    than the knees, and the trunk within :data:`UPRIGHT_MAX_TILT` (30°) of vertical."""
    knees = [_body_pos(model, data, f"{side}_shin") for side in ("right", "left")]
    feet = [_geom_pos(model, data, f"{side}_foot") for side in ("right", "left")]
    knee_spread = _horizontal_distance(*knees)
    return bool(
        _body_pos(model, data, "pelvis")[2] <= LOTUS_MAX_PELVIS_HEIGHT
        and max(k[2] for k in knees) <= KNEE_ON_FLOOR_MAX_HEIGHT
        and knee_spread >= LOTUS_MIN_KNEE_SPREAD
        and knee_spread - _horizontal_distance(*feet) >= LOTUS_MIN_FEET_INSIDE_KNEES
        and _upright(model, data)
    )


def humanoid_hands_on_hips(model: "mujoco.MjModel", data: "mujoco.MjData") -> bool:
    """Hands on hips (Table 2: "standing, both hands on the base of the hips, not on the chest"):
    :func:`humanoid_standing`, and each hand's centre within :data:`HANDS_ON_HIPS_MAX_DISTANCE`
    (0.2 m) of the hip joint on its side."""
    near = all(
        np.linalg.norm(_geom_pos(model, data, f"{side}_hand") - _body_pos(model, data, f"{side}_thigh"))
        <= HANDS_ON_HIPS_MAX_DISTANCE
        for side in ("right", "left")
    )
    return bool(near and humanoid_standing(model, data))


def humanoid_arms_crossed(model: "mujoco.MjModel", data: "mujoco.MjData") -> bool:
    """Arms crossed (Table 2: "standing with the arms crossed; touching but not crossing is not
    valid"): :func:`humanoid_standing`, and in the torso's frame each hand at least
    :data:`ARMS_CROSSED_MIN_OVERLAP` (3 cm) past the midline on the other side, in front of the
    torso and at chest height (:data:`CHEST_BAND`). See :data:`ARMS_CROSSED_MIN_OVERLAP` on why no
    pose within the model's joint limits qualifies."""
    torso = _body_pos(model, data, "torso")
    rot = np.asarray(data.xmat[_id(model, "body", "torso")], dtype=np.float64).reshape(3, 3)
    right, left = (rot.T @ (_geom_pos(model, data, f"{side}_hand") - torso) for side in ("right", "left"))
    # torso frame: x forward, y to the body's left, z up; the right hand starts at y < 0
    crossed = right[1] >= ARMS_CROSSED_MIN_OVERLAP and left[1] <= -ARMS_CROSSED_MIN_OVERLAP
    in_front = right[0] > 0 and left[0] > 0
    at_chest = all(CHEST_BAND[0] <= hand[2] <= CHEST_BAND[1] for hand in (right, left))
    return bool(crossed and in_front and at_chest and humanoid_standing(model, data))


def humanoid_standing_on_one_leg(model: "mujoco.MjModel", data: "mujoco.MjData") -> bool:
    """Standing on one leg (Table 2: "standing, touching the floor with one leg only, not losing
    balance"): torso at least :data:`STANDING_MIN_TORSO_HEIGHT` (1.1 m) high and within
    :data:`UPRIGHT_MAX_TILT` (30°) of vertical, one foot on the floor
    (:data:`FOOT_ON_FLOOR_MAX_HEIGHT`, 0.25 m) and the other at least
    :data:`ONE_LEG_MIN_FOOT_HEIGHT` (0.3 m) high."""
    low, high = sorted(_geom_pos(model, data, f"{side}_foot")[2] for side in ("right", "left"))
    return bool(
        _body_pos(model, data, "torso")[2] >= STANDING_MIN_TORSO_HEIGHT
        and _upright(model, data)
        and low <= FOOT_ON_FLOOR_MAX_HEIGHT
        and high >= ONE_LEG_MIN_FOOT_HEIGHT
    )


HUMANOID_POSES: dict[str, HumanoidPoseDetector] = {
    "standing": humanoid_standing,
    "kneeling": humanoid_kneeling,
    "arms_raised": humanoid_arms_raised,
    "splits": humanoid_splits,
    "lotus": humanoid_lotus,
    "hands_on_hips": humanoid_hands_on_hips,
    "arms_crossed": humanoid_arms_crossed,
    "standing_on_one_leg": humanoid_standing_on_one_leg,
}
"""The eight Humanoid tasks of VLM-RM (Table 2's criteria) with a ground-truth detector, by name
(the ``task`` of ``vlmreward/HumanoidTextured-v0`` and ``vlmreward/VLMRM-Humanoid-v0``)."""
