"""Probe of the Meta-World tasks (:class:`~vlmreward.envs.metaworld.MetaWorldEnv`): the gripper, the
main object and the goal by name, Meta-World's success as the label, and its scripted expert.

State variables come from the 39-dim observation (Meta-World v3, ``SawyerXYZEnv._get_obs``):
hand position (0–2), gripper opening (3), first object position (4–6), goal position (36–38; zeros
when the goal is hidden). The expert is the task's scripted policy that Meta-World ships
(``metaworld.policies.ENV_POLICY_MAP``), which ``collect --policy expert`` uses.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from vlmreward.envs.probes import EnvProbe, register_probe

__all__ = ["MetaWorldProbe"]

_STATE = {
    "hand_x": (0, "m"), "hand_y": (1, "m"), "hand_z": (2, "m"), "gripper_opening": (3, ""),
    "object_x": (4, "m"), "object_y": (5, "m"), "object_z": (6, "m"),
    "goal_x": (36, "m"), "goal_y": (37, "m"), "goal_z": (38, "m"),
}


@register_probe("vlmreward.envs.metaworld:MetaWorldEnv")
class MetaWorldProbe(EnvProbe):
    """Meta-World v3 tasks: gripper, object and goal positions; ``is_success`` from Meta-World."""

    family = "metaworld"
    landscape_x = "object_y"
    episode_reward_definition = "Meta-World's v2 reward of the task for the step that reached the frame (0-10; 10 at success)"

    def __init__(self, env) -> None:  # noqa: ANN001
        super().__init__(env)
        self.last_obs: np.ndarray | None = None

    def state_variables(self):
        return {
            name: {"type": "float", "unit": unit, "description": f"observation entry {i} (Meta-World v3): {name.replace('_', ' ')}"}
            for name, (i, unit) in _STATE.items()
        }

    def labels(self):
        return {
            "is_success": {
                "definition": "Meta-World's own success of the task at this step (info['success'], e.g. the drawer pulled out far enough)",
                "detector": "metaworld evaluate_state", "thresholds": {},
            }
        }

    def observe(self, obs):
        self.last_obs = np.asarray(obs, dtype=np.float64)

    def state_row(self):
        obs = self.last_obs
        return {name: float(obs[i]) if obs is not None else float("nan") for name, (i, _) in _STATE.items()}

    def label_row(self, info):
        return {"is_success": bool(info.get("is_success", False))}

    def expert_policy(self) -> Callable[[Any], Any]:
        """Meta-World's scripted expert of the task (``obs → action``)."""
        from metaworld.policies import ENV_POLICY_MAP

        policy = ENV_POLICY_MAP[f"{self.env.unwrapped.task}-v3"]()
        return lambda obs: np.clip(policy.get_action(np.asarray(obs, dtype=np.float64)), -1.0, 1.0).astype(np.float32)

    def extra_metadata(self):
        u = self.env.unwrapped
        return {"metaworld": {"task": u.task, "camera": u.camera, "goal_observable": u.goal_observable}}
