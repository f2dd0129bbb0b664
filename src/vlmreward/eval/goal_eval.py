"""Offline evaluation of goal-family rewards: every frame scored against its own goal, metrics per goal type.

A dataset collected from a goal-conditioned environment (``vlmreward collect
vlmreward/MiniWorldGoals-v0``) records each frame's goal (``goal_key``, ``goal``, ``goal_type``
columns) and the goal family (``metadata["goal_family"]``). Its reward is Baumli et al.'s
``p(goal | frame)`` against the family's negatives
(:class:`~vlmreward.rewards.GoalFamilySoftmaxReward`), and its precision-recall curve and average
precision are computed over all frames and per goal type (any column: ``group_by``), as the
paper's offline evaluation does per model size and prompt.

Prompt templates per goal type (``templates``: ``{find: "a photo of a {object} in a room"}``)
change the reward's prompts, not the goals; :func:`parse_goal_template_sets` reads a prompts file
of several such sets for ``vlmreward sweep`` (the paper's prompt-engineering comparison)::

    goal_templates:
      canonical: {}                                   # the family's own sentences
      photo:
        find: a photo of a {object} in a room
        lift: a photo of a hand holding a {object}
        place: a photo of a {object} next to a {target}
      agent:
        find: the agent is next to the {object}
    negatives: all                                    # optional: all | same_template | k_sampled
    k: 8                                              # with k_sampled

A goal type a set does not name keeps the family's canonical template.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from vlmreward.errors import InvalidParameterError, PromptFileError
from vlmreward.eval.dataset import Dataset, MissingLabelError
from vlmreward.goals import NEGATIVE_MODES, GoalFamily, as_goal_family
from vlmreward.rewards.registry import RewardContext

__all__ = [
    "GOAL_COLUMN",
    "DEFAULT_GROUP_BY",
    "is_goal_dataset",
    "dataset_goal_family",
    "dataset_goals",
    "family_context",
    "group_values",
    "parse_goal_template_sets",
    "plot_metric_by_group",
]

GOAL_COLUMN = "goal_key"
"""The column naming each frame's goal (its task key; ``goal``, the sentence, is a fallback)."""

DEFAULT_GROUP_BY = "goal_type"
"""The column goal datasets are grouped by unless told otherwise."""


def is_goal_dataset(dataset: Dataset) -> bool:
    """Whether each frame of ``dataset`` has its own goal (a ``goal_key`` or ``goal`` column and a goal family)."""
    return "goal_family" in dataset.metadata and (GOAL_COLUMN in dataset.table or "goal" in dataset.table)


def dataset_goal_family(dataset: Dataset, family: GoalFamily | Mapping[str, Any] | str | None = None) -> GoalFamily:
    """The goal family to score ``dataset`` with: ``family`` if given, else the one in its metadata.

    Raises:
        MissingLabelError: neither is available.
    """
    if family is not None:
        return as_goal_family(family)
    data = dataset.metadata.get("goal_family")
    if data is None:
        raise MissingLabelError(
            f"dataset {str(dataset.path)!r} records no goal family; collect it from a goal-conditioned environment "
            "(vlmreward/MiniWorldGoals-v0) or give one with --goal-family FILE."
        )
    return as_goal_family(data)


def dataset_goals(dataset: Dataset) -> list[str]:
    """Each frame's goal, as its key (``goal_key``) or, failing that, its sentence (``goal``).

    Raises:
        MissingLabelError: the dataset has neither column.
    """
    column = GOAL_COLUMN if GOAL_COLUMN in dataset.table else "goal"
    return [str(v) for v in dataset.column(column, "goal column")]


def family_context(family: GoalFamily, negatives: str = "all", k: int | None = None, seed: int = 0) -> RewardContext:
    """The :class:`~vlmreward.rewards.registry.RewardContext` of a goal dataset's reward: its goal
    family and each goal's negatives (``all``, ``same_template`` or ``k_sampled`` with ``k``).

    Raises:
        InvalidParameterError: an unknown negatives mode.
    """
    if negatives not in NEGATIVE_MODES:
        raise InvalidParameterError(f"negatives mode {negatives!r}: use one of {', '.join(NEGATIVE_MODES)}.")
    return RewardContext(family=family, negatives=negatives, k=k, seed=seed)


def group_values(dataset: Dataset, column: str) -> np.ndarray:
    """The values of the grouping column as strings ``[N]``.

    Raises:
        MissingLabelError: no such column.
    """
    return np.asarray([str(v) for v in dataset.column(column, "column to group by")], dtype=object)


def _templates(value: Any, where: str) -> dict[str, list[str]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PromptFileError(f"{where} must map goal types to a template or a list of templates; got {value!r}.")
    out: dict[str, list[str]] = {}
    for goal_type, templates in value.items():
        items = [templates] if isinstance(templates, str) else templates
        if not isinstance(items, list) or not items or not all(isinstance(t, str) and t.strip() for t in items):
            raise PromptFileError(f"{where}.{goal_type} must be a non-empty template or list of templates; got {templates!r}.")
        out[str(goal_type)] = list(items)
    return out


def parse_goal_template_sets(data: Mapping[str, Any], source: str = "prompts") -> tuple[dict[str, dict[str, list[str]]], dict[str, Any]]:
    """Template sets of a prompts file's ``goal_templates:`` section (module docstring).

    Returns:
        ``({set name: {goal type: [templates]}}, {"negatives": mode, "k": k})``.

    Raises:
        PromptFileError: a malformed section, an unknown negatives mode, ``k_sampled`` without ``k``.
    """
    section = data.get("goal_templates")
    if not isinstance(section, Mapping) or not section:
        raise PromptFileError(
            f"{source}: goal_templates must map set names to {{goal type: template}}; e.g. "
            "photo: {find: 'a photo of a {object} in a room'}."
        )
    sets = {str(name): _templates(spec or {}, f"{source}: goal_templates.{name}") for name, spec in section.items()}
    negatives = data.get("negatives", "all")
    if negatives not in NEGATIVE_MODES:
        raise PromptFileError(f"{source}: negatives {negatives!r}: use one of {', '.join(NEGATIVE_MODES)}.")
    k = data.get("k")
    if negatives == "k_sampled" and not (isinstance(k, int) and k >= 1):
        raise PromptFileError(f"{source}: negatives k_sampled needs k: N (N ≥ 1); got {k!r}.")
    return sets, {"negatives": negatives, "k": k}


def plot_metric_by_group(path: str | Path, table: Mapping[str, Mapping[str, float]], metric: str = "average precision",
                         title: str = "") -> None:
    """Grouped bars: ``table[series][group]`` (e.g. AP per prompt set and goal type)."""
    from vlmreward.eval.landscape import _colours, _figure

    series = list(table)
    groups = list(dict.fromkeys(g for s in series for g in table[s]))
    fig = _figure(max(6.0, 1.2 * len(groups) * max(1, len(series)) / 2 + 3), 4.0)
    ax = fig.subplots(1, 1)
    width = 0.8 / max(1, len(series))
    for j, (name, colour) in enumerate(zip(series, _colours(len(series)))):
        heights = [table[name].get(g, math.nan) for g in groups]
        ax.bar(np.arange(len(groups)) + (j - (len(series) - 1) / 2) * width, heights, width, color=colour, label=name)
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3, axis="y")
    if title:
        ax.set_title(title, fontsize="medium")
    ax.legend(fontsize="x-small")
    fig.savefig(path, dpi=120)
