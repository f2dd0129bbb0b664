"""The trained policy of a run directory, as an :class:`~vlmreward.envs.acting.ActingPolicy` that
``vlmreward collect --policy RUN_DIR`` records episodes of (deterministic actions)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gymnasium as gym

from vlmreward.envs.acting import ActingPolicy
from vlmreward.rl import builders
from vlmreward.rl.run_dir import load_policy, load_run_config

__all__ = ["load_run_policy"]


def load_run_policy(run_dir: str | os.PathLike) -> ActingPolicy:
    """The trained policy of a ``vlmreward train`` run directory (final model, else latest checkpoint)."""
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    wrap = None
    if config.goals is not None:  # a goal-conditioned policy reads the goal's embedding beside the observation
        from vlmreward.envs.goal_conditioning import GoalObservation

        encoder = builders.goal_text_encoder(config)

        def wrap(env: gym.Env) -> gym.Env:
            return GoalObservation(env, encoder)

    env_kwargs = builders.env_kwargs_of(config)
    probe_env = gym.make(config.env.id, **env_kwargs)  # the spaces the policy acts in: nothing unpickled
    probe_env = wrap(probe_env) if wrap is not None else probe_env
    try:
        spaces = (probe_env.observation_space, probe_env.action_space)
    finally:
        probe_env.close()
    model, normalize, source, model_path = load_policy(run_dir, device="cpu", spaces=spaces)

    def act(obs: Any) -> Any:
        if normalize is not None:
            obs = normalize.normalize_obs(obs)
        action, _ = model.predict(obs, deterministic=True)
        return action

    return ActingPolicy(
        "run",
        act,
        {"kind": "run", "run_dir": str(run_dir), "source": source, "model_file": str(model_path),
         "algorithm": config.algorithm, "deterministic": True},
        env_id=config.env.id,
        env_kwargs=env_kwargs,
        wrap=wrap,
    )
