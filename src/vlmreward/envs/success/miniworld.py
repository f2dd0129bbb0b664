"""MiniWorldGoals' ground-truth success (:mod:`vlmreward.envs.success`): Find, Lift and Place, read
from a :class:`~vlmreward.envs.miniworld_goals.MiniWorldGoalsEnv`'s agent and entities (duck-typed;
MiniWorld is not imported here)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vlmreward.errors import InvalidParameterError

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
]

FIND_MAX_BEARING: float = math.radians(30.0)
"""Largest angle (rad, 30°) between the agent's heading and the direction to the goal object for
Find: the object's centre is in the central half of the 60° view, in front of the agent."""

MINIWORLD_GOAL_TYPES: tuple[str, ...] = ("find", "lift", "place")
"""MiniWorldGoals' goal types with a ground-truth detector."""

# ---------------------------------------------------------------------------------------------
# MiniWorldGoals (vlmreward.envs.miniworld_goals): geometry and success detectors


def bearing(agent_pos: np.ndarray, agent_dir: float, pos: np.ndarray) -> float:
    """Angle (rad, in ``(-π, π]``) from the agent's heading to ``pos``, positive to the agent's left.

    MiniWorld's heading ``dir`` points along ``(cos dir, 0, -sin dir)`` in ``(x, y, z)``.
    """
    dx, dz = float(pos[0] - agent_pos[0]), float(pos[2] - agent_pos[2])
    angle = math.atan2(-dz, dx) - float(agent_dir)
    return float(math.atan2(math.sin(angle), math.cos(angle)))


def floor_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Distance (m) of two MiniWorld positions ``(x, y, z)`` on the floor plane ``(x, z)``."""
    return float(math.hypot(float(a[0] - b[0]), float(a[2] - b[2])))


def near_distance(env: Any, a: Any, b: Any) -> float:
    """MiniWorld's ``near`` threshold for two entities: ``r_a + r_b + 1.1 · max forward step`` (m)."""
    return float(a.radius + b.radius + 1.1 * env.max_forward_step)


def find_success(env: Any, obj: Any) -> bool:
    """Find: ``obj`` on the floor (not carried), nearer than :func:`near_distance` to the agent and
    within :data:`FIND_MAX_BEARING` of the agent's heading."""
    agent = env.agent
    if agent.carrying is obj:
        return False
    return bool(
        floor_distance(agent.pos, obj.pos) < near_distance(env, agent, obj)
        and abs(bearing(agent.pos, agent.dir, obj.pos)) <= FIND_MAX_BEARING
    )


def lift_success(env: Any, obj: Any) -> bool:
    """Lift: the agent carries ``obj``."""
    return env.agent.carrying is obj


def place_success(env: Any, obj: Any, target: Any) -> bool:
    """Place: ``obj`` not carried and within MiniWorld's ``near`` of ``target`` (PutNext's test)."""
    return env.agent.carrying is not obj and floor_distance(obj.pos, target.pos) < near_distance(env, obj, target)


def goal_success(env: Any, goal: Any = None) -> bool:
    """Ground-truth success of ``goal`` (default: the current goal) in ``env``'s current state.

    Raises:
        InvalidParameterError: a goal type without a detector, or a goal whose objects are not in the room.
    """
    goal = env.goal if goal is None else goal
    obj = env.entity_of(goal.object)
    if goal.type == "find":
        return find_success(env, obj)
    if goal.type == "lift":
        return lift_success(env, obj)
    if goal.type == "place":
        return place_success(env, obj, env.entity_of(goal.target))
    raise InvalidParameterError(f"goal type {goal.type!r} has no success detector; use one of {', '.join(MINIWORLD_GOAL_TYPES)}.")
