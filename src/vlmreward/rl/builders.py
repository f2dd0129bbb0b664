"""The building blocks of a training run, from a :class:`~vlmreward.rl.config.RunConfig`: the reward
model (through the reward registry), the goal text encoder, the training and evaluation
environments, and the stable-baselines3 algorithm. :mod:`vlmreward.rl.train` puts them together;
``vlmreward collect`` and the Ray runtime use them too."""

from __future__ import annotations

import inspect
import logging
import os
import re
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3 import DQN, PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from vlmreward._importing import import_object
from vlmreward.errors import VLMRewardError
from vlmreward.envs import VLMRewardWrapper, make_vlm_vec_env
from vlmreward.rewards.base import RewardModel
from vlmreward.rl.config import (
    ConfigError,
    RunConfig,
)
from vlmreward.rl.deferred import attach_reward_source, deferred_buffer_class
from vlmreward.rl.replay_storage import check_replay_buffer_fits, replay_buffer_bytes

__all__ = [
    "build_reward_model",
    "goal_text_encoder",
    "goal_sets",
    "env_kwargs_of",
    "make_training_env",
    "make_eval_env",
    "build_algorithm",
    "load_algorithm",
    "check_env_id",
    "ALGORITHM_CLASSES",
]

_log = logging.getLogger("vlmreward.rl")

ALGORITHM_CLASSES: dict[str, type[BaseAlgorithm]] = {"PPO": PPO, "SAC": SAC, "DQN": DQN}
_ACTION_SPACES: dict[str, tuple[type[gym.Space], ...]] = {
    "PPO": (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary),
    "SAC": (gym.spaces.Box,),
    "DQN": (gym.spaces.Discrete,),
}

def _load_vlm(config: RunConfig) -> Any:
    return config.model.spec().load("model.device")


def build_reward_model(config: RunConfig) -> RewardModel:
    """The reward model ``config.reward`` describes (:func:`vlmreward.rewards.registry.build_reward`),
    loading the VLM (``config.model``) once if the kind needs one.

    Raises:
        ConfigError: a bad device.
        InvalidParameterError: a ``custom`` factory that cannot be imported or called.
        ModelNotFoundError, ModelNotAvailableError, PromptError, InvalidParameterError: from
            :func:`vlmreward.load_model` and the reward classes.
    """
    from vlmreward.rewards.registry import build_reward

    if getattr(config.reward, "server", None) is not None:
        from vlmreward.rl.served import served_reward_model

        return served_reward_model(config, build_reward_model)
    vlm = _load_vlm(config) if config.needs_vlm else None
    return build_reward(config.reward.kind, config.reward_params(), vlm, config.reward_context())


def goal_text_encoder(config: RunConfig, reward_model: RewardModel | None = None) -> Any:
    """What embeds the goal sentences of a goal-conditioned run (``goals.text_encoder``), or None.

    ``model`` (and ``auto`` when the run has a model): the VLM's text tower, the reward's own
    model when it has one (loaded once); ``bag_of_words`` (and ``auto`` without a model): a
    :class:`~vlmreward.envs.goal_conditioning.BagOfWordsTextEncoder` of ``goals.encoder_dim``.
    """
    from vlmreward.envs.goal_conditioning import BagOfWordsTextEncoder, ModelTextEncoder
    from vlmreward.models.base import VisionLanguageModel

    goals = config.goals
    if goals is None:
        return None
    vlm = getattr(reward_model, "model", None)
    vlm = vlm if isinstance(vlm, VisionLanguageModel) else None
    if goals.text_encoder == "bag_of_words" or (goals.text_encoder == "auto" and vlm is None and not config.model.name):
        return BagOfWordsTextEncoder(goals.encoder_dim, seed=0)
    return ModelTextEncoder(vlm if vlm is not None else _load_vlm(config))


def goal_sets(config: RunConfig) -> list[str]:
    """The goal sets a goal-conditioned run is evaluated on: ``["train", "held_out"]`` with a
    split, else ``["all"]``; ``[]`` for a run without goals."""
    if config.goals is None:
        return []
    return ["train", "held_out"] if config.goals.has_split() else ["all"]


def env_kwargs_of(config: RunConfig, goal_set: str | None = None) -> dict[str, Any]:
    """``env.kwargs``, plus the goal family, split and goal set of a goal-conditioned run."""
    goals = config.goals
    if goals is None:
        return dict(config.env.kwargs)
    kwargs: dict[str, Any] = {"family": goals.load_family(), **goals.split_kwargs(), "goal_set": goal_sets(config)[0]}
    if goals.types is not None:
        kwargs["goal_types"] = list(goals.types)
    kwargs.update(config.env.kwargs)
    if goal_set is not None:
        kwargs["goal_set"] = goal_set
    return kwargs


def check_env_id(config: RunConfig) -> None:
    try:
        gym.spec(config.env.id)
    except gym.error.Error as err:
        raise ConfigError(f"env.id: {err}") from None


def make_training_env(
    config: RunConfig, reward_model: RewardModel, seed: int, normalize: bool = True, encoder: Any = None
) -> VecEnv:
    """``config.env.n_envs`` copies of the environment, VLM-rewarded, optionally ``VecNormalize``-d.

    Args:
        config: the run config.
        reward_model: from :func:`build_reward_model`.
        seed: seed of the sub-environments (``seed + i`` for the ``i``-th).
        normalize: wrap in a fresh ``VecNormalize`` when ``env.normalize_observations`` (False
            when the caller loads saved statistics itself).
        encoder: the goal text encoder of a goal-conditioned run (default :func:`goal_text_encoder`).

    Raises:
        ConfigError: an unknown environment id or bad environment keyword arguments.
    """
    check_env_id(config)
    mode, weight = config.reward_mode
    wrapper = None
    if config.goals is not None:
        from vlmreward.envs.goal_conditioning import GoalObservation

        encoder = encoder if encoder is not None else goal_text_encoder(config, reward_model)

        def wrapper(env: gym.Env) -> gym.Env:
            return GoalObservation(env, encoder)

    try:
        venv: VecEnv = make_vlm_vec_env(
            config.env.id,
            config.env.n_envs,
            reward_model,
            mode=mode,  # type: ignore[arg-type]
            weight=weight,
            deferred=config.deferred, overlap=config.overlapped,
            score_batch_size=config.score_batch_size,
            seed=seed,
            env_kwargs=env_kwargs_of(config),
            wrapper=wrapper,
        )
    except TypeError as err:
        raise ConfigError(f"env.kwargs: {config.env.id} does not accept them ({err}).") from err
    venv.observe_frames = True  # a learned reward pools the frames the agent reaches (not those of evaluations)
    if normalize and config.env.normalize_observations:
        venv = VecNormalize(venv, norm_obs=True, norm_reward=False)
    return venv


def make_eval_env(config: RunConfig, reward_model: RewardModel, goal_set: str | None = None, encoder: Any = None) -> gym.Env:
    """One environment with the run's reward (:class:`~vlmreward.envs.VLMRewardWrapper`), for evaluation.

    Args:
        config: the run config.
        reward_model: from :func:`build_reward_model`.
        goal_set: for a goal-conditioned run, the goals to draw from (``"train"``, ``"held_out"``
            or ``"all"``; default: the training goals); the observation carries the goal's embedding.
        encoder: the goal text encoder (default :func:`goal_text_encoder`).

    Raises:
        ConfigError: an unknown environment id or bad keyword arguments.
    """
    check_env_id(config)
    mode, weight = config.reward_mode
    try:
        env = gym.make(config.env.id, render_mode="rgb_array", **env_kwargs_of(config, goal_set))
    except TypeError as err:
        raise ConfigError(f"env.kwargs: {config.env.id} does not accept them ({err}).") from err
    if config.goals is not None:
        from vlmreward.envs.goal_conditioning import GoalObservation

        env = GoalObservation(env, encoder if encoder is not None else goal_text_encoder(config, reward_model))
    return VLMRewardWrapper(env, reward_model, mode=mode, weight=weight)  # type: ignore[arg-type]


def _algorithm_kwargs(config: RunConfig) -> dict[str, Any]:
    """``algorithm_kwargs`` with conveniences resolved: ``"lin_<v>"`` schedules, activation and feature-extractor names."""
    kwargs = dict(config.algorithm_kwargs)
    for key in ("learning_rate", "clip_range"):
        value = kwargs.get(key)
        if isinstance(value, str):
            match = re.fullmatch(r"lin_([-+]?[\d.]+(?:[eE][-+]?\d+)?)", value.strip())
            if not match:
                raise ConfigError(f"algorithm_kwargs.{key}: {value!r} is neither a number nor 'lin_<start value>'.")
            kwargs[key] = LinearSchedule(float(match.group(1)), 0.0, 1.0)
    policy_kwargs = kwargs.get("policy_kwargs")
    if isinstance(policy_kwargs, dict) and isinstance(policy_kwargs.get("activation_fn"), str):
        name = policy_kwargs["activation_fn"].removeprefix("nn.").removeprefix("torch.nn.")
        activation = getattr(torch.nn, name, None)
        if not (isinstance(activation, type) and issubclass(activation, torch.nn.Module)):
            raise ConfigError(f"algorithm_kwargs.policy_kwargs.activation_fn: {name!r} is not a torch.nn module (ReLU, Tanh, ...).")
        kwargs["policy_kwargs"] = {**policy_kwargs, "activation_fn": activation}
    policy_kwargs = kwargs.get("policy_kwargs")
    if isinstance(policy_kwargs, dict) and isinstance(policy_kwargs.get("features_extractor_class"), str):
        kwargs["policy_kwargs"] = {**policy_kwargs, "features_extractor_class": _extractor(policy_kwargs["features_extractor_class"])}
    return kwargs


def _extractor(name: str) -> type:
    """A features extractor class by short name (:data:`vlmreward.rl.policies.FEATURE_EXTRACTORS`) or ``module:Class``."""
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    from vlmreward.rl.policies import FEATURE_EXTRACTORS

    if name in FEATURE_EXTRACTORS:
        return FEATURE_EXTRACTORS[name]
    try:
        target: Any = import_object(name)
    except (ImportError, AttributeError, ValueError) as err:
        target = None
        problem = str(err)
    else:
        problem = "not a features extractor class"
    if not (isinstance(target, type) and issubclass(target, BaseFeaturesExtractor)):
        raise ConfigError(
            f"algorithm_kwargs.policy_kwargs.features_extractor_class: {name!r} ({problem}); use "
            f"{', '.join(FEATURE_EXTRACTORS)} or 'package.module:Class'."
        )
    return target


def _check_replay_buffer_memory(cls: type, kwargs: dict, venv: VecEnv) -> None:
    """Refuse a ``buffer_size`` whose replay buffer cannot fit in memory, before SB3 allocates it
    (NumPy's zero pages are committed only when written: the kernel would kill the run later)."""
    size = kwargs.get("buffer_size", inspect.signature(cls.__init__).parameters["buffer_size"].default)
    optimize = bool(kwargs.get("optimize_memory_usage", False))
    needed = replay_buffer_bytes(venv.observation_space, venv.action_space, int(size), optimize)
    try:
        check_replay_buffer_fits(needed, f"algorithm_kwargs.buffer_size ({int(size):,} transitions)")
    except VLMRewardError as err:
        raise ConfigError(str(err)) from err


def build_algorithm(config: RunConfig, venv: VecEnv) -> BaseAlgorithm:
    """The stable-baselines3 algorithm of ``config``, with deferred buffers when scoring is deferred.

    Raises:
        ConfigError: the algorithm does not support the environment's action space, SB3
            rejects an ``algorithm_kwargs`` value, or the replay buffer would not fit in the
            memory available (:func:`vlmreward.rl.replay_storage.replay_buffer_bytes`).
    """
    cls = ALGORITHM_CLASSES[config.algorithm]
    supported = _ACTION_SPACES[config.algorithm]
    if not isinstance(venv.action_space, supported):
        names = ", ".join(s.__name__ for s in supported)
        raise ConfigError(
            f"algorithm: {config.algorithm} supports {names} action spaces but {config.env.id} has "
            f"{type(venv.action_space).__name__}; use "
            + ("SAC or PPO" if isinstance(venv.action_space, gym.spaces.Box) else "DQN or PPO")
            + "."
        )
    kwargs = _algorithm_kwargs(config)
    if issubclass(cls, OffPolicyAlgorithm):
        _check_replay_buffer_memory(cls, kwargs, venv)
    buffer = _buffer_class(config, issubclass(cls, OffPolicyAlgorithm), isinstance(venv.observation_space, gym.spaces.Dict))
    if buffer is not None:
        kwargs["replay_buffer_class" if issubclass(cls, OffPolicyAlgorithm) else "rollout_buffer_class"] = buffer
    try:
        model = cls(config.policy, venv, seed=config.seed, verbose=0, **kwargs)
    except (TypeError, ValueError, AssertionError) as err:
        raise ConfigError(f"algorithm_kwargs: {config.algorithm} rejected them: {err}") from err
    attach_reward_source(model, venv)
    return model


def _buffer_class(config: RunConfig, off_policy: bool, dict_observations: bool) -> type | None:
    """The buffer class a run needs: a deferred one (deferred scoring), the relabelling replay buffer of a
    learned reward (off-policy), or None (SB3's default).

    Raises:
        ConfigError: a learned reward with dict observations off-policy (its relabelling buffer takes arrays).
    """
    if config.deferred:
        return deferred_buffer_class(off_policy, dict_observations)
    if off_policy and config.reward_kind.learned:
        if dict_observations:
            raise ConfigError(f"reward.kind {config.reward.kind!r} relabels a replay buffer of array observations; "
                              "goal-conditioned (dict) observations need an on-policy algorithm (PPO).")
        from vlmreward.rl.preference import PreferenceReplayBuffer

        return PreferenceReplayBuffer
    return None


def _serialized_keys(path: str | os.PathLike) -> list[str]:
    """The entries of an SB3 model archive's ``data`` that SB3 stores as pickles (``:serialized:``)."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise ConfigError(f"{path} is not a stable-baselines3 model archive ({type(err).__name__}: {err}).") from err
    return [k for k, v in data.items() if isinstance(v, dict) and ":serialized:" in v]


def load_algorithm(
    config: RunConfig,
    path: str | os.PathLike,
    observation_space: gym.Space,
    action_space: gym.Space,
    *,
    env: VecEnv | None = None,
    device: str = "auto",
    trust: bool = False,
) -> BaseAlgorithm:
    """``Algo.load(path)`` without unpickling anything from the archive.

    SB3's archive stores some attributes as pickles (the policy class, the spaces, schedules,
    buffer classes, the last observations), which ``load`` would unpickle, running whatever code
    they name. Each is given to ``load`` as a ``custom_objects`` replacement instead, rebuilt from
    the run's config and the environment's spaces (schedules and buffers are rebuilt by SB3's own
    ``_setup_model`` from the numbers the archive holds as JSON); the weights are read by SB3 with
    ``torch.load(weights_only=True)``. An entry this does not know (another SB3 version) is
    unpickled only with ``trust``.

    Raises:
        ConfigError: not an SB3 archive; an entry that only a pickle holds, without ``trust``.
    """
    from collections import deque

    cls = ALGORITHM_CLASSES[config.algorithm]
    kwargs = _algorithm_kwargs(config)
    defaults = {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
                if p.default is not inspect.Parameter.empty}
    policy = config.policy
    off_policy = issubclass(cls, OffPolicyAlgorithm)
    buffer = _buffer_class(config, off_policy, isinstance(observation_space, gym.spaces.Dict))
    known: dict[str, Any] = {
        **defaults,
        **kwargs,
        "policy_class": cls.policy_aliases[policy] if isinstance(policy, str) and policy in cls.policy_aliases else policy,
        "observation_space": _as_sb3_sees_it(observation_space),
        "action_space": action_space,
        "_last_obs": None, "_last_episode_starts": None, "_last_original_obs": None,  # load(env=) resets the env
        "ep_info_buffer": deque(maxlen=100), "ep_success_buffer": deque(maxlen=100),  # refilled by the episodes to come
        "lr_schedule": None, "exploration_schedule": None,  # rebuilt by _setup_model from learning_rate, exploration_*
        ("replay_buffer_class" if off_policy else "rollout_buffer_class"): buffer or kwargs.get(
            "replay_buffer_class" if off_policy else "rollout_buffer_class"),
    }
    serialized = _serialized_keys(path)
    unknown = [k for k in serialized if k not in known]
    if unknown and not trust:
        raise ConfigError(
            f"{path} stores {', '.join(unknown)} as pickles, which vlmreward cannot rebuild and loading would run; "
            "pass --trust-run-dir (trust=True) if you made this run directory yourself."
        )
    custom = {k: known[k] for k in serialized if k in known}
    return cls.load(str(path), env=env, device=device, custom_objects=custom)


def _as_sb3_sees_it(space: gym.Space) -> gym.Space:
    """The observation space SB3 stores for an environment with ``space``: channel-last images
    transposed to channel-first, as its ``VecTransposeImage`` wrapper does (also inside a ``Dict``)."""
    from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
    from stable_baselines3.common.vec_env import VecTransposeImage

    def needs(sub: gym.Space) -> bool:
        return is_image_space(sub) and not is_image_space_channels_first(sub)

    if isinstance(space, gym.spaces.Dict):
        if not any(needs(sub) for sub in space.spaces.values()):
            return space
        return gym.spaces.Dict({k: VecTransposeImage.transpose_space(sub, k) if needs(sub) else sub for k, sub in space.spaces.items()})
    return VecTransposeImage.transpose_space(space) if needs(space) else space
