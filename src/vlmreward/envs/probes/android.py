"""Probe of ``vlmreward/AndroidOpenApp-v0`` (:class:`~vlmreward.envs.android.AndroidOpenAppEnv`).

Its rows hold the frame's ``goal``, ``goal_key`` and ``goal_type`` (and its metadata the app
family), so that ``evaluate`` scores each frame against its goal with the family's other apps as
negatives, and the foreground app (by display name, ``""`` on the home screen) with its
``package/activity``. Its sweep runs goal after goal of the goal set, three states each, set
through adb as on a real device (``am start``, ``HOME``): the goal app open (a success), another
app of the family open, the home screen. Its expert (``collect --policy expert``, the fake
device only) taps the goal app's icon, or the home button when another app is open.
"""

from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym

from vlmreward.envs.probes import EnvProbe, goal_env_metadata, register_probe

__all__ = ["AndroidOpenAppProbe"]

_SWEEP_STATES = ("goal_app", "other_app", "home_screen")


@register_probe("vlmreward.envs.android:AndroidOpenAppEnv")
class AndroidOpenAppProbe(EnvProbe):
    """``vlmreward/AndroidOpenApp-v0``: the frame's goal, the foreground app, success of the goal."""

    family = "android_open_app"
    landscape_x = None
    episode_reward_definition = "1 on a step whose foreground app is the episode's goal app, else 0 (AndroidOpenApp's ground truth)"
    sweep_reward_definition = "1 if the state set has the frame's goal app in the foreground, else 0"
    sweep_description = (
        "goal after goal of the goal set, three states each set by adb: the goal app open, another app of the family open, "
        "the home screen"
    )
    sweep_landscape = ("state_index", None)

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.state_kind = "episode"
        self.state_index = 0

    def state_variables(self):
        text = {
            "goal": "the goal sentence of the frame's episode (or sweep line)",
            "goal_key": "the goal's task, independent of its phrasing (open:<app>)",
            "goal_type": "the goal type (open)",
            "foreground_app": "display name of the app in the foreground; empty on the home screen or another app",
            "foreground": "the foreground activity, package/activity, as adb reports it",
            "state_kind": "what a scripted sweep set (goal_app, other_app, home_screen); 'episode' for episodes",
        }
        out = {k: {"type": "str", "unit": "", "description": v} for k, v in text.items()}
        out["state_index"] = {"type": "int", "unit": "", "description": "position of the state in its sweep line (0 goal app, 1 other app, 2 home)"}
        return out

    def labels(self):
        return {
            "is_success": {
                "definition": "the foreground activity (android_env's get_current_activity adb request) belongs to the "
                "goal app's package",
                "detector": "vlmreward.envs.android.AndroidOpenAppEnv.goal_success",
                "thresholds": {},
            }
        }

    def state_row(self):
        u = self.env.unwrapped
        app = u.foreground_app()
        return {
            "goal": u.goal.sentence, "goal_key": u.goal.key, "goal_type": u.goal.type, "foreground_app": "" if app is None else app.name,
            "foreground": u.foreground, "state_kind": self.state_kind, "state_index": self.state_index,
        }

    def label_row(self, info):
        return {"is_success": bool(self.env.unwrapped.goal_success())}

    def sweep(self, n):
        u = self.env.unwrapped
        rng = u.np_random
        goals = [u.goal_list[int(i)] for i in rng.permutation(len(u.goal_list))]
        count, line = 0, 0
        while count < n:
            goal = goals[line % len(goals)]
            u.reset(seed=int(rng.integers(2**31)), options={"goal": goal})
            others = [o.name for o in u.family.objects if o != goal.object]
            for index, kind in enumerate(_SWEEP_STATES[: n - count]):
                app = {"goal_app": goal.object.name, "other_app": others[int(rng.integers(len(others)))], "home_screen": None}[kind]
                u.start_app(app)
                self.state_kind, self.state_index = kind, index
                count += 1
                yield line, index, {}
            line += 1
        self.state_kind, self.state_index = "episode", 0

    def sweep_reward(self):
        return float(self.env.unwrapped.goal_success())

    def expert_policy(self) -> Callable[[Any], Any]:
        """Tap the goal app's icon on the home screen; from any other app, tap home (the fake device's layout)."""
        u = self.env.unwrapped

        def act(obs: Any) -> Any:
            app = u.foreground_app()
            return u.tap_action(u.goal.object.name if app is None or app == u.goal.object else None)

        return act

    def extra_metadata(self):
        u = self.env.unwrapped
        return {**goal_env_metadata(self.env), "android": {"simulator": u.simulator_kind, "action_grid": u.action_grid}}
