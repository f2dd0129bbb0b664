"""Train an agent from a sentence: a :class:`~vlmreward.rl.config.RunConfig` in, a run directory out.

:func:`train` loads the vision-language model once, builds the reward, the VLM-rewarded vector
environment (:func:`vlmreward.envs.make_vlm_vec_env`, deferred scoring with the buffers of
:mod:`vlmreward.rl.deferred`), the stable-baselines3 algorithm, and learns. The run directory::

    RUN_DIR/config.yaml            the resolved config (every default filled in)
    RUN_DIR/checkpoints/           step_<N>/{model.zip, replay_buffer.pkl, state.pkl, ...}, latest.json
    RUN_DIR/logs/                  progress.csv (+ TensorBoard event files)
    RUN_DIR/episodes.csv           one row per training episode: VLM and ground-truth return
    RUN_DIR/videos/                eval_<steps>.mp4: frames above the VLM reward so far
    RUN_DIR/final_model.zip        the trained model (SB3 format; ``PPO.load(...)``)

A run with a ``goals`` section trains one goal-conditioned agent on a goal family (Baumli et al.):
the environment draws a training goal at each reset, :class:`~vlmreward.envs.GoalObservation`
adds the goal's text embedding to the observation, the reward scores each frame against its
episode's goal, and the logs, evaluations and :func:`evaluate_run` report success per goal type,
on training and held-out goals separately.

A run with a ``scale`` section runs its environments and reward model as Ray actors
(:mod:`vlmreward.rl.scale`, ``docs/ray.md``); the learner, the run directory and resume are the same.

Nothing is lost on interruption: a ``KeyboardInterrupt`` or an exception inside ``learn`` writes
a checkpoint first (:class:`~vlmreward.rl.checkpoints.Checkpointer`), and :func:`resume` continues
from the latest checkpoint to exactly ``total_steps``.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterable

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DQN, PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import CSVOutputFormat, Logger, make_output_format
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from vlmreward._importing import import_object
from vlmreward.envs import VLMRewardWrapper, make_vlm_vec_env
from vlmreward.rewards.base import RewardModel
from vlmreward.rl.callbacks import CheckpointCallback, EpisodeLogCallback, EvalCallback, StopAtTotalSteps
from vlmreward.rl.checkpoints import CheckpointError, Checkpointer, latest_checkpoint, restore_rng_state
from vlmreward.rl.config import (
    RESUME_OVERRIDABLE,
    ConfigError,
    RunConfig,
    load_config,
    save_config,
)
from vlmreward.rl.deferred import attach_reward_source, deferred_buffer_class
from vlmreward.rl.evaluation import PolicyEvaluation, evaluate_episodes

__all__ = [
    "train",
    "resume",
    "evaluate_run",
    "load_run_config",
    "TrainingInterrupted",
    "build_reward_model",
    "goal_text_encoder",
    "goal_sets",
    "env_kwargs_of",
    "make_training_env",
    "make_eval_env",
    "build_algorithm",
    "ALGORITHM_CLASSES",
    "CONFIG_FILE",
    "FINAL_MODEL_FILE",
    "FINAL_VEC_NORMALIZE_FILE",
    "EVALUATION_FILE",
]

_log = logging.getLogger("vlmreward.rl")

ALGORITHM_CLASSES: dict[str, type[BaseAlgorithm]] = {"PPO": PPO, "SAC": SAC, "DQN": DQN}
_ACTION_SPACES: dict[str, tuple[type[gym.Space], ...]] = {
    "PPO": (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary),
    "SAC": (gym.spaces.Box,),
    "DQN": (gym.spaces.Discrete,),
}
CONFIG_FILE = "config.yaml"
FINAL_MODEL_FILE = "final_model.zip"
FINAL_VEC_NORMALIZE_FILE = "final_vecnormalize.pkl"
EVALUATION_FILE = "evaluation.json"
EVAL_SEED_OFFSET = 1_000_003
"""Evaluation environments are seeded ``seed + EVAL_SEED_OFFSET``: episodes unlike training's."""


class TrainingInterrupted(KeyboardInterrupt):
    """``learn`` was interrupted (Ctrl-C); a checkpoint was written first.

    Attributes:
        run_dir: the run directory (resume with ``vlmreward train --resume RUN_DIR``).
        checkpoint: the checkpoint directory written, or None if none could be.
        num_timesteps: the step count saved.
    """

    def __init__(self, run_dir: Path, checkpoint: Path | None, num_timesteps: int) -> None:
        where = f"checkpoint {checkpoint}" if checkpoint else "no new checkpoint"
        super().__init__(f"training interrupted at {num_timesteps} steps; {where}; resume with: vlmreward train --resume {run_dir}")
        self.run_dir = run_dir
        self.checkpoint = checkpoint
        self.num_timesteps = num_timesteps


# ---------------------------------------------------------------------------------------------
# building blocks


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


def _check_env_id(config: RunConfig) -> None:
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
    _check_env_id(config)
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
            deferred=config.deferred,
            score_batch_size=config.score_batch_size,
            seed=seed,
            env_kwargs=env_kwargs_of(config),
            wrapper=wrapper,
        )
    except TypeError as err:
        raise ConfigError(f"env.kwargs: {config.env.id} does not accept them ({err}).") from err
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
    _check_env_id(config)
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


def build_algorithm(config: RunConfig, venv: VecEnv) -> BaseAlgorithm:
    """The stable-baselines3 algorithm of ``config``, with deferred buffers when scoring is deferred.

    Raises:
        ConfigError: the algorithm does not support the environment's action space, or SB3
            rejects an ``algorithm_kwargs`` value.
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
    if config.deferred:
        key = "replay_buffer_class" if issubclass(cls, OffPolicyAlgorithm) else "rollout_buffer_class"
        kwargs[key] = deferred_buffer_class(key == "replay_buffer_class", isinstance(venv.observation_space, gym.spaces.Dict))
    try:
        model = cls(config.policy, venv, seed=config.seed, verbose=0, **kwargs)
    except (TypeError, ValueError, AssertionError) as err:
        raise ConfigError(f"algorithm_kwargs: {config.algorithm} rejected them: {err}") from err
    attach_reward_source(model, venv)
    return model


class _ResumableCSV(CSVOutputFormat):
    """SB3's CSV output, continuing an existing ``progress.csv`` (same header, rows appended)."""

    def __init__(self, filename: str) -> None:  # noqa: D107
        exists = os.path.isfile(filename) and os.path.getsize(filename) > 0
        self.file = open(filename, "r+" if exists else "w+")
        header = self.file.readline().rstrip("\n") if exists else ""
        self.keys = header.split(",") if header else []
        self.file.seek(0, os.SEEK_END)
        self.separator = ","
        self.quotechar = '"'


def _make_logger(config: RunConfig, run_dir: Path) -> Logger:
    folder = run_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    formats = [_ResumableCSV(str(folder / "progress.csv"))]
    if config.log.tensorboard:
        formats.append(make_output_format("tensorboard", str(folder)))
    if config.log.stdout:
        formats.append(make_output_format("stdout", str(folder)))
    return Logger(folder=str(folder), output_formats=formats)


def _new_run_dir(config: RunConfig) -> Path:
    base = Path(config.output_dir)
    if config.run_name:
        run_dir = base / config.run_name
        if (run_dir / CONFIG_FILE).exists():
            raise ConfigError(
                f"run_name: {run_dir} already holds a run; continue it with `vlmreward train --resume {run_dir}` "
                "or choose another run_name."
            )
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        slug = re.sub(r"[^\w.\-]+", "-", config.env.id.split("/")[-1])
        run_dir = base / f"{config.algorithm.lower()}-{slug}-{stamp}"
        k = 1
        while run_dir.exists():
            run_dir = base / f"{config.algorithm.lower()}-{slug}-{stamp}-{k}"
            k += 1
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"output_dir: cannot create {run_dir} ({err}).") from err
    return run_dir


def _interactive() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def _atomic_model_save(model: BaseAlgorithm, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.zip")
    model.save(tmp)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# learning


def _learn(
    config: RunConfig,
    run_dir: Path,
    model: BaseAlgorithm,
    reward_model: RewardModel,
    *,
    reset_num_timesteps: bool,
    progress_bar: bool | None,
) -> Path:
    """Learn until ``config.total_steps``, checkpointing and evaluating; the shared end of train and resume."""
    model.set_logger(_make_logger(config, run_dir))
    checkpointer = Checkpointer(run_dir, config.algorithm, keep=config.keep_checkpoints)
    episode_log = EpisodeLogCallback(run_dir / "episodes.csv", config.log.stats_window, goal_columns=config.goals is not None)
    callbacks: list[BaseCallback] = [episode_log, CheckpointCallback(checkpointer, config.checkpoint_every)]
    evaluators: list[EvalCallback] = []
    if config.eval_every is not None:
        encoder = goal_text_encoder(config, reward_model)
        sets = goal_sets(config) or [None]
        for goal_set in sets:  # a goal-conditioned run: training goals, then held-out goals
            evaluators.append(
                EvalCallback(
                    lambda goal_set=goal_set: make_eval_env(config, reward_model, goal_set, encoder),
                    config.eval_every,
                    config.eval_episodes,
                    video_dir=run_dir / "videos" if config.video and goal_set == sets[0] else None,
                    seed=config.seed + EVAL_SEED_OFFSET,
                    prefix="eval_held_out" if goal_set == "held_out" else "eval",
                )
            )
        callbacks.extend(evaluators)
    if isinstance(model, OffPolicyAlgorithm):
        callbacks.append(StopAtTotalSteps(config.total_steps))
    (run_dir / "videos").mkdir(exist_ok=True)
    remaining = config.total_steps - model.num_timesteps
    show_progress = _interactive() if progress_bar is None else progress_bar
    try:
        try:
            model.learn(remaining, callback=callbacks, reset_num_timesteps=reset_num_timesteps, progress_bar=show_progress)
        except KeyboardInterrupt:
            checkpoint = _save_after_interruption(checkpointer, model, "interrupt")
            saved = checkpointer.last.num_timesteps if checkpoint is not None and checkpointer.last else model.num_timesteps
            raise TrainingInterrupted(run_dir, checkpoint, saved) from None
        except Exception as err:
            checkpoint = _save_after_interruption(checkpointer, model, "error")
            if checkpoint is not None:
                note = f"checkpoint written to {checkpoint}; resume with `vlmreward train --resume {run_dir}`"
                err.add_note(f"vlmreward: {note}")
                _log.warning("training failed (%s): %s", type(err).__name__, note)
            raise
        checkpointer.save(model, "final")
        _atomic_model_save(model, run_dir / FINAL_MODEL_FILE)
        vec_normalize = model.get_vec_normalize_env()
        if vec_normalize is not None:
            vec_normalize.save(str(run_dir / FINAL_VEC_NORMALIZE_FILE))
    finally:
        episode_log.close()
        for evaluator in evaluators:
            evaluator.close()
        model.logger.close()
        env = model.get_env()
        if env is not None:
            env.close()
    _log.info("training finished at %d steps: %s", model.num_timesteps, run_dir)
    return run_dir


def _save_after_interruption(checkpointer: Checkpointer, model: BaseAlgorithm, reason: str) -> Path | None:
    try:
        return checkpointer.save_after_interruption(model, reason)
    except BaseException as save_err:  # noqa: BLE001 (the original error matters more)
        _log.error("could not write a checkpoint after the %s: %r", reason, save_err)
        return None


def train(config: RunConfig | str | os.PathLike, overrides: Iterable[str] = (), *, progress_bar: bool | None = None) -> Path:
    """Train an agent as ``config`` says; returns the run directory.

    Args:
        config: a :class:`RunConfig`, or the path of a YAML config (then ``overrides`` apply,
            ``"KEY=VALUE"`` as for ``--set``).
        overrides: ``--set`` overrides, for a config given as a path.
        progress_bar: show SB3's progress bar (default: when stderr is a terminal).

    Returns:
        The run directory (layout in the module docstring).

    Raises:
        ConfigError: an invalid config, unknown environment, or an algorithm that does not fit it.
        TrainingInterrupted: (a ``KeyboardInterrupt``) after writing a checkpoint.
        Exception: anything raised inside ``learn`` (e.g. by the reward model), after writing a
            checkpoint (its path is added to the exception's notes).
        VLMRewardError: model loading and reward construction errors; with a ``scale`` section, a
            :class:`~vlmreward.distributed.errors.ClusterError` (Ray missing or unreachable, too
            few GPUs/CPUs, a replica that cannot load the model) before training starts.
    """
    if not isinstance(config, RunConfig):
        config = load_config(config, overrides)
    reward_model, venv, runtime = _reward_and_env(config, seed=config.seed, normalize=True)
    try:
        try:
            model = build_algorithm(config, venv)
            run_dir = _new_run_dir(config)
            save_config(config, run_dir / CONFIG_FILE)
        except BaseException:
            venv.close()
            raise
        _log.info("run directory: %s", run_dir)
        return _learn(config, run_dir, model, reward_model, reset_num_timesteps=True, progress_bar=progress_bar)
    finally:
        if runtime is not None:
            runtime.close()


def _reward_and_env(config: RunConfig, seed: int, normalize: bool) -> tuple[RewardModel, VecEnv, Any]:
    """The reward model and training environment of :func:`train` and :func:`resume`, and the
    :class:`~vlmreward.rl.scale.RayRuntime` holding them for a run with a ``scale`` section (else
    None; the caller closes it after learning).

    Raises:
        ClusterError: Ray missing or unreachable, too few resources, a replica or worker that
            cannot start (see :class:`~vlmreward.rl.scale.RayRuntime`).
    """
    if config.scale is None:
        reward_model = build_reward_model(config)
        return reward_model, make_training_env(config, reward_model, seed=seed, normalize=normalize), None
    from functools import partial

    from vlmreward.rl.scale import RayRuntime, replica_config

    _check_env_id(config)
    if config.reward.kind == "ground_truth":
        runtime = RayRuntime(config, local_reward=build_reward_model(config), env_seed=seed)
    else:
        runtime = RayRuntime(config, reward_factory=partial(build_reward_model, replica_config(config)), env_seed=seed)
    runtime.start()
    try:
        assert runtime.reward_model is not None
        return runtime.reward_model, runtime.make_training_env(seed, normalize=normalize), runtime
    except BaseException:
        runtime.close()
        raise


def _check_resume_overrides(overrides: Iterable[str]) -> list[str]:
    items = list(overrides)
    for item in items:
        key = item.partition("=")[0].strip()
        if not any(key == k or key.startswith(k + ".") for k in RESUME_OVERRIDABLE):
            raise ConfigError(
                f"--set {key}: cannot change when resuming (it would be another run); resumable keys: "
                f"{', '.join(RESUME_OVERRIDABLE)}. Start a new run with `vlmreward train CONFIG` instead."
            )
    return items


def load_run_config(run_dir: str | os.PathLike, overrides: Iterable[str] = ()) -> RunConfig:
    """The config saved in a run directory (``RUN_DIR/config.yaml``), with overrides.

    Raises:
        ConfigError: not a run directory, or an invalid config.
    """
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{str(run_dir)!r} is not a run directory ({CONFIG_FILE} is missing); give the directory `vlmreward train` created.")
    return load_config(path, overrides)


def resume(run_dir: str | os.PathLike, overrides: Iterable[str] = (), *, progress_bar: bool | None = None) -> Path:
    """Continue a run from its latest checkpoint until ``total_steps`` in all.

    Loads the checkpoint's model (``Algo.load(..., env=new_env)``), replay buffer, ``VecNormalize``
    statistics and RNG states, re-attaches the deferred buffer to the new environment and learns
    the remaining steps with ``reset_num_timesteps=False``; logs, ``episodes.csv`` and checkpoints
    continue in the same directory. A finished run is left as it is (unless ``total_steps`` is
    raised with an override).

    Args:
        run_dir: a directory made by :func:`train`.
        overrides: ``"KEY=VALUE"`` changes allowed on resume (:data:`RESUME_OVERRIDABLE`, e.g.
            ``total_steps=200000``); they are written into ``RUN_DIR/config.yaml``.
        progress_bar: as for :func:`train`.

    Returns:
        ``run_dir``.

    Raises:
        ConfigError: not a run directory, or an override of a key that would change the run.
        CheckpointError: no checkpoint to resume from.
        TrainingInterrupted, Exception: as :func:`train`.
    """
    run_dir = Path(run_dir)
    items = _check_resume_overrides(overrides)
    config = load_run_config(run_dir, items)
    info = latest_checkpoint(run_dir)
    if info.algorithm != config.algorithm:
        raise CheckpointError(f"checkpoint {info.path} is of {info.algorithm} but {run_dir / CONFIG_FILE} says {config.algorithm}.")
    if items:
        save_config(config, run_dir / CONFIG_FILE)
    state = info.load_state()
    if state["num_timesteps"] >= config.total_steps and (run_dir / FINAL_MODEL_FILE).is_file():
        _log.info("run %s is complete (%d of %d steps)", run_dir, state["num_timesteps"], config.total_steps)
        return run_dir
    reward_model, venv, runtime = _reward_and_env(config, seed=config.seed + int(state["num_timesteps"]), normalize=False)
    try:
        try:
            if info.vec_normalize is not None:
                venv = VecNormalize.load(str(info.vec_normalize), venv)
            cls = ALGORITHM_CLASSES[config.algorithm]
            device = config.algorithm_kwargs.get("device", "auto")
            model = cls.load(info.model, env=venv, device=device)
            if info.replay_buffer is not None and isinstance(model, OffPolicyAlgorithm):
                model.load_replay_buffer(info.replay_buffer)
            attach_reward_source(model, venv)
            model.num_timesteps = int(state["num_timesteps"])
            venv.seed(config.seed + model.num_timesteps)  # Algo.load re-seeded it with the run's seed
            restore_rng_state(state["rng"], model)
        except BaseException:
            venv.close()
            raise
        _log.info("resuming %s at %d of %d steps", run_dir, model.num_timesteps, config.total_steps)
        return _learn(config, run_dir, model, reward_model, reset_num_timesteps=False, progress_bar=progress_bar)
    finally:
        if runtime is not None:
            runtime.close()


# ---------------------------------------------------------------------------------------------
# evaluation of a finished run


def _policy_source(run_dir: Path) -> tuple[Path, Path | None, str]:
    final = run_dir / FINAL_MODEL_FILE
    if final.is_file():
        norm = run_dir / FINAL_VEC_NORMALIZE_FILE
        return final, norm if norm.is_file() else None, "final model"
    info = latest_checkpoint(run_dir)
    return info.model, info.vec_normalize, f"checkpoint at {info.num_timesteps} steps"


def evaluate_run(
    run_dir: str | os.PathLike,
    episodes: int = 10,
    *,
    deterministic: bool = True,
    video: bool = True,
    seed: int | None = None,
) -> dict[str, Any]:
    """Roll out a run's final (else latest checkpointed) policy on the run's environment and reward.

    Writes ``RUN_DIR/evaluation.json`` (the returned dict) and, with ``video``,
    ``RUN_DIR/videos/evaluation.mp4`` of the first episode.

    Args:
        run_dir: a directory made by :func:`train`.
        episodes: number of episodes (≥ 1).
        deterministic: the policy's mode action instead of a sample.
        video: write the video.
        seed: seed of the first episode (default: the run's evaluation seed).

    Returns:
        ``{"policy", "episodes", "mean_gt_return", "std_gt_return", "mean_vlm_return",
        "success_rate" (None if the environment reports none), "gt_returns", "vlm_returns", ...}``.
        For a goal-conditioned run, ``episodes`` episodes on each goal set: the top-level values
        are those of the training goals (``"goal_set"``), and ``"goal_sets"`` holds
        ``{"train": {...}, "held_out": {...}}`` (or ``{"all": ...}`` without a split), each with
        ``success_rate_by_goal_type``.

    Raises:
        ConfigError: not a run directory, or ``episodes < 1``.
        CheckpointError: the run has neither a final model nor a checkpoint.
    """
    if episodes < 1:
        raise ConfigError(f"episodes must be at least 1; got {episodes}.")
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    model_path, norm_path, source = _policy_source(run_dir)
    reward_model = build_reward_model(config)
    encoder = goal_text_encoder(config, reward_model)
    model = ALGORITHM_CLASSES[config.algorithm].load(model_path, device=config.algorithm_kwargs.get("device", "auto"))
    vec_normalize = None
    if norm_path is not None:
        with open(norm_path, "rb") as f:
            import pickle

            vec_normalize = pickle.load(f)
        vec_normalize.training = False
    results: dict[str, PolicyEvaluation] = {}
    for goal_set in goal_sets(config) or [None]:
        env = make_eval_env(config, reward_model, goal_set, encoder)
        try:
            video_path = run_dir / "videos" / "evaluation.mp4" if video and not results else None
            results[goal_set or ""] = evaluate_episodes(
                model, env, episodes, deterministic=deterministic, video_path=video_path, vec_normalize=vec_normalize,
                seed=config.seed + EVAL_SEED_OFFSET if seed is None else seed,
            )
        finally:
            env.close()
    result = next(iter(results.values()))
    data = {
        "run_dir": str(run_dir),
        "policy": source,
        "model_file": str(model_path),
        "num_timesteps": int(model.num_timesteps),
        "deterministic": deterministic,
        "env": config.env.id,
        "reward": reward_model.describe(),
        **result.to_dict(),
    }
    if config.goals is not None:  # success on training and held-out goals, separately
        data["goal_set"] = next(iter(results))
        data["goal_sets"] = {name: r.to_dict() for name, r in results.items()}
    data = _json_safe(data)
    tmp = run_dir / f".{EVALUATION_FILE}.tmp"
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, run_dir / EVALUATION_FILE)
    return data


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return _json_safe(value.item())
    return value
