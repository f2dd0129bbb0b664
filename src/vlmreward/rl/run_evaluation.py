"""Evaluating a finished run: its final (else latest checkpointed) policy on the run's own
environment and reward, written to ``RUN_DIR/evaluation.json`` (``vlmreward evaluate-policy``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vlmreward._json import json_safe
from vlmreward._paths import atomic_write_text
from vlmreward.rl.builders import build_reward_model, goal_sets, goal_text_encoder, make_eval_env
from vlmreward.rl.config import ConfigError
from vlmreward.rl.evaluation import PolicyEvaluation, evaluate_episodes
from vlmreward.rl.run_dir import EVALUATION_FILE, load_policy, load_run_config

__all__ = ["evaluate_run", "EVAL_SEED_OFFSET"]

EVAL_SEED_OFFSET = 1_000_003
"""Evaluation environments are seeded ``seed + EVAL_SEED_OFFSET``: episodes unlike training's."""




def evaluate_run(
    run_dir: str | os.PathLike,
    episodes: int = 10,
    *,
    deterministic: bool = True,
    video: bool = True,
    seed: int | None = None,
    trust: bool = False,
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
        trust: allow an earlier version's pickles (:func:`~vlmreward.rl.run_dir.load_policy`).

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
    reward_model = build_reward_model(config)
    encoder = goal_text_encoder(config, reward_model)
    results: dict[str, PolicyEvaluation] = {}
    policy: Any = None
    for goal_set in goal_sets(config) or [None]:
        env = make_eval_env(config, reward_model, goal_set, encoder)
        try:
            if policy is None:  # loaded against the environment's own spaces: nothing unpickled
                policy = load_policy(run_dir, device=config.algorithm_kwargs.get("device", "auto"),
                                     spaces=(env.observation_space, env.action_space), trust=trust)
            model, vec_normalize, source, model_path = policy
            video_path = run_dir / "videos" / "evaluation.mp4" if video and not results else None
            results[goal_set or ""] = evaluate_episodes(
                model, env, episodes, deterministic=deterministic, video_path=video_path, vec_normalize=vec_normalize,
                seed=config.seed + EVAL_SEED_OFFSET if seed is None else seed, log_episodes=True,
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
    data = json_safe(data)
    atomic_write_text(run_dir / EVALUATION_FILE, json.dumps(data, indent=2) + "\n")
    return data


