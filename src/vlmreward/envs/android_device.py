"""A drawn Android home screen on ``android_env``'s fake simulator: apps that open when tapped.

``android_env`` ships :class:`~android_env.components.simulators.fake.fake_simulator.FakeSimulator`
to test its own infrastructure without an emulator: its screenshots are random noise and its
fake ``adb`` answers every command with a fixed line (the foreground activity is always
``fake_activity``). :class:`LauncherSimulator` subclasses it so that the open-app task has
something to see and to do, while every call still goes through android_env's own path
(``Coordinator`` → ``send_touch`` / ``get_screenshot``; ``AdbCallParser`` → ``adb`` command lines):

* **screens it draws**: a home screen (status bar, a grid of 4 columns of app icons with their
  names, a navigation bar with back, home and recents) and, per app, the app's screen (its
  colour, name and icon, and the same navigation bar). Screens are drawn once with Pillow and
  copied per screenshot: ``uint8 [H, W, 3]``.
* **touch**: a finger that goes down and comes up (android_env's ``TOUCH`` then ``LIFT``) taps
  where it went down. On the home screen a tap in an app's cell opens the app; anywhere, a tap on
  the navigation bar's back or home button returns to the home screen.
* **fake adb** (:class:`LauncherAdbController`, a ``FakeAdbController``): ``am stack list``
  reports the foreground activity in the format of Android 10+
  (``taskId=…: package/activity … visible=true topActivity=ComponentInfo{package/activity}``),
  which android_env's ``AdbCallParser`` parses for ``get_current_activity``; ``am start -n``
  opens an app, ``am force-stop`` closes it, ``input keyevent KEYCODE_HOME|KEYCODE_BACK`` and
  ``input tap X Y`` act as on a device. Other commands get the fake simulator's answers.

The layout fills a grid of 6 rows × 4 columns of the screen: row 0 the status bar, rows 1 to 4
the apps (at most 16, in family order), row 5 the navigation bar; so a discrete tap grid of
``(6, 4)`` (android_env's ``DiscreteActionWrapper``) has one action per app and the home button
(:meth:`LauncherSimulator.cell_of`).

This module imports ``android_env`` (the ``android`` extra); :mod:`vlmreward.envs.android`
imports it only for ``simulator: fake``.
"""

from __future__ import annotations

import colorsys
import hashlib
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from android_env.components import config_classes, fake_log_stream, log_stream
from android_env.components.simulators.fake import fake_simulator
from PIL import Image, ImageDraw, ImageFont

from vlmreward.errors import InvalidParameterError

__all__ = [
    "DeviceApp",
    "LauncherSimulator",
    "LauncherAdbController",
    "LAUNCHER_COMPONENT",
    "GRID_ROWS",
    "GRID_COLUMNS",
    "MAX_APPS",
    "device_apps",
    "app_component",
]

LAUNCHER_COMPONENT = "com.google.android.apps.nexuslauncher/.NexusLauncherActivity"
"""The home screen's activity, as Pixel system images report it."""
GRID_ROWS, GRID_COLUMNS = 6, 4
"""The screen's layout grid: status bar, four rows of apps, navigation bar; four columns."""
MAX_APPS = (GRID_ROWS - 2) * GRID_COLUMNS
"""Apps one home screen holds (16)."""
_NAV_BUTTONS = ("back", "home", "recents")


def app_component(package: str, activity: str = "") -> str:
    """``package/activity`` as ``am start -n`` takes it and ``am stack list`` reports it, on the
    fake device and an emulator alike (``.MainActivity`` when the family gives no activity)."""
    return f"{package}/{activity or '.MainActivity'}"


@dataclass(frozen=True)
class DeviceApp:
    """An app installed on the fake device: display ``name``, ``package``, launch ``activity``."""

    name: str
    package: str
    activity: str = ""

    @property
    def component(self) -> str:
        """``package/activity`` as ``am`` reports it (``.MainActivity`` when no activity is given)."""
        return app_component(self.package, self.activity)


def _colour(name: str) -> tuple[int, int, int]:
    """A saturated colour per app, from a hash of its name (stable across runs)."""
    hue = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=2).digest(), "little") / 65535.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.65, 0.85)
    return int(r * 255), int(g * 255), int(b * 255)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=max(6, size))
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


class LauncherSimulator(fake_simulator.FakeSimulator):
    """android_env's fake simulator with a drawn home screen and apps that open (module docstring).

    Args:
        config: android_env's ``FakeSimulatorConfig``; ``screen_dimensions`` is ``(H, W)``
            pixels (each at least 48).
        apps: the installed apps, in home-screen order (at most :data:`MAX_APPS`).

    Raises:
        InvalidParameterError: no apps, too many, duplicate packages, or a screen too small.
    """

    def __init__(self, config: config_classes.FakeSimulatorConfig, apps: Sequence[DeviceApp]) -> None:
        super().__init__(config)
        self.apps = list(apps)
        height, width = (int(v) for v in config.screen_dimensions)
        if not self.apps or len(self.apps) > MAX_APPS:
            raise InvalidParameterError(f"the fake device's home screen holds 1 to {MAX_APPS} apps; got {len(self.apps)}.")
        if len({a.package for a in self.apps}) != len(self.apps):
            raise InvalidParameterError("the fake device's apps need distinct packages.")
        if min(height, width) < 48:
            raise InvalidParameterError(f"screen_size must be at least 48 × 48 pixels; got {height} × {width}.")
        self.height, self.width = height, width
        self.foreground: int | None = None  # index into apps; None: the home screen
        self.last_tap: tuple[int, int] | None = None  # screen pixels (x, y)
        self._down: dict[int, tuple[int, int]] = {}
        self._screens = [self._draw(None)] + [self._draw(i) for i in range(len(self.apps))]

    # ----------------------------------------------------------------------------- layout
    def cell_box(self, row: int, column: int) -> tuple[int, int, int, int]:
        """Pixel box ``(x0, y0, x1, y1)`` (end exclusive) of a cell of the layout grid."""
        return (
            column * self.width // GRID_COLUMNS, row * self.height // GRID_ROWS,
            (column + 1) * self.width // GRID_COLUMNS, (row + 1) * self.height // GRID_ROWS,
        )

    @staticmethod
    def cell_of(index: int) -> tuple[int, int]:
        """``(row, column)`` of app number ``index`` on the home screen."""
        return 1 + index // GRID_COLUMNS, index % GRID_COLUMNS

    def nav_box(self, button: str) -> tuple[int, int, int, int]:
        """Pixel box of a navigation-bar button (``"back"``, ``"home"``, ``"recents"``)."""
        i = _NAV_BUTTONS.index(button)
        y0 = (GRID_ROWS - 1) * self.height // GRID_ROWS
        return i * self.width // 3, y0, (i + 1) * self.width // 3, self.height

    def app_at(self, x: int, y: int) -> int | None:
        """The app whose home-screen cell holds pixel ``(x, y)``, or None."""
        row, column = y * GRID_ROWS // self.height, x * GRID_COLUMNS // self.width
        index = (row - 1) * GRID_COLUMNS + column
        return index if 1 <= row <= GRID_ROWS - 2 and 0 <= index < len(self.apps) else None

    # ----------------------------------------------------------------------------- state
    def open_app(self, index: int | None) -> None:
        """Bring app ``index`` to the foreground (None: the home screen)."""
        self.foreground = index

    def app_by_package(self, package: str) -> int | None:
        """Index of the app with ``package``, or None."""
        return next((i for i, a in enumerate(self.apps) if a.package == package), None)

    def foreground_component(self) -> str:
        """``package/activity`` of the foreground activity (the launcher's on the home screen)."""
        index = self.foreground
        return LAUNCHER_COMPONENT if index is None else self.apps[index].component

    def tap(self, x: int, y: int) -> None:
        """A tap at pixel ``(x, y)``: the navigation bar's back and home go home; an app cell opens its app."""
        self.last_tap = (int(x), int(y))
        for button in ("back", "home"):
            x0, y0, x1, y1 = self.nav_box(button)
            if x0 <= x < x1 and y0 <= y < y1:
                self.open_app(None)
                return
        if self.foreground is None:
            index = self.app_at(int(x), int(y))
            if index is not None:
                self.open_app(index)

    # ----------------------------------------------------------------------------- simulator API
    def send_touch(self, touches: list[tuple[int, int, bool, int]]) -> None:
        """android_env's touch events ``(x, y, is_down, finger)``: a finger lifted after touching taps where it went down."""
        for x, y, is_down, finger in touches:
            if is_down:
                self._down.setdefault(int(finger), (int(x), int(y)))
            elif int(finger) in self._down:
                self.tap(*self._down.pop(int(finger)))

    def send_key(self, keycode: np.int32, event_type: str) -> None:
        """Key events are not used by the open-app task (the navigation bar is on screen)."""
        del keycode, event_type

    def _get_screenshot_impl(self) -> np.ndarray:
        index = self.foreground
        return self._screens[0 if index is None else index + 1].copy()

    def create_adb_controller(self) -> "LauncherAdbController":
        return LauncherAdbController(self)

    def create_log_stream(self) -> log_stream.LogStream:
        """A quiet log stream (android_env's ``FakeLogStream`` without a generator): the task reads no logcat events."""
        return fake_log_stream.FakeLogStream()

    # ----------------------------------------------------------------------------- drawing
    def _draw(self, index: int | None) -> np.ndarray:
        h, w = self.height, self.width
        image = Image.new("RGB", (w, h), (32, 44, 80) if index is None else (250, 250, 250))
        draw = ImageDraw.Draw(image)
        row_h = h // GRID_ROWS
        small = _font(max(7, row_h // 6))
        draw.rectangle((0, 0, w, row_h // 3), fill=(20, 20, 28))
        draw.text((4, 1), "12:00", fill=(235, 235, 235), font=small)
        if index is None:
            for y in range(row_h // 3, h):  # a dark blue wallpaper, lighter towards the bottom
                shade = y / h
                draw.line((0, y, w, y), fill=(int(30 + 40 * shade), int(44 + 50 * shade), int(80 + 70 * shade)))
            draw.rounded_rectangle((w // 12, row_h // 2, w - w // 12, row_h - row_h // 8), radius=row_h // 4, fill=(236, 236, 240))
            for i, app in enumerate(self.apps):
                self._draw_icon(draw, app, self.cell_box(*self.cell_of(i)), label=True, font=small)
        else:
            app = self.apps[index]
            colour = _colour(app.name)
            draw.rectangle((0, row_h // 3, w, row_h), fill=colour)
            draw.text((6, row_h // 3 + 2), app.name, fill=(255, 255, 255), font=_font(max(8, row_h // 3)))
            self._draw_icon(draw, app, (w // 4, int(1.4 * row_h), 3 * w // 4, int(3.2 * row_h)), label=False, font=small)
            for k in range(3):  # placeholder content lines
                y = int((3.6 + 0.35 * k) * row_h)
                draw.rounded_rectangle((w // 8, y, w - w // 8 - k * w // 10, y + row_h // 8), radius=2, fill=(215, 215, 220))
        self._draw_nav_bar(draw)
        return np.asarray(image, dtype=np.uint8).copy()

    def _draw_icon(self, draw: ImageDraw.ImageDraw, app: DeviceApp, box: tuple[int, int, int, int], label: bool, font) -> None:
        x0, y0, x1, y1 = box
        cw, ch = x1 - x0, y1 - y0
        size = int(min(cw, ch * (0.62 if label else 1.0)) * 0.8)
        left, top = x0 + (cw - size) // 2, y0 + max(1, ch // 14)
        draw.rounded_rectangle((left, top, left + size, top + size), radius=max(2, size // 4), fill=_colour(app.name))
        initials = "".join(w[0] for w in re.findall(r"[A-Za-z0-9]+", app.name))[:2].upper() or "?"
        glyph = _font(max(8, size // 2))
        tw, th = draw.textbbox((0, 0), initials, font=glyph)[2:]
        draw.text((left + (size - tw) // 2, top + (size - th) // 2 - size // 16), initials, fill=(255, 255, 255), font=glyph)
        if label:
            tw = draw.textbbox((0, 0), app.name, font=font)[2]
            draw.text((x0 + max(0, (cw - tw) // 2), top + size + 1), app.name, fill=(245, 245, 245), font=font)

    def _draw_nav_bar(self, draw: ImageDraw.ImageDraw) -> None:
        x0, y0, _, y1 = self.nav_box("back")
        draw.rectangle((0, y0, self.width, y1), fill=(12, 12, 16))
        r = max(3, (y1 - y0) // 5)
        for button in _NAV_BUTTONS:
            bx0, by0, bx1, by1 = self.nav_box(button)
            cx, cy = (bx0 + bx1) // 2, (by0 + by1) // 2
            if button == "back":
                draw.polygon([(cx + r, cy - r), (cx + r, cy + r), (cx - r, cy)], outline=(230, 230, 230))
            elif button == "home":
                draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=(230, 230, 230), width=2)
            else:
                draw.rectangle((cx - r, cy - r, cx + r, cy + r), outline=(230, 230, 230))


class LauncherAdbController(fake_simulator.FakeAdbController):
    """android_env's fake ``adb`` answering from a :class:`LauncherSimulator`'s state (module docstring)."""

    def __init__(self, device: LauncherSimulator) -> None:
        super().__init__(config_classes.AdbControllerConfig())
        self.device = device

    def execute_command(self, args: list[str], timeout: float | None = None, device_specific: bool = True) -> bytes:
        device = self.device
        if args[:4] == ["shell", "am", "stack", "list"]:
            component = device.foreground_component()
            return (
                f"RootTask id=1 bounds=[0,0][{device.width},{device.height}] displayId=0 userId=0\n"
                f"  taskId=1: {component} bounds=[0,0][{device.width},{device.height}] userId=0 visible=true "
                f"topActivity=ComponentInfo{{{component}}}"
            ).encode()
        if args[:3] == ["shell", "am", "start"] and "-n" in args:
            component = args[args.index("-n") + 1]
            index = device.app_by_package(component.split("/")[0])
            if index is None:
                return f"Error: Activity not started, unable to resolve Intent {component}".encode()
            device.open_app(index)
            return f"Starting: Intent {{ cmp={component} }}\nStatus: ok".encode()
        if args[:3] == ["shell", "am", "force-stop"]:
            if device.foreground is not None and device.apps[device.foreground].package == args[3]:
                device.open_app(None)
            return b""
        if args[:3] == ["shell", "input", "keyevent"]:
            if args[3] in ("KEYCODE_HOME", "KEYCODE_BACK", "3", "4"):
                device.open_app(None)
            return b""
        if args[:3] == ["shell", "input", "tap"]:
            device.tap(int(float(args[3])), int(float(args[4])))
            return b""
        return super().execute_command(args, timeout, device_specific)


def device_apps(objects: Sequence[object]) -> list[DeviceApp]:
    """:class:`DeviceApp` per app of a goal family (:meth:`~vlmreward.goals.GoalObject.app` objects)."""
    return [DeviceApp(o.name, o.detail("package"), o.detail("activity")) for o in objects]  # type: ignore[attr-defined]

