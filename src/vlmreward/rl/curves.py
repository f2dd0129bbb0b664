"""``RUN_DIR/curves.png``: the VLM return the agent optimises beside the ground-truth return and success.

Drawn from ``episodes.csv`` (:class:`~vlmreward.rl.callbacks.EpisodeLogCallback`) and
``evaluations.jsonl`` (:class:`~vlmreward.rl.callbacks.EvalCallback`) at each evaluation and when
training ends: the upper panel plots both returns against the step count (each on its own axis:
their scales differ; thin lines per episode, thick lines the running mean over ``window``
episodes), each episode at the step it ended (``episodes.csv``'s ``timesteps``, also with
deferred scoring, which logs it later); the lower panel the running success rate where the
environment reports success: at the episode's last step, and (dashed) by VLM-RM's rule, the goal
held in at least 50 % of the episode's steps. Each evaluation of the deterministic policy is a
point at its step: its mean ground-truth return (± one standard deviation) on the ground-truth
axis, its success rate in the lower panel. A VLM return that rises while the ground-truth return
stays flat is reward hacking or a reward that does not describe the task; both rising is the
reward working.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from vlmreward._paths import atomic_write_bytes

__all__ = ["CURVES_FILE", "curves_figure", "write_curves", "running_mean"]

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


def _read_episodes(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if r.get("timesteps")]


def curves_figure(
    episodes_csv: str | os.PathLike,
    evaluations: Sequence[Mapping[str, Any]] = (),
    window: int = 100,
    title: str = "",
) -> Any | None:
    """The matplotlib ``Figure`` of ``curves.png`` (module docstring); None before the first episode.

    Args:
        episodes_csv: the run's ``episodes.csv`` (columns ``timesteps``: the step the episode
            ended, ``vlm_return``, ``gt_return``, ``success``, ``success_fraction``).
        evaluations: the run's evaluations (:func:`vlmreward.rl.report.read_evaluations`: dicts
            with ``prefix``, ``step``, ``mean_gt_return``, ``std_gt_return``, ``success_rate``),
            drawn as points; those of the held-out goals (prefix ``eval_held_out``) apart.
        window: episodes in the running means.
        title: the figure's title (the goal sentence).
    """
    rows = _read_episodes(Path(episodes_csv))
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
    handles = top.get_lines()[1:] + right.get_lines()[1:]
    for prefix, marker, label in (("eval", "o", "evaluation (deterministic)"), ("eval_held_out", "s", "evaluation, held-out goals")):
        points = [e for e in evaluations if e.get("prefix", "eval") == prefix and _finite(e.get("mean_gt_return"))]
        if points:
            std = [float(e["std_gt_return"]) if _finite(e.get("std_gt_return")) else 0.0 for e in points]
            bars = right.errorbar([float(e["step"]) for e in points], [float(e["mean_gt_return"]) for e in points], yerr=std,
                                  fmt=marker, color="tab:red", markersize=5, capsize=3, label=label)
            handles.append(bars)
    top.legend(handles, [h.get_label() for h in handles], loc="upper left", fontsize=8)
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
        for prefix, marker in (("eval", "o"), ("eval_held_out", "s")):
            points = [e for e in evaluations if e.get("prefix", "eval") == prefix and _finite(e.get("success_rate"))]
            if points:
                bottom.plot([float(e["step"]) for e in points], [float(e["success_rate"]) for e in points], marker,
                            color="tab:red", markersize=5, linestyle="none",
                            label="evaluation success" + (", held-out goals" if prefix != "eval" else ""))
        bottom.legend(loc="upper left", fontsize=8)
        bottom.set_ylim(-0.05, 1.05)
        bottom.set_ylabel("success rate")
        bottom.set_xlabel("environment steps")
    else:
        top.set_xlabel("environment steps")
    fig.tight_layout()
    return fig


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def write_curves(
    episodes_csv: str | os.PathLike,
    out: str | os.PathLike,
    window: int = 100,
    title: str = "",
    evaluations: Sequence[Mapping[str, Any]] = (),
) -> Path | None:
    """Draw ``out`` (PNG, written atomically) from :func:`curves_figure`; None (nothing written) before the first episode."""
    fig = curves_figure(episodes_csv, evaluations, window, title)
    if fig is None:
        return None
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    atomic_write_bytes(out, buffer.getvalue())
    return Path(out)
