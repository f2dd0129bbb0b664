"""Evaluating a policy: deterministic episodes with ground-truth and VLM returns and success."""

from __future__ import annotations

import logging

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

from vlmreward.rl.video import _EpisodeVideo

_log = logging.getLogger("vlmreward.rl")

__all__ = [
    "PAPER_SUCCESS_MIN_FRACTION",
    "PolicyEvaluation",
    "evaluate_episodes",
    "goal_type_of",
    "goal_text_of",
]

def goal_type_of(goal: Any) -> str | None:
    """The type of a goal reported in ``info["goal"]`` (its ``type`` attribute), or None."""
    value = getattr(goal, "type", None)
    return None if value is None else str(value)


def goal_text_of(goal: Any) -> str | None:
    """The sentence of a goal reported in ``info["goal"]`` (its ``sentence``, else ``str``), or None."""
    if goal is None:
        return None
    sentence = getattr(goal, "sentence", None)
    return str(sentence if sentence is not None else goal)

PAPER_SUCCESS_MIN_FRACTION = 0.5
"""VLM-RM's success rule: the goal held in at least half of an episode's steps (paper, section 4.4)."""


@dataclass
class PolicyEvaluation:
    """Returns of evaluation episodes.

    Attributes:
        gt_returns: undiscounted ground-truth (environment) return of each episode.
        vlm_returns: undiscounted sum of the (unweighted) VLM reward of each episode.
        lengths: steps per episode.
        successes: ``info["is_success"]`` at each episode's end (None where not reported).
        success_fractions: the fraction of each episode's steps whose ``info["is_success"]`` was
            true (None where not reported): VLM-RM's rule (appendix C.2, Table 1) counts an
            episode as a success when the goal held in at least
            :data:`PAPER_SUCCESS_MIN_FRACTION` (50 %) of its steps.
        video: the video of the first episode, if one was written.
        goals: the goal sentence of each episode (goal-conditioned environments; else None).
        goal_types: the goal type of each episode (else None).
        distinct_actions: how many different actions the policy took over all steps of all
            episodes (actions compared exactly, as arrays).
        identical_action_sequences: every episode took the same sequence of actions (True for
            one episode): a deterministic policy on an environment whose start varies only a
            little then gets the same returns at every evaluation (see :meth:`remark`).
    """

    gt_returns: list[float] = field(default_factory=list)
    vlm_returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    successes: list[Optional[bool]] = field(default_factory=list)
    success_fractions: list[Optional[float]] = field(default_factory=list)
    video: Optional[Path] = None
    goals: list[Optional[str]] = field(default_factory=list)
    goal_types: list[Optional[str]] = field(default_factory=list)
    distinct_actions: int = 0
    identical_action_sequences: bool = True

    def remark(self) -> str:
        """What the actions say about the evaluation, or ``""``: ``"the policy took one action in all
        steps"`` or ``"all N episodes took the same action sequence"`` (why returns repeat exactly)."""
        if not self.lengths or not sum(self.lengths):
            return ""
        if self.distinct_actions == 1:
            return "the policy took one action in all steps"
        if self.identical_action_sequences and len(self.lengths) > 1:
            return f"all {len(self.lengths)} episodes took the same action sequence"
        return ""

    @property
    def mean_gt_return(self) -> float:
        return float(np.mean(self.gt_returns)) if self.gt_returns else float("nan")

    @property
    def std_gt_return(self) -> float:
        return float(np.std(self.gt_returns)) if self.gt_returns else float("nan")

    @property
    def mean_vlm_return(self) -> float:
        return float(np.mean(self.vlm_returns)) if self.vlm_returns else float("nan")

    @property
    def success_rate(self) -> float | None:
        """Fraction of successful episodes among those that report success; None if none does."""
        known = [s for s in self.successes if s is not None]
        return float(np.mean(known)) if known else None

    @property
    def success_rate_held(self) -> float | None:
        """Success rate by the VLM-RM paper's rule: episodes whose goal held in at least
        :data:`PAPER_SUCCESS_MIN_FRACTION` of their steps; None if no episode reports success."""
        known = [f for f in self.success_fractions if f is not None]
        return float(np.mean([f >= PAPER_SUCCESS_MIN_FRACTION for f in known])) if known else None

    @property
    def mean_length(self) -> float:
        return float(np.mean(self.lengths)) if self.lengths else float("nan")

    @property
    def success_rate_by_goal_type(self) -> dict[str, float]:
        """Success rate per goal type, over the episodes of that type that report success."""
        out: dict[str, list[float]] = {}
        for goal_type, success in zip(self.goal_types, self.successes):
            if goal_type is not None and success is not None:
                out.setdefault(goal_type, []).append(float(success))
        return {k: float(np.mean(v)) for k, v in sorted(out.items())}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["video"] = None if self.video is None else str(self.video)
        if not any(t is not None for t in self.goal_types):
            data.pop("goals")
            data.pop("goal_types")
        else:
            data["success_rate_by_goal_type"] = self.success_rate_by_goal_type
        data.update(
            episodes=len(self.gt_returns),
            mean_gt_return=self.mean_gt_return,
            std_gt_return=self.std_gt_return,
            mean_vlm_return=self.mean_vlm_return,
            std_vlm_return=float(np.std(self.vlm_returns)) if self.vlm_returns else float("nan"),
            success_rate=self.success_rate,
            success_rate_held=self.success_rate_held,
            mean_length=self.mean_length,
            remark=self.remark(),
        )
        return data


def _goal_sentence(env: gym.Env, info: dict[str, Any]) -> str | None:
    """The goal an episode is rewarded for: the episode's own (goal-conditioned environments), or
    the goal prompt(s) of the reward model of the environment's VLM reward wrapper."""
    text = goal_text_of(info.get("goal"))
    if text:
        return text
    wrapper = env
    while wrapper is not None and not hasattr(wrapper, "reward_model"):
        wrapper = getattr(wrapper, "env", None)
    if wrapper is None:
        return None
    try:
        goal = wrapper.reward_model.describe().get("goal")
    except Exception:  # noqa: BLE001 - a plugin's describe() is only a caption here
        return None
    if isinstance(goal, (list, tuple)):
        return " / ".join(str(g) for g in goal) or None
    return None if goal is None else str(goal)


def evaluate_episodes(
    model: BaseAlgorithm,
    env: gym.Env,
    episodes: int,
    *,
    deterministic: bool = True,
    video_path: str | os.PathLike | None = None,
    vec_normalize: VecNormalize | None = None,
    seed: int | None = None,
    log_episodes: bool = False,
) -> PolicyEvaluation:
    """Roll out ``model``'s policy for ``episodes`` episodes on one environment.

    Args:
        model: a trained SB3 algorithm.
        env: one environment, ``render_mode="rgb_array"``, normally wrapped in
            :class:`~vlmreward.envs.wrappers.VLMRewardWrapper` (which puts ``"gt_reward"`` and
            ``"vlm_reward"`` into the infos; without it the step reward is the ground truth and the
            VLM return is 0).
        episodes: number of episodes.
        deterministic: the policy's mode action instead of a sample.
        video_path: write the first episode to this ``.mp4`` (:func:`write_episode_video`'s layout).
        vec_normalize: the training environment's ``VecNormalize``, to normalise observations alike.
        seed: seed of the first ``reset`` (the later episodes continue its random stream).
        log_episodes: log a line per episode (``vlmreward.rl`` logger, INFO; DEBUG otherwise).

    Returns:
        :class:`PolicyEvaluation`.
    """
    result = PolicyEvaluation()
    actions_seen: set[bytes] = set()
    first_sequence: list[bytes] | None = None
    spec_steps = env.spec.max_episode_steps if env.spec is not None else None
    fps = float(env.metadata.get("render_fps") or 30)
    for episode in range(episodes):
        obs, info = env.reset(seed=seed if episode == 0 else None)
        video = (
            _EpisodeVideo(Path(video_path), fps, spec_steps or 1000, "VLM reward", title=_goal_sentence(env, info))
            if video_path and episode == 0 else None
        )
        gt = vlm = 0.0
        length = successes = 0
        reports_success = False
        done = False
        sequence: list[bytes] = []
        try:
            while not done:
                policy_obs = vec_normalize.normalize_obs(obs) if vec_normalize is not None else obs
                action, _ = model.predict(policy_obs, deterministic=deterministic)
                sequence.append(_action_key(action))
                obs, reward, terminated, truncated, info = env.step(action)
                gt += float(info.get("gt_reward", reward))
                step_vlm = float(info.get("vlm_reward", 0.0))
                vlm += step_vlm
                length += 1
                if info.get("is_success") is not None:
                    reports_success = True
                    successes += bool(info["is_success"])
                done = bool(terminated or truncated)
                if video is not None:
                    success_now = info.get("is_success")
                    video.add(env.render(), step_vlm, float(info.get("gt_reward", reward)),
                              None if success_now is None else bool(success_now))
        except BaseException:
            if video is not None:
                video.abort()
            raise
        if video is not None:
            result.video = video.close()
        actions_seen.update(sequence)
        if first_sequence is None:
            first_sequence = sequence
        elif sequence != first_sequence:
            result.identical_action_sequences = False
        result.distinct_actions = len(actions_seen)
        result.gt_returns.append(gt)
        result.vlm_returns.append(vlm)
        result.lengths.append(length)
        success = info.get("is_success")
        result.successes.append(None if success is None else bool(success))
        result.success_fractions.append(successes / length if reports_success and length else None)
        goal = info.get("goal")
        result.goals.append(goal_text_of(goal))
        result.goal_types.append(goal_type_of(goal) or info.get("goal_type"))
        _log.log(
            logging.INFO if log_episodes else logging.DEBUG, "evaluation episode %d/%d: %d steps, GT return %.4g, VLM return %.4g%s", episode + 1, episodes, length, gt, vlm,
            "" if success is None else f", success {bool(success)}",
        )
    return result


def _action_key(action: Any) -> bytes:
    """An action as bytes that compare equal exactly when the actions do (dtype, shape and values)."""
    array = np.ascontiguousarray(action)
    return f"{array.dtype.str}{array.shape}".encode() + array.tobytes()
