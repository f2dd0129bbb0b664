"""Vector environments: the frames of all sub-environments scored in one forward pass.

* :class:`VLMRewardVecEnvWrapper`: a stable-baselines3 ``VecEnvWrapper``. Scores each step's
  frames in one batch, or, with ``deferred=True``, stores them and scores them in large batches
  (``score_batch_size`` frames) for :mod:`vlmreward.rl.deferred`'s buffers to write into the
  rollout or replay buffer before the learner reads them: VLM-RM's end-of-episode scoring, with
  memory bounded by one scoring batch.
* :class:`~vlmreward.envs.gym_vector.VLMRewardVectorWrapper` (re-exported here): the same per-step
  batching for a gymnasium ``VectorEnv``.

Both keep the environment's reward in ``info["gt_reward"]`` and report finished episodes
(:class:`EpisodeRecord`: VLM return, ground-truth return, success, goal) for logging side by side.
Goal-aware reward models (``goal_info_key``) get each frame's ``info["goal"]``, stored with the
frame when scoring is deferred (:func:`~vlmreward.envs.wrappers.goal_info_key`).

A vector environment may put a stand-in for the frame in ``info["frame"]`` instead of the array
(:class:`~vlmreward.distributed.rollouts.RayVecEnv` with ``reward_service``: the frame was scored
where it was rendered); the wrapper then hands the reward model a list of what it found, which
that reward model must understand (:class:`~vlmreward.distributed.remote.RemoteRewardModel` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import gymnasium as gym
import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper

from vlmreward.errors import InvalidParameterError
from vlmreward.envs.episodes import EpisodeAccounts, EpisodeRecord
from vlmreward.envs.clips import ClipAssembler, DueClips, score_clips_batched
from vlmreward.envs.overlap import ScoringWorker, scoring_lock
from vlmreward.envs.wrappers import (
    NotRenderableError,
    RenderFrame,
    RewardMode,
    _check_mode,
    combine_rewards,
    goal_info_key,
    score_frames,
)
from vlmreward.rewards.base import RewardModel
from vlmreward.rewards.base import is_learned
from vlmreward.rewards.video import is_clip_reward
from vlmreward.envs.gym_vector import VLMRewardVectorWrapper

__all__ = ["EpisodeRecord", "VLMRewardVecEnvWrapper", "VLMRewardVectorWrapper", "make_vlm_vec_env"]


@dataclass
class _PendingStep:
    frames: np.ndarray | list[Any] | DueClips | None  # uint8 [n_envs, H, W, 3] (or stand-ins, see the module
    # docstring), or the clips due at this step for a clip reward; None once scored
    gt: np.ndarray  # float32 [n_envs]
    dones: np.ndarray  # bool [n_envs]
    successes: list[bool | None]
    vlm: np.ndarray | None = None  # float32 [n_envs] once scored
    goals: list[Any] | None = None  # info[goal key] per sub-environment (goal-aware reward models)
    episode_goals: list[Any] | None = None  # info["goal"] of sub-environments whose episode ended
    step: int | None = None  # the wrapper's step count at this step


class VLMRewardVecEnvWrapper(VecEnvWrapper):
    """Stable-baselines3 ``VecEnvWrapper`` that rewards every sub-environment with a VLM.

    Each sub-environment must be wrapped in :class:`~vlmreward.envs.wrappers.RenderFrame` (as
    :func:`make_vlm_vec_env` does), which renders the reached state before any auto-reset.

    Per-step (``deferred=False``): ``step_wait`` scores the ``n_envs`` frames in one forward pass
    and returns ``weight · r_vlm`` (``"replace"``) or ``r_env + weight · r_vlm`` (``"add"``),
    ``float32 [n_envs]``.

    Deferred (``deferred=True``): ``step_wait`` returns the placeholder ``0`` (``"replace"``) or
    ``r_env`` (``"add"``) and keeps the frames; they are scored in batches of
    ``score_batch_size`` frames as they accumulate, and :meth:`collect` returns the missing
    ``weight · r_vlm`` of every step since the last call, for the deferred buffers of
    :mod:`vlmreward.rl.deferred` to add in place. The learner then sees exactly the per-step
    rewards (``"replace"``; ``"add"`` up to float rounding of the sum's order). With
    ``overlap=True`` a full batch is scored on a background thread while the environments step
    (:mod:`vlmreward.envs.overlap`); every method that reads the rewards waits for it first, and
    the batches, so the rewards, are those of ``overlap=False``.

    Infos: ``"gt_reward"`` (environment reward) always, ``"vlm_reward"`` in per-step mode.

    Finished episodes (:meth:`pop_episodes`) are reported once their frames are scored: at once
    per step, and deferred when their batch is scored; :meth:`score_stored` scores what is stored
    now (training calls it at its end, so no finished episode goes unreported).
    :attr:`num_timesteps` counts steps as SB3 does (``n_envs`` a step), for
    :attr:`EpisodeRecord.end_step`.

    Clip rewards (:mod:`vlmreward.rewards.video`: the episode and window video kinds) score each
    sub-environment's episode (or its last ``window`` frames) instead of the frame: a
    :class:`~vlmreward.envs.clips.ClipAssembler` keeps the frames, the reward of a clip goes to the
    step it was due at (an episode's last step), other steps get 0; deferred, the clips of many
    steps and sub-environments are scored together, ``score_batch_size`` frames a batch.

    Args:
        venv: the vector environment, sub-environments wrapped in ``RenderFrame``.
        reward_model: any :class:`~vlmreward.rewards.base.RewardModel`.
        mode: ``"replace"`` or ``"add"``.
        weight: scale of the VLM reward.
        deferred: defer scoring as described above.
        score_batch_size: frames per deferred scoring batch (bounds the memory of stored frames).
        overlap: with ``deferred``, score each full batch on a background thread (module above).

    Raises:
        NotRenderableError: sub-environments not wrapped in ``RenderFrame``.
        InvalidParameterError: unknown ``mode``, non-finite ``weight``, ``score_batch_size < 1``,
            ``overlap`` without ``deferred``.
    """

    def __init__(
        self,
        venv: VecEnv,
        reward_model: RewardModel,
        mode: RewardMode = "replace",
        weight: float = 1.0,
        deferred: bool = False,
        score_batch_size: int = 256,
        overlap: bool = False,
    ) -> None:
        super().__init__(venv)
        _check_mode(mode, weight)
        if score_batch_size < 1:
            raise InvalidParameterError(f"score_batch_size must be at least 1; got {score_batch_size}.")
        if overlap and not deferred:
            raise InvalidParameterError("overlapped scoring scores deferred batches; pass deferred=True with overlap=True.")
        if not all(venv.env_is_wrapped(RenderFrame)):
            raise NotRenderableError(
                "each sub-environment must be wrapped in vlmreward.envs.RenderFrame (rendered before the "
                "auto-reset); build the vector environment with vlmreward.envs.make_vlm_vec_env."
            )
        self.reward_model = reward_model
        self.goal_key = goal_info_key(reward_model)
        self.mode = mode
        self.weight = float(weight)
        self.deferred = deferred
        self.overlap = bool(overlap)
        self.score_batch_size = int(score_batch_size)
        self._lock = scoring_lock(reward_model)
        self._worker = ScoringWorker()
        self.clips = ClipAssembler(reward_model, self.num_envs) if is_clip_reward(reward_model) else None
        if self.clips is not None and self.goal_key is not None:
            raise InvalidParameterError("a clip reward cannot also be goal-conditioned (goal_info_key); use one or the other.")
        self._pending_frames = 0  # deferred: frames stored and not yet scored
        self._steps: list[_PendingStep] = []  # deferred: steps since the last collect(), in order
        self._n_unscored = 0  # index of the first step in self._steps whose frames are not scored
        self.episodes = EpisodeAccounts(self.num_envs)
        self.num_timesteps = 0  # steps of all sub-environments, as SB3's num_timesteps (training sets it)
        self.observe_frames = False  # hand the frames to a learned reward's observe() (training sets it)
        if is_learned(reward_model) and (deferred or self.clips is not None):
            raise InvalidParameterError("a learned reward (preference) scores every step with the reward model of that "
                                        "moment; use per-step scoring (deferred: false).")

    def reset(self) -> Any:
        obs = self.venv.reset()
        self.episodes.clear_running()
        if self.clips is not None:
            self.clips.reset()
        return obs

    def step_wait(self) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        self.num_timesteps += self.num_envs
        frames = _stack([info.pop("frame") for info in infos])
        gt = np.asarray(rewards, dtype=np.float32)
        successes = [info.get("is_success") for info in infos]
        goals = None if self.goal_key is None else [info.get(self.goal_key) for info in infos]
        episode_goals = [info.get("goal") if done else None for info, done in zip(infos, dones)]
        items = frames if self.clips is None else self.clips.add(_frame_arrays(frames), np.asarray(dones, dtype=bool), infos)
        if self.deferred:
            self._steps.append(
                _PendingStep(items, gt, np.asarray(dones, dtype=bool), successes, None, goals, episode_goals, self.num_timesteps)
            )
            self._pending_frames += _frame_count(items)
            if self._pending_frames >= self.score_batch_size:
                self._submit_stored() if self.overlap else self.score_stored()
            return obs, combine_rewards(gt, np.zeros_like(gt), self.mode, self.weight), dones, infos
        with self._lock:
            if is_learned(self.reward_model):
                vlm = self._score_learned(frames, obs, gt, infos, dones)
            elif self.clips is not None:
                vlm = self._score_clips([items])[0]
            else:
                vlm = score_frames(self.reward_model, frames, goals)
        self.episodes.add(vlm, gt, np.asarray(dones, dtype=bool), successes, goals=episode_goals, step=self.num_timesteps)
        for info, value in zip(infos, vlm):
            info["vlm_reward"] = float(value)
        return obs, combine_rewards(gt, vlm, self.mode, self.weight), dones, infos

    def _score_learned(self, frames: Any, obs: Any, gt: np.ndarray, infos: list[dict], dones: Any) -> np.ndarray:
        """A learned reward (``reward_model.learned``, e.g. the ``preference`` kind): its head's inputs of the reached
        states (frames, or observations: a finished episode's is ``info["terminal_observation"]``) scored by the
        current reward model, and, with :attr:`observe_frames`, handed to ``reward_model.observe`` with the
        ground-truth values ``info[truth_key]`` (``"gt_reward"``: the environment's reward)."""
        model = self.reward_model
        frames = _frame_arrays(frames)
        reached = None
        if not isinstance(obs, dict):
            reached = np.array(obs, copy=True)
            for i, done in enumerate(dones):
                if done and "terminal_observation" in infos[i]:
                    reached[i] = infos[i]["terminal_observation"]
        inputs = model.reward_inputs(frames, reached)
        if self.observe_frames:
            key = getattr(getattr(model, "params", None), "truth_key", None)
            truths = None
            if key == "gt_reward":
                truths = gt
            elif key is not None:
                truths = np.array([float(info.get(key, np.nan)) for info in infos], dtype=np.float32)
            model.observe(frames, inputs, truths)
        base = combine_rewards(gt, np.zeros_like(gt), self.mode, self.weight)
        for info, x, b in zip(infos, inputs, base):  # for a replay buffer that relabels (vlmreward.rl.preference)
            info["reward_input"], info["reward_base"] = x, float(b)
        return model.score_inputs(inputs)

    def score_stored(self) -> None:
        """Score every stored, unscored step now, in batches of ``score_batch_size`` frames
        (deferred mode; nothing is stored otherwise), so that the episodes they finish are reported
        by :meth:`pop_episodes`. The rewards stay stored for :meth:`collect`: the learner sees the
        same rewards whenever they are scored (training calls this at its end)."""
        self._wait_in_flight()
        pending = self._steps[self._n_unscored :]
        if not pending:
            return
        self._apply_scores(pending, self._score_steps(pending))
        self._pending_frames = 0

    def _score_steps(self, pending: list[_PendingStep]) -> list[np.ndarray]:
        """Each pending step's ``float32 [n_envs]`` rewards (on the worker thread when overlapped)."""
        with self._lock:
            if self.clips is not None:
                return self._score_clips([step.frames for step in pending])
            return list(self._score_frames(pending))

    def _apply_scores(self, pending: list[_PendingStep], scored: list[np.ndarray]) -> None:
        """Store the rewards of ``pending`` (the oldest unscored steps, in order) and report their finished episodes."""
        for step, values in zip(pending, scored):
            step.vlm, step.frames = values, None  # free the frames (or clips)
            self.episodes.add(values, step.gt, step.dones, step.successes, goals=step.episode_goals, step=step.step)
        self._n_unscored += len(pending)

    def _submit_stored(self) -> None:
        """Overlap: apply the batch in flight, then hand every stored, unscored step to the worker."""
        self._wait_in_flight()
        pending = self._steps[self._n_unscored :]  # nothing is in flight now: all of them
        self._worker.submit(lambda: self._score_steps(pending), lambda scored: self._apply_scores(pending, scored))
        self._pending_frames = 0

    def _wait_in_flight(self) -> None:
        """Apply the batch the worker is scoring (overlap); if its scoring raised, its steps stay unscored."""
        try:
            self._worker.wait()
        except Exception:
            # their frames are kept: scored again, with the steps after them, by the next call
            self._pending_frames = sum(_frame_count(step.frames) for step in self._steps[self._n_unscored :])
            raise

    @property
    def unscored_episodes(self) -> int:
        """Episodes that finished in stored steps not yet scored (deferred mode), so not yet reported."""
        return int(sum(int(np.count_nonzero(step.dones)) for step in self._steps[self._n_unscored :]))

    def _score_frames(self, pending: list[_PendingStep]) -> np.ndarray:
        """``float32 [len(pending), n_envs]``: the steps' frames scored ``score_batch_size`` frames a call."""
        frames = _concatenate([step.frames for step in pending])
        goals = None if self.goal_key is None else [g for step in pending for g in (step.goals or [None] * self.num_envs)]
        return np.concatenate(
            [
                score_frames(
                    self.reward_model,
                    frames[i : i + self.score_batch_size],
                    None if goals is None else goals[i : i + self.score_batch_size],
                )
                for i in range(0, len(frames), self.score_batch_size)
            ]
        ).reshape(len(pending), self.num_envs)

    def _score_clips(self, steps: list[DueClips]) -> list[np.ndarray]:
        """Each step's ``float32 [n_envs]`` clip rewards (0 where no clip was due), the clips of all
        ``steps`` scored together, about ``score_batch_size`` frames a call."""
        merged = DueClips.merge(steps)
        frames_per_clip = max((len(c) for c in merged.clips), default=1)
        scores = score_clips_batched(self.reward_model, merged, self.score_batch_size // frames_per_clip)
        out, offset = [], 0
        for due in steps:
            values = np.zeros(self.num_envs, dtype=np.float32)
            values[due.slots] = scores[offset : offset + len(due)]
            out.append(values)
            offset += len(due)
        return out

    @property
    def pending_steps(self) -> int:
        """Steps stored since the last :meth:`collect` (deferred mode)."""
        return len(self._steps)

    def collect(self) -> np.ndarray:
        """Score what is still stored and hand over the deferred rewards.

        Returns:
            ``float32 [k, n_envs]``: ``weight · r_vlm`` of the ``k`` steps since the last call, in
            step order; ``k = 0`` when nothing is stored.
        """
        self.score_stored()
        return self.take_scored()

    def take_scored(self) -> np.ndarray:
        """Hand over the stored steps already scored, oldest first, without scoring the rest.

        Returns:
            ``float32 [k, n_envs]``: ``weight · r_vlm`` of the ``k`` oldest stored steps that were
            scored (all of them after :meth:`collect`'s scoring); they are removed from the store.
            A batch in flight (overlap) is waited for first.

        Raises:
            Exception: what the reward model raised on the batch in flight (its steps stay stored).
        """
        self._wait_in_flight()
        k = self._n_unscored
        out = np.array([np.float32(self.weight) * step.vlm for step in self._steps[:k]], dtype=np.float32)
        self._steps, self._n_unscored = self._steps[k:], 0
        return out.reshape(-1, self.num_envs)

    def discard(self) -> None:
        """Drop stored steps whose transitions no buffer will receive (an interrupted rollout)."""
        try:
            self._worker.wait()  # the batch in flight belongs to the dropped steps
        except Exception:  # noqa: BLE001 - its rewards are dropped with them
            pass
        if self._steps:
            self._steps, self._n_unscored, self._pending_frames = [], 0, 0
            self.episodes.clear_running()

    def close(self) -> None:
        self._worker.close()
        super().close()

    def pop_episodes(self) -> list[EpisodeRecord]:
        """Episodes finished (and, if deferred, scored) since the last call."""
        return self.episodes.pop_finished()


def _stack(frames: list[Any]) -> np.ndarray | list[Any]:
    """``uint8 [N, H, W, 3]`` of frame arrays; the list itself when it holds stand-ins (module docstring)."""
    return np.stack(frames) if all(isinstance(f, np.ndarray) for f in frames) else frames


def _frame_arrays(frames: np.ndarray | list[Any]) -> np.ndarray:
    if not isinstance(frames, np.ndarray):
        raise InvalidParameterError("clip rewards need the frames themselves; this vector environment sends stand-ins (a reward service).")
    return frames


def _frame_count(items: np.ndarray | list[Any] | DueClips) -> int:
    """Frames stored for one step: one per sub-environment, or those of the clips due."""
    if isinstance(items, DueClips):
        return sum(len(c) for c in items.clips)
    return len(items)


def _concatenate(parts: list[np.ndarray | list[Any]]) -> np.ndarray | list[Any]:
    if all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts)
    return [f for part in parts for f in part]


def make_vlm_vec_env(
    env_id: str | Callable[..., gym.Env],
    n_envs: int,
    reward_model: RewardModel,
    *,
    mode: RewardMode = "replace",
    weight: float = 1.0,
    deferred: bool = False,
    score_batch_size: int = 256,
    overlap: bool = False,
    seed: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    vec_env_cls: type[VecEnv] = DummyVecEnv,
    wrapper: Callable[[gym.Env], gym.Env] | None = None,
) -> VLMRewardVecEnvWrapper:
    """Build ``n_envs`` copies of an environment, each rendering ``rgb_array`` frames, VLM-rewarded.

    Each sub-environment is ``RenderFrame(wrapper(Monitor(gymnasium.make(env_id,
    render_mode="rgb_array", **env_kwargs))))``: stable-baselines3's ``Monitor`` records the
    ground-truth episode returns (logged as ``rollout/ep_rew_mean``), ``RenderFrame`` the frames;
    ``wrapper`` (optional) changes the observations, e.g.
    ``lambda env: GoalObservation(env, model)`` for a goal-conditioned environment; ``mode``,
    ``weight``, ``deferred``, ``score_batch_size`` and ``overlap`` are :class:`VLMRewardVecEnvWrapper`'s.

    Raises:
        NotRenderableError: the environment does not support ``rgb_array`` rendering.
    """
    kwargs = {"render_mode": "rgb_array", **(env_kwargs or {})}
    wrapper_class = RenderFrame if wrapper is None else (lambda env: RenderFrame(wrapper(env)))
    venv = make_vec_env(env_id, n_envs=n_envs, seed=seed, env_kwargs=kwargs, wrapper_class=wrapper_class, vec_env_cls=vec_env_cls)
    return VLMRewardVecEnvWrapper(venv, reward_model, mode=mode, weight=weight, deferred=deferred,
                                  score_batch_size=score_batch_size, overlap=overlap)
