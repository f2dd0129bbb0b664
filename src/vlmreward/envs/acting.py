"""A policy that acts in an environment while its frames are recorded (``vlmreward collect``).

:mod:`vlmreward.eval.collect` runs one; its own are random actions, a scripted sweep and a
family's expert, and a trained run's comes from :func:`vlmreward.rl.run_policy.load_run_policy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import gymnasium as gym

__all__ = ["ActingPolicy"]


@dataclass
class ActingPolicy:
    """What acts, and what the dataset's metadata says of it.

    Attributes:
        kind: ``"random"``, ``"scripted"``, ``"expert"`` or ``"run"``.
        act: observation → action.
        description: JSON-serialisable description (the dataset's ``policy`` metadata).
        env_id: the environment it was trained on (None: any).
        env_kwargs: the keyword arguments of ``gymnasium.make`` it was trained with.
        wrap: what its observations need around the environment (a goal embedding), or None.
        episode: the episode being recorded (the expert policy alternates on it).
    """

    kind: str
    act: Callable[[Any], Any]
    description: dict[str, Any]
    env_id: str | None = None
    env_kwargs: dict[str, Any] | None = None
    wrap: Callable[[gym.Env], gym.Env] | None = None
    episode: int = 0
