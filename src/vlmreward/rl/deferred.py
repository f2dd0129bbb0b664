"""Deferred scoring: VLM rewards written into stable-baselines3's buffers before the learner reads them.

The VLM-RM reference code stores frames with the transitions, scores whole episodes in large
batches and writes the rewards back into the replay buffer. Here the frames are held by a
:class:`~vlmreward.envs.vector.VLMRewardVecEnvWrapper` with ``deferred=True`` (scored in batches
as they accumulate) and these buffers add the rewards in place:

* :class:`DeferredRolloutBuffer` (PPO, A2C): at rollout end, in ``compute_returns_and_advantage``,
  before returns and advantages are computed from the rewards;
* :class:`DeferredReplayBuffer` (SAC, DQN, TD3): in ``sample``, before any transition is read;
  a position overwritten after wrap-around receives only the reward of its newest transition.

The buffer's reward slot holds the placeholder the environment returned (``0``, or the
environment's reward in ``"add"`` mode, plus PPO's time-limit bootstrap ``γ V(s_T)``), to which
``weight · r_vlm`` is added: the learner sees the per-step rewards exactly in ``"replace"`` mode.

Use: ``PPO(..., rollout_buffer_class=DeferredRolloutBuffer)`` or
``SAC(..., replay_buffer_class=DeferredReplayBuffer)``, then ``attach_reward_source(model, venv)``
(again after loading a saved model: the link to the environment is not pickled). Dict
observations (goal-conditioned environments) take :class:`DeferredDictRolloutBuffer` and
:class:`DeferredDictReplayBuffer` (:func:`deferred_buffer_class` picks the right one).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import DictReplayBuffer, DictRolloutBuffer, ReplayBuffer, RolloutBuffer

from vlmreward.envs.vector import VLMRewardVecEnvWrapper
from vlmreward.errors import VLMRewardError

__all__ = [
    "DeferredRolloutBuffer",
    "DeferredReplayBuffer",
    "DeferredDictRolloutBuffer",
    "DeferredDictReplayBuffer",
    "deferred_buffer_class",
    "attach_reward_source",
    "find_vlm_wrapper",
]

_log = logging.getLogger(__name__)


class _Deferred:
    """The link from a buffer to the wrapper that holds its transitions' frames (not pickled)."""

    reward_source: VLMRewardVecEnvWrapper | None = None

    def _take_rewards(self, expected_steps: int) -> np.ndarray:
        if self.reward_source is None:
            raise VLMRewardError(
                f"{type(self).__name__} has no reward source; call vlmreward.rl.deferred.attach_reward_source"
                "(model, vec_env) after creating or loading the model."
            )
        rewards = self.reward_source.collect()
        if len(rewards) != expected_steps:
            raise VLMRewardError(
                f"the environment stored {len(rewards)} unscored steps but the buffer expected {expected_steps}; "
                "the deferred buffer and its environment are out of step (one environment per model)."
            )
        return rewards

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("reward_source", None)
        return state


class _DeferredRollout(_Deferred):
    """Rollout-buffer behaviour of deferred scoring (mixed into SB3's rollout buffers)."""

    def reset(self) -> None:
        super().reset()
        if self.reward_source is not None:
            self.reward_source.discard()  # steps of an interrupted rollout belong to no buffer

    def compute_returns_and_advantage(self, last_values, dones) -> None:  # noqa: ANN001 (SB3's signature)
        self.rewards[: self.pos] += self._take_rewards(self.pos)
        super().compute_returns_and_advantage(last_values, dones)


class DeferredRolloutBuffer(_DeferredRollout, RolloutBuffer):
    """``RolloutBuffer`` whose rewards are completed by the deferred VLM scores at rollout end."""


class DeferredDictRolloutBuffer(_DeferredRollout, DictRolloutBuffer):
    """``DictRolloutBuffer`` (dict observations) whose rewards are completed at rollout end."""


class _DeferredReplay(_Deferred):
    """Replay-buffer behaviour of deferred scoring (mixed into SB3's replay buffers)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unscored_positions: list[int] = []

    def add(self, obs, next_obs, action, reward, done, infos) -> None:  # noqa: ANN001 (SB3's signature)
        self._unscored_positions.append(self.pos)
        super().add(obs, next_obs, action, reward, done, infos)

    @property
    def unscored_positions(self) -> list[int]:
        """Buffer positions whose VLM reward is still missing, oldest first."""
        return list(self._unscored_positions)

    def _add_rewards(self, positions: list[int], rewards: np.ndarray) -> None:
        """Add ``rewards[i]`` (``[k, n_envs]``) at ``positions[i]``; a position written twice takes its newest."""
        newest = {pos: i for i, pos in enumerate(positions)}  # an overwritten transition's reward is void
        for pos, i in newest.items():
            self.rewards[pos] += rewards[i]

    def score_pending(self) -> None:
        """Write the VLM rewards of every stored transition into the buffer (idempotent)."""
        if not self._unscored_positions:
            return
        self._add_rewards(self._unscored_positions, self._take_rewards(len(self._unscored_positions)))
        self._unscored_positions = []

    def complete(self, drop_unscorable: bool = False) -> bool:
        """Leave no placeholder reward in the buffer, e.g. before it is saved in a checkpoint.

        The environment may hold more unscored steps than the buffer (a step taken but not yet
        stored when training stopped); those are scored and dropped with the buffer's.

        Args:
            drop_unscorable: when scoring fails (the reward model raises), keep the rewards of the
                steps the environment had already scored and drop the remaining (newest)
                transitions from the buffer instead of raising, where that is possible (the
                buffer has not wrapped around since); the environment's stored frames are discarded.

        Returns:
            True when the buffer holds no placeholder reward afterwards; False when scoring failed
            and the unscored transitions could not be dropped.

        Raises:
            Exception: whatever the reward model raised, unless ``drop_unscorable``.
            VLMRewardError: no reward source, or buffer and environment out of step.
        """
        positions = self._unscored_positions
        if not positions:
            return True
        source = self.reward_source
        if source is None:
            raise VLMRewardError("the deferred replay buffer has no reward source; call attach_reward_source(model, venv).")
        if source.pending_steps < len(positions):
            raise VLMRewardError(
                f"the environment holds {source.pending_steps} unscored steps but the replay buffer {len(positions)}; "
                "they are out of step (one environment per model)."
            )
        try:
            self._add_rewards(positions, source.collect()[: len(positions)])  # extra steps never reached the buffer
            self._unscored_positions = []
            return True
        except Exception:
            if not drop_unscorable:
                raise
        if len(set(positions)) != len(positions):
            return False  # the buffer wrapped around within the unscored steps: nothing to salvage safely
        scored = source.take_scored()[: len(positions)]
        self._add_rewards(positions[: len(scored)], scored)
        rest = self._unscored_positions = positions[len(scored) :]
        source.discard()
        if not rest:
            return True
        if self.full or rest != list(range(rest[0], self.pos)):
            return False
        _log.warning("dropping the newest %d transitions, whose VLM rewards could not be computed", len(rest))
        self.pos = rest[0]
        self._unscored_positions = []
        return True

    def sample(self, batch_size: int, env=None):  # noqa: ANN001 (SB3's signature)
        self.score_pending()
        return super().sample(batch_size, env)


class DeferredReplayBuffer(_DeferredReplay, ReplayBuffer):
    """``ReplayBuffer`` whose rewards are completed by the deferred VLM scores before sampling."""


class DeferredDictReplayBuffer(_DeferredReplay, DictReplayBuffer):
    """``DictReplayBuffer`` (dict observations) whose rewards are completed before sampling."""


def deferred_buffer_class(off_policy: bool, dict_observations: bool) -> type:
    """The deferred buffer for an algorithm (off-policy: replay, else rollout) and observation space."""
    if off_policy:
        return DeferredDictReplayBuffer if dict_observations else DeferredReplayBuffer
    return DeferredDictRolloutBuffer if dict_observations else DeferredRolloutBuffer


def find_vlm_wrapper(venv) -> VLMRewardVecEnvWrapper | None:  # noqa: ANN001
    """The :class:`VLMRewardVecEnvWrapper` in a chain of ``VecEnvWrapper``\\ s, or None."""
    while venv is not None:
        if isinstance(venv, VLMRewardVecEnvWrapper):
            return venv
        venv = getattr(venv, "venv", None)
    return None


def attach_reward_source(model: BaseAlgorithm, venv=None) -> None:  # noqa: ANN001
    """Link ``model``'s deferred buffer to the deferred :class:`VLMRewardVecEnvWrapper` of ``venv``.

    Args:
        model: a stable-baselines3 algorithm built with a deferred buffer class.
        venv: its training environment (default ``model.get_env()``).

    Raises:
        VLMRewardError: the buffer is deferred but the environment is not (or the reverse).
    """
    wrapper = find_vlm_wrapper(venv if venv is not None else model.get_env())
    buffer = getattr(model, "rollout_buffer", None) or getattr(model, "replay_buffer", None)
    buffer_deferred = isinstance(buffer, _Deferred)
    env_deferred = wrapper is not None and wrapper.deferred
    if buffer_deferred != env_deferred:
        raise VLMRewardError(
            "deferred scoring needs both a deferred environment (VLMRewardVecEnvWrapper(deferred=True)) and a "
            f"deferred buffer (DeferredRolloutBuffer / DeferredReplayBuffer); got buffer {type(buffer).__name__} "
            f"and {'a deferred' if env_deferred else 'a per-step'} environment."
        )
    if buffer_deferred:
        buffer.reward_source = wrapper
