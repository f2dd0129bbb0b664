"""Plots of reward diagnostics, as PNG files (matplotlib's Agg canvas; no GUI backend is touched).

* :func:`plot_landscape`: the reward against a labelled state variable, one curve per reward
  setting (``α`` or ``τ``), as in VLM-RM's CartPole and MountainCar figures (Rocamonde et al.
  2024, Fig. 2–3); goal states shaded, the ground-truth reward dashed; optionally one panel per
  value of a categorical variable (the Humanoid's target pose).
* :func:`plot_pr_curves`: precision-recall curves with AP and the best-F1 point (Baumli et al.
  2023, Fig. 4).
* :func:`plot_reward_by_label`: histograms of the reward of goal and non-goal frames.
* :func:`plot_extreme_frames`: the frames with the highest and the lowest reward.
* :func:`plot_scaling` and :func:`plot_prompt_comparison`: a sweep's AP and EPIC distance
  against the model's parameter count (the papers' scaling figure), and per prompt set.

Every function takes NumPy arrays and writes one PNG at ``path``.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "plot_landscape",
    "plot_pr_curves",
    "plot_reward_by_label",
    "plot_extreme_frames",
    "plot_scaling",
    "plot_prompt_comparison",
    "aggregate_curve",
]

_DPI = 110
_MAX_GROUPS = 120  # distinct x values beyond which the x axis is binned


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _escape(text: str) -> str:
    return text.replace("$", r"\$")


def _normalise(values: np.ndarray) -> np.ndarray:
    """Min-max to ``[0, 1]`` over all finite values (a constant becomes 0.5)."""
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return v
    lo, hi = finite.min(), finite.max()
    return np.full_like(v, 0.5) if hi == lo else (v - lo) / (hi - lo)


def aggregate_curve(x: np.ndarray, y: np.ndarray, max_groups: int = _MAX_GROUPS) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean of ``y`` per value of ``x`` (or per bin, when ``x`` has many distinct values).

    Args:
        x: ``[N]`` numeric state variable (NaN rows are dropped).
        y: ``[N]`` values.
        max_groups: above this many distinct ``x``, ``x`` is cut into ``max_groups // 3``
            equal-width bins, each represented by its mean ``x``.

    Returns:
        ``(x_centres, mean, low, high)`` each ``[G]``, sorted by ``x``; ``low``/``high`` the
        minimum and maximum of ``y`` in the group.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size == 0:
        empty = np.empty(0)
        return empty, empty, empty, empty
    values, inverse = np.unique(x, return_inverse=True)
    if values.size > max_groups:
        edges = np.linspace(x.min(), x.max(), max(2, max_groups // 3) + 1)
        inverse = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
        groups = np.unique(inverse)
        centres = np.array([x[inverse == g].mean() for g in groups])
        inverse = np.searchsorted(groups, inverse)
    else:
        groups = np.arange(values.size)
        centres = values
    mean = np.array([y[inverse == g].mean() for g in range(len(groups))])
    low = np.array([y[inverse == g].min() for g in range(len(groups))])
    high = np.array([y[inverse == g].max() for g in range(len(groups))])
    return centres, mean, low, high


def _shade_positives(ax, x: np.ndarray, labels: np.ndarray, label_name: str) -> None:
    """Shade the x ranges where most frames are labelled positive."""
    centres, fraction, _, _ = aggregate_curve(x, labels.astype(np.float64))
    positive = fraction >= 0.5
    if centres.size == 0 or not positive.any():
        return
    ax.fill_between(
        centres, 0, 1, where=positive, step="mid", transform=ax.get_xaxis_transform(),
        color="tab:green", alpha=0.13, lw=0,
    )
    # ticks along the bottom: visible even for a goal state at a single x value
    ax.plot(centres[positive], np.zeros(int(positive.sum())), "|", color="tab:green", ms=12, mew=2,
            transform=ax.get_xaxis_transform(), clip_on=False, label=f"{label_name} (goal states)")


def plot_landscape(
    path: str | Path,
    x: np.ndarray,
    curves: Mapping[str, np.ndarray],
    *,
    x_name: str,
    x_unit: str = "",
    labels: np.ndarray | None = None,
    label_name: str = "goal",
    reference: np.ndarray | None = None,
    reference_name: str = "ground truth",
    facet: np.ndarray | None = None,
    facet_name: str = "",
    normalise: bool = True,
    title: str = "",
) -> None:
    """Reward against a state variable, one curve per reward setting.

    Args:
        path: the PNG to write.
        x: ``[N]`` state variable of each frame (e.g. ``pole_angle`` in rad).
        curves: ``{name: rewards [N]}``, e.g. ``{"α = 0": …, "α = 0.5": …}``.
        x_name, x_unit: axis label.
        labels: ``[N]`` booleans; x ranges where most frames are goals are shaded.
        label_name: the label's name, for the legend.
        reference: ``[N]`` ground-truth reward, drawn dashed (normalised like the curves).
        facet: ``[N]`` categorical values (strings); one panel per value.
        facet_name: the facet variable's name.
        normalise: min-max normalise each curve over all frames, so curves of different
            scales share one axis (VLM-RM's figures do the same).
        title: figure title.

    Frames sharing an ``x`` value (a grid sweep) are averaged; a continuous ``x`` is binned.
    """
    x = np.asarray(x, dtype=np.float64)
    series = {name: (_normalise(r) if normalise else np.asarray(r, dtype=np.float64)) for name, r in curves.items()}
    ref = None if reference is None else (_normalise(reference) if normalise else np.asarray(reference, dtype=np.float64))
    if facet is not None:
        facet = np.asarray(facet).astype(str)
        panels = [v for v in dict.fromkeys(facet.tolist()) if v != ""]
    else:
        panels = [""]
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = _figure(4.0 * cols + 1.6 if cols > 1 else 8.5, 3.2 * rows if cols > 1 else 4.2)
    axes = np.atleast_1d(fig.subplots(rows, cols, sharey=True, squeeze=False)).reshape(-1)
    colours = _colours(len(series))
    for ax, panel in zip(axes, panels):
        mask = np.ones_like(x, dtype=bool) if facet is None else facet == panel
        if labels is not None:
            _shade_positives(ax, x[mask], np.asarray(labels)[mask], label_name)
        for (name, values), colour in zip(series.items(), colours):
            cx, mean, low, high = aggregate_curve(x[mask], values[mask])
            ax.plot(cx, mean, color=colour, lw=1.8, marker="." if cx.size <= 60 else None, label=name)
            if len(series) <= 2 and np.any(high > low):  # more bands than two hide the curves
                ax.fill_between(cx, low, high, color=colour, alpha=0.12, lw=0)
        if ref is not None:
            cx, mean, _, _ = aggregate_curve(x[mask], ref[mask])
            ax.plot(cx, mean, color="black", ls="--", lw=1.2, label=reference_name)
        if panel:
            ax.set_title(f"{facet_name} = {panel}" if facet_name else panel, fontsize="medium")
        ax.set_xlabel(f"{x_name} ({x_unit})" if x_unit else x_name)
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax in axes[:: cols]:
        ax.set_ylabel("reward (min-max normalised)" if normalise else "reward")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize="small", loc="outside right upper")
    if title:
        fig.suptitle(_escape(textwrap.shorten(title, 110, placeholder=" …")), fontsize="medium")
    fig.savefig(path, dpi=_DPI)


def _colours(n: int) -> list[Any]:
    from matplotlib import colormaps

    if n <= 10:
        return [f"C{i}" for i in range(n)]
    cmap = colormaps["viridis"]
    return [cmap(i / max(1, n - 1)) for i in range(n)]


def plot_pr_curves(path: str | Path, curves: Mapping[str, Any], title: str = "", positive_rate: float | None = None) -> None:
    """Precision-recall curves.

    Args:
        path: the PNG to write.
        curves: ``{name: DetectionMetrics}`` (:func:`vlmreward.eval.metrics.detection_metrics`).
        title: figure title.
        positive_rate: fraction of positive frames, drawn as the chance level.
    """
    fig = _figure(6.0, 4.6)
    ax = fig.subplots()
    for (name, m), colour in zip(curves.items(), _colours(len(curves))):
        ax.step(m.recall, m.precision, where="post", color=colour, lw=1.6, label=f"{name}  (AP {m.average_precision:.3f})")
        p, r = np.asarray(m.precision[:-1]), np.asarray(m.recall[:-1])
        if p.size:
            f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-300), 0)
            i = int(np.argmax(f1))
            ax.plot(r[i], p[i], "o", color=colour, ms=5)
    if positive_rate is not None:
        ax.axhline(positive_rate, color="grey", ls=":", lw=1, label=f"chance ({positive_rate:.2f})")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower left")
    ax.set_title(_escape(title or "precision-recall (dot: best F1)"), fontsize="medium")
    fig.savefig(path, dpi=_DPI)


def plot_reward_by_label(path: str | Path, curves: Mapping[str, np.ndarray], labels: np.ndarray, label_name: str = "goal") -> None:
    """Histograms of the reward of positive and negative frames, one panel per reward setting."""
    labels = np.asarray(labels, dtype=bool)
    n = len(curves)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = _figure(4.0 * cols, 2.8 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).reshape(-1)
    for ax, (name, r) in zip(axes, curves.items()):
        r = np.asarray(r, dtype=np.float64)
        bins = np.histogram_bin_edges(r, bins=30)
        ax.hist(r[~labels], bins=bins, color="tab:red", alpha=0.55, label=f"not {label_name}")
        ax.hist(r[labels], bins=bins, color="tab:green", alpha=0.55, label=label_name)
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel("reward")
        ax.grid(alpha=0.3)
    for ax in axes[n:]:
        ax.set_visible(False)
    axes[0].set_ylabel("frames")
    axes[0].legend(fontsize="small")
    fig.savefig(path, dpi=_DPI)


def plot_extreme_frames(
    path: str | Path, frames: np.ndarray, rewards: np.ndarray, labels: np.ndarray | None = None, k: int = 6, title: str = ""
) -> None:
    """The ``k`` highest- and ``k`` lowest-reward frames (two rows), with reward and label.

    Args:
        frames: ``uint8 [N, H, W, 3]`` (memory-mapped is fine: only ``2k`` frames are read).
        rewards: ``[N]``.
        labels: ``[N]`` booleans or None.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    order = np.argsort(-rewards, kind="stable")
    k = max(1, min(k, len(order) // 2 or 1))
    rows = [("highest reward", order[:k]), ("lowest reward", order[::-1][:k])]
    h, w = frames.shape[1:3]
    fig = _figure(min(2.0 * k, 14), 2.0 * 2 * h / w + 0.8)
    axes = fig.subplots(2, k, squeeze=False)
    for r, (name, idx) in enumerate(rows):
        for c in range(k):
            ax = axes[r, c]
            ax.axis("off")
            if c >= len(idx):
                continue
            i = int(idx[c])
            ax.imshow(np.asarray(frames[i]))
            tag = ""
            if labels is not None:
                tag = " ✓" if bool(labels[i]) else " ✗"
            ax.set_title(f"#{i}: {rewards[i]:.5g}{tag}", fontsize="x-small")
        axes[r, 0].text(-0.08, 0.5, name, transform=axes[r, 0].transAxes, rotation=90, va="center", ha="right", fontsize="small")
    if title:
        fig.suptitle(_escape(title), fontsize="small")
    fig.savefig(path, dpi=_DPI)


def plot_scaling(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """AP and EPIC distance against model parameter count, one line per (prompt set, reward setting).

    Args:
        rows: sweep rows with ``model``, ``parameters``, ``prompt_set``, ``setting``,
            ``average_precision`` and ``epic_distance`` (NaN/None allowed).
    """
    fig = _figure(11.0, 4.4)
    ax_ap, ax_epic = fig.subplots(1, 2)
    keys = list(dict.fromkeys((r["prompt_set"], r["setting"]) for r in rows))
    colours = _colours(len(keys))
    for key, colour in zip(keys, colours):
        sel = sorted((r for r in rows if (r["prompt_set"], r["setting"]) == key), key=lambda r: r["parameters"] or 0)
        params = np.array([r["parameters"] or np.nan for r in sel], dtype=np.float64)
        for ax, metric in ((ax_ap, "average_precision"), (ax_epic, "epic_distance")):
            values = np.array([np.nan if r.get(metric) is None else r[metric] for r in sel], dtype=np.float64)
            ax.plot(params, values, marker="o", color=colour, lw=1.5, label=f"{key[0]} · {key[1]}")
    models = {}
    for r in rows:
        models.setdefault(r["model"], r["parameters"])
    for ax, ylabel, title in (
        (ax_ap, "average precision", "goal detection (higher is better)"),
        (ax_epic, "EPIC distance to ground truth", "reward distance (lower is better)"),
    ):
        ax.set_xscale("log")
        ax.set_xlabel("model parameters")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize="medium")
        ax.grid(alpha=0.3, which="both")
        named = sorted((p, _short(name)) for name, p in models.items() if p)
        if named:  # the models' names on a top axis, at their parameter counts
            top = ax.secondary_xaxis("top")
            top.set_xticks([p for p, _ in named], [n for _, n in named], fontsize="x-small", rotation=20, ha="left")
            top.minorticks_off()
    ax_ap.legend(fontsize="x-small", loc="best")
    fig.savefig(path, dpi=_DPI)


def plot_prompt_comparison(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Per prompt set and model: the best AP and the lowest EPIC distance over the reward settings."""
    prompt_sets = list(dict.fromkeys(r["prompt_set"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig = _figure(max(7.0, 1.6 * len(prompt_sets) * max(1, len(models)) / 2 + 4), 4.2)
    axes = fig.subplots(1, 2)
    width = 0.8 / max(1, len(models))
    for ax, metric, best, ylabel in (
        (axes[0], "average_precision", np.nanmax, "best average precision"),
        (axes[1], "epic_distance", np.nanmin, "lowest EPIC distance"),
    ):
        for j, (model, colour) in enumerate(zip(models, _colours(len(models)))):
            heights = []
            for ps in prompt_sets:
                vals = np.array(
                    [np.nan if r.get(metric) is None else r[metric] for r in rows if r["model"] == model and r["prompt_set"] == ps],
                    dtype=np.float64,
                )
                heights.append(best(vals) if np.isfinite(vals).any() else np.nan)
            ax.bar(np.arange(len(prompt_sets)) + (j - (len(models) - 1) / 2) * width, heights, width, color=colour, label=_short(model))
        ax.set_xticks(np.arange(len(prompt_sets)), [_escape(p) for p in prompt_sets], rotation=20, ha="right")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_title("higher is better", fontsize="medium")
    axes[1].set_title("lower is better", fontsize="medium")
    axes[0].legend(fontsize="x-small")
    fig.savefig(path, dpi=_DPI)


def _short(name: str, width: int = 28) -> str:
    name = str(name).rstrip("/").split("/")[-1] if "/" in str(name) and not str(name).startswith("open_clip:") else str(name)
    return _escape(name if len(name) <= width else "…" + name[-(width - 1):])
