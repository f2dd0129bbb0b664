"""Episode videos: the goal sentence, the frames, each step's VLM and ground-truth reward and
success, and a plot of the VLM reward so far."""

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
        ylim: the y-range, when the episode's rewards are known beforehand (values outside it
            are drawn at the edge); None: fitted to the values and grown as they arrive.
    """

    DPI = 100
    LINE = np.array([31, 119, 180], dtype=np.uint8)
    DOT = np.array([214, 39, 40], dtype=np.uint8)

    def __init__(
        self, width: int, height: int, x_max: int = 1000, label: str = "VLM reward", ylim: tuple[float, float] | None = None
    ) -> None:
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
        self.ylim: tuple[float, float] | None = ylim
        self._fixed = ylim is not None  # axes fitted to the whole episode beforehand: never redrawn
        self._canvas: np.ndarray | None = None
        self._pixels: list[tuple[float, float] | None] = []

    def _fit_limits(self) -> None:
        while len(self.values) - 1 > self.xlim[1]:
            self.xlim = (0.0, self.xlim[1] * 2)
        if self._fixed:
            return
        finite = [v for v in self.values if math.isfinite(v)]
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
        span = max(hi - lo, 1e-3 * max(1.0, abs(hi)))
        if self.ylim is not None:  # grow at least twofold, so redraws stay few (logarithmic in the range)
            span = max(span, 4 * (self.ylim[1] - self.ylim[0]) / 3)  # new y-range = 1.5 span ≥ 2 × old
        middle = (lo + hi) / 2
        self.ylim = (middle - 0.75 * span, middle + 0.75 * span)

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
        if self._canvas is None or (outside and not self._fixed) or t > self.xlim[1]:
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


def _caption_band(width: int, lines: list[str], font_size: int = 13) -> np.ndarray:
    """White ``uint8 [h, width, 3]`` band with ``lines`` of black text (PIL's built-in font)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=font_size)
    line_height = font_size + 5
    image = Image.new("RGB", (width, line_height * len(lines) + 4), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((6, 2 + i * line_height), line, fill=(0, 0, 0), font=font)
    return np.asarray(image)


def _wrap(text: str, width_px: int, font_size: int = 13) -> list[str]:
    """``text`` split into lines of at most about ``width_px`` pixels (at ~0.55 em a character)."""
    import textwrap

    return textwrap.wrap(text, max(int(width_px / (0.55 * font_size)), 10)) or [""]


def _compose(parts: list[np.ndarray]) -> np.ndarray:
    """Images stacked top to bottom, left-aligned, padded with white to multiples of 16 pixels
    (what video codecs want)."""
    h, w = sum(p.shape[0] for p in parts), max(p.shape[1] for p in parts)
    out = np.full((-(-h // 16) * 16, -(-w // 16) * 16, 3), 255, dtype=np.uint8)
    y = 0
    for part in parts:
        out[y : y + part.shape[0], : part.shape[1]] = part
        y += part.shape[0]
    return out


def _status(t: int, reward: float, gt_reward: float | None, success: bool | None) -> str:
    text = f"step {t}   VLM reward {reward:.4g}"
    if gt_reward is not None:
        text += f"   GT reward {gt_reward:.4g}"
    if success is not None:
        text += f"   success: {'yes' if success else 'no'}"
    return text


class _EpisodeVideo:
    """Writes an episode into an mp4: the goal sentence above the rendered frames, the step's VLM
    reward, ground-truth reward and success under them, and the VLM reward so far in a plot below.

    The frames are kept until :meth:`close` while they take less than ``max_buffer_bytes``, so that
    the plot's axes span the whole episode (reward range and length); a longer episode is streamed
    from that point on, with axes that grow as the rewards arrive.
    """

    MIN_WIDTH = 448

    def __init__(
        self, path: Path, fps: float, x_max: int, label: str, title: str | None = None, max_buffer_bytes: int = 256 << 20
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.stem}.{uuid.uuid4().hex[:8]}.tmp{self.path.suffix}")
        self._fps = fps
        self._x_max = x_max
        self._label = label
        self._title = title
        self._max_buffer_bytes = int(max_buffer_bytes)
        self._buffer: list[tuple[np.ndarray, float, float | None, bool | None]] | None = []
        self._buffered_bytes = 0
        self._writer = None
        self._strip: RewardStrip | None = None
        self._header: np.ndarray | None = None
        self._scale = 1
        self._t = 0

    def add(self, frame: np.ndarray, reward: float, gt_reward: float | None = None, success: bool | None = None) -> None:
        """Append one step: its rendered frame, VLM reward, and (if known) ground-truth reward and success."""
        if self._buffer is not None:
            self._buffer.append((np.array(frame, dtype=np.uint8), float(reward), gt_reward, success))  # a renderer may reuse its array
            self._buffered_bytes += frame.nbytes
            if self._buffered_bytes > self._max_buffer_bytes:
                self._flush(fit_axes=False)
            return
        self._write(frame, float(reward), gt_reward, success)

    def _open(self, frame: np.ndarray, ylim: tuple[float, float] | None, x_max: int) -> None:
        import imageio.v2 as imageio

        self._writer = imageio.get_writer(
            self._tmp, fps=self._fps, codec="libx264", quality=7, macro_block_size=16, ffmpeg_log_level="error"
        )
        self._scale = max(1, math.ceil(self.MIN_WIDTH / frame.shape[1]))
        width = frame.shape[1] * self._scale
        self._strip = RewardStrip(width, max(120, round(width * 0.28)), x_max, self._label, ylim=ylim)
        self._header = _caption_band(width, _wrap(f"goal: {self._title}", width)) if self._title else None

    def _flush(self, fit_axes: bool) -> None:
        buffer, self._buffer = self._buffer or [], None
        if not buffer:
            return
        ylim = None
        if fit_axes:
            finite = [r for _, r, _, _ in buffer if math.isfinite(r)]
            lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
            margin = max(0.05 * (hi - lo), 1e-3 * max(1.0, abs(hi)))
            ylim = (lo - margin, hi + margin)
        self._open(buffer[0][0], ylim, len(buffer) if fit_axes else self._x_max)
        for step in buffer:
            self._write(*step)

    def _write(self, frame: np.ndarray, reward: float, gt_reward: float | None, success: bool | None) -> None:
        if self._writer is None:
            self._open(frame, None, self._x_max)
        if self._scale > 1:
            frame = np.repeat(np.repeat(frame, self._scale, axis=0), self._scale, axis=1)
        parts = [] if self._header is None else [self._header]
        parts += [frame, _caption_band(frame.shape[1], [_status(self._t, reward, gt_reward, success)]), self._strip.push(reward)]  # type: ignore[union-attr]
        self._writer.append_data(_compose(parts))  # type: ignore[union-attr]
        self._t += 1

    def close(self) -> Path:
        """Write what is kept (axes fitted to the episode), finish the file and move it into place."""
        self._flush(fit_axes=True)
        if self._writer is None:
            raise ValueError(f"no frame was added to {self.path}")
        self._writer.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        self._buffer = None
        try:
            if self._writer is not None:
                self._writer.close()
        finally:
            self._tmp.unlink(missing_ok=True)


def write_episode_video(
    path: str | os.PathLike,
    frames: list[np.ndarray],
    rewards: list[float],
    fps: float = 30,
    *,
    title: str | None = None,
    gt_rewards: list[float] | None = None,
    successes: list[bool | None] | None = None,
) -> Path:
    """Write ``frames`` (``uint8 [H, W, 3]`` each) as an annotated episode video.

    Under frame ``t``: a line with the step, ``rewards[t]`` (the VLM reward), ``gt_rewards[t]``
    and ``successes[t]`` where given, then a plot of ``rewards[:t+1]`` whose axes span the whole
    episode; ``title`` (the goal sentence) above the frames.

    Returns:
        ``path`` (an ``.mp4``, H.264, sides padded to multiples of 16 pixels).
    """
    video = _EpisodeVideo(Path(path), fps, len(frames), "VLM reward", title=title)
    try:
        for t, (frame, reward) in enumerate(zip(frames, rewards)):
            video.add(frame, reward, None if gt_rewards is None else gt_rewards[t], None if successes is None else successes[t])
        return video.close()
    except BaseException:
        video.abort()
        raise
