"""Textures drawn by our code: noise, shapes, and look-alikes of the VLM-RM reference's images.

The VLM-RM reference code (AlignmentResearch/vlmrm) textures its environments with five photos
and drawings it ships (:mod:`vlmreward.envs.textures` downloads them on request). The default,
``textures="ours"``, uses the pictures drawn here instead, deterministic functions of a fixed
seed that need no download and resemble the reference's look (compare them in
``docs/reproducing-vlmrm.md``):

==============================  =========================================================
picture                          ours
==============================  =========================================================
``sky.png`` (skybox)             blue sky, deeper at the top, with fractal white clouds
``tiles.png`` (floor)            dark slate tiles of several lengths in three columns
``robot.png`` (body)             brushed silver: light grey with fine diagonal streaks
``mountain_car_background.png``  blue sky over a rocky grey peak with grassy lower slopes,
                                 its ridge line exactly the terrain ``0.45 sin(3x) + 0.55``,
                                 a yellow flag at the goal ``x = 0.45``
``mountain_car.png`` (sprite)    a red car seen from the side, transparent background
==============================  =========================================================

Images are ``uint8`` RGB(A) arrays in the orientation of an ordinary picture (row 0 at the top).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

__all__ = [
    "value_noise",
    "fractal_noise",
    "smoothstep",
    "sd_round_box",
    "composite",
    "draw_sky",
    "draw_tiles",
    "draw_brushed_metal",
    "draw_mountain_background",
    "draw_car_sprite",
    "OUR_TEXTURES",
    "TEXTURE_SEED",
]

TEXTURE_SEED = 20231019
"""Seed of every drawing's noise: the pictures are the same on every machine and run."""


def value_noise(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int]) -> np.ndarray:
    """``float32 [H, W]`` in ``[0, 1]``: a ``cells`` grid of uniform values, smoothly interpolated."""
    h, w = shape
    gh, gw = cells
    grid = rng.random((gh + 1, gw + 1)).astype(np.float32)
    ys, xs = np.linspace(0, gh, h, dtype=np.float32), np.linspace(0, gw, w, dtype=np.float32)
    y0, x0 = np.minimum(ys.astype(int), gh - 1), np.minimum(xs.astype(int), gw - 1)
    ty, tx = ys - y0, xs - x0
    ty, tx = ty * ty * (3 - 2 * ty), tx * tx * (3 - 2 * tx)  # smoothstep
    top = grid[y0][:, x0] * (1 - tx) + grid[y0][:, x0 + 1] * tx
    bottom = grid[y0 + 1][:, x0] * (1 - tx) + grid[y0 + 1][:, x0 + 1] * tx
    return top * (1 - ty)[:, None] + bottom * ty[:, None]


def fractal_noise(rng: np.random.Generator, shape: tuple[int, int], base_cells: int, octaves: int) -> np.ndarray:
    """``float32 [H, W]`` in ``[0, 1]``: octaves of :func:`value_noise`, each twice finer and half as strong."""
    h, w = shape
    total = np.zeros(shape, dtype=np.float32)
    weight_sum = 0.0
    for k in range(octaves):
        cells = base_cells * 2**k
        gw = max(1, cells)
        gh = max(1, round(cells * h / max(w, 1)))
        weight = 0.5**k
        total += weight * value_noise(rng, shape, (gh, gw))
        weight_sum += weight
    return total / weight_sum


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    """Hermite step from 0 (``x ≤ e0``) to 1 (``x ≥ e1``)."""
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def sd_round_box(u: np.ndarray, v: np.ndarray, cu: float, cv: float, hu: float, hv: float, r: float) -> np.ndarray:
    """Signed distance (pixels) to a rounded box centred at ``(cu, cv)`` with half sizes ``hu, hv``."""
    qu = np.abs(u - cu) - (hu - r)
    qv = np.abs(v - cv) - (hv - r)
    outside = np.hypot(np.maximum(qu, 0), np.maximum(qv, 0))
    return outside + np.minimum(np.maximum(qu, qv), 0) - r


def composite(img: np.ndarray, r0: int, c0: int, alpha: np.ndarray, colour: np.ndarray) -> None:
    """Alpha-blend ``colour`` (``[3]`` or ``[h, w, 3]``) into float ``img[r0:, c0:]`` with coverage ``alpha [h, w]``."""
    h, w = alpha.shape
    region = img[r0 : r0 + h, c0 : c0 + w]
    a = alpha[: region.shape[0], : region.shape[1], None]
    col = colour if colour.ndim == 1 else colour[: region.shape[0], : region.shape[1]]
    region *= 1 - a
    region += a * col


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _sky(rng: np.random.Generator, h: int, w: int, top: tuple, bottom: tuple, cloud_amount: float) -> np.ndarray:
    """``float32 [h, w, 3]``: a vertical blue gradient with fractal clouds covering about ``cloud_amount``."""
    rows = (np.arange(h, dtype=np.float32)[:, None, None] + 0.5) / h
    img = np.asarray(top, np.float32) + (np.asarray(bottom, np.float32) - np.asarray(top, np.float32)) * rows
    img = np.broadcast_to(img, (h, w, 3)).copy()
    noise = 0.7 * fractal_noise(rng, (h, w), 3, 6) + 0.3 * fractal_noise(rng, (h, w), 8, 3)
    cut = float(np.quantile(noise, 1.0 - cloud_amount))
    density = smoothstep(cut - 0.04, cut + 0.12, noise)[..., None]
    shade = 1.0 - 0.22 * smoothstep(0.45, 0.85, fractal_noise(rng, (h, w), 12, 3))[..., None]
    cloud = np.array([250, 251, 253], np.float32) * shade
    return img * (1 - 0.95 * density) + cloud * (0.95 * density)


def draw_sky(size: int = 512) -> np.ndarray:
    """Skybox picture ``uint8 [size, size, 3]``: blue sky, deeper at the top, with white clouds."""
    rng = np.random.default_rng(TEXTURE_SEED)
    return _to_uint8(_sky(rng, size, size, (28, 110, 212), (120, 178, 236), cloud_amount=0.42))


def draw_tiles(size: int = 512) -> np.ndarray:
    """Floor picture ``uint8 [size, size, 3]``: dark slate tiles (three columns of tiles of several
    lengths, thin dark grout), each tile a slightly different grey with a stony grain."""
    rng = np.random.default_rng(TEXTURE_SEED + 1)
    img = np.empty((size, size, 3), np.float32)
    grain = fractal_noise(rng, (size, size), size // 24, 3)
    veins = fractal_noise(rng, (size, size), 6, 5)
    columns = np.linspace(0, size, 4).round().astype(int)
    grout = max(2, size // 170)
    mask = np.zeros((size, size), bool)
    for c0, c1 in zip(columns[:-1], columns[1:]):
        cuts = np.sort(rng.choice(np.arange(size // 10, size - size // 10), size=int(rng.integers(3, 6)), replace=False))
        edges = [0, *cuts.tolist(), size]
        for r0, r1 in zip(edges[:-1], edges[1:]):
            tone = float(rng.uniform(40, 66))
            img[r0:r1, c0:c1] = tone
            mask[r0 : r0 + grout, c0:c1] = True
        mask[:, c0 : c0 + grout] = True
    img += (grain[..., None] - 0.5) * 34 + (smoothstep(0.55, 0.75, veins)[..., None]) * 22
    img *= np.array([1.0, 1.0, 1.04], np.float32)
    img[mask] = 18
    return _to_uint8(img)


def draw_brushed_metal(size: int = 256) -> np.ndarray:
    """Body picture ``uint8 [size, size, 3]``: brushed silver, light grey with diagonal streaks."""
    rng = np.random.default_rng(TEXTURE_SEED + 2)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    a = math.radians(35.0)
    across = rows * math.cos(a) - cols * math.sin(a)  # distance across the 35° streaks, in pixels
    line = fractal_noise(rng, (1, 8 * size), 2 * size, 3)[0]  # fine 1-D noise, one value a streak
    streaks = line[((across - across.min()) * 4).astype(int) % line.size]
    img = 212 + (streaks - 0.5) * 60 + (fractal_noise(rng, (size, size), 3, 3) - 0.5) * 24
    return _to_uint8(np.repeat(img[..., None], 3, axis=2) * np.array([0.99, 1.0, 1.02], np.float32))


def draw_mountain_background(
    width: int = 600,
    height: int = 400,
    surface_height: Callable[[np.ndarray], np.ndarray] | None = None,
    min_position: float = -1.2,
    max_position: float = 0.6,
    goal_position: float = 0.45,
) -> np.ndarray:
    """MountainCar background ``uint8 [height, width, 4]`` (opaque RGBA, row 0 at the top).

    The ground's edge at column ``c`` lies at row ``height - surface_height(x) · scale``, with
    ``x = min_position + c / scale`` and ``scale = width / (max_position - min_position)``: where
    the reference's renderer puts the car (15 pixels above it). Above: sky; below: grey rock on the
    steep upper slopes, grass lower down; a yellow flag stands on the ground at ``goal_position``.

    Args:
        surface_height: terrain height of positions (default gymnasium's ``0.45 sin(3x) + 0.55``).
    """
    surface_height = surface_height or (lambda x: np.sin(3.0 * x) * 0.45 + 0.55)
    rng = np.random.default_rng(TEXTURE_SEED + 3)
    scale = width / (max_position - min_position)
    img = _sky(rng, height, width, (20, 104, 190), (96, 160, 214), cloud_amount=0.08)
    cols = np.arange(width, dtype=np.float32) + 0.5
    surface = height - surface_height(min_position + cols / scale) * scale  # [W] rows of the ground's edge
    rows = np.arange(height, dtype=np.float32)[:, None] + 0.5
    depth = rows - surface[None, :]  # pixels below the edge
    coverage = np.clip(depth + 0.5, 0, 1)[..., None]

    rock_noise = fractal_noise(rng, (height, width), 10, 5)
    cracks = smoothstep(0.62, 0.7, fractal_noise(rng, (height, width), 22, 3))
    rock = 150 + (rock_noise - 0.5) * 120 - cracks * 60
    rock = np.repeat(rock[..., None], 3, axis=2) * np.array([1.0, 1.0, 1.04], np.float32)
    snow = smoothstep(0.7, 0.8, fractal_noise(rng, (height, width), 16, 3)) * smoothstep(0.0, 40.0, depth)
    rock = rock * (1 - snow[..., None]) + 235 * snow[..., None]
    grass_noise = fractal_noise(rng, (height, width), 30, 3)[..., None]
    grass = np.array([88, 140, 60], np.float32) + (grass_noise - 0.5) * np.array([50, 60, 30], np.float32)
    trees = smoothstep(0.72, 0.76, fractal_noise(rng, (height, width), 40, 2))[..., None]
    grass = grass * (1 - trees) + np.array([28, 60, 34], np.float32) * trees
    # grass where the ground is low (valley floor and lower slopes), rock above, a ragged boundary
    ground_height = (height - rows) / height  # 0 at the bottom of the picture, 1 at the top
    grassy = smoothstep(0.0, 0.08, 0.22 + 0.12 * (rock_noise - 0.5) - ground_height)[..., None]
    ground = rock * (1 - grassy) + grass * grassy
    haze = np.exp(-np.maximum(depth, 0) / 12.0)[..., None] * 0.25  # soft, lit ridge line
    ground = ground * (1 - haze) + 230 * haze
    img = img * (1 - coverage) + ground * coverage

    fx = (goal_position - min_position) * scale
    ground_row = float(height - surface_height(np.asarray(goal_position)) * scale)
    pole_h, flag_w, flag_h = 0.1 * height, 0.045 * width, 0.035 * height
    r, c = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    pole = (np.abs(c - fx) <= 1.2) & (r >= ground_row - pole_h) & (r <= ground_row + 2)
    img[pole] = (70, 70, 74)
    top = ground_row - pole_h
    flag = (c >= fx) & (c <= fx + flag_w) & (r >= top) & (r <= top + flag_h)
    img[flag] = (250, 214, 20)
    return np.concatenate([_to_uint8(img), np.full((height, width, 1), 255, np.uint8)], axis=2)


def draw_car_sprite(width: int = 70, height: int = 33) -> np.ndarray:
    """Car sprite ``uint8 [height, width, 4]`` (RGBA, transparent around it), facing right:
    a red body with a cabin, two windows, black tyres with silver hubs."""
    img = np.zeros((height, width, 3), np.float32)
    alpha = np.zeros((height, width), np.float32)
    v, u = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    v = height - v  # up
    wheel_r = 0.21 * height
    cover = lambda d: np.clip(0.5 - d, 0.0, 1.0)  # noqa: E731

    def paint(d: np.ndarray, colour: tuple) -> None:
        a = cover(d)
        img[:] = img * (1 - a[..., None]) + np.asarray(colour, np.float32) * a[..., None]
        alpha[:] = np.maximum(alpha, a)

    paint(sd_round_box(u, v, 0.5 * width, wheel_r + 0.2 * height, 0.49 * width, 0.2 * height, 0.08 * height), (190, 24, 30))
    paint(sd_round_box(u, v, 0.44 * width, wheel_r + 0.5 * height, 0.27 * width, 0.2 * height, 0.12 * height), (170, 18, 26))
    for cu in (0.33, 0.56):
        paint(sd_round_box(u, v, cu * width, wheel_r + 0.52 * height, 0.1 * width, 0.13 * height, 0.05 * height), (150, 190, 215))
    paint(np.hypot(u - 0.96 * width, v - (wheel_r + 0.25 * height)) - 0.06 * height, (255, 244, 210))
    for cu in (0.22, 0.78):
        d = np.hypot(u - cu * width, v - wheel_r)
        paint(d - wheel_r, (24, 24, 26))
        paint(d - 0.5 * wheel_r, (180, 184, 190))
    return np.concatenate([_to_uint8(img), _to_uint8(alpha * 255)[..., None]], axis=2)


OUR_TEXTURES: dict[str, Callable[[], np.ndarray]] = {
    "sky.png": draw_sky,
    "tiles.png": draw_tiles,
    "robot.png": draw_brushed_metal,
    "mountain_car_background.png": draw_mountain_background,
    "mountain_car.png": draw_car_sprite,
}
"""File name (the reference's) → the drawing that stands in for it."""
