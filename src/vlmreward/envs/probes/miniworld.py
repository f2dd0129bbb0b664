"""Probe of ``vlmreward/MiniWorldGoals-v0`` (:class:`~vlmreward.envs.miniworld_goals.MiniWorldGoalsEnv`).

Its rows hold the frame's ``goal``, ``goal_key`` and ``goal_type`` (and its metadata the goal
family), so that ``evaluate`` can score each frame against its goal and report AP per goal type.
Its sweep runs goal after goal of the goal set, a room each, with hand-set states about half of
which achieve the goal (Find: the agent at or away from the object, facing it or not; Lift:
carrying the object, another, or none; Place: the object next to the target, away from it, or
carried beside it; :meth:`MiniWorldGoalsEnv.sweep_states`).
"""

from __future__ import annotations

import gymnasium as gym

from vlmreward.envs.probes import EnvProbe, goal_env_metadata, register_probe

__all__ = ["MiniWorldGoalsProbe"]


@register_probe("vlmreward.envs.miniworld_goals:MiniWorldGoalsEnv")
class MiniWorldGoalsProbe(EnvProbe):
    """``vlmreward/MiniWorldGoals-v0``: the frame's goal, the agent and goal object, success of the goal."""

    family = "miniworld_goals"
    landscape_x = "object_distance"
    episode_reward_definition = "1 on a step whose state achieves the episode's goal, else 0 (MiniWorldGoals' ground truth)"
    sweep_reward_definition = "1 if the state set achieves the frame's goal, else 0"
    sweep_description = (
        "goal after goal of the goal set (types interleaved), a fresh room each, with hand-set states about half of "
        "which achieve the goal (MiniWorldGoalsEnv.sweep_states)"
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
        from vlmreward.envs import miniworld_goals as mg

        return {
            "is_success": {
                "definition": "the frame's goal is achieved: find = the goal object on the floor, nearer than MiniWorld's "
                "near threshold (r_agent + r_object + 1.1 max forward step) and within FIND_MAX_BEARING of the heading; "
                "lift = the agent carries it; place = not carried and within near(object, target) of the target",
                "detector": "vlmreward.envs.miniworld_goals.goal_success",
                "thresholds": {"FIND_MAX_BEARING": mg.FIND_MAX_BEARING},
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
        for line, index, extra in u.sweep_states(n, seed=seed):
            self.state_kind = extra.get("state_kind", "")
            yield line, index, {}
        self.state_kind = "episode"

    def sweep_reward(self):
        return float(self.env.unwrapped.goal_state().success)

    def extra_metadata(self):
        return goal_env_metadata(self.env)
