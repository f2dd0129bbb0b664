"""Record labelled datasets from environments: frames, ground-truth state, reward and success.

:func:`collect` runs one of three policies in a gymnasium environment rendered as
``rgb_array`` and writes a dataset (:mod:`vlmreward.eval.dataset`):

* ``"random"``: episodes of uniformly sampled actions (``action_space.sample()``, seeded);
* ``"scripted"``: a sweep over states set directly in the simulator, chosen so that a reward
  landscape reads at a glance and goal states (positives) exist. The environment's probe
  (:mod:`vlmreward.envs.probes`, registered beside the environment) sets them: CartPole's
  grid of pole angles and cart positions, MountainCar's positions along the track, the
  Humanoid's hand-set poses, MiniWorldGoals' goal states;

* ``"expert"``: episodes alternating between the family's scripted expert (even episodes; the
  probe's :meth:`~vlmreward.envs.probes.EnvProbe.expert_policy`, e.g. Meta-World's own policies)
  and uniformly random actions (odd episodes), so that successful and failed episodes both
  appear for episode-level metrics;

* a run directory of ``vlmreward train``: episodes of the trained stable-baselines3 policy
  (deterministic actions), when :mod:`vlmreward.rl` is installed.

Each frame is the state *reached* by a step (or set by the sweep); its row holds the episode,
step, ground-truth reward, and what the probe reads: binary success labels (for Humanoid every
pose's detector; for MiniWorldGoals the success of the frame's own goal) and the state
variables by name (MiniWorldGoals: the frame's ``goal``, ``goal_key`` and ``goal_type`` too,
and the goal family in the metadata, so that ``evaluate`` can score each frame against its goal
and report AP per goal type). The metadata documents all of them (definitions, thresholds,
units). An environment without a registered probe records its observation entries and
``info["is_success"]`` if it reports it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import gymnasium as gym
import numpy as np

from vlmreward.envs.acting import ActingPolicy
from vlmreward.envs.probes import EnvProbe, default_env_kwargs, env_name, probe_for
from vlmreward.envs.probes.classic_control import CARTPOLE_SWEEP_MAX_ANGLE, CARTPOLE_SWEEP_MAX_POSITION
from vlmreward.errors import InvalidParameterError, VLMRewardError
from vlmreward.eval.dataset import REQUIRED_COLUMNS, DatasetWriter

__all__ = [
    "collect",
    "CollectResult",
    "PolicyError",
    "POLICY_KINDS",
    "CARTPOLE_SWEEP_MAX_ANGLE",
    "CARTPOLE_SWEEP_MAX_POSITION",
    "DEFAULT_EPISODES",
    "DEFAULT_SWEEP_FRAMES",
]

POLICY_KINDS = ("random", "scripted", "expert")
"""Policies by name; anything else given as a policy is a run directory."""

DEFAULT_EPISODES = 10
"""Episodes of a random or trained policy when neither ``episodes`` nor ``frames`` is given."""

DEFAULT_SWEEP_FRAMES = 200
"""Frames of a scripted sweep when ``frames`` is not given."""

def _col(kind: str, description: str) -> dict[str, str]:
    return {"type": kind, "description": description}


class PolicyError(VLMRewardError, ValueError):
    """A policy that is neither ``random``, ``scripted`` nor a usable run directory, or a
    scripted sweep asked of an environment that has none."""


@dataclass(frozen=True)
class CollectResult:
    """What :func:`collect` wrote.

    Attributes:
        path: the dataset directory.
        frames: number of frames.
        episodes: number of (complete or cut) episodes, or sweep lines.
        positives: frames labelled ``is_success`` (None when the dataset has no such label).
        render_size: ``(height, width)`` in pixels.
    """

    path: Path
    frames: int
    episodes: int
    positives: int | None
    render_size: tuple[int, int]


# ---------------------------------------------------------------------------------------------
# policies


def _random_policy(env: gym.Env, seed: int) -> ActingPolicy:
    env.action_space.seed(seed)
    return ActingPolicy("random", lambda obs: env.action_space.sample(), {"kind": "random", "seed": seed})


def _expert_policy(env: gym.Env, probe: EnvProbe, seed: int) -> ActingPolicy:
    """Expert in even episodes, random in odd ones (see the module docstring)."""
    expert = probe.expert_policy()
    if expert is None:
        raise PolicyError(f"{env_name(env)} has no scripted expert; use --policy random, scripted, or a run directory.")
    uniform = _random_policy(env, seed)
    policy = ActingPolicy("expert", expert, {"kind": "expert", "seed": seed, "episodes": "even: the scripted expert; odd: random actions"})
    policy.act = lambda obs: expert(obs) if policy.episode % 2 == 0 else uniform.act(obs)
    return policy


# ---------------------------------------------------------------------------------------------
# collect


def collect(
    env_id: str,
    out: str | os.PathLike,
    policy: str | os.PathLike | ActingPolicy = "random",
    *,
    episodes: int | None = None,
    frames: int | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    seed: int = 0,
    max_steps: int | None = None,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> CollectResult:
    """Record a labelled dataset of rendered frames from ``env_id``.

    Args:
        env_id: a gymnasium id; ``vlmreward/CartPole-v1``, ``vlmreward/MountainCarContinuousTextured-v0``
            and ``vlmreward/HumanoidTextured-v0`` (and gymnasium's own CartPole, MountainCarContinuous
            and Humanoid) get named state variables, success labels and scripted sweeps; any other
            id records its observation entries and ``info["is_success"]`` if reported.
        out: the dataset directory to create.
        policy: ``"random"``, ``"scripted"``, ``"expert"``, or an :class:`~vlmreward.envs.acting.ActingPolicy`
            (a ``vlmreward train`` run's: :func:`vlmreward.rl.run_policy.load_run_policy`).
        episodes: episodes to record (random or trained policy); default
            :data:`DEFAULT_EPISODES` when ``frames`` is not given either.
        frames: frames to record; for a sweep the number of swept states (default
            :data:`DEFAULT_SWEEP_FRAMES`); for episodes a cap (whichever of ``episodes`` and
            ``frames`` is reached first ends the collection).
        env_kwargs: keyword arguments of ``gymnasium.make`` (e.g. ``render_width``, ``task``);
            the Humanoid's ``task`` defaults to ``"kneeling"``.
        seed: seeds the first reset and the action sampling.
        max_steps: cut episodes after this many steps (besides the environment's time limit).
        overwrite: replace an existing dataset at ``out``.
        progress: called with 1 after every recorded frame.

    Returns:
        A :class:`CollectResult`.

    Raises:
        PolicyError: an unknown policy, a run directory that cannot be loaded, ``episodes`` with a sweep.
        NoSweepError: a sweep for an environment whose probe has none.
        InvalidParameterError: an unknown environment id or keyword arguments it does not take,
            counts below 1, an existing ``out``.
    """
    import vlmreward.envs  # noqa: F401, PLC0415 - registers the vlmreward/ ids

    for name, value in (("episodes", episodes), ("frames", frames), ("max_steps", max_steps)):
        if value is not None and int(value) < 1:
            raise InvalidParameterError(f"{name} must be at least 1; got {value}.")
    policy_name = policy.kind if isinstance(policy, ActingPolicy) else os.fspath(policy)
    kwargs = dict(env_kwargs or {})
    if "render_mode" in kwargs:
        raise InvalidParameterError("render_mode is always 'rgb_array' when collecting frames; drop it from the keyword arguments.")

    run: ActingPolicy | None = policy if isinstance(policy, ActingPolicy) else None
    if run is None and policy_name not in POLICY_KINDS:
        if Path(policy_name).is_dir():
            raise PolicyError(
                f"{policy_name!r} is a directory: load its trained policy with vlmreward.rl.run_policy.load_run_policy "
                "and pass that (`vlmreward collect --policy RUN_DIR` does)."
            )
        raise PolicyError(
            f"--policy {policy_name!r} is neither 'random', 'scripted', 'expert' nor an existing run directory of "
            "`vlmreward train`."
        )
    if run is not None:
        if run.env_id is not None and run.env_id != env_id:
            where = run.description.get("run_dir", run.kind)
            raise PolicyError(
                f"the policy in {where!r} was trained on {run.env_id!r}, not {env_id!r}; collect from {run.env_id!r}."
            )
        kwargs = {**(run.env_kwargs or {}), **kwargs}
    scripted = policy_name == "scripted"
    if scripted and episodes is not None:
        raise PolicyError("a scripted sweep has no episodes; give its size with --frames N.")

    kwargs = {**default_env_kwargs(env_id), **kwargs}
    env = _make_env(env_id, kwargs)
    if run is not None and run.wrap is not None:
        env = run.wrap(env)
    try:
        first_obs, reset_info = env.reset(seed=seed)
        probe = probe_for(env, reset_info)
        if run is None and policy_name == "expert":
            pol = _expert_policy(env, probe, seed)
        elif run is None:
            pol = _random_policy(env, seed) if not scripted else ActingPolicy("scripted", lambda obs: None, {})
        else:
            pol = run
        if scripted:
            n = DEFAULT_SWEEP_FRAMES if frames is None else int(frames)
            pol.description = {"kind": "scripted", "sweep": probe.sweep_description, "frames": n}
            gt_definition = probe.sweep_reward_definition
            landscape_x, facet = probe.sweep_landscape
        else:
            if episodes is None and frames is None:
                episodes = DEFAULT_EPISODES
            pol.description.update(episodes=episodes, frames=frames, max_steps=max_steps)
            gt_definition = probe.episode_reward_definition
            landscape_x, facet = probe.landscape_x, None
        state_vars = probe.state_variables()
        labels = probe.labels()
        columns: dict[str, dict[str, str]] = {
            "frame": _col("int", "index into frames.npy"),
            "episode": _col("int", "episode (for a sweep: the sweep line) that reached the frame"),
            "step": _col("int", "step within the episode that reached the frame (1 = first step; sweeps: index along the line)"),
            "gt_reward": _col("float", gt_definition),
        }
        columns.update({name: _col("bool", spec["definition"]) for name, spec in labels.items()})
        columns.update({name: _col(spec["type"], spec["description"]) for name, spec in state_vars.items()})
        assert all(columns[c]["type"] == t for c, t in REQUIRED_COLUMNS.items())
        metadata = {
            "env_id": env_id,
            "env_kwargs": {k: v.to_dict() if hasattr(v, "to_dict") else v for k, v in kwargs.items()},
            "render": {"render_mode": "rgb_array"},
            "policy": pol.description,
            "seed": seed,
            "columns": columns,
            "labels": labels,
            "state_variables": {k: {"unit": v["unit"], "description": v["description"]} for k, v in state_vars.items()},
            "gt_reward": {"definition": gt_definition},
            "landscape": {"x": landscape_x, "facet": facet},
            "env_family": probe.family,
        }
        metadata.update(probe.extra_metadata())
        with DatasetWriter(out, metadata, overwrite=overwrite) as writer:
            if scripted:
                n_lines = _record_sweep(env, probe, writer, n, progress)
            else:
                n_lines = _record_episodes(env, first_obs, probe, pol, writer, episodes, frames, max_steps, progress)
        positives = None
        if "is_success" in labels:
            from vlmreward.eval.dataset import load_dataset

            positives = int(load_dataset(out).label("is_success").sum())
        return CollectResult(Path(out), writer.count, n_lines, positives, _render_size(writer))
    finally:
        env.close()


def _render_size(writer: DatasetWriter) -> tuple[int, int]:
    shape = writer._frames.shape or (0, 0, 3)
    return int(shape[0]), int(shape[1])


def _make_env(env_id: str, kwargs: Mapping[str, Any]) -> gym.Env:
    try:
        gym.spec(env_id)
    except gym.error.Error as err:
        raise InvalidParameterError(f"unknown environment {env_id!r} ({err}); e.g. vlmreward/CartPole-v1.") from None
    try:
        return gym.make(env_id, render_mode="rgb_array", **kwargs)
    except TypeError as err:
        raise InvalidParameterError(f"{env_id} does not take the keyword arguments {dict(kwargs)} ({err}).") from err
    except gym.error.Error as err:
        raise InvalidParameterError(f"cannot create {env_id}: {err}.") from err


def _frame(env: gym.Env) -> np.ndarray:
    frame = env.render()
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
        raise InvalidParameterError(
            f"{env_name(env)} renders {type(frame).__name__} {getattr(frame, 'shape', '')}, not uint8 RGB frames; "
            "it cannot be collected."
        )
    return frame


def _record_sweep(env: gym.Env, probe: EnvProbe, writer: DatasetWriter, n: int, progress) -> int:
    lines = set()
    for line, index, extra in probe.sweep(n):
        row = {"episode": line, "step": index, "gt_reward": probe.sweep_reward()}
        row.update(probe.label_row({}))
        row.update(probe.state_row())
        row.update(extra)
        writer.add(_frame(env), row)
        lines.add(line)
        if progress is not None:
            progress(1)
    return len(lines)


def _record_episodes(
    env: gym.Env,
    obs: Any,
    probe: EnvProbe,
    policy: ActingPolicy,
    writer: DatasetWriter,
    episodes: int | None,
    frames: int | None,
    max_steps: int | None,
    progress,
) -> int:
    probe.observe(obs)
    episode, step, finished = 0, 0, 0
    while True:
        action = policy.act(obs)
        obs, reward, terminated, truncated, info = env.step(action)
        step += 1
        probe.observe(obs)
        row = {"episode": episode, "step": step, "gt_reward": float(reward)}
        row.update(probe.label_row(info))
        row.update(probe.state_row())
        writer.add(_frame(env), row)
        if progress is not None:
            progress(1)
        if frames is not None and writer.count >= frames:
            return episode + 1
        if terminated or truncated or (max_steps is not None and step >= max_steps):
            finished += 1
            if episodes is not None and finished >= episodes:
                return finished
            episode, step = episode + 1, 0
            policy.episode = episode
            obs, _ = env.reset()
            probe.observe(obs)
