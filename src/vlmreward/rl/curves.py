"""``RUN_DIR/curves.png``: the VLM return the agent optimises beside the ground-truth return and success.

Drawn from ``episodes.csv`` (:class:`~vlmreward.rl.callbacks.EpisodeLogCallback`) at each
evaluation and when training ends: the upper panel plots both returns against the step count
(each on its own axis: their scales differ; thin lines per episode, thick lines the running mean
over ``window`` episodes), the lower panel the running success rate where the environment reports
success: at the episode's last step, and (dashed) by VLM-RM's rule, the goal held in at least 50 %
of the episode's steps. A VLM return that rises while the ground-truth return stays flat is reward hacking or a
reward that does not describe the task; both rising is the reward working.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from vlmreward._paths import atomic_write_bytes

__all__ = ["CURVES_FILE", "write_curves", "running_mean"]

CURVES_FILE = "curves.png"


def running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each index (fewer at the start): ``float64 [N]``."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    sums = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, values.size + 1)
    start = np.maximum(idx - int(window), 0)
    return (sums[idx] - sums[start]) / (idx - start)


def write_curves(episodes_csv: str | os.PathLike, out: str | os.PathLike, window: int = 100, title: str = "") -> Path | None:
    """Draw ``out`` (PNG) from ``episodes_csv``; None (nothing written) before the first episode.

    Args:
        episodes_csv: the run's ``episodes.csv`` (columns ``timesteps``, ``vlm_return``,
            ``gt_return``, ``success``).
        out: the PNG to write (atomically).
        window: episodes in the running means.
        title: the figure's title (the goal sentence).
    """
    path = Path(episodes_csv)
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r.get("timesteps")]
    if not rows:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps = np.array([float(r["timesteps"]) for r in rows])
    vlm = np.array([float(r["vlm_return"]) for r in rows])
    gt = np.array([float(r["gt_return"]) for r in rows])
    reported = [r for r in rows if r.get("success") not in (None, "")]
    fig = Figure(figsize=(8, 5.5 if reported else 3.8), dpi=100)
    FigureCanvasAgg(fig)
    top = fig.add_subplot(2 if reported else 1, 1, 1)
    top.plot(steps, vlm, color="tab:blue", alpha=0.2, linewidth=0.8)
    top.plot(steps, running_mean(vlm, window), color="tab:blue", linewidth=2, label="VLM return (optimised)")
    top.set_ylabel("VLM return", color="tab:blue")
    right = top.twinx()
    right.plot(steps, gt, color="tab:orange", alpha=0.2, linewidth=0.8)
    right.plot(steps, running_mean(gt, window), color="tab:orange", linewidth=2, label="ground-truth return")
    right.set_ylabel("ground-truth return", color="tab:orange")
    lines = top.get_lines()[1:] + right.get_lines()[1:]
    top.legend(lines, [line.get_label() for line in lines], loc="upper left", fontsize=8)
    top.set_title(title or f"{len(rows)} episodes (running mean over {window})", fontsize=10)
    if reported:
        bottom = fig.add_subplot(2, 1, 2, sharex=top)
        success = np.array([float(r["success"]) for r in reported])
        bottom.plot([float(r["timesteps"]) for r in reported], running_mean(success, window), color="tab:green", linewidth=2,
                    label="success at the last step")
        held = [r for r in reported if r.get("success_fraction") not in (None, "")]
        if held:
            rate = np.array([float(float(r["success_fraction"]) >= 0.5) for r in held])
            bottom.plot([float(r["timesteps"]) for r in held], running_mean(rate, window), color="tab:green", linewidth=1.5,
                        linestyle="--", label="goal held ≥ 50 % of steps (VLM-RM)")
            bottom.legend(loc="upper left", fontsize=8)
        bottom.set_ylim(-0.05, 1.05)
        bottom.set_ylabel("success rate")
        bottom.set_xlabel("environment steps")
    else:
        top.set_xlabel("environment steps")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    atomic_write_bytes(out, buffer.getvalue())
    return Path(out)
