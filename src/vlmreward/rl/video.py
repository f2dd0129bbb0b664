"""Episode videos: the frames above a plot of the per-step VLM reward so far."""

from __future__ import annotations

import logging
import math
import os
import uuid
from pathlib import Path

import numpy as np


__all__ = ["RewardStrip", "write_episode_video"]

_log = logging.getLogger("vlmreward.rl")


class RewardStrip:
    """A plot of the per-step reward so far, one image per step, for the strip under a video frame.

    Matplotlib (Agg, one reused figure) draws the axes only when the limits change (a value
    leaves the y-range, which then at least doubles, or the episode outruns ``x_max``); the
    curve itself is drawn incrementally with NumPy, so a step costs a copy of the strip.

    Args:
        width, height: strip size in pixels.
        x_max: expected episode length (the x-axis; doubled when exceeded).
        label: y-axis label.
    """

    DPI = 100
    LINE = np.array([31, 119, 180], dtype=np.uint8)
    DOT = np.array([214, 39, 40], dtype=np.uint8)

    def __init__(self, width: int, height: int, x_max: int = 1000, label: str = "VLM reward") -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.width, self.height = int(width), int(height)
        self.figure = Figure(figsize=(self.width / self.DPI, self.height / self.DPI), dpi=self.DPI)
        FigureCanvasAgg(self.figure)
        self.axes = self.figure.add_subplot(1, 1, 1)
        self.figure.subplots_adjust(left=0.12, right=0.98, top=0.86, bottom=0.28)
        self.label = label
        self.values: list[float] = []
        self.xlim = (0.0, float(max(int(x_max) - 1, 1)))
        self.ylim: tuple[float, float] | None = None
        self._canvas: np.ndarray | None = None
        self._pixels: list[tuple[float, float] | None] = []

    def _fit_limits(self) -> None:
        finite = [v for v in self.values if math.isfinite(v)]
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
        span = max(hi - lo, 1e-3 * max(1.0, abs(hi)))
        if self.ylim is not None:  # grow at least twofold, so redraws stay few (logarithmic in the range)
            span = max(span, 4 * (self.ylim[1] - self.ylim[0]) / 3)  # new y-range = 1.5 span ≥ 2 × old
        middle = (lo + hi) / 2
        self.ylim = (middle - 0.75 * span, middle + 0.75 * span)
        while len(self.values) - 1 > self.xlim[1]:
            self.xlim = (0.0, self.xlim[1] * 2)

    def _redraw(self) -> None:
        ax = self.axes
        ax.clear()
        ax.set_xlim(*self.xlim)
        ax.set_ylim(*self.ylim)  # type: ignore[misc]
        ax.set_xlabel("step", fontsize=7, labelpad=1)
        ax.set_title(self.label, fontsize=8, pad=2)
        ax.tick_params(labelsize=6, pad=1)
        ax.grid(alpha=0.3)
        self.figure.canvas.draw()
        self._background = np.asarray(self.figure.canvas.buffer_rgba())[..., :3].copy()
        self._canvas = self._background.copy()
        self._pixels = [self._to_pixel(t, v) for t, v in enumerate(self.values)]
        for t in range(1, len(self._pixels)):
            self._segment(self._pixels[t - 1], self._pixels[t])

    def _to_pixel(self, t: int, v: float) -> tuple[float, float] | None:
        if not math.isfinite(v):
            return None
        x, y = self.axes.transData.transform((t, v))
        return float(x), float(self.height - y)

    def _segment(self, a: tuple[float, float] | None, b: tuple[float, float] | None) -> None:
        if b is None:
            return
        a = b if a is None else a
        n = int(max(abs(b[0] - a[0]), abs(b[1] - a[1]))) + 2
        xs = np.rint(np.linspace(a[0], b[0], n)).astype(int)
        ys = np.rint(np.linspace(a[1], b[1], n)).astype(int)
        for dy in (0, 1):
            for dx in (0, 1):
                self._canvas[np.clip(ys + dy, 0, self.height - 1), np.clip(xs + dx, 0, self.width - 1)] = self.LINE  # type: ignore[index]

    def push(self, value: float) -> np.ndarray:
        """Add the next step's reward; returns the strip ``uint8 [height, width, 3]``."""
        value = float(value)
        self.values.append(value)
        t = len(self.values) - 1
        outside = math.isfinite(value) and self.ylim is not None and not self.ylim[0] <= value <= self.ylim[1]
        if self._canvas is None or outside or t > self.xlim[1]:
            self._fit_limits()
            self._redraw()
        else:
            self._pixels.append(self._to_pixel(t, value))
            if t > 0:
                self._segment(self._pixels[t - 1], self._pixels[t])
        image = self._canvas.copy()  # type: ignore[union-attr]
        point = self._pixels[-1]
        if point is not None:
            x, y = int(round(point[0])), int(round(point[1]))
            image[max(y - 3, 0) : y + 4, max(x - 3, 0) : x + 4] = self.DOT
        return image


def _compose(frame: np.ndarray, strip: np.ndarray, scale: int) -> np.ndarray:
    """Frame above strip, padded with white to multiples of 16 pixels (what video codecs want)."""
    if scale > 1:
        frame = np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)
    h, w = frame.shape[0] + strip.shape[0], max(frame.shape[1], strip.shape[1])
    out = np.full((-(-h // 16) * 16, -(-w // 16) * 16, 3), 255, dtype=np.uint8)
    out[: frame.shape[0], : frame.shape[1]] = frame
    out[frame.shape[0] : h, : strip.shape[1]] = strip
    return out


class _EpisodeVideo:
    """Streams an episode into an mp4: rendered frames on top, the reward so far underneath."""

    MIN_WIDTH = 448

    def __init__(self, path: Path, fps: float, x_max: int, label: str) -> None:
        import imageio.v2 as imageio

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.stem}.{uuid.uuid4().hex[:8]}.tmp{self.path.suffix}")
        self._writer = imageio.get_writer(
            self._tmp, fps=fps, codec="libx264", quality=7, macro_block_size=16, ffmpeg_log_level="error"
        )
        self._x_max = x_max
        self._label = label
        self._strip: RewardStrip | None = None
        self._scale = 1

    def add(self, frame: np.ndarray, reward: float) -> None:
        if self._strip is None:
            self._scale = max(1, math.ceil(self.MIN_WIDTH / frame.shape[1]))
            width = frame.shape[1] * self._scale
            self._strip = RewardStrip(width, max(120, round(width * 0.28)), self._x_max, self._label)
        self._writer.append_data(_compose(frame, self._strip.push(reward), self._scale))

    def close(self) -> Path:
        self._writer.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self._tmp.unlink(missing_ok=True)


def write_episode_video(path: str | os.PathLike, frames: list[np.ndarray], rewards: list[float], fps: float = 30) -> Path:
    """Write ``frames`` (``uint8 [H, W, 3]`` each) with a strip plotting ``rewards[:t+1]`` under frame ``t``.

    Returns:
        ``path`` (an ``.mp4``, H.264, sides padded to multiples of 16 pixels).
    """
    video = _EpisodeVideo(Path(path), fps, len(frames), "VLM reward")
    try:
        for frame, reward in zip(frames, rewards):
            video.add(frame, reward)
    except BaseException:
        video.abort()
        raise
    return video.close()

