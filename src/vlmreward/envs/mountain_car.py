"""MountainCarContinuous with a photo-like textured rendering (VLM-RM's MountainCar set-up).

VLM-RM found CLIP rewards badly shaped on gymnasium's flat line-drawing of MountainCar and well
shaped on a textured re-rendering. :class:`TexturedMountainCarEnv` keeps gymnasium's
``Continuous_MountainCarEnv`` dynamics and reward unchanged and only replaces ``render()``: a sky
gradient with clouds, far hills, the terrain ``height(x) = 0.45 sin(3x) + 0.55`` (gymnasium's
curve, i.e. ``sin(3x)`` scaled) filled with grass over earth, a red car with windows and wheels
standing on the slope, and the yellow flag at the goal ``x = 0.45``. Everything is drawn with
numpy (no pygame, no image files); the static background is computed once per frame size and
shared between instances, so a frame costs a copy plus the car.

Frames are a deterministic function of the state (the textures' noise has a fixed seed).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.continuous_mountain_car import Continuous_MountainCarEnv

from vlmreward.envs.procedural import composite as _composite
from vlmreward.envs.procedural import fractal_noise as _fractal_noise
from vlmreward.envs.procedural import sd_round_box as _sd_round_box
from vlmreward.envs.procedural import smoothstep as _smoothstep
from vlmreward.envs.success import mountain_car_at_flag
from vlmreward.errors import InvalidParameterError

__all__ = ["TexturedMountainCarEnv", "render_mountain_car"]

_MIN_POSITION, _MAX_POSITION = -1.2, 0.6
"""gymnasium's position range (its ``min_position``, ``max_position``)."""
_GOAL_POSITION = 0.45
_TEXTURE_SEED = 20231019
"""Seed of the textures' noise: fixed, so that a frame depends on the state only."""

CAR_LENGTH = 0.22
"""Car length in position units (gymnasium's flat rendering: 0.12); wheels, cabin and windows
are proportional to it."""
FLAG_POLE_HEIGHT = 0.24
"""Flag pole height in height units (same scale as position units in a square frame)."""

_SKY_TOP = np.array([62, 120, 200], dtype=np.float32)
_SKY_HORIZON = np.array([178, 210, 240], dtype=np.float32)
_CAR_BODY = np.array([196, 30, 36], dtype=np.float32)
_CAR_SHADE = np.array([130, 16, 22], dtype=np.float32)
_WINDOW = np.array([168, 206, 230], dtype=np.float32)
_TYRE = np.array([28, 28, 30], dtype=np.float32)
_HUB = np.array([185, 188, 192], dtype=np.float32)
_FLAG = np.array([250, 212, 20], dtype=np.float32)
_POLE = np.array([70, 70, 74], dtype=np.float32)


def _height(x: np.ndarray | float) -> np.ndarray | float:
    """gymnasium's terrain height ``0.45 sin(3x) + 0.55`` for positions ``x``."""
    return np.sin(3.0 * np.asarray(x)) * 0.45 + 0.55


class _Layout:
    """Map between world (position, height) and pixel (column, row) coordinates of a frame.

    Columns span the position range ``[-1.2, 0.6]``; rows put height 0 at 8 % of the frame above
    the bottom and use the column scale when the frame is tall enough (square and landscape
    frames) so that slopes and the car keep their proportions.
    """

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.sx = width / (_MAX_POSITION - _MIN_POSITION)
        self.sy = min(self.sx, 0.68 * height)
        self.base = 0.08 * height

    def col(self, x: np.ndarray | float) -> np.ndarray | float:
        return (np.asarray(x) - _MIN_POSITION) * self.sx

    def row(self, y: np.ndarray | float) -> np.ndarray | float:
        return self.height - (self.base + np.asarray(y) * self.sy)


@lru_cache(maxsize=8)
def _background(width: int, height: int) -> np.ndarray:
    """``float32 [H, W, 3]`` in ``[0, 255]``: sky, clouds, far hills, textured terrain and flag (read-only)."""
    rng = np.random.default_rng(_TEXTURE_SEED)
    lay = _Layout(width, height)
    rows = np.arange(height, dtype=np.float32)[:, None] + 0.5
    cols = np.arange(width, dtype=np.float32)[None, :] + 0.5

    # Sky: vertical gradient, deeper blue at the top.
    t = (rows / height) ** 0.8
    img = np.broadcast_to(_SKY_TOP + (_SKY_HORIZON - _SKY_TOP) * t[..., None], (height, width, 3)).copy()

    # Clouds: thresholded fractal noise, more of them high up, grey-blue undersides.
    noise = _fractal_noise(rng, (height, width), base_cells=4, octaves=5)
    stretch = _fractal_noise(rng, (height, width), base_cells=2, octaves=2)
    density = _smoothstep(0.52, 0.72, 0.75 * noise + 0.25 * stretch) * (1.0 - _smoothstep(0.25, 0.6, rows / height))
    shade = 1.0 - 0.25 * _smoothstep(0.4, 0.9, _fractal_noise(rng, (height, width), base_cells=8, octaves=3))
    cloud = np.array([250, 251, 253], dtype=np.float32) * shade[..., None]
    img = img * (1 - density[..., None]) + cloud * density[..., None]

    # Far hills: a hazy blue-green ridge behind the terrain.
    x_world = _MIN_POSITION + cols / lay.sx
    ridge_noise = _fractal_noise(rng, (1, width), base_cells=3, octaves=4)[0]
    ridge_h = 0.62 + 0.18 * np.sin(2.1 * x_world[0] + 0.7) + 0.22 * (ridge_noise - 0.5)
    ridge_row = lay.row(ridge_h)
    ridge = np.clip(rows - ridge_row[None, :], 0.0, 1.0)  # anti-aliased coverage below the ridge line
    far_noise = _fractal_noise(rng, (height, width), 10, 3)[..., None]
    far = np.array([120, 150, 150], dtype=np.float32) + 14 * (far_noise - 0.5)
    img = img * (1 - 0.85 * ridge[..., None]) + far * (0.85 * ridge[..., None])

    # Terrain: grass near the surface over earth, per-column surface with anti-aliased edge.
    surface_row = lay.row(_height(x_world[0]))  # [W]
    depth = rows - surface_row[None, :]  # pixels below the surface (negative above)
    coverage = np.clip(depth + 0.5, 0.0, 1.0)
    grain = _fractal_noise(rng, (height, width), base_cells=max(8, width // 6), octaves=2)
    patches = _fractal_noise(rng, (height, width), base_cells=6, octaves=4)
    grass = (
        np.array([70, 128, 46], dtype=np.float32)
        + (patches[..., None] - 0.5) * np.array([50, 60, 20], dtype=np.float32)
        + (grain[..., None] - 0.5) * np.array([46, 56, 28], dtype=np.float32)
    )
    earth_noise = _fractal_noise(rng, (height, width), base_cells=max(6, width // 10), octaves=3)
    earth = (
        np.array([118, 84, 52], dtype=np.float32)
        + (earth_noise[..., None] - 0.5) * np.array([70, 55, 40], dtype=np.float32)
        + (grain[..., None] - 0.5) * np.array([30, 24, 18], dtype=np.float32)
    )
    pebbles = _smoothstep(0.72, 0.8, earth_noise)[..., None]
    earth = earth * (1 - pebbles) + np.array([150, 140, 128], dtype=np.float32) * pebbles
    grass_depth = 0.07 * height * (0.8 + 0.5 * patches)
    to_earth = _smoothstep(0.0, 1.0, (depth - grass_depth) / (0.03 * height))[..., None]
    ground = grass * (1 - to_earth) + earth * to_earth
    ground *= (1.0 - 0.25 * np.clip(depth / height, 0, 1))[..., None]  # darker deeper down
    rim = np.exp(-np.maximum(depth, 0) / max(1.0, 0.008 * height))[..., None]  # sunlit grass rim
    ground = ground * (1 - 0.35 * rim) + np.array([128, 180, 70], dtype=np.float32) * (0.35 * rim)
    img = img * (1 - coverage[..., None]) + ground * coverage[..., None]

    # Flag at the goal: grey pole, yellow pennant pointing right (towards the hilltop).
    _draw_flag(img, lay)
    img.setflags(write=False)
    return img


def _window(lay: _Layout, u_centre: float, v_centre: float, radius: float) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Pixel box around a point: ``(row0, col0, px_rows [h,1], px_cols [1,w])`` (pixel centres)."""
    r0 = max(0, int(math.floor(v_centre - radius)))
    r1 = min(lay.height, int(math.ceil(v_centre + radius)) + 1)
    c0 = max(0, int(math.floor(u_centre - radius)))
    c1 = min(lay.width, int(math.ceil(u_centre + radius)) + 1)
    rows = np.arange(r0, max(r0, r1), dtype=np.float32)[:, None] + 0.5
    cols = np.arange(c0, max(c0, c1), dtype=np.float32)[None, :] + 0.5
    return r0, c0, rows, cols


def _draw_flag(img: np.ndarray, lay: _Layout) -> None:
    fx = float(lay.col(_GOAL_POSITION))
    ground = float(lay.row(_height(_GOAL_POSITION)))
    top = ground - FLAG_POLE_HEIGHT * lay.sy
    half_w = max(0.9, 0.006 * lay.sx)
    size = FLAG_POLE_HEIGHT * lay.sy
    r0, c0, rows, cols = _window(lay, fx + 0.3 * size, ground - 0.5 * size, 0.6 * size + 3)
    # Pole: a vertical bar from the ground to the top.
    d_pole = np.maximum(np.abs(cols - fx) - half_w, np.maximum(rows - (ground + 2), top - rows))
    _composite(img, r0, c0, np.clip(0.5 - d_pole, 0, 1), _POLE)
    # Pennant: triangle attached to the top of the pole, pointing right.
    flag_h, flag_w = 0.36 * size, 0.5 * size
    y_mid = top + flag_h / 2
    x_rel = cols - fx
    # inside if 0 <= x_rel <= flag_w * (1 - |y - y_mid| / (flag_h / 2))
    taper = flag_w * (1 - np.abs(rows - y_mid) / (flag_h / 2))
    d_flag = np.maximum(-x_rel + half_w, (x_rel - taper) * 0.6)
    _composite(img, r0, c0, np.clip(0.5 - d_flag, 0, 1), _FLAG)


def _draw_car(img: np.ndarray, lay: _Layout, position: float) -> None:
    """Draw the car standing on the terrain at ``position``, its axis along the local slope."""
    L = CAR_LENGTH * lay.sx  # car length in pixels
    gx, gy = float(lay.col(position)), float(lay.row(_height(position)))
    slope = 1.35 * math.cos(3.0 * position) * lay.sy / lay.sx  # d(height)/d(position), in pixels
    norm = math.hypot(1.0, slope)
    tu = (1.0 / norm, -slope / norm)  # forward along the ground (screen rows grow downwards)
    nv = (tu[1], -tu[0])  # "up" from the ground
    r0, c0, rows, cols = _window(lay, gx + 0.35 * L * nv[0], gy + 0.35 * L * nv[1], 0.75 * L)
    if rows.size == 0 or cols.size == 0:
        return
    du, dv = cols - gx, rows - gy
    u = du * tu[0] + dv * tu[1]  # along the car, forward positive
    v = du * nv[0] + dv * nv[1]  # above the ground
    aa = lambda d: np.clip(0.5 - d, 0.0, 1.0)  # noqa: E731  coverage from a signed distance

    wheel_r = 0.12 * L
    body = _sd_round_box(u, v, 0.0, wheel_r + 0.12 * L, 0.5 * L, 0.12 * L, 0.07 * L)
    cabin = _sd_round_box(u, v, -0.05 * L, wheel_r + 0.31 * L, 0.27 * L, 0.12 * L, 0.08 * L)
    shell = np.minimum(body, cabin)
    # Body colour with a darker lower half (shading), then windows, wheels, lights.
    lower = _smoothstep(0.0, 1.0, (wheel_r + 0.1 * L - v) / max(1.0, 0.04 * L))[..., None]
    body_col = _CAR_BODY * (1 - lower) + _CAR_SHADE * lower
    _composite(img, r0, c0, aa(shell), body_col)
    for cu in (-0.17 * L, 0.08 * L):
        win = _sd_round_box(u, v, cu, wheel_r + 0.32 * L, 0.1 * L, 0.075 * L, 0.03 * L)
        _composite(img, r0, c0, aa(win), _WINDOW)
    light = np.hypot(u - 0.46 * L, v - (wheel_r + 0.15 * L)) - 0.035 * L
    _composite(img, r0, c0, aa(light), np.array([255, 246, 220], dtype=np.float32))
    for cu in (-0.3 * L, 0.3 * L):
        d = np.hypot(u - cu, v - wheel_r)
        _composite(img, r0, c0, aa(d - wheel_r), _TYRE)
        _composite(img, r0, c0, aa(d - 0.5 * wheel_r), _HUB)


def render_mountain_car(position: float, width: int = 224, height: int = 224) -> np.ndarray:
    """The textured MountainCar picture of a car at ``position``: ``uint8 [height, width, 3]``.

    Args:
        position: car position, in ``[-1.2, 0.6]`` (gymnasium's units; the flag is at 0.45).
        width, height: frame size in pixels (at least 16 each).
    """
    img = _background(int(width), int(height)).copy()
    _draw_car(img, _Layout(int(width), int(height)), float(position))
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


class TexturedMountainCarEnv(Continuous_MountainCarEnv):
    """gymnasium's ``MountainCarContinuous-v0`` with :func:`render_mountain_car`'s textured frames.

    Dynamics, observations, rewards and termination are gymnasium's, unchanged. Step and reset
    infos carry ``info["is_success"]``: the car at or past the flag (position ≥ ``goal_position``,
    0.45; :func:`~vlmreward.envs.success.mountain_car_at_flag`). ``render()`` returns
    ``uint8 [render_height, render_width, 3]`` (default 224 × 224); the only render mode is
    ``"rgb_array"`` (``gymnasium.make(..., render_mode="human")`` wraps it in a window).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        render_mode: str | None = None,
        goal_velocity: float = 0.0,
        render_width: int = 224,
        render_height: int = 224,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise InvalidParameterError(
                f"render_mode={render_mode!r} is not supported by the textured MountainCar; use "
                f"render_mode='rgb_array' (gymnasium.make adds a window for 'human')."
            )
        if int(render_width) < 16 or int(render_height) < 16:
            raise InvalidParameterError(
                f"render size {render_width}x{render_height} is too small; use at least 16x16 pixels (default 224x224)."
            )
        super().__init__(render_mode=render_mode, goal_velocity=goal_velocity)
        self.render_width, self.render_height = int(render_width), int(render_height)
        self.screen_width, self.screen_height = self.render_width, self.render_height

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)
        info["is_success"] = mountain_car_at_flag(self.state, self.goal_position)
        return obs, reward, terminated, truncated, info

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = super().reset(seed=seed, options=options)
        info["is_success"] = mountain_car_at_flag(self.state, self.goal_position)
        return obs, info

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """The current frame, ``uint8 [render_height, render_width, 3]``; None without a render mode."""
        if self.render_mode is None:
            gym.logger.warn(
                "You are calling render method without specifying any render mode; pass "
                "render_mode='rgb_array' to gymnasium.make."
            )
            return None
        return render_mountain_car(float(self.state[0]), self.render_width, self.render_height)
