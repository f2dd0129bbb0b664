"""Learned rewards during training: the preference reward's pool, updates and checkpointed state.

A reward kind whose class declares ``learned = True`` (``preference``,
:mod:`vlmreward.rewards.preference`) is scored per step by the reward model of that moment
(:meth:`~vlmreward.envs.vector.VLMRewardVecEnvWrapper._score_learned`), which also stages the
frames the agent reached. :class:`PreferenceUpdateCallback` then, at the end of every rollout
(PEBBLE, Lee et al., ICML 2021, and RL-VLM-F, Wang et al., ICML 2024, update the reward between
environment steps, never within a policy update):

1. adds the staged frames to the reward's pool (:meth:`commit`);
2. when ``update_every`` steps have passed, labels ``queries_per_update`` pairs and trains the
   ensemble (:meth:`update`), logging ``preference/*`` and appending the statistics to
   ``RUN_DIR/preference.jsonl``;
3. off-policy, relabels the replay buffer (:class:`PreferenceReplayBuffer`): every stored
   transition's reward becomes ``placeholder + weight · r̂(x)`` under the new ensemble (RL-VLM-F's
   ``relabel_with_predictor``; here the whole filled buffer, also after wrap-around).

Checkpoints hold the reward's state (:data:`REWARD_STATE_FILE`, ``torch.save`` of tensors and
numbers, read back with ``weights_only=True``); a run interrupted mid-rollout (on-policy) drops the
staged frames with the rollout, an off-policy one keeps them with its transitions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback

from vlmreward.errors import VLMRewardError
from vlmreward.rewards.base import load_reward_state, save_reward_state

__all__ = ["REWARD_STATE_FILE", "LABEL_CACHE_FILE", "REPLAY_INPUTS_FILE", "PREFERENCE_LOG",
           "save_learned_state", "load_learned_state", "PreferenceUpdateCallback", "PreferenceReplayBuffer"]

REWARD_STATE_FILE = "reward_state.pt"
PREFERENCE_LOG = "preference.jsonl"
LABEL_CACHE_FILE = "preference_labels.jsonl"
"""A run's label cache, unless its config names one (``reward.cache``)."""


class PreferenceReplayBuffer(ReplayBuffer):
    """SB3 ``ReplayBuffer`` that keeps each transition's reward-head input and placeholder reward, so that
    :meth:`relabel` can recompute every stored reward after a reward update.

    The input comes from ``infos[i]["reward_input"]`` (set by the reward wrapper for learned rewards);
    the placeholder is the reward the environment wrapper returned minus ``weight · r̂`` at the step
    (the environment's reward in ``"add"`` mode, else 0), given as ``infos[i]["reward_base"]``.
    """

    reward_inputs: np.ndarray | None = None

    def add(self, obs, next_obs, action, reward, done, infos) -> None:  # noqa: ANN001 (SB3's signature)
        x = np.stack([np.asarray(info["reward_input"]) for info in infos])
        if self.reward_inputs is None:
            self.reward_inputs = np.zeros((self.buffer_size, self.n_envs, *x.shape[1:]), dtype=x.dtype)
            self.reward_base = np.zeros((self.buffer_size, self.n_envs), dtype=np.float32)
        self.reward_inputs[self.pos] = x
        self.reward_base[self.pos] = [float(info.get("reward_base", 0.0)) for info in infos]
        super().add(obs, next_obs, action, reward, done, infos)

    def relabel(self, score: Any, weight: float) -> int:
        """Rewards of every stored transition ← ``placeholder + weight · score(inputs)``; returns the transitions relabelled."""
        n = self.buffer_size if self.full else self.pos
        if n == 0 or self.reward_inputs is None:
            return 0
        x = self.reward_inputs[:n].reshape(n * self.n_envs, *self.reward_inputs.shape[2:])
        values = np.asarray(score(x), dtype=np.float32).reshape(n, self.n_envs)
        self.rewards[:n] = self.reward_base[:n] + np.float32(weight) * values
        return n * self.n_envs


class PreferenceUpdateCallback(BaseCallback):
    """Commit the staged frames, update the learned reward when due and relabel the replay buffer (module docstring).

    Args:
        reward: the learned reward (``learned = True``).
        weight: the reward's weight in the environment wrapper (for relabelling).
        run_dir: where ``preference.jsonl`` goes (None: not written).
    """

    def __init__(self, reward: Any, weight: float = 1.0, run_dir: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.reward, self.weight = reward, float(weight)
        self.record = None if run_dir is None else Path(run_dir) / PREFERENCE_LOG

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.reward.commit()
        if not self.reward.due(self.model.num_timesteps):
            return
        stats = self.reward.update(self.model.num_timesteps)
        buffer = getattr(self.model, "replay_buffer", None)
        if isinstance(buffer, PreferenceReplayBuffer):
            stats["relabelled"] = buffer.relabel(self.reward.score_inputs, self.weight)
        for key, value in stats.items():
            if isinstance(value, (int, float)) and key != "step":
                self.logger.record(f"preference/{key}", value)
        if self.record is not None:
            with open(self.record, "a", encoding="utf-8") as f:
                f.write(json.dumps(stats) + "\n")


REPLAY_INPUTS_FILE = "replay_reward_inputs.npz"


def save_learned_state(model: Any, reward: Any, directory: str | os.PathLike) -> None:
    """Write a learned reward's state (:data:`REWARD_STATE_FILE`) and, for a :class:`PreferenceReplayBuffer`,
    the filled rows of its reward inputs and placeholders (:data:`REPLAY_INPUTS_FILE`) into a checkpoint directory."""
    directory = Path(directory)
    save_reward_state(reward, directory / REWARD_STATE_FILE)
    buffer = getattr(model, "replay_buffer", None)
    if isinstance(buffer, PreferenceReplayBuffer) and buffer.reward_inputs is not None:
        n = buffer.buffer_size if buffer.full else buffer.pos
        np.savez(directory / REPLAY_INPUTS_FILE, inputs=buffer.reward_inputs[:n], base=buffer.reward_base[:n])


def load_learned_state(model: Any, reward: Any, directory: str | os.PathLike) -> bool:
    """Restore what :func:`save_learned_state` wrote; False when the checkpoint holds no reward state.

    Raises:
        VLMRewardError: a reward state or replay-input file that cannot be read.
    """
    directory = Path(directory)
    if not (directory / REWARD_STATE_FILE).is_file():
        return False
    load_reward_state(reward, directory / REWARD_STATE_FILE)
    buffer = getattr(model, "replay_buffer", None)
    if isinstance(buffer, PreferenceReplayBuffer) and (directory / REPLAY_INPUTS_FILE).is_file():
        try:
            with np.load(directory / REPLAY_INPUTS_FILE, allow_pickle=False) as data:
                inputs, base = data["inputs"], data["base"]
        except (OSError, ValueError, KeyError) as err:
            raise VLMRewardError(f"cannot read {directory / REPLAY_INPUTS_FILE}: {err}") from err
        buffer.reward_inputs = np.zeros((buffer.buffer_size, buffer.n_envs, *inputs.shape[2:]), dtype=inputs.dtype)
        buffer.reward_base = np.zeros((buffer.buffer_size, buffer.n_envs), dtype=np.float32)
        buffer.reward_inputs[: len(inputs)], buffer.reward_base[: len(base)] = inputs, base
    return True
