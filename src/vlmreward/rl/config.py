"""The run configuration: one YAML file describes a training run.

A config names the environment, the reward (a sentence for a VLM, or a non-VLM reference reward),
the vision-language model, the stable-baselines3 algorithm and the run's bookkeeping::

    env: {id: CartPole-v1, n_envs: 4}
    reward: {goal: "pole vertically upright on top of the cart", baseline: "pole and cart",
             alpha: 0.5, kind: ...}               # configs/cartpole.yaml names VLM-RM's kind
    model: openai/clip-vit-base-patch32          # or {name: ..., device: cuda, dtype: bf16}
    algorithm: DQN
    algorithm_kwargs: {learning_rate: 2.3e-3}
    total_steps: 50000

A goal-conditioned run adds a ``goals`` section (:class:`GoalsConfig`: the goal family, its
split into training and held-out goals, the contrastive reward's negatives) and a reward kind
that scores each frame against its episode's goal (Baumli et al.'s), e.g. ``configs/miniworld_goals.yaml``.

A ``scale`` section (:class:`~vlmreward.distributed.config.ScaleConfig`) moves the same run onto
a Ray cluster: environment workers and reward-model replicas as Ray actors (``docs/ray.md``).

:func:`load_config` reads such a file, applies ``--set KEY=VALUE`` overrides and validates it into
a :class:`RunConfig`. Every problem (a missing file, bad YAML, an unknown key, a value out of
range) is a :class:`ConfigError` whose message names the key path (``reward.alpha``) and what is
allowed there.

The sections are :mod:`vlmreward.rl.sections`; ``--set`` overrides, path resolution and the
translation of pydantic's errors are the config layer's (:mod:`vlmreward.config`), shared with
``relabel``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import ValidationError, create_model

from vlmreward._paths import atomic_write_text
from vlmreward._yamlfile import read_yaml_file
from vlmreward.config import MODEL_PATH_KEYS, ConfigError, ModelConfig, apply_overrides, describe_errors, parse_value, resolve_config_paths
from vlmreward.rewards.registry import UnknownRewardKindError, reward_kind
from vlmreward.rl.sections import (
    ALGORITHMS, BUILTIN_REWARD_KINDS, RESUME_OVERRIDABLE, EnvConfig, GoalsConfig, GoalSplitConfig, LogConfig, RewardConfig,
    RunConfig, ScaleConfig, reward_config_union,
)

__all__ = [
    "ConfigError", "RunConfig", "EnvConfig", "ModelConfig", "LogConfig", "RewardConfig", "BUILTIN_REWARD_KINDS",
    "reward_config_union", "GoalsConfig", "GoalSplitConfig", "ScaleConfig", "ALGORITHMS", "RESUME_OVERRIDABLE",
    "load_config", "parse_config", "apply_overrides", "parse_value", "dump_config", "save_config", "PATH_KEYS",
]


def load_config(path: str | os.PathLike, overrides: Iterable[str] = ()) -> RunConfig:
    """Read a YAML run config, apply ``--set`` overrides and validate it.

    Args:
        path: the YAML file.
        overrides: ``"KEY=VALUE"`` strings; ``KEY`` is dotted (``model.name``, ``reward.alpha``,
            ``algorithm_kwargs.learning_rate``), ``VALUE`` a YAML scalar or flow collection
            (``0.5``, ``true``, ``null``, ``[a, b]``); ``model=NAME`` sets ``model.name``.

    Returns:
        The validated :class:`RunConfig`.

    Raises:
        ConfigError: the file is missing or unreadable, is not valid YAML or not a mapping, an
            override is malformed, or validation fails (the message names every offending key
            and what is allowed).
    """
    path = Path(path)
    data = read_yaml_file(path, "config file", ConfigError, "; pass a YAML file such as configs/cartpole.yaml")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys (env:, reward:, ...); got a {type(data).__name__}.")
    data = resolve_config_paths(data, path.resolve().parent, PATH_KEYS)  # the file's paths: relative to the file
    data = resolve_config_paths(apply_overrides(data, overrides), Path.cwd(), PATH_KEYS)  # --set paths: relative to here
    return parse_config(data, source=str(path))


PATH_KEYS: tuple[tuple[str, ...], ...] = (*MODEL_PATH_KEYS, ("goals", "family"), ("env", "kwargs", "textures_dir"))
"""Run-config keys that may name a local file or directory."""


def parse_config(data: dict[str, Any], source: str = "config") -> RunConfig:
    """Validate a config mapping (as read from YAML) into a :class:`RunConfig`.

    Raises:
        ConfigError: every validation problem, one per key path, with the allowed values.
    """
    model = RunConfig
    kind = data.get("reward", {}).get("kind") if isinstance(data.get("reward"), dict) else None
    if isinstance(kind, str) and kind not in BUILTIN_REWARD_KINDS:
        try:
            reward_kind(kind)  # an entry point or "package.module:Class": imported and registered here
        except UnknownRewardKindError as err:
            raise ConfigError(f"invalid {source}: reward.kind: {err}") from None
        model = _run_config_with(kind)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"invalid {source}: " + describe_errors(err, model, kinds="reward kind") + ".") from None


@lru_cache(maxsize=None)
def _run_config_with(kind: str) -> type[RunConfig]:
    """:class:`RunConfig` whose ``reward`` section also accepts ``kind`` (a plugin's)."""
    return create_model("RunConfig", __base__=RunConfig, reward=(reward_config_union((*BUILTIN_REWARD_KINDS, kind)), ...))


def dump_config(config: RunConfig) -> str:
    """The resolved config (every default filled in) as YAML text that :func:`load_config` reads back."""
    data = config.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


def save_config(config: RunConfig, path: str | os.PathLike) -> Path:
    """Write :func:`dump_config` to ``path`` atomically (:func:`vlmreward._paths.atomic_write_text`)."""
    path = Path(path)
    atomic_write_text(path, dump_config(config))
    return path
