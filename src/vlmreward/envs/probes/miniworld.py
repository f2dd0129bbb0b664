"""Probe of ``vlmreward/MiniWorldGoals-v0`` (:class:`~vlmreward.envs.miniworld_goals.MiniWorldGoalsEnv`).

Its rows hold the frame's ``goal``, ``goal_key`` and ``goal_type`` (and its metadata the goal
family), so that ``evaluate`` can score each frame against its goal and report AP per goal type.
Its sweep runs goal after goal of the goal set, a room each, with hand-set states about half of
which achieve the goal (Find: the agent at or away from the object, facing it or not; Lift:
carrying the object, another, or none; Place: the object next to the target, away from it, or
carried beside it; :func:`sweep_states`).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Iterator

import gymnasium as gym
import numpy as np

from vlmreward.envs.probes import EnvProbe, goal_env_metadata, register_probe
from vlmreward.envs.success import FIND_MAX_BEARING, near_distance

__all__ = ["MiniWorldGoalsProbe", "sweep_states"]


@register_probe("vlmreward.envs.miniworld_goals:MiniWorldGoalsEnv")
class MiniWorldGoalsProbe(EnvProbe):
    """``vlmreward/MiniWorldGoals-v0``: the frame's goal, the agent and goal object, success of the goal."""

    family = "miniworld_goals"
    landscape_x = "object_distance"
    episode_reward_definition = "1 on a step whose state achieves the episode's goal, else 0 (MiniWorldGoals' ground truth)"
    sweep_reward_definition = "1 if the state set achieves the frame's goal, else 0"
    sweep_description = (
        "goal after goal of the goal set (types interleaved), a fresh room each, with hand-set states about half of "
        "which achieve the goal (vlmreward.envs.probes.miniworld.sweep_states)"
    )
    sweep_landscape = ("object_distance", "goal_type")

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.state_kind = "episode"

    def state_variables(self):
        text = {
            "goal": "the goal sentence of the frame's episode (or sweep line)",
            "goal_key": "the goal's task, independent of its phrasing (type:object[>target])",
            "goal_type": "the goal type (find, lift, place)",
            "carrying": "the object the agent carries, empty if none",
            "state_kind": "what a scripted sweep set (at_object, carrying_other, next_to_target, ...); 'episode' for episodes",
        }
        numbers = {
            "agent_x": ("m", "agent position x"),
            "agent_z": ("m", "agent position z"),
            "agent_dir": ("rad", "agent heading (MiniWorld's dir)"),
            "object_distance": ("m", "distance from the agent to the goal object (centres)"),
            "object_bearing": ("rad", "angle from the agent's heading to the goal object, positive to the left"),
            "target_distance": ("m", "distance from the goal object to the target object (place goals; else nan)"),
        }
        out = {k: {"type": "str", "unit": "", "description": v} for k, v in text.items()}
        out.update({k: {"type": "float", "unit": u, "description": d} for k, (u, d) in numbers.items()})
        return out

    def labels(self):
        return {
            "is_success": {
                "definition": "the frame's goal is achieved: find = the goal object on the floor, nearer than MiniWorld's "
                "near threshold (r_agent + r_object + 1.1 max forward step) and within FIND_MAX_BEARING of the heading; "
                "lift = the agent carries it; place = not carried and within near(object, target) of the target",
                "detector": "vlmreward.envs.success.goal_success",
                "thresholds": {"FIND_MAX_BEARING": FIND_MAX_BEARING},
            }
        }

    def state_row(self):
        u = self.env.unwrapped
        state = u.goal_state()
        carried = u.agent.carrying
        names = {id(ent): obj.name for obj, ent in u.objects.items()}
        return {
            "goal": u.goal.sentence, "goal_key": u.goal.key, "goal_type": u.goal.type,
            "carrying": "" if carried is None else names.get(id(carried), "?"), "state_kind": self.state_kind,
            "agent_x": float(u.agent.pos[0]), "agent_z": float(u.agent.pos[2]), "agent_dir": float(u.agent.dir),
            "object_distance": state.object_distance, "object_bearing": state.object_bearing,
            "target_distance": state.target_distance,
        }

    def label_row(self, info):
        return {"is_success": bool(self.env.unwrapped.goal_state().success)}

    def sweep(self, n):
        u = self.env.unwrapped
        seed = int(u.np_random.integers(2**31))
        for line, index, extra in sweep_states(u, n, seed=seed):
            self.state_kind = extra.get("state_kind", "")
            yield line, index, {}
        self.state_kind = "episode"

    def sweep_reward(self):
        return float(self.env.unwrapped.goal_state().success)

    def extra_metadata(self):
        return goal_env_metadata(self.env)


# ---------------------------------------------------------------------------------------------
# the scripted sweep


def sweep_states(env: Any, n: int, seed: int = 0) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """Set ``n`` labelled states of a :class:`~vlmreward.envs.miniworld_goals.MiniWorldGoalsEnv`
    (``env.unwrapped``), goal after goal, about half of them successes.

    For each goal of the goal set in turn (types interleaved), a fresh room (``reset`` with
    that goal), then states set by hand (the environment's ``set_agent``, ``set_object``,
    ``set_carrying``): Find: the agent at distances from 0.6 to 3 times the ``near``
    threshold, facing the object or turned away; Lift: carrying the object, standing at it
    without carrying it, or carrying another object; Place: the object set down next to the
    target, far from it, or carried beside it. Yields ``(line, index, {"state_kind": ...})``
    after each state (line = the goal's number).
    """
    rng = np.random.default_rng(seed)
    by_type = [[v[int(i)] for i in rng.permutation(len(v))] for v in env._by_type.values()]
    goals = [g for group in itertools.zip_longest(*by_type) for g in group if g is not None]
    per_goal = max(4, min(12, n // max(1, len(goals)) or 4))
    count, line = 0, 0
    while count < n:
        goal = goals[line % len(goals)]
        env.reset(seed=int(rng.integers(2**31)), options={"goal": goal})
        for index in range(min(per_goal, n - count)):
            kind = _set_sweep_state(env, goal, index, rng)
            count += 1
            yield line, index, {"state_kind": kind}
        line += 1

def _set_sweep_state(env: Any, goal: Any, index: int, rng: np.random.Generator) -> str:
    obj = env._objects[goal.object]
    env.set_carrying(None)
    threshold = near_distance(env, env.agent, obj)
    if goal.type == "find" or (goal.type == "lift" and index % 3 == 1):
        positive = index % 2 == 0
        closest = env.agent.radius + obj.radius + 0.01  # MiniWorld keeps bodies from overlapping
        close = rng.uniform(closest, max(closest, 0.97 * threshold))
        distance = close if positive or rng.random() < 0.4 else threshold * rng.uniform(1.2, 3.0)
        pos = env._place_near(env.agent, obj.pos, distance, rng, ignore=[obj])
        if pos is None:
            return "unchanged"
        towards = math.atan2(-(obj.pos[2] - pos[2]), obj.pos[0] - pos[0])
        facing = positive or rng.random() < 0.5
        direction = towards + (rng.uniform(-0.3, 0.3) if facing else rng.choice([-1, 1]) * rng.uniform(0.9, math.pi))
        env.set_agent((pos[0], pos[2]), direction)
        return "at_object" if distance < threshold and facing else ("facing_away" if distance < threshold else "far")
    if goal.type == "lift":
        if index % 3 == 0:
            env.set_carrying(goal.object)
            return "carrying_object"
        others = [o for o in env._objects if o != goal.object]
        env.set_carrying(others[int(rng.integers(len(others)))])
        return "carrying_other"
    target = env._objects[goal.target]
    gap = near_distance(env, obj, target)
    if index % 3 == 0:
        pos = env._place_near(obj, target.pos, rng.uniform(obj.radius + target.radius + 0.02, gap * 0.95), rng)
        kind = "next_to_target"
    elif index % 3 == 1:
        pos = env._place_near(obj, target.pos, rng.uniform(gap * 1.3, gap * 3.0), rng)
        kind = "away_from_target"
    else:
        agent_pos = env._place_near(env.agent, target.pos, threshold * rng.uniform(1.2, 1.6), rng, ignore=[obj])
        if agent_pos is not None:
            env.set_agent((agent_pos[0], agent_pos[2]), _heading(agent_pos, target.pos, rng))
            env.set_carrying(goal.object)
        return "carried_at_target"
    if pos is not None:
        env.set_object(goal.object, (pos[0], pos[2]))
    middle = (obj.pos + target.pos) / 2  # look at the pair from a step back, so the frame shows it
    agent_pos = env._place_near(env.agent, middle, rng.uniform(1.6, 2.4), rng)
    if agent_pos is not None:
        env.set_agent((agent_pos[0], agent_pos[2]), _heading(agent_pos, middle, rng))
    return kind

def _heading(pos: np.ndarray, towards: np.ndarray, rng: np.random.Generator, jitter: float = 0.2) -> float:
    return math.atan2(-(towards[2] - pos[2]), towards[0] - pos[0]) + rng.uniform(-jitter, jitter)
