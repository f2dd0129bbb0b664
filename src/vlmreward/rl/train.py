"""Train an agent from a sentence: a :class:`~vlmreward.rl.config.RunConfig` in, a run directory out.

:func:`train` loads the vision-language model once, builds the reward, the VLM-rewarded vector
environment (:func:`vlmreward.envs.make_vlm_vec_env`, deferred scoring with the buffers of
:mod:`vlmreward.rl.deferred`), the stable-baselines3 algorithm, and learns. The run directory::

    RUN_DIR/config.yaml            the resolved config (every default filled in)
    RUN_DIR/checkpoints/           step_<N>/{model.zip, replay_buffer.npz, state.json, rng.npz, manifest.json}, latest.json
    RUN_DIR/logs/                  progress.csv (+ TensorBoard event files), columns.txt (what they mean)
    RUN_DIR/episodes.csv           one row per training episode: VLM and ground-truth return, success
    RUN_DIR/evaluations.jsonl      one line per evaluation
    RUN_DIR/curves.png             VLM vs ground-truth return and success rate (each evaluation, and the end)
    RUN_DIR/report.html            set-up, curves, evaluations, videos (each evaluation, and the end)
    RUN_DIR/videos/                eval_<steps>.mp4: goal, frames, rewards and success, the VLM reward so far
    RUN_DIR/final_model.zip        the trained model (SB3 format; ``PPO.load(...)``)

A run with a ``goals`` section trains one goal-conditioned agent on a goal family (Baumli et al.):
the environment draws a training goal at each reset, :class:`~vlmreward.envs.GoalObservation`
adds the goal's text embedding to the observation, the reward scores each frame against its
episode's goal, and the logs, evaluations and :func:`evaluate_run` report success per goal type,
on training and held-out goals separately.

A run with a ``scale`` section runs its environments and reward model as Ray actors
(:mod:`vlmreward.rl.scale`, ``docs/ray.md``); the learner, the run directory and resume are the same.

Nothing is lost on interruption: a ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM/SIGUSR1 through
:mod:`vlmreward.rl.signals`) or an exception inside ``learn`` writes a checkpoint first (:class:`~vlmreward.rl.checkpoints.Checkpointer`), and :func:`resume` continues
from the latest checkpoint to exactly ``total_steps``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, Iterable

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from vlmreward._locking import exclusive_directory
from vlmreward.rewards.base import RewardModel, is_learned
from vlmreward.rl.callbacks import CheckpointCallback, EpisodeLogCallback, EvalCallback, StopAtTotalSteps
from vlmreward.rl.curves import CURVES_FILE, write_curves
from vlmreward.rl.progress import ProgressLogCallback
from vlmreward.rl.report import EVALUATIONS_FILE, REPORT_FILE, read_evaluations, run_setup, write_run_report
from vlmreward.rl.signals import KeepSignalHandlers, preemption_signals, shielded
from vlmreward.rl.checkpoints import CheckpointError, Checkpointer, latest_checkpoint, restore_rng_state
from vlmreward.rl.config import (
    RunConfig,
    load_config,
    save_config,
)
from vlmreward.rl.deferred import attach_reward_source
from vlmreward.rl.logs import make_logger, truncate_logs
from vlmreward.rl.preference import LABEL_CACHE_FILE, PreferenceUpdateCallback, load_learned_state
from vlmreward.rl.run_state import save_vec_normalize
from vlmreward.rl.builders import (
    ALGORITHM_CLASSES,
    build_algorithm,
    build_reward_model,
    check_env_id,
    env_kwargs_of,
    goal_sets,
    goal_text_encoder,
    load_algorithm,
    make_eval_env,
    make_training_env,
)
from vlmreward.rl.run_dir import (
    CONFIG_FILE,
    EVALUATION_FILE,
    FINAL_MODEL_FILE,
    FINAL_VEC_NORMALIZE_FILE,
    atomic_model_save,
    load_run_config,
    new_run_dir,
    check_resume_overrides,
    record_batch_choices,
    record_model_fingerprint,
    record_origin,
    warn_if_made_elsewhere,
)

from vlmreward.rl.run_evaluation import EVAL_SEED_OFFSET, evaluate_run

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



class TrainingInterrupted(KeyboardInterrupt):
    """``learn`` was interrupted (Ctrl-C, or SIGTERM/SIGUSR1: :mod:`vlmreward.rl.signals`); a checkpoint was written first.

    Attributes:
        run_dir: the run directory (resume with ``vlmreward train --resume RUN_DIR``).
        checkpoint: the checkpoint directory written, or None if none could be.
        num_timesteps: the step count saved.
        signum: the signal (``signal.SIGINT`` for Ctrl-C).
    """

    def __init__(self, run_dir: Path, checkpoint: Path | None, num_timesteps: int, signum: int = signal.SIGINT) -> None:
        where = f"checkpoint {checkpoint}" if checkpoint else "no new checkpoint"
        name = signal.Signals(signum).name
        super().__init__(
            f"training interrupted ({name}) at {num_timesteps} steps; {where}; resume with: vlmreward train --resume {run_dir}"
        )
        self.run_dir = run_dir
        self.checkpoint = checkpoint
        self.num_timesteps = num_timesteps
        self.signum = int(signum)



def _interactive() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


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
    model.set_logger(make_logger(config, run_dir, purge_after=None if reset_num_timesteps else model.num_timesteps))
    episode_log = EpisodeLogCallback(run_dir / "episodes.csv", config.log.stats_window, goal_columns=config.goals is not None)
    checkpointer = Checkpointer(run_dir, config.algorithm, keep=config.keep_checkpoints, replay_buffer=config.checkpoint_replay_buffer,
                                before_write=episode_log.write_finished, reward=reward_model)
    learned = []
    if is_learned(reward_model):
        reward_model.use_cache(run_dir / LABEL_CACHE_FILE)  # where the config names no label cache
        learned.append(PreferenceUpdateCallback(reward_model, config.reward_mode[1], run_dir))
    callbacks: list[BaseCallback] = [
        KeepSignalHandlers(), episode_log, *learned, CheckpointCallback(checkpointer, config.checkpoint_every),
        ProgressLogCallback(config.total_steps, episode_log.means, config.log.progress_every_s,
                            unscored_episodes=episode_log.unscored_episodes),
    ]
    goal = getattr(config.reward, "goal", None)

    def draw_curves() -> None:
        evaluations = read_evaluations(run_dir / EVALUATIONS_FILE)
        try:
            write_curves(run_dir / "episodes.csv", run_dir / CURVES_FILE, config.log.stats_window,
                         title=" | ".join([goal] if isinstance(goal, str) else goal or []), evaluations=evaluations)
        except Exception as err:  # noqa: BLE001 - a plot must not end a run
            _log.warning("could not draw %s: %s", CURVES_FILE, err)
        try:
            write_run_report(run_dir, run_setup(config, run_dir), evaluations,
                             episode_log.means(), model.num_timesteps, config.total_steps, run_dir / CURVES_FILE)
        except Exception as err:  # noqa: BLE001 - a report must not end a run
            _log.warning("could not write %s: %s", REPORT_FILE, err)

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
                    after=draw_curves,
                    record=run_dir / EVALUATIONS_FILE,
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
            with preemption_signals():
                model.learn(remaining, callback=callbacks, reset_num_timesteps=reset_num_timesteps, progress_bar=show_progress)
        except KeyboardInterrupt as stop:  # Ctrl-C, or a preemption signal (SIGTERM, SIGUSR1)
            with shielded():  # a second SIGTERM must not cut this checkpoint short
                checkpoint = _save_after_interruption(checkpointer, model, "interrupt")
            saved = checkpointer.last.num_timesteps if checkpoint is not None and checkpointer.last else model.num_timesteps
            raise TrainingInterrupted(run_dir, checkpoint, saved, getattr(stop, "signum", signal.SIGINT)) from None
        except Exception as err:
            checkpoint = _save_after_interruption(checkpointer, model, "error")
            if checkpoint is not None:
                note = f"checkpoint written to {checkpoint}; resume with `vlmreward train --resume {run_dir}`"
                err.add_note(f"vlmreward: {note}")
                _log.warning("training failed (%s): %s", type(err).__name__, note)
            raise
        checkpointer.save(model, "final")
        atomic_model_save(model, run_dir / FINAL_MODEL_FILE)
        draw_curves()
        vec_normalize = model.get_vec_normalize_env()
        if vec_normalize is not None:
            save_vec_normalize(vec_normalize, run_dir / FINAL_VEC_NORMALIZE_FILE)
    finally:
        record_batch_choices(run_dir, reward_model)
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
        with contextlib.ExitStack() as held:  # the run directory's lock, for the run's life
            try:
                model = build_algorithm(config, venv)
                run_dir = new_run_dir(config, held)
                save_config(config, run_dir / CONFIG_FILE)
                record_model_fingerprint(run_dir, config.model.name)
                record_origin(run_dir)
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

    check_env_id(config)
    if config.reward_kind.environment_reward:  # the environment's own reward: no replicas to score it
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


def resume(run_dir: str | os.PathLike, overrides: Iterable[str] = (), *, progress_bar: bool | None = None,
           trust: bool = False) -> Path:
    """Continue a run from its latest checkpoint until ``total_steps`` in all.

    Loads the checkpoint's model (``Algo.load(..., env=new_env)``), replay buffer, ``VecNormalize``
    statistics and RNG states, re-attaches the deferred buffer to the new environment and learns
    the remaining steps with ``reset_num_timesteps=False``; logs, ``episodes.csv`` and checkpoints
    continue in the same directory. A finished run is left as it is (unless ``total_steps`` is
    raised with an override).

    Args:
        run_dir: a directory made by :func:`train`.
        overrides: ``"KEY=VALUE"`` changes allowed on resume (:data:`~vlmreward.rl.config.RESUME_OVERRIDABLE`, e.g.
            ``total_steps=200000``; ``model=PATH`` when PATH holds the weights the run started
            with, checked by :func:`~vlmreward.rl.run_dir.weights_fingerprint`); they are written
            into ``RUN_DIR/config.yaml``.
        progress_bar: as for :func:`train`.
        trust: load what only a pickle holds: checkpoints of earlier versions (``state.pkl``,
            ``vecnormalize.pkl``, ``replay_buffer.pkl``), model archives with entries
            :func:`~vlmreward.rl.builders.load_algorithm` cannot rebuild. A pickle can run code.

    Returns:
        ``run_dir``.

    Raises:
        ConfigError: not a run directory, or an override of a key that would change the run.
        CheckpointError: no checkpoint to resume from.
        TrainingInterrupted, Exception: as :func:`train`.
    """
    run_dir = Path(run_dir)
    items = check_resume_overrides(overrides, run_dir)
    config = load_run_config(run_dir, items)
    with exclusive_directory(run_dir):  # no other train or --resume in it while this one runs
        return _resume_locked(run_dir, items, config, progress_bar, trust)


def _resume_locked(run_dir: Path, items: list[str], config: RunConfig, progress_bar: bool | None, trust: bool) -> Path:
    warn_if_made_elsewhere(run_dir, config, trust)
    info = latest_checkpoint(run_dir)
    if info.algorithm != config.algorithm:
        raise CheckpointError(f"checkpoint {info.path} is of {info.algorithm} but {run_dir / CONFIG_FILE} says {config.algorithm}.")
    if items:
        save_config(config, run_dir / CONFIG_FILE)
    state = info.load_state(trust)
    if state["num_timesteps"] >= config.total_steps and (run_dir / FINAL_MODEL_FILE).is_file():
        _log.info("run %s is complete (%d of %d steps)", run_dir, state["num_timesteps"], config.total_steps)
        return run_dir
    reward_model, venv, runtime = _reward_and_env(config, seed=config.seed + int(state["num_timesteps"]), normalize=False)
    try:
        try:
            normalized = info.load_vec_normalize(venv, trust)
            venv = venv if normalized is None else normalized
            device = config.algorithm_kwargs.get("device", "auto")
            model = load_algorithm(config, info.model, venv.observation_space, venv.action_space, env=venv, device=device,
                                   trust=trust)
            if isinstance(model, OffPolicyAlgorithm) and not info.load_replay_buffer(model, trust):
                _log.warning("the checkpoint holds no replay buffer (checkpoint_replay_buffer: false): the agent continues "
                             "from an empty one, so the run is not identical to an uninterrupted one")
            attach_reward_source(model, venv)
            if is_learned(reward_model) and not load_learned_state(model, reward_model, info.path):
                _log.warning("the checkpoint holds no state of the learned reward: it starts again from untrained")
            model.num_timesteps = int(state["num_timesteps"])
            venv.seed(config.seed + model.num_timesteps)  # Algo.load re-seeded it with the run's seed
            restore_rng_state(state["rng"], model)
        except BaseException:
            venv.close()
            raise
        dropped = truncate_logs(run_dir, model.num_timesteps)
        if dropped:  # logged after the checkpoint by a process that was killed: the resumed run logs it again
            _log.info("logs cut back to the checkpoint's step %d: %s", model.num_timesteps,
                      ", ".join(f"{n} rows of {name}" for name, n in dropped.items()))
        _log.info("resuming %s at %d of %d steps", run_dir, model.num_timesteps, config.total_steps)
        return _learn(config, run_dir, model, reward_model, reset_num_timesteps=False, progress_bar=progress_bar)
    finally:
        if runtime is not None:
            runtime.close()
