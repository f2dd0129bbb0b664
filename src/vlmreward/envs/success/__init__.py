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

from vlmreward.envs.success import classic_control, humanoid, miniworld
from vlmreward.envs.success.classic_control import *  # noqa: F403 (each module's __all__)
from vlmreward.envs.success.humanoid import *  # noqa: F403 (each module's __all__)
from vlmreward.envs.success.miniworld import *  # noqa: F403 (each module's __all__)

__all__ = [*classic_control.__all__, *humanoid.__all__, *miniworld.__all__]
