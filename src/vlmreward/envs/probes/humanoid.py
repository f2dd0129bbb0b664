"""Probe of the MuJoCo Humanoid (gymnasium's ``HumanoidEnv`` v4 and v5, and
``vlmreward/HumanoidTextured-v0`` and ``vlmreward/VLMRM-Humanoid-v0`` built on them).

Its sweep sets hand-set poses (kneeling on both knees and on one, sitting on the heels, arms
raised, the splits, the lotus position, hands on hips, standing on one leg two ways, and
look-alikes that are not goals: sitting with the legs forward, lying with the arms up,
squatting, a lunge, hands on the chest, hands touching in front, a walking step;
:data:`~vlmreward.envs.humanoid_poses.HUMANOID_POSES_SET_BY_HAND`), each approached from
standing in evenly spaced fractions ``t ∈ [0, 1]`` of its joint angles, the body lowered onto
the floor (``data.qpos``, then ``mj_forward``). The poses are those the success detectors are
tested on (``tests/test_envs_paper.py``). Its labels are every pose's detector
(:mod:`vlmreward.envs.success`) and ``is_success``, the detector of the environment's task.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np

from vlmreward.envs import success
from vlmreward.envs.humanoid_poses import HUMANOID_POSES_SET_BY_HAND, set_humanoid_pose
from vlmreward.envs.probes import EnvProbe, first_line_of_doc, register_probe
from vlmreward.envs.registration import HUMANOID_ID

__all__ = ["HumanoidProbe"]

_HUMANOID_THRESHOLDS: dict[str, tuple[str, ...]] = {
    "standing": ("STANDING_MIN_TORSO_HEIGHT", "UPRIGHT_MAX_TILT", "FOOT_ON_FLOOR_MAX_HEIGHT"),
    "kneeling": (
        "KNEE_ON_FLOOR_MAX_HEIGHT", "KNEELING_MIN_KNEE_FLEXION", "KNEELING_MIN_PELVIS_ABOVE_KNEE",
        "UPRIGHT_MAX_TILT", "STANDING_MIN_TORSO_HEIGHT",
    ),
    "arms_raised": ("ARMS_RAISED_MIN_HAND_ABOVE_HEAD", "UPRIGHT_MAX_TILT"),
    "splits": (
        "SPLITS_MIN_FEET_DISTANCE", "SPLITS_MAX_PELVIS_HEIGHT", "SPLITS_MAX_KNEE_FLEXION",
        "FOOT_ON_FLOOR_MAX_HEIGHT", "UPRIGHT_MAX_TILT",
    ),
}


@register_probe("gymnasium.envs.mujoco.humanoid_v4:HumanoidEnv", "gymnasium.envs.mujoco.humanoid_v5:HumanoidEnv")
class HumanoidProbe(EnvProbe):
    """Humanoid (gymnasium's v4 and v5 and every subclass): body heights, every pose's success label, a pose sweep."""

    family = "humanoid"
    landscape_x = "torso_height"
    episode_reward_definition = (
        "Humanoid-v5's step reward (locomotion: healthy bonus + forward velocity - control and contact costs), "
        "unrelated to the pose task; use the success labels as the pose task's ground truth"
    )
    sweep_landscape = ("pose_fraction", "pose")
    env_defaults = {HUMANOID_ID: {"task": "kneeling"}}  # its task is None by default, and a dataset needs one

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        import mujoco  # noqa: PLC0415 - only Humanoid needs it

        self.mujoco = mujoco
        self.task = getattr(env.unwrapped, "task", None) or "kneeling"
        self._pose_name = ""
        self._fraction = math.nan

    @property
    def sweep_reward_definition(self) -> str:
        return f"1 if the pose task {self.task!r} is achieved (label success_{self.task}) else 0: the sparse task reward"

    @property
    def sweep_description(self) -> str:
        return (
            f"hand-set poses {sorted(HUMANOID_POSES_SET_BY_HAND)}, each approached from standing in evenly spaced "
            "fractions pose_fraction in [0, 1] of its joint angles and root pitch, velocities 0, lowest point on "
            "the floor, set in data.qpos (one 'episode' per pose)"
        )

    def state_variables(self):
        return {
            "pose": {"type": "str", "unit": "", "description": "target pose of the sweep (empty in episodes)"},
            "pose_fraction": {
                "type": "float", "unit": "",
                "description": "fraction of the target pose's joint angles (0: standing, 1: the pose; NaN in episodes)",
            },
            "torso_height": {"type": "float", "unit": "m", "description": "height of the torso body above the floor"},
            "pelvis_height": {"type": "float", "unit": "m", "description": "height of the pelvis body above the floor"},
            "torso_tilt": {"type": "float", "unit": "rad", "description": "angle between the torso's axis and vertical"},
            "lowest_knee_height": {"type": "float", "unit": "m", "description": "height of the lower knee (shin origin)"},
        }

    def labels(self):
        labels = {
            "is_success": {
                "definition": f"the task pose {self.task!r}: the same as success_{self.task}",
                "detector": f"vlmreward.envs.success.humanoid_{self.task}",
                "thresholds": {k: getattr(success, k) for k in _HUMANOID_THRESHOLDS[self.task]},
            }
        }
        for name, fn in success.HUMANOID_POSES.items():
            labels[f"success_{name}"] = {
                "definition": first_line_of_doc(fn),
                "detector": f"vlmreward.envs.success.{fn.__name__}",
                "thresholds": {k: getattr(success, k) for k in _HUMANOID_THRESHOLDS.get(name, ())},
            }
        return labels

    def _body_z(self, name: str) -> float:
        u = self.env.unwrapped
        return float(u.data.xpos[self.mujoco.mj_name2id(u.model, self.mujoco.mjtObj.mjOBJ_BODY, name)][2])

    def state_row(self):
        u = self.env.unwrapped
        return {
            "pose": self._pose_name,
            "pose_fraction": self._fraction,
            "torso_height": self._body_z("torso"),
            "pelvis_height": self._body_z("pelvis"),
            "torso_tilt": success.torso_tilt(u.model, u.data),
            "lowest_knee_height": min(self._body_z("right_shin"), self._body_z("left_shin")),
        }

    def label_row(self, info):
        u = self.env.unwrapped
        row = {f"success_{name}": bool(fn(u.model, u.data)) for name, fn in success.HUMANOID_POSES.items()}
        row["is_success"] = row[f"success_{self.task}"]
        return row

    def sweep(self, n):
        u = self.env.unwrapped
        names = list(HUMANOID_POSES_SET_BY_HAND)
        counts = [len(chunk) for chunk in np.array_split(np.arange(n), len(names))]
        for line, (name, count) in enumerate(zip(names, counts)):
            if count == 0:
                continue
            joints, pitch = HUMANOID_POSES_SET_BY_HAND[name]
            for i, t in enumerate(np.linspace(0.0, 1.0, count) if count > 1 else [1.0]):
                set_humanoid_pose(u.model, u.data, {k: float(t) * v for k, v in joints.items()}, float(t) * pitch)
                self._pose_name, self._fraction = name, float(t)
                yield line, i, {}
        self._pose_name, self._fraction = "", math.nan

    def sweep_reward(self):
        u = self.env.unwrapped
        return float(success.HUMANOID_POSES[self.task](u.model, u.data))

    def extra_metadata(self):
        return {"task": self.task}
