"""``RUN_DIR/report.html``: one self-contained page on a training run, rewritten at each evaluation
and when training ends (like ``vlmreward evaluate``'s report).

It holds the set-up (environment, algorithm, reward kind and prompts, model, steps), ``curves.png``
embedded (VLM return against ground-truth return and success), a table of every evaluation so
far (ground-truth and VLM return, success at the last step and by VLM-RM's held ≥ 50 % rule), the
training episodes' recent means, and links to the evaluation videos. The page is generated from
what the run already wrote; nothing in it is needed to resume.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from vlmreward import __version__
from vlmreward._html import format_number, image_data_uri, notes, page, table
from vlmreward._paths import atomic_write_text
__all__ = ["write_run_report", "run_setup", "read_evaluations", "REPORT_FILE", "EVALUATIONS_FILE"]

REPORT_FILE = "report.html"
EVALUATIONS_FILE = "evaluations.jsonl"
"""One JSON line per evaluation (``prefix``, ``step`` and the evaluation's figures), appended by
:class:`~vlmreward.rl.callbacks.EvalCallback`; it survives ``--resume``."""


def read_evaluations(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The evaluations of ``evaluations.jsonl``, oldest first; one repeated after a resume (same
    prefix and step) counts once, as its latest line. A damaged line is skipped."""
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            row = json.loads(line)
            latest[(str(row["prefix"]), int(row["step"]))] = row
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(latest.values(), key=lambda r: (int(r["step"]), r["prefix"] != "eval"))


def write_run_report(
    run_dir: str | os.PathLike,
    setup: Sequence[tuple[str, Any]],
    evaluations: Sequence[Mapping[str, Any]],
    training_means: Mapping[str, float],
    steps_done: int,
    total_steps: int,
    curves: str | os.PathLike | None = None,
) -> Path:
    """Write ``run_dir/report.html`` atomically.

    Args:
        run_dir: the run directory.
        setup: ``(label, value)`` rows of the set-up table.
        evaluations: each evaluation so far, oldest first, as :func:`read_evaluations` gives them
            (``prefix``, ``step`` and :meth:`PolicyEvaluation.to_dict`'s keys).
        training_means: the ``rollout/...`` means of :class:`~vlmreward.rl.callbacks.EpisodeLogCallback`.
        steps_done, total_steps: progress of the run.
        curves: ``curves.png`` to embed (skipped when missing).

    Returns:
        The report's path.
    """
    run_dir = Path(run_dir)
    parts = ["<h2>Set-up</h2>" + table(None, [*setup, ("steps", f"{steps_done:,} of {total_steps:,}")])]
    if curves is not None and Path(curves).is_file():
        parts.append(
            f'<figure><img alt="curves" src="{image_data_uri(curves)}"><figcaption>Training episodes: the VLM return '
            "the agent optimises against the ground-truth return (running means), and the success rate at the "
            "last step and by VLM-RM's rule (the goal held in at least 50 % of the steps). "
            "<code>curves.png</code></figcaption></figure>"
        )
    if training_means:
        labels = {
            "rollout/vlm_return": "VLM return", "rollout/gt_return": "ground-truth return",
            "rollout/success_rate": "success (last step)", "rollout/success_rate_held": "success (held ≥ 50 %)",
            "rollout/episode_length": "episode length",
        }
        rows = [(label, training_means[key]) for key, label in labels.items() if key in training_means]
        parts.append("<h2>Recent training episodes</h2>" + table(["mean over the last episodes", "value"], rows, [False, True]))
    if evaluations:
        keys = ("episodes", "mean_gt_return", "std_gt_return", "mean_vlm_return", "success_rate", "success_rate_held", "mean_length")
        rows = [[e["step"], "held-out" if e["prefix"] == "eval_held_out" else "training"] + [e.get(k) for k in keys]
                for e in evaluations]
        parts.append(
            "<h2>Evaluations (deterministic policy)</h2>"
            + table(["step", "goals", "episodes", "GT return", "± std", "VLM return", "success (last step)",
                     "success (held ≥ 50 %)", "length"], rows, [True, False] + [True] * 7)
        )
    videos = sorted((run_dir / "videos").glob("eval_*.mp4"), key=lambda p: int(p.stem.split("_")[-1]) if p.stem.split("_")[-1].isdigit() else 0)
    if videos:
        links = "".join(f'<li><a href="videos/{html.escape(v.name)}">{html.escape(v.name)}</a></li>' for v in videos)
        parts.append("<h2>Evaluation videos</h2><p>The first episode of each evaluation: the goal sentence, the "
                     f"frames, each step's VLM and ground-truth reward and success, the VLM reward so far.</p><ul>{links}</ul>")
    parts.append(notes([
        "SB3's rollout/ep_rew_mean (progress.csv, TensorBoard) is the environment's own, ground-truth return, not the "
        "VLM reward: logs/columns.txt lists what every logged column means.",
    ]))
    path = run_dir / REPORT_FILE
    atomic_write_text(path, page(f"Training run {run_dir.name}", "\n".join(parts), __version__))
    return path


def run_setup(config: Any, run_dir: Path) -> list[tuple[str, Any]]:
    """The set-up rows of a :class:`~vlmreward.rl.config.RunConfig`: the reward kind by its display
    name and every parameter the run gives it (from the registry), the model when the kind uses one."""
    reward = config.reward.model_dump() if hasattr(config.reward, "model_dump") else dict(config.reward)
    kind_name = reward.pop("kind", "?")
    kind = config.reward_kind
    rows: list[tuple[str, Any]] = [("run directory", str(run_dir)), ("environment", config.env.id),
                                   ("algorithm", f"{config.algorithm} ({config.policy})"),
                                   ("reward kind", f"{kind.display_name} ({kind_name})" if kind.display_name != kind_name else kind_name)]
    for key, value in reward.items():
        if value not in (None, [], "", {}):
            rows.append((key, " | ".join(map(str, value)) if isinstance(value, (list, tuple)) else value))
    model_name = getattr(config.model, "name", None)
    if model_name and kind.model != "none":
        rows.append(("model", model_name))
    rows.append(("reward mode", f"{config.mode} (weight {format_number(config.weight)})"))
    rows.append(("seed", config.seed))
    return rows
