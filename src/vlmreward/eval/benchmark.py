"""Reward-quality benchmarks before any RL run: named suites of episode sets, each evaluated, one table.

A suite (:data:`SUITES`) names episode sets that :func:`~vlmreward.eval.collect.collect` records
here from vlmreward's environments, with ground truth (success labels, the simulator's reward):

* ``metaworld-reach``: Meta-World reach, the scripted expert's episodes and random ones (``collect
  --policy expert`` alternates them), 32 steps each; the set policy ranking and VOC are made for;
* ``cartpole``, ``humanoid``: VLM-RM's CartPole and Humanoid-kneeling sweeps (``--policy scripted``);
* ``miniworld``: MiniWorld goal states (per-frame goals: each frame against its own goal);
* ``android-open-app``: the Android open-app sweep (per-frame goals; the simulated device).

:func:`run_benchmark` evaluates one reward (a kind, its parameters and options, the same for every
set) on each set with :func:`~vlmreward.eval.outputs.evaluate_dataset` (``metrics.json`` and
``report.html`` per set), each set against its own task instruction and, for instruction mismatch,
another set's. A set the reward cannot score (a kind that needs one goal sentence on a set of
per-frame goals; an environment whose extra is not installed) is skipped with a note, and the
others still run. Datasets from elsewhere (a LeRobot v3.0 dataset converted by
:func:`vlmreward.relabel.lerobot_sets.lerobot_episode_set`) join as extra sets.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from vlmreward.errors import VLMRewardError

__all__ = ["EpisodeSet", "SUITES", "BenchmarkResult", "collect_suite", "run_benchmark", "TABLE_COLUMNS"]

TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("average_precision", "AP"), ("roc_auc", "ROC-AUC"), ("epic_distance", "EPIC"), ("spearman", "Spearman"),
    ("voc", "VOC"), ("policy_ranking_tau", "τ"), ("instruction_mismatch", "mismatch"),
)
"""``(metric, heading)`` of the benchmark table's columns."""


@dataclass(frozen=True)
class EpisodeSet:
    """One episode set of a suite.

    Attributes:
        name: the set's name (its folder under the data and output directories).
        env_id: the environment ``collect`` records (None: a dataset given as ``path``).
        policy: ``collect``'s policy (``random``, ``scripted``, ``expert``).
        goal: the task instruction the reward is given; None: each frame's own goal.
        mismatch: other tasks' instructions, for the instruction-mismatch metric.
        episodes, frames, max_steps, env_kwargs: ``collect``'s arguments.
        path: a dataset directory that exists already (extra sets), else None.
        description: one line for the table's notes.
    """

    name: str
    env_id: str | None
    policy: str = "random"
    goal: str | None = None
    mismatch: tuple[str, ...] = ()
    episodes: int | None = None
    frames: int | None = None
    max_steps: int | None = None
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    path: Path | None = None
    description: str = ""


_SMALL = {"render_width": 64, "render_height": 64}
SUITES: dict[str, tuple[EpisodeSet, ...]] = {
    "default": (
        EpisodeSet("metaworld-reach", "vlmreward/MetaWorld-reach-v3", "expert", "the robot arm reaches the red target",
                   ("the robot arm opens the drawer",), episodes=8, max_steps=32, env_kwargs=_SMALL,
                   description="Meta-World reach: scripted expert and random episodes (32 steps)"),
        EpisodeSet("cartpole", "vlmreward/CartPole-v1", "scripted", "a pole standing upright on a cart",
                   ("a humanoid robot kneeling",), frames=40, description="VLM-RM CartPole sweep over the pole's angle"),
        EpisodeSet("humanoid", "vlmreward/HumanoidTextured-v0", "scripted", "a humanoid robot kneeling",
                   ("a pole standing upright on a cart",), frames=16, description="VLM-RM Humanoid sweep (kneeling)"),
        EpisodeSet("miniworld", "vlmreward/MiniWorldGoals-v0", "scripted", None, frames=24,
                   description="MiniWorld goal states, each frame against its own goal"),
        EpisodeSet("android-open-app", "vlmreward/AndroidOpenApp-v0", "scripted", None, frames=18,
                   description="Android open-app sweep (simulated device), each frame against its own goal"),
    ),
}
"""Named suites: their episode sets, in table order."""


def collect_suite(
    sets: Sequence[EpisodeSet], data_dir: str | os.PathLike, *, episodes: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[tuple[EpisodeSet, Path]], list[str]]:
    """Record each set under ``data_dir/<name>`` unless it is there already (a set is collected once and reused).

    Each set is recorded by ``vlmreward collect`` in a process of its own: the renderers of the
    suite's environments (MuJoCo's EGL context, MiniWorld's pyglet one) do not share a process.

    Args:
        sets: the episode sets.
        data_dir: where the datasets live.
        episodes: override the episode count of episode sets (a smaller benchmark).
        progress: called with each set's name before it is collected.

    Returns:
        The sets ready with their dataset directories, and a note per set that could not be
        collected (an environment whose extra is missing, ...): ``collect``'s error line.
    """
    import subprocess
    import sys

    ready, notes = [], []
    for s in sets:
        if s.path is not None:
            ready.append((s, Path(s.path)))
            continue
        path = Path(data_dir) / s.name
        if not (path / "metadata.json").is_file():
            if progress is not None:
                progress(s.name)
            command = [sys.executable, "-m", "vlmreward.cli.main", "collect", s.env_id, "--out", str(path),
                       "--policy", s.policy, "--seed", "0"]
            count = episodes if (episodes and s.episodes) else s.episodes
            command += ["--episodes", str(count)] if count else []
            command += ["--frames", str(s.frames)] if s.frames else []
            command += ["--max-steps", str(s.max_steps)] if s.max_steps else []
            for key, value in s.env_kwargs.items():
                command += ["--env-kwarg", f"{key}={value}"]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                lines = [line for line in done.stderr.splitlines() if line.strip()]
                why = next((line.removeprefix("error: ") for line in lines if line.startswith("error: ")), lines[-1] if lines else "")
                notes.append(f"{s.name}: not collected ({why})")
                continue
        ready.append((s, path))
    return ready, notes


@dataclass
class BenchmarkResult:
    """What :func:`run_benchmark` computed and wrote.

    Attributes:
        rows: one dict per (set, reward setting): ``set``, ``setting`` and the :data:`TABLE_COLUMNS` metrics.
        notes: sets skipped and why.
        files: ``benchmark.json`` and ``benchmark.md`` in the output directory.
    """

    rows: list[dict[str, Any]]
    notes: list[str]
    files: dict[str, Path]


def run_benchmark(
    sets: Sequence[tuple[EpisodeSet, Path]],
    model: Any,
    out_dir: str | os.PathLike,
    *,
    reward_kind: str | None = None,
    reward_params: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
    batch_size: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> BenchmarkResult:
    """Evaluate one reward on every set and write ``out_dir/<set>/`` and the table (``benchmark.md``, ``.json``).

    Raises:
        InvalidParameterError: ``out_dir`` cannot be written. A set the reward cannot score is
            a note, not an error.
    """
    from vlmreward._html import format_number
    from vlmreward._json import json_safe
    from vlmreward._paths import write_output_text
    from vlmreward.eval.dataset import load_dataset
    from vlmreward.eval.outputs import evaluate_dataset
    from vlmreward.eval.progress_metrics import has_episodes
    from vlmreward.eval.report import markdown_table

    out = Path(out_dir)
    rows: list[dict[str, Any]] = []
    notes = list(notes)
    for s, path in sets:
        if progress is not None:
            progress(s.name)
        try:
            data = load_dataset(path)
            result = evaluate_dataset(
                data, model, [s.goal] if s.goal else None, out / s.name, reward_kind=reward_kind,
                reward_params=dict(reward_params or {}), options=dict(options or {}), batch_size=batch_size,
                mismatch=list(s.mismatch) if s.goal and has_episodes(data) else None,
            )
        except VLMRewardError as err:
            notes.append(f"{s.name}: skipped ({str(err).splitlines()[0]})")
            continue
        for r in result.results:
            summary = r.summary()
            rows.append({"set": s.name, "setting": r.name, **{k: summary.get(k, math.nan) for k, _ in TABLE_COLUMNS}})
    table = [[row["set"], row["setting"], *(format_number(row[k], 3) for k, _ in TABLE_COLUMNS)] for row in rows]
    text = "# Reward benchmark\n\n" + markdown_table(["set", "reward", *(h for _, h in TABLE_COLUMNS)], table) + "\n"
    if notes:
        text += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    files = {"json": out / "benchmark.json", "markdown": out / "benchmark.md"}
    out.mkdir(parents=True, exist_ok=True)
    write_output_text(files["markdown"], text)
    write_output_text(files["json"], json.dumps(json_safe({"rows": rows, "notes": notes,
                                                           "sets": [s.name for s, _ in sets]}), indent=2) + "\n")
    return BenchmarkResult(rows, notes, files)
