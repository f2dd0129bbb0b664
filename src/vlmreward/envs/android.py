"""Open-app goals on Android (Baumli et al.'s AndroidEnv domain) through DeepMind's ``android_env``.

``gymnasium.make("vlmreward/AndroidOpenApp-v0", render_mode="rgb_array")`` builds
:class:`AndroidOpenAppEnv`: one goal per episode from an app family
(``configs/goals/android_apps.yaml``: "Screenshot of Calculator on Android", "Open Clock", ...),
on the device that ``simulator`` names:

* ``"fake"``: android_env's fake simulator with a drawn home screen
  (:class:`~vlmreward.envs.android_device.LauncherSimulator`): runs anywhere, a step in
  milliseconds (a reset takes 0.5 s: android_env waits that long after each reset step);
* ``"emulator"``: the Android emulator (an AVD of the Android SDK; needs KVM), configured by
  ``emulator=`` (:class:`EmulatorSettings`, checked before anything starts, with one line per
  missing piece: no SDK, no ``adb``, no emulator binary, no ``/dev/kvm``, an unknown AVD).

**What is android_env's and what is ours.** android_env's own components build the environment
(``TaskManager``, ``DeviceSettings``, ``Coordinator``, ``AndroidEnv``, composed as
``android_env.loader.load`` does; the emulator is its ``EmulatorSimulator``), its task proto
resets each episode (``reset_steps``: press ``HOME``; with ``stop_apps_on_reset`` first
``force_stop`` every app of the family), and its dm_env wrappers shape actions and observations: ``TapActionWrapper``
(``touch_only``: each agent action is a touch held for ``tap_steps`` steps, then a lift),
``DiscreteActionWrapper`` (a tap grid, without android_env's default 0.1-cell noise so that
actions are deterministic) and ``ImageRescaleWrapper`` (the policy's pixels). Ours: the
gymnasium adapter (android_env's ``GymInterfaceWrapper`` targets the old ``gym`` package), goal
sampling, success detection and the drawn fake device.

**Actions.** ``action_grid=(rows, cols)`` (default ``(6, 4)``): ``Discrete(rows · cols)``, a
tap at the centre of a grid cell, row-major from the top left. ``action_grid=None``:
``Box(0, 1, (2,), float32)``, a tap at ``(x, y)`` as fractions of the screen's width and height.

**Observations.** The screenshot rescaled to ``uint8 [obs_height, obs_width, 3]`` (default
64 × 64). Wrap with :class:`~vlmreward.envs.goal_conditioning.GoalObservation` for the goal's
text embedding (training configs do).

**Frames.** ``render()`` returns the latest screenshot at the device's resolution (``uint8
[H, W, 3]``; ``render_size=(H, W)`` resizes it): what the VLM scores.

**Success** (``info["is_success"]``): the foreground activity, read after every step through
android_env's ``AdbRequest.get_current_activity`` (``am stack list`` on the device), belongs
to the goal app's package. The environment's reward is 1 on a step whose foreground app is the
goal app, else 0 (the ground truth); with ``terminate_on_success`` the episode also ends there.
``info`` holds ``"goal"``, ``"goal_type"``, ``"is_success"``, ``"foreground"`` (``package/activity``)
and ``"goal_state"`` (so the goal-state oracle reward of :mod:`vlmreward.envs.goal_conditioning` works: 1 on success, else 0).

Needs the ``android`` extra and ``pip install --no-deps "android-env==1.3.0"``
(``docs/android.md``: android-env requires ``pygame``, which would overwrite the ``pygame-ce``
that gymnasium's rendering uses; android_env itself never imports it).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from vlmreward.envs.android_emulator import AndroidSetupError, EmulatorSettings, parse_emulator_settings, resolve_emulator_settings
from vlmreward.envs.goal_conditioning import GoalState
from vlmreward.errors import InvalidParameterError, VLMRewardError
from vlmreward.goals import Goal, GoalFamily, GoalObject, as_goal_family, select_goals

__all__ = [
    "AndroidOpenAppEnv",
    "AndroidSetupError",
    "EmulatorSettings",
    "parse_emulator_settings",
    "resolve_emulator_settings",
    "ANDROID_APPS_FAMILY",
    "SIMULATORS",
    "load_android_env",
]

SIMULATORS: tuple[str, ...] = ("fake", "emulator")


def _app(name: str, package: str, activity: str) -> dict[str, str]:
    return {"name": name, "package": package, "activity": activity}


ANDROID_APPS_FAMILY: dict[str, Any] = {
    "name": "android_apps",
    "apps": [
        _app("Calculator", "com.google.android.calculator", "com.android.calculator2.Calculator"),
        _app("Calendar", "com.google.android.calendar", "com.android.calendar.AllInOneActivity"),
        _app("Camera", "com.android.camera2", "com.android.camera.CameraLauncher"),
        _app("Chrome", "com.android.chrome", "com.google.android.apps.chrome.Main"),
        _app("Clock", "com.google.android.deskclock", "com.android.deskclock.DeskClock"),
        _app("Contacts", "com.google.android.contacts", "com.android.contacts.activities.PeopleActivity"),
        _app("Files", "com.google.android.documentsui", "com.android.documentsui.files.FilesActivity"),
        _app("Gmail", "com.google.android.gm", ".ConversationListActivityGmail"),
        _app("Maps", "com.google.android.apps.maps", "com.google.android.maps.MapsActivity"),
        _app("Messages", "com.google.android.apps.messaging", ".ui.ConversationListActivity"),
        _app("Phone", "com.google.android.dialer", ".extensions.GoogleDialtactsActivity"),
        _app("Settings", "com.android.settings", ".Settings"),
    ],
    "templates": {
        "open": [
            "Screenshot of {app} on Android",
            "Open {app}",
            "the {app} app open on an Android phone",
            "a screenshot of the {app} app",
        ],
    },
    "split": {"by": "app", "held_out": ["Clock", "Maps"]},
}
"""The family of ``configs/goals/android_apps.yaml`` (the default of :class:`AndroidOpenAppEnv`):
twelve apps of Google's Android system images with their packages and launch activities, and
Baumli et al.'s two wordings ("Screenshot of [TASK] on Android", which rewarded better, and
"Open [TASK]") plus two of ours; Clock and Maps held out."""


# ---------------------------------------------------------------------------------------------
# building android_env


def _import_android_env():
    try:
        import android_env  # noqa: F401
        from android_env.components import config_classes  # noqa: F401
    except ImportError as err:
        raise AndroidSetupError(
            f"vlmreward/AndroidOpenApp-v0 needs android_env ({err}); install it with pip install \"vlmreward[android]\" "
            "and pip install --no-deps \"android-env==1.3.0\" (docs/android.md)."
        ) from None


def _task_proto(family: GoalFamily, stop_apps: bool = False):
    """android_env's ``Task``: reset by pressing HOME (after force-stopping every app of the family with ``stop_apps``).

    android_env's setup-step interpreter waits 0.5 s after each step for the device to settle,
    so a reset costs 0.5 s, plus 0.5 s per app with ``stop_apps``.
    """
    from android_env.proto import adb_pb2, task_pb2

    task = task_pb2.Task(
        id="vlmreward_open_app", name="Open an app",
        description="Open the app a language goal names (Baumli et al.'s AndroidEnv goals); success from the foreground activity.",
    )
    for obj in family.objects if stop_apps else ():
        task.reset_steps.add(adb_request=adb_pb2.AdbRequest(force_stop=adb_pb2.AdbRequest.ForceStop(package_name=obj.detail("package"))))
    task.reset_steps.add(
        adb_request=adb_pb2.AdbRequest(press_button=adb_pb2.AdbRequest.PressButton(button=adb_pb2.AdbRequest.PressButton.HOME))
    )
    return task


def load_android_env(family: GoalFamily, simulator: str, emulator: Any = None, screen_size: Sequence[int] = (320, 180),
                     show_navigation_bar: bool = True, stop_apps_on_reset: bool = False):
    """android_env's ``AndroidEnv`` for an app family, composed as ``android_env.loader.load`` does.

    Args:
        family: an app family (the fake device's apps; with ``stop_apps_on_reset`` force-stopped at every reset).
        simulator: ``"fake"`` (:class:`~vlmreward.envs.android_device.LauncherSimulator`, a
            ``screen_size`` ``(H, W)`` screen with the family's apps) or ``"emulator"``
            (android_env's ``EmulatorSimulator`` with ``emulator`` settings, checked by
            :func:`resolve_emulator_settings`).
        emulator: the emulator settings (mapping or validated).
        screen_size: the fake device's screen, ``(H, W)`` pixels.
        show_navigation_bar: show Android's navigation bar (back, home, recents), the agent's way home.
        stop_apps_on_reset: force-stop every app of the family at each reset (apps start afresh; slower).

    Returns:
        ``(android_env, simulator)``: the dm_env environment and its simulator.

    Raises:
        AndroidSetupError: android_env missing, or the emulator cannot start (see :func:`resolve_emulator_settings`).
    """
    _import_android_env()
    from android_env import environment
    from android_env.components import config_classes
    from android_env.components import coordinator as coordinator_lib
    from android_env.components import device_settings as device_settings_lib
    from android_env.components import task_manager as task_manager_lib

    if simulator == "fake":
        from vlmreward.envs.android_device import LauncherSimulator, device_apps

        sim = LauncherSimulator(
            config_classes.FakeSimulatorConfig(screen_dimensions=tuple(int(v) for v in screen_size)), device_apps(family.objects)
        )
    else:
        from android_env.components.simulators.emulator import emulator_simulator

        s = resolve_emulator_settings(emulator)
        launcher = config_classes.EmulatorLauncherConfig(
            emulator_path=s.emulator_path, android_sdk_root=s.sdk_root, avd_name=s.avd_name, android_avd_home=s.avd_home,
            snapshot_name=s.snapshot_name, kvm_device=s.kvm_device, tmp_dir=s.tmp_dir, gpu_mode=s.gpu_mode,
            run_headless=s.run_headless, restrict_network=s.restrict_network, adb_port=s.adb_port,
            emulator_console_port=s.emulator_console_port, grpc_port=s.grpc_port,
        )
        sim = emulator_simulator.EmulatorSimulator(
            config=config_classes.EmulatorConfig(
                emulator_launcher=launcher, adb_controller=config_classes.AdbControllerConfig(adb_path=s.adb_path),
                interaction_rate_sec=s.interaction_rate_sec,
            )
        )
    # dumpsys checks compare with an expected app screen; this task has none (every app may be open)
    task_manager = task_manager_lib.TaskManager(_task_proto(family, stop_apps_on_reset), config=config_classes.TaskManagerConfig(dumpsys_check_frequency=0))
    device_settings = device_settings_lib.DeviceSettings(sim)
    coordinator = coordinator_lib.Coordinator(
        sim, task_manager, device_settings=device_settings,
        config=config_classes.CoordinatorConfig(
            num_fingers=1,
            device_settings=config_classes.DeviceSettingsConfig(
                show_touches=False, show_pointer_location=False, show_navigation_bar=bool(show_navigation_bar), show_status_bar=True
            ),
        ),
    )
    return environment.AndroidEnv(simulator=sim, coordinator=coordinator, task_manager=task_manager), sim


# ---------------------------------------------------------------------------------------------
# the gymnasium environment


class AndroidOpenAppEnv(gym.Env):
    """Open the app a language goal names, on android_env (module docstring).

    Args:
        family: an app family (:class:`~vlmreward.goals.GoalFamily` with ``apps:``), a YAML path
            or mapping; None for :data:`ANDROID_APPS_FAMILY`.
        goal_set, split_by, held_out, goal_types, goals: which goals episodes draw from
            (:func:`~vlmreward.goals.select_goals`).
        simulator: ``"fake"`` or ``"emulator"``.
        emulator: the emulator's settings (``simulator="emulator"``; :func:`resolve_emulator_settings`).
        screen_size: the fake device's screen ``(H, W)`` in pixels (default 320 × 180).
        obs_width, obs_height: size of the policy's observation (pixels).
        action_grid: ``(rows, cols)`` of the discrete tap grid, or None for continuous taps.
        tap_steps: android_env steps a touch is held before the lift (``TapActionWrapper``'s ``num_steps``).
        render_size: ``(H, W)`` of the frames ``render()`` returns; None: the device's resolution.
        terminate_on_success: end the episode when the goal app is in the foreground.
        show_navigation_bar: Android's navigation bar on screen (back, home, recents).
        stop_apps_on_reset: force-stop every app of the family at each reset, not only go home
            (0.5 s more per app: android_env waits that long after each reset step).
        render_mode: ``"rgb_array"`` or None.

    Raises:
        InvalidParameterError: a family without apps, an unknown simulator, a bad grid or size,
            an empty goal set.
        AndroidSetupError: android_env is not installed, or the emulator cannot start here.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        family: GoalFamily | Mapping[str, Any] | str | os.PathLike | None = None,
        goal_set: str | None = None,
        split_by: str | None = None,
        held_out: Sequence[str] | None = None,
        goal_types: Sequence[str] | None = None,
        goals: Sequence[str | Goal] | None = None,
        simulator: str = "fake",
        emulator: Mapping[str, Any] | None = None,
        screen_size: Sequence[int] = (320, 180),
        obs_width: int = 64,
        obs_height: int = 64,
        action_grid: Sequence[int] | None = (6, 4),
        tap_steps: int = 1,
        render_size: Sequence[int] | None = None,
        terminate_on_success: bool = False,
        show_navigation_bar: bool = True,
        stop_apps_on_reset: bool = False,
        render_mode: str | None = None,
    ) -> None:
        self.family = as_goal_family(ANDROID_APPS_FAMILY if family is None else family)
        if not self.family.is_app_family:
            raise InvalidParameterError(
                f"goal family {self.family.name!r} has objects, not apps; AndroidOpenApp needs an app family "
                "(apps: with name, package and activity; e.g. configs/goals/android_apps.yaml)."
            )
        self.goal_list, self.goal_set = select_goals(self.family, goal_set, split_by, held_out, goal_types, goals)
        if simulator not in SIMULATORS:
            raise InvalidParameterError(f"simulator {simulator!r}: use one of {', '.join(SIMULATORS)}.")
        if render_mode not in (None, "rgb_array"):
            raise InvalidParameterError(f"render_mode {render_mode!r}: use 'rgb_array' or None.")
        if action_grid is not None and (len(action_grid) != 2 or min(int(v) for v in action_grid) < 1):
            raise InvalidParameterError(f"action_grid must be [rows, cols] of positive integers or null; got {action_grid}.")
        if int(tap_steps) < 1 or min(int(obs_width), int(obs_height)) < 8:
            raise InvalidParameterError("tap_steps must be at least 1 and obs_width, obs_height at least 8.")
        if emulator is not None or simulator == "emulator":
            emulator = parse_emulator_settings(emulator)  # a typo in the settings fails on the fake device too
        self.simulator_kind = simulator
        self.render_mode = render_mode
        self.render_size = None if render_size is None else (int(render_size[0]), int(render_size[1]))
        self.terminate_on_success = bool(terminate_on_success)
        self.action_grid = None if action_grid is None else (int(action_grid[0]), int(action_grid[1]))
        self._android, self.simulator = load_android_env(
            self.family, simulator, emulator, screen_size, show_navigation_bar, stop_apps_on_reset
        )
        try:
            self._env = self._wrap(self._android, int(tap_steps), int(obs_height), int(obs_width))
        except BaseException:
            self._android.close()
            raise
        self.observation_space = spaces.Box(0, 255, shape=(int(obs_height), int(obs_width), 3), dtype=np.uint8)
        if self.action_grid is None:
            self.action_space = spaces.Box(0.0, 1.0, shape=(2,), dtype=np.float32)
        else:
            self.action_space = spaces.Discrete(self.action_grid[0] * self.action_grid[1])
        self.goal: Goal = self.goal_list[0]
        self.foreground = ""
        self._frame: np.ndarray | None = None
        self._closed = False

    def _wrap(self, android: Any, tap_steps: int, height: int, width: int) -> Any:
        from android_env.wrappers import discrete_action_wrapper, image_rescale_wrapper, tap_action_wrapper

        env = tap_action_wrapper.TapActionWrapper(android, num_steps=tap_steps, touch_only=True)
        if self.action_grid is not None:
            env = discrete_action_wrapper.DiscreteActionWrapper(env, action_grid=self.action_grid, noise=0.0)
        screen_h, screen_w = android.observation_spec()["pixels"].shape[:2]
        # ImageRescaleWrapper's size is int(zoom · size); the half pixel makes it exactly height × width
        return image_rescale_wrapper.ImageRescaleWrapper(env, zoom_factors=((height + 0.5) / screen_h, (width + 0.5) / screen_w))

    # ----------------------------------------------------------------------------- goals and success
    def _sample_goal(self) -> Goal:
        return self.goal_list[int(self.np_random.integers(len(self.goal_list)))]

    def foreground_activity(self) -> str:
        """``package/activity`` in the foreground, from android_env's ``get_current_activity`` adb request ("" if unknown)."""
        from android_env.proto import adb_pb2

        response = self._android.execute_adb_call(adb_pb2.AdbRequest(get_current_activity=adb_pb2.AdbRequest.GetCurrentActivity()))
        if response.status != adb_pb2.AdbResponse.Status.OK:
            return ""
        return response.get_current_activity.full_activity

    def goal_success(self, foreground: str | None = None) -> bool:
        """Whether the goal app's package owns the foreground activity."""
        foreground = self.foreground if foreground is None else foreground
        return foreground.split("/")[0] == self.goal.object.detail("package")

    def foreground_app(self) -> GoalObject | None:
        """The family's app whose package owns the foreground activity; None on the home screen or another app."""
        package = self.foreground.split("/")[0]
        return next((o for o in self.family.objects if o.detail("package") == package), None)

    def start_app(self, app: str | None) -> None:
        """Bring an app of the family to the foreground by adb (``am start``), or go home (None); then take a screenshot.

        Raises:
            InvalidParameterError: no app of that name in the family.
            VLMRewardError: the device refused to start it.
        """
        from android_env.proto import adb_pb2

        from vlmreward.envs.android_device import app_component

        if app is None:
            request = adb_pb2.AdbRequest(press_button=adb_pb2.AdbRequest.PressButton(button=adb_pb2.AdbRequest.PressButton.HOME))
        else:
            obj = self.family.object_named(app)
            component = app_component(obj.detail("package"), obj.detail("activity"))
            request = adb_pb2.AdbRequest(start_activity=adb_pb2.AdbRequest.StartActivity(full_activity=component))
        response = self._android.execute_adb_call(request)
        if response.status != adb_pb2.AdbResponse.Status.OK:
            raise VLMRewardError(f"the device could not {'go home' if app is None else f'start {app}'}: {response.error_message}")
        self._frame = np.asarray(self.simulator.get_screenshot(), dtype=np.uint8)
        self.foreground = self.foreground_activity()

    def goal_state(self, success: bool | None = None) -> GoalState:
        """The :class:`~vlmreward.envs.goal_conditioning.GoalState` now (no distances on a phone: ``nan``)."""
        return GoalState(
            goal=self.goal, goal_type=self.goal.type, object_distance=float("nan"), object_bearing=0.0,
            carrying_object=False, carrying_other=False, target_distance=float("nan"),
            success=self.goal_success() if success is None else bool(success), scale=1.0,
        )

    def _info(self, success: bool) -> dict[str, Any]:
        return {"goal": self.goal, "goal_type": self.goal.type, "is_success": success, "foreground": self.foreground,
                "goal_state": self.goal_state(success)}

    # ----------------------------------------------------------------------------- gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode: android_env's reset (the home screen; apps stopped with ``stop_apps_on_reset``) and a goal
        (``options={"goal": sentence, key or Goal}``, else drawn from the goal set)."""
        super().reset(seed=seed)
        requested = (options or {}).get("goal")
        self.goal = self.family.goal(requested) if requested is not None else self._sample_goal()
        timestep = self._env.reset()
        return self._observe(timestep), self._info(self.goal_success())

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        timestep = self._env.step(self._android_action(action))
        obs = self._observe(timestep)
        success = self.goal_success()
        last = timestep.last()
        terminated = bool((last and float(timestep.discount or 0.0) == 0.0) or (self.terminate_on_success and success))
        truncated = bool(last and not terminated)
        return obs, float(success), terminated, truncated, self._info(success)

    def _android_action(self, action: Any) -> dict[str, np.ndarray]:
        if self.action_grid is not None:
            action = int(np.asarray(action).reshape(-1)[0]) if np.ndim(action) else int(action)
            if not 0 <= action < self.action_space.n:
                raise InvalidParameterError(f"action {action} is not one of 0..{self.action_space.n - 1} (a tap grid cell).")
            return {"action_id": np.asarray(action, dtype=np.int64)}
        xy = np.clip(np.asarray(action, dtype=np.float32).reshape(-1), 0.0, 1.0)
        if xy.shape != (2,):
            raise InvalidParameterError(f"a continuous tap is (x, y) in [0, 1]; got shape {np.shape(action)}.")
        return {"action_type": np.asarray(0, dtype=np.int32), "touch_position": xy}

    def _observe(self, timestep: Any) -> np.ndarray:
        self._frame = np.asarray(self._android.raw_observation["pixels"], dtype=np.uint8)
        self.foreground = self.foreground_activity()
        return np.asarray(timestep.observation["pixels"], dtype=np.uint8)

    def render(self) -> np.ndarray | None:
        """The latest screenshot, ``uint8 [H, W, 3]`` (``render_size`` if set), or None without ``rgb_array``."""
        if self.render_mode != "rgb_array" or self._frame is None:
            return None
        if self.render_size is None:
            return self._frame.copy()
        from PIL import Image

        height, width = self.render_size
        return np.asarray(Image.fromarray(self._frame).resize((width, height), Image.BILINEAR), dtype=np.uint8)

    def close(self) -> None:
        if not getattr(self, "_closed", True):
            self._closed = True
            self._android.close()
        super().close()

    # ----------------------------------------------------------------------------- scripted states
    def tap_action(self, app: str | None) -> Any:
        """The action that taps app ``app``'s home-screen icon (None: the home button), on the fake device's layout.

        Raises:
            InvalidParameterError: not the fake device, or a tap grid whose cells miss the icon.
        """
        from vlmreward.envs.android_device import LauncherSimulator

        if not isinstance(self.simulator, LauncherSimulator):
            raise InvalidParameterError("tap_action knows the fake device's layout only; on an emulator the launcher's layout is its own.")
        sim = self.simulator
        box = sim.nav_box("home") if app is None else sim.cell_box(*sim.cell_of(sim.app_by_package(self.family.object_named(app).detail("package"))))
        x, y = (box[0] + box[2]) / 2 / sim.width, (box[1] + box[3]) / 2 / sim.height
        if self.action_grid is None:
            return np.array([x, y], dtype=np.float32)
        rows, cols = self.action_grid
        row, col = min(int(y * rows), rows - 1), min(int(x * cols), cols - 1)
        cx, cy = (col + 0.5) / cols * sim.width, (row + 0.5) / rows * sim.height
        if not (box[0] <= cx < box[2] and box[1] <= cy < box[3]):
            raise InvalidParameterError(f"no cell of the {rows} × {cols} tap grid has its centre on {app or 'the home button'}.")
        return row * cols + col
