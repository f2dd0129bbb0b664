"""stable-baselines3 callbacks of a training run.

* :class:`EpisodeLogCallback`: VLM return and ground-truth return/success side by side, from the
  :class:`~vlmreward.envs.vector.VLMRewardVecEnvWrapper`'s finished episodes, into SB3's logger
  (``rollout/vlm_return``, ``rollout/gt_return``, ``rollout/success_rate``,
  ``rollout/episode_length``; per goal type ``rollout/success_rate/<type>`` and
  ``rollout/vlm_return/<type>`` for goal-conditioned environments) and one row per episode into
  ``RUN_DIR/episodes.csv``.
* :class:`CheckpointCallback`: consistent, atomically written checkpoints
  (:class:`~vlmreward.rl.checkpoints.Checkpointer`: (policy and optimiser, replay buffer, step count, RNG states, ``VecNormalize``
  statistics) every ``checkpoint_every`` steps, and on demand after an interruption.
* :class:`EvalCallback`: the deterministic policy on a separate environment with the same reward
  (:func:`~vlmreward.rl.evaluation.evaluate_episodes`), ground-truth and VLM returns, and a video
  of the frames above a plot of the VLM reward so far (:mod:`vlmreward.rl.video`).
* :class:`StopAtTotalSteps`: off-policy runs end at exactly ``total_steps``.

The checkpoints, videos and evaluations these callbacks write live in :mod:`~vlmreward.rl.checkpoints`,
:mod:`~vlmreward.rl.video` and :mod:`~vlmreward.rl.evaluation`.
"""
from __future__ import annotations

import csv
import json
import logging
import os
from collections import deque
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.type_aliases import TrainFrequencyUnit

from vlmreward.envs.vector import EpisodeRecord
from vlmreward.errors import VLMRewardError
from vlmreward.rl.checkpoints import Checkpointer
from vlmreward.rl.deferred import find_vlm_wrapper
from vlmreward.rl.evaluation import (
    PAPER_SUCCESS_MIN_FRACTION,
    PolicyEvaluation,
    evaluate_episodes,
    goal_text_of,
    goal_type_of,
)


__all__ = [
    "CheckpointCallback",
    "EpisodeLogCallback",
    "EvalCallback",
    "StopAtTotalSteps",
    "EPISODES_CSV_COLUMNS",
    "GOAL_CSV_COLUMNS",
]

_log = logging.getLogger("vlmreward.rl")

EPISODES_CSV_COLUMNS = ("timesteps", "env_index", "length", "vlm_return", "gt_return", "success", "success_fraction")
GOAL_CSV_COLUMNS = ("goal_type", "goal")


# ---------------------------------------------------------------------------------------------
# logging of VLM and ground-truth returns


def _mean(values: deque[float]) -> float:
    return float(np.mean(values)) if values else float("nan")

class EpisodeLogCallback(BaseCallback):
    """Log the VLM return next to the ground-truth return and success of finished episodes.

    Each step (cheap: a deque pop), the episodes that the training environment's
    :class:`~vlmreward.envs.vector.VLMRewardVecEnvWrapper` finished (and, with deferred scoring,
    scored) since the last step are appended to ``episodes_csv``
    (:data:`EPISODES_CSV_COLUMNS`; ``timesteps`` is the step count at the episode's last step,
    :attr:`~vlmreward.envs.episodes.EpisodeRecord.end_step`, also with deferred scoring, where the
    row is written up to one scoring batch later; ``success`` is empty when
    the environment reports none; ``success_fraction`` is the fraction of its steps whose
    ``info["is_success"]`` was true). No finished episode is left out: when training ends, the
    steps still stored unscored are scored first (:meth:`finish`), and a checkpoint writes the
    episodes it holds before it is saved (:meth:`write_finished`), so ``episodes.csv`` holds
    every episode up to the checkpoint's step. Means over the last ``stats_window`` episodes are recorded as
    ``rollout/vlm_return`` (undiscounted sum of the unweighted VLM reward), ``rollout/gt_return``
    (the environment's own reward), ``rollout/episode_length``, ``rollout/success_rate`` (success
    at the episode's last step) and ``rollout/success_rate_held`` (VLM-RM's rule: the goal held in
    at least 50 % of the episode's steps, Rocamonde et al. section 4.4), the last two only once an
    episode reported ``info["is_success"]``. A resumed run's means start from the episodes its
    ``episodes.csv`` holds, as an uninterrupted run's would; a file written by an earlier version
    keeps its columns. Episodes of goal-conditioned environments
    (``info["goal"]`` with a ``type``) are also averaged per goal type, over the last
    ``stats_window`` episodes of that type: ``rollout/success_rate/<type>``,
    ``rollout/vlm_return/<type>``; with ``goal_columns`` the CSV gains :data:`GOAL_CSV_COLUMNS`.

    Raises:
        VLMRewardError: (at training start) the training environment has no VLM reward wrapper.
    """

    def __init__(self, episodes_csv: str | os.PathLike, stats_window: int = 100, goal_columns: bool = False) -> None:
        super().__init__()
        self.episodes_csv = Path(episodes_csv)
        self.stats_window = int(stats_window)
        self.goal_columns = bool(goal_columns)
        self.vlm: deque[float] = deque(maxlen=stats_window)
        self.gt: deque[float] = deque(maxlen=stats_window)
        self.length: deque[float] = deque(maxlen=stats_window)
        self.success: deque[float] = deque(maxlen=stats_window)
        self.success_held: deque[float] = deque(maxlen=stats_window)
        self.by_goal_type: dict[str, dict[str, deque[float]]] = {}
        self._file: Any = None
        self._writer: Any = None
        self._means: dict[str, float] = {}

    def _init_callback(self) -> None:
        self._wrapper = find_vlm_wrapper(self.training_env)
        if self._wrapper is None:
            raise VLMRewardError(
                "EpisodeLogCallback needs a training environment wrapped in VLMRewardVecEnvWrapper; "
                "build it with vlmreward.envs.make_vlm_vec_env."
            )
        self._wrapper.num_timesteps = self.model.num_timesteps  # episodes' end steps continue the model's count
        new = not self.episodes_csv.exists() or self.episodes_csv.stat().st_size == 0
        columns = list(EPISODES_CSV_COLUMNS + (GOAL_CSV_COLUMNS if self.goal_columns else ()))
        if not new:  # resumed: keep the columns the file has, and the means its episodes give
            with open(self.episodes_csv, newline="", encoding="utf-8") as f:
                columns = next(csv.reader(f), None) or columns
            self._refill()
        self._file = open(self.episodes_csv, "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, columns, extrasaction="ignore")
        if new:
            self._writer.writeheader()
            self._file.flush()

    def _drain(self, upto: int | None = None) -> None:
        records: list[EpisodeRecord] = self._wrapper.pop_episodes()
        if upto is not None:  # episodes after a checkpoint's step: a resumed run plays them again
            records = [r for r in records if r.end_step is None or r.end_step <= upto]
        if records:
            for r in records:
                goal = getattr(r, "goal", None)
                goal_type = goal_type_of(goal)
                fraction = getattr(r, "success_fraction", None)
                end = self.num_timesteps if getattr(r, "end_step", None) is None else r.end_step
                values = (end, r.env_index, r.length, f"{r.vlm_return:.6g}", f"{r.gt_return:.6g}",
                          "" if r.success is None else int(bool(r.success)), "" if fraction is None else f"{fraction:.6g}",
                          goal_type or "", goal_text_of(goal) or "")
                self._writer.writerow(dict(zip(EPISODES_CSV_COLUMNS + GOAL_CSV_COLUMNS, values)))
                self._account(r.vlm_return, r.gt_return, r.length, r.success, fraction, goal_type)
            self._file.flush()
            self._update_means()
        for key, value in self._means.items():
            self.logger.record(key, value)

    def _account(self, vlm: float, gt: float, length: int, success: bool | None, fraction: float | None,
                 goal_type: str | None) -> None:
        """Add one episode to the running windows of the means."""
        self.vlm.append(vlm)
        self.gt.append(gt)
        self.length.append(length)
        if success is not None:
            self.success.append(float(bool(success)))
        if fraction is not None:
            self.success_held.append(float(fraction >= PAPER_SUCCESS_MIN_FRACTION))
        if goal_type is not None:
            stats = self.by_goal_type.setdefault(
                goal_type, {"vlm": deque(maxlen=self.stats_window), "success": deque(maxlen=self.stats_window)}
            )
            stats["vlm"].append(vlm)
            if success is not None:
                stats["success"].append(float(bool(success)))

    def _update_means(self) -> None:
        self._means = {
            "rollout/vlm_return": _mean(self.vlm),
            "rollout/gt_return": _mean(self.gt),
            "rollout/episode_length": _mean(self.length),
        }
        if self.success:
            self._means["rollout/success_rate"] = _mean(self.success)
        if self.success_held:
            self._means["rollout/success_rate_held"] = _mean(self.success_held)
        for goal_type, stats in sorted(self.by_goal_type.items()):
            self._means[f"rollout/vlm_return/{goal_type}"] = _mean(stats["vlm"])
            if stats["success"]:
                self._means[f"rollout/success_rate/{goal_type}"] = _mean(stats["success"])

    def _refill(self) -> None:
        """A resumed run's windows, from the episodes ``episodes.csv`` already holds (cut back to the
        checkpoint's step), so that the means go on as in an uninterrupted run: the callback's
        state lives in the CSV, not in a pickle."""
        with open(self.episodes_csv, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                try:
                    success = None if row.get("success") in (None, "") else bool(int(row["success"]))
                    fraction = None if row.get("success_fraction") in (None, "") else float(row["success_fraction"])
                    self._account(float(row["vlm_return"]), float(row["gt_return"]), int(row["length"]), success, fraction,
                                  row.get("goal_type") or None)
                except (KeyError, TypeError, ValueError):
                    continue  # a row cut short
        if self.vlm:
            self._update_means()

    def means(self) -> dict[str, float]:
        """The current means over the last ``stats_window`` episodes (``rollout/...`` keys; empty before the first)."""
        return dict(self._means)

    def unscored_episodes(self) -> int:
        """Episodes that finished but wait for their deferred scoring batch (not yet in the CSV or the means)."""
        wrapper = getattr(self, "_wrapper", None)
        return 0 if wrapper is None else wrapper.unscored_episodes

    def write_finished(self, upto: int | None = None) -> None:
        """Write the episodes the environment has reported (scored) so far, those that ended at
        step ``upto`` or before (all with None): what a checkpoint at step ``upto`` calls before
        it is saved (an on-policy rollout cut short is not saved, so its episodes are not written)."""
        if self._file is not None and not self._file.closed:
            self._drain(upto)

    def finish(self) -> None:
        """Score the steps the environment still stores, then write every finished episode."""
        self._wrapper.score_stored()
        self._drain()

    def _on_step(self) -> bool:
        self._drain()
        return True

    def _on_rollout_end(self) -> None:
        self._drain()  # deferred PPO: the rollout's episodes are scored just before this

    def _on_training_end(self) -> None:
        self.finish()  # deferred: episodes in the last, unfilled scoring batch
        self.close()

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()


class StopAtTotalSteps(BaseCallback):
    """End an off-policy run at exactly ``total_steps`` environment steps.

    SB3's off-policy loop collects ``train_freq`` steps at a time, overshooting ``total_timesteps``
    when the remaining steps are not a multiple of it (after a resume, say). This stops the
    rollout once ``num_timesteps ≥ total_steps``, unless the rollout ends at that step anyway (then
    SB3 stores the transition and trains on it as usual).
    """

    def __init__(self, total_steps: int) -> None:
        super().__init__()
        self.total_steps = int(total_steps)

    def _on_step(self) -> bool:
        if self.num_timesteps < self.total_steps:
            return True
        train_freq = self.locals.get("train_freq")
        collected = self.locals.get("num_collected_steps")
        ends_here = (
            train_freq is not None
            and train_freq.unit == TrainFrequencyUnit.STEP
            and collected is not None
            and collected >= train_freq.frequency
        )
        return bool(ends_here)



class CheckpointCallback(BaseCallback):
    """Checkpoint every ``every`` environment steps, at the start of a rollout.

    The start of a rollout is the one point where everything agrees for both algorithm
    families: the previous rollout has been stored and trained on, and (off-policy) every step
    the environment took is in the replay buffer. Checkpoints therefore fall on the first rollout
    boundary at or after each multiple of ``every``.
    """

    def __init__(self, checkpointer: Checkpointer, every: int | None) -> None:
        super().__init__()
        self.checkpointer = checkpointer
        self.every = every
        self._next: int | None = None

    def _init_callback(self) -> None:
        if self.every is not None:
            self._next = (self.model.num_timesteps // self.every + 1) * self.every

    def _on_rollout_start(self) -> None:
        self.checkpointer.rollout_start_timesteps = self.model.num_timesteps
        self.checkpointer.in_rollout = True
        if self._next is not None and self.model.num_timesteps >= self._next:
            self.checkpointer.save(self.model, "periodic")
            self._next = (self.model.num_timesteps // self.every + 1) * self.every  # type: ignore[operator]

    def _on_rollout_end(self) -> None:
        self.checkpointer.in_rollout = False

    def _on_step(self) -> bool:
        return True


class EvalCallback(BaseCallback):
    """Evaluate the deterministic policy every ``every`` steps, and at the end, on a separate environment.

    Records ``eval/gt_return`` (mean), ``eval/gt_return_std``, ``eval/vlm_return``,
    ``eval/episode_length``, ``eval/success_rate`` and ``eval/success_rate_held`` (VLM-RM's
    rule, see :class:`EpisodeLogCallback`) (where reported; per goal type
    ``eval/success_rate/<type>``), dumps the logger, and, with ``video_dir``, writes
    ``video_dir/eval_<timesteps>.mp4`` of the first episode. ``prefix`` replaces ``eval``
    (``eval_held_out`` for the held-out goals of a goal-conditioned run).

    Args:
        make_env: builds the evaluation environment (called once, at the first evaluation).
        every: steps between evaluations.
        episodes: episodes per evaluation.
        video_dir: where videos go (None: no video).
        seed: seed of each evaluation's first reset (every evaluation sees the same episodes).
        prefix: the logger's key prefix.
        after: called after each evaluation (the trainer redraws ``curves.png`` and the report).
        record: append each evaluation to this JSON-lines file (``prefix``, ``step`` and
            :meth:`PolicyEvaluation.to_dict`), e.g. ``RUN_DIR/evaluations.jsonl``.
    """

    def __init__(
        self,
        make_env: Callable[[], gym.Env],
        every: int,
        episodes: int,
        video_dir: str | os.PathLike | None = None,
        seed: int | None = None,
        prefix: str = "eval",
        after: Callable[[], Any] | None = None,
        record: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        self.record = None if record is None else Path(record)
        self.prefix = prefix
        self.after = after
        self.make_env = make_env
        self.every = int(every)
        self.episodes = int(episodes)
        self.video_dir = None if video_dir is None else Path(video_dir)
        self.seed = seed
        self.env: gym.Env | None = None
        self.results: list[tuple[int, PolicyEvaluation]] = []
        self._next = 0

    def _init_callback(self) -> None:
        self._next = (self.model.num_timesteps // self.every + 1) * self.every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next = (self.num_timesteps // self.every + 1) * self.every
            self.evaluate()
        return True

    def evaluate(self) -> PolicyEvaluation:
        """Run one evaluation now and record it."""
        if self.env is None:
            self.env = self.make_env()
        video = None if self.video_dir is None else self.video_dir / f"eval_{self.num_timesteps}.mp4"
        result = evaluate_episodes(
            self.model, self.env, self.episodes, deterministic=True, video_path=video,
            vec_normalize=self.model.get_vec_normalize_env(), seed=self.seed,
        )
        self.results.append((self.num_timesteps, result))
        p = self.prefix
        if self.record is not None:
            with open(self.record, "a", encoding="utf-8") as f:
                f.write(json.dumps({"prefix": p, "step": self.num_timesteps, **result.to_dict()}, default=str) + "\n")
        self.logger.record(f"{p}/gt_return", result.mean_gt_return)
        self.logger.record(f"{p}/gt_return_std", result.std_gt_return)
        self.logger.record(f"{p}/vlm_return", result.mean_vlm_return)
        self.logger.record(f"{p}/episode_length", result.mean_length)
        if result.success_rate is not None:
            self.logger.record(f"{p}/success_rate", result.success_rate)
        if result.success_rate_held is not None:
            self.logger.record(f"{p}/success_rate_held", result.success_rate_held)
        for goal_type, rate in result.success_rate_by_goal_type.items():
            self.logger.record(f"{p}/success_rate/{goal_type}", rate)
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(self.num_timesteps)
        success = "" if result.success_rate is None else f", success {100 * result.success_rate:.0f}%"
        remark = result.remark()
        _log.info(
            "%s at step %s (%d episodes): GT return %.4g ± %.3g, VLM return %.4g%s%s", p, f"{self.num_timesteps:,}",
            self.episodes, result.mean_gt_return, result.std_gt_return, result.mean_vlm_return, success,
            f" ({remark})" if remark else "",
        )
        if self.after is not None:
            self.after()
        return result

    def _on_training_end(self) -> None:
        if not self.results or self.results[-1][0] != self.num_timesteps:
            self.evaluate()  # every finished run ends with an evaluation (and its video)
        self.close()

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None
