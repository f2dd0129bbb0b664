"""Progress rewards over episode prefixes: TOPReward's token probability, and its simulator oracle.

``token_progress`` (:class:`TokenProgressReward`) is TOPReward (Chen et al., "TOPReward: Token
Probabilities as Hidden Zero-Shot Rewards for Robotics", arXiv 2602.19313; LeRobot
``src/lerobot/rewards/topreward/``): the reward of the episode prefix ``0 … t`` is

    ``r_t = log p("True" | video(frames 0 … t), prompt(instruction))``

read from one forward pass of a generative VLM that takes video (Qwen2-VL, Qwen2.5-VL,
Qwen3-VL; :func:`~vlmreward.models.generative_video.video_answer_log_probs`). The prefix is
sampled to at most ``max_frames`` frames (:func:`prefix_frame_indices`); ``fps`` is the frame
rate the video processor's timestamps assume. With ``success_threshold`` the reward is the
success detector ``1[r_t > threshold]`` (LeRobot's ``TOPRewardModel.compute_reward``).

Online (training), it is a clip reward of mode ``"prefix"``: the environment wrappers keep each
episode's frames and hand over, at every step, the prefix due; deferred scoring scores the
prefixes of many steps and sub-environments in one batch (:mod:`vlmreward.rewards.video`'s
protocol). Offline (``evaluate``, ``relabel``, ``reward(frames)``), an episode is scored at
``anchors`` prefix lengths (15 by default, LeRobot's ``compute_rabc_weights.py``), optionally
min-max normalised per episode (``normalize``), and interpolated linearly to every frame
(:func:`anchored_curve`).

``progress_info_oracle`` (:class:`ProgressInfoOracleReward`) is the control: the same prefix
path with a statistic of a per-step ``info`` value in place of the VLM (e.g. the fraction of
the initial distance to the target covered), so a policy trained on it tests the machinery.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Sequence

import numpy as np
import torch
from pydantic import AfterValidator, Field

from vlmreward.errors import InvalidParameterError
from vlmreward.models.generative_video import answer_token_count, check_video_input, video_answer_log_probs, video_prompt_text
from vlmreward.models.video import uniform_frame_indices
from vlmreward.rewards.base import as_prompt_list
from vlmreward.rewards.params import Count, FiniteFloat, PositiveFloat, Prompts, RewardParams, check_placeholder
from vlmreward.rewards.registry import register
from vlmreward.rewards.video import ClipMode, clip_step_rewards, info_series

__all__ = [
    "TokenProgressReward",
    "ProgressInfoOracleReward",
    "DEFAULT_PROMPT_PREFIX",
    "DEFAULT_PROMPT",
    "DEFAULT_ANSWER",
    "DEFAULT_ANCHORS",
    "check_instruction_template",
    "prefix_frame_indices",
    "anchor_lengths",
    "min_max_normalize",
    "anchored_curve",
]

DEFAULT_PROMPT_PREFIX = "The above video shows a robot manipulation trajectory that completes the following task: "
"""Text after the video (TOPReward's, LeRobot ``configuration_topreward.py``)."""

DEFAULT_PROMPT = "{instruction} Decide whether the above statement is True or not. The answer is:"
"""The instruction sentence before the answer (TOPReward's suffix without its final ``True``)."""

DEFAULT_ANSWER = "True"
"""The answer whose log-probability is the reward; joined to the prompt with one space."""

DEFAULT_ANCHORS = 15
"""Prefix lengths scored per episode offline (LeRobot's ``compute_rabc_weights --num-samples 15``)."""


def check_instruction_template(template: str) -> str:
    """A prompt with exactly one ``{instruction}`` placeholder and no other field.

    Raises:
        ValueError: no ``{instruction}``, another ``{field}``, or broken braces.
    """
    return check_placeholder(template, "instruction", DEFAULT_PROMPT, what="prompt")


InstructionTemplate = Annotated[str, AfterValidator(check_instruction_template)]


def prefix_frame_indices(length: int, max_frames: int) -> np.ndarray:
    """The frames of a prefix of ``length`` frames a progress reward reads: all of them when there
    are at most ``max_frames``, else ``max_frames`` spread evenly from the first to the last
    (:func:`~vlmreward.models.video.uniform_frame_indices`); a one-frame prefix is its frame twice
    (Qwen-VL's video input takes frames in pairs, ``temporal_patch_size = 2``).

    LeRobot's TOPReward processor keeps the *last* ``max_frames`` frames instead
    (``video[:, -max_frames:]``); the even spread keeps the prefix's start in view.

    Returns:
        ``int64 [min(max(length, 2), max_frames)]``, non-decreasing, in ``[0, length - 1]``.

    Raises:
        InvalidParameterError: ``length < 1`` or ``max_frames < 2``.
    """
    if max_frames < 2:
        raise InvalidParameterError(f"max_frames must be at least 2; got {max_frames}.")
    if length < 1:
        raise InvalidParameterError(f"a prefix needs at least one frame; got {length}.")
    if length == 1:
        return np.zeros(2, dtype=np.int64)
    if length <= max_frames:
        return np.arange(length, dtype=np.int64)
    return uniform_frame_indices(length, max_frames)


def anchor_lengths(length: int, anchors: int | None) -> np.ndarray:
    """The prefix lengths an episode of ``length`` frames is scored at offline:
    ``unique(round(linspace(1, length, anchors)))``, or every length ``1 … length`` when
    ``anchors`` is None or at least ``length`` (LeRobot ``compute_rabc_weights.py``).

    Returns:
        ``int64``, increasing, in ``[1, length]``; the last is ``length``.
    """
    if anchors is None or anchors >= length:
        return np.arange(1, length + 1, dtype=np.int64)
    return np.unique(np.rint(np.linspace(1, length, int(anchors))).astype(np.int64))


def min_max_normalize(values: np.ndarray) -> np.ndarray:
    """``(v − min) / (max − min)`` per episode, in ``[0, 1]``; one value or a constant curve gives
    ones (LeRobot ``compute_rabc_weights.normalize_rewards``). ``float64``."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return v
    lo, hi = v.min(), v.max()
    if v.size == 1 or hi == lo:
        return np.ones_like(v)
    return (v - lo) / (hi - lo)


def anchored_curve(lengths: np.ndarray, scores: np.ndarray, length: int, normalize: bool) -> np.ndarray:
    """Per-frame values of an episode of ``length`` frames from the scores of its prefixes of
    ``lengths`` frames: frame ``t`` (prefix length ``t + 1``) by linear interpolation
    (``np.interp``), after per-episode min-max normalisation when ``normalize``. ``float32 [length]``."""
    values = min_max_normalize(scores) if normalize else np.asarray(scores, dtype=np.float64)
    return np.interp(np.arange(1, length + 1, dtype=np.float64), np.asarray(lengths, np.float64), values).astype(np.float32)


class _PrefixReward:
    """What prefix rewards share: online clip mode ``"prefix"`` and the offline anchored scoring."""

    clip_mode: ClipMode = "prefix"
    window: Optional[int] = None
    clip_info_key: Optional[str] = None
    max_frames: int = 16
    anchors: Optional[int] = DEFAULT_ANCHORS
    normalize: bool = False

    def clip_indices(self, length: int) -> np.ndarray:
        return prefix_frame_indices(length, self.max_frames)

    def score_clips(self, clips: Sequence[np.ndarray], infos: Sequence[Sequence[Any]] | None = None) -> np.ndarray:
        raise NotImplementedError

    def episode_rewards(self, frames: Any, infos: Sequence[Any] | None = None) -> np.ndarray:
        """Per-frame rewards of one episode offline: its prefixes at :func:`anchor_lengths` scored in
        one call of :meth:`score_clips`, (normalised and) interpolated (:func:`anchored_curve`).

        Args:
            frames: uint8 ``[N, H, W, 3]``, the episode in step order.
            infos: the per-step ``info[clip_info_key]`` values, for a reward that reads one.

        Returns:
            ``float32 [N]``.
        """
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        n = len(frames)
        lengths = anchor_lengths(n, self.anchors)
        keep = [self.clip_indices(int(m)) for m in lengths]
        clips = [frames[k] for k in keep]
        clip_infos = None if infos is None else [[infos[i] for i in k] for k in keep]
        scores = np.asarray(self.score_clips(clips, clip_infos), dtype=np.float64)
        return anchored_curve(lengths, scores, n, self.normalize)

    def step_rewards(self, frames: Any, infos: Sequence[Any] | None = None) -> np.ndarray:
        """The rewards the environment wrappers pay at every step of one episode (every prefix scored; not normalised)."""
        return clip_step_rewards(self, frames, infos)

    def __call__(self, frames: Any, batch_size: int | None = None) -> np.ndarray:
        """Per-frame rewards of ``frames`` ``[N, H, W, 3]`` taken as one episode, scored offline (:meth:`episode_rewards`)."""
        return self.episode_rewards(frames)


class TokenProgressParams(RewardParams):
    """Parameters of ``token_progress``.

    Attributes:
        goal: the task instruction (several: their log-probabilities are averaged).
        prompt_prefix: text after the video.
        prompt: the instruction sentence before the answer, with ``{instruction}``.
        answer: the answer whose log-probability is the reward.
        max_frames: frames of a prefix the model reads (at least 2).
        fps: frames per second the video processor assumes (> 0).
        success_threshold: a log-probability; the reward is ``1[r > threshold]`` when set.
        normalize: offline, min-max normalise each episode's curve to ``[0, 1]``.
        anchors: offline, prefix lengths scored per episode (None: every frame).
    """

    goal: Prompts
    prompt_prefix: str = DEFAULT_PROMPT_PREFIX
    prompt: InstructionTemplate = DEFAULT_PROMPT
    answer: str = Field(DEFAULT_ANSWER, min_length=1)
    max_frames: int = Field(16, ge=2)
    fps: PositiveFloat = 2.0
    success_threshold: Optional[FiniteFloat] = None
    normalize: bool = False
    anchors: Optional[Count] = DEFAULT_ANCHORS


@register("token_progress", TokenProgressParams, display="token progress", family="generative", mode="prefix")
class TokenProgressReward(_PrefixReward):
    """TOPReward: ``log p(answer | video prefix, prompt(instruction))`` from a generative VLM that takes video.

    Args:
        model: a :class:`~vlmreward.models.generative.GenerativeVLM` of type Qwen2-VL, Qwen2.5-VL or Qwen3-VL.
        goal: the task instruction, or several (mean log-probability).
        prompt_prefix, prompt, answer, max_frames, fps, success_threshold, normalize, anchors:
            as in :class:`TokenProgressParams`.
        batch_size: prefixes per forward pass (default the model's).

    Values: natural-log probabilities ``≤ 0`` (``float32``); ``{0, 1}`` with ``success_threshold``;
    ``[0, 1]`` offline with ``normalize``. Cost: one forward pass over ``≤ max_frames`` frames per
    prefix (per step online; ``anchors`` per episode offline), batched across prefixes.

    Raises:
        InvalidParameterError: a model without video input; no goal; a prompt without
            ``{instruction}``; ``max_frames < 2``; ``fps ≤ 0``; an answer that does not tokenize
            apart from the text before it.
    """

    def __init__(
        self,
        model: Any,
        goal: str | Sequence[str] | None = None,
        prompt_prefix: str = DEFAULT_PROMPT_PREFIX,
        prompt: str = DEFAULT_PROMPT,
        answer: str = DEFAULT_ANSWER,
        max_frames: int = 16,
        fps: float = 2.0,
        success_threshold: float | None = None,
        normalize: bool = False,
        anchors: int | None = DEFAULT_ANCHORS,
        batch_size: int | None = None,
    ) -> None:
        self.model = check_video_input(model, "token_progress")
        if goal is None:
            raise InvalidParameterError("token_progress needs the task instruction: give goal=... (--goal on the command line).")
        try:
            self.prompt = check_instruction_template(prompt)
        except ValueError as err:
            raise InvalidParameterError(f"{err}.") from None
        if int(max_frames) < 2:
            raise InvalidParameterError(f"max_frames must be at least 2 (Qwen-VL reads frames in pairs); got {max_frames}.")
        if not float(fps) > 0:
            raise InvalidParameterError(f"fps must be > 0; got {fps}.")
        if anchors is not None and int(anchors) < 1:
            raise InvalidParameterError(f"anchors must be at least 1 (or None for every frame); got {anchors}.")
        self.goal = as_prompt_list(goal, "goal")
        self.prompt_prefix, self.answer = str(prompt_prefix), str(answer).strip()
        self.max_frames, self.fps = int(max_frames), float(fps)
        self.success_threshold = None if success_threshold is None else float(success_threshold)
        self.normalize = bool(normalize)
        self.anchors = None if anchors is None else int(anchors)
        self.batch_size = batch_size
        self.texts = [video_prompt_text(self.model, self.prompt_prefix, self.suffix(g)) for g in self.goal]
        self.answer_tokens = [answer_token_count(self.model, t, self.answer) for t in self.texts]

    def suffix(self, instruction: str) -> str:
        """The text after :attr:`prompt_prefix`: the prompt with the instruction, a space, the answer."""
        return f"{self.prompt.format(instruction=instruction)} {self.answer}"

    def log_probs(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """``log p(answer | clip, prompt)`` of each clip (already reduced to its frames), averaged over
        the goal sentences: ``float32 [len(clips)]``."""
        if not len(clips):
            return np.zeros(0, dtype=np.float32)
        per_goal = [
            video_answer_log_probs(self.model, list(clips), [text] * len(clips), [k] * len(clips), fps=self.fps,
                                   batch_size=self.batch_size)
            for text, k in zip(self.texts, self.answer_tokens)
        ]
        return torch.stack(per_goal).mean(dim=0).numpy().astype(np.float32)

    def score_clips(self, clips: Sequence[np.ndarray], infos: Sequence[Sequence[Any]] | None = None) -> np.ndarray:
        """Rewards of prefixes (each reduced to :meth:`clip_indices`): ``float32 [E]`` (``{0, 1}`` with a threshold)."""
        scores = self.log_probs(clips)
        if self.success_threshold is not None:
            return (scores > self.success_threshold).astype(np.float32)
        return scores

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "token_progress", "model": self.model.name, "goal": self.goal, "prompt_prefix": self.prompt_prefix,
            "prompt": self.prompt, "answer": self.answer, "answer_tokens": self.answer_tokens, "max_frames": self.max_frames,
            "fps": self.fps, "success_threshold": self.success_threshold, "normalize": self.normalize, "anchors": self.anchors,
        }


class ProgressInfoOracleParams(RewardParams):
    """Parameters of ``progress_info_oracle``: the ``info`` key, the statistic, a scale, the frames read."""

    key: str = "obj_to_target"
    statistic: Literal["covered", "mean", "max", "last"] = "covered"
    scale: FiniteFloat = 1.0
    max_frames: int = Field(16, ge=2)
    normalize: bool = False
    anchors: Optional[Count] = DEFAULT_ANCHORS


@register("progress_info_oracle", ProgressInfoOracleParams, model="none", display="progress info oracle", mode="prefix")
class ProgressInfoOracleReward(_PrefixReward):
    """A progress reward from the simulator, given through ``token_progress``'s prefix path.

    At step ``t``: ``scale · statistic(x)`` of ``x = info[key]`` over the prefix's sampled steps
    (:func:`prefix_frame_indices`); ``covered`` is ``1 − x_last / x_first``, the fraction of the
    first value removed (with ``key: obj_to_target``, Meta-World's hand-to-target distance, the
    fraction of the way to the target), ``mean``/``max``/``last`` as named. Frames are kept and
    handed over exactly as for ``token_progress``, so a policy trained on it tests the prefix
    machinery, not a VLM.

    Raises:
        InvalidParameterError: a step whose ``info[key]`` is missing or not a number (at scoring);
            ``covered`` with a first value of 0.
    """

    def __init__(self, key: str = "obj_to_target", statistic: str = "covered", scale: float = 1.0, max_frames: int = 16,
                 normalize: bool = False, anchors: int | None = DEFAULT_ANCHORS) -> None:
        if statistic not in ("covered", "mean", "max", "last"):
            raise InvalidParameterError(f"statistic={statistic!r}: use covered, mean, max or last.")
        if int(max_frames) < 2:
            raise InvalidParameterError(f"max_frames must be at least 2; got {max_frames}.")
        self.clip_info_key, self.statistic, self.scale = key, statistic, float(scale)
        self.max_frames, self.normalize = int(max_frames), bool(normalize)
        self.anchors = None if anchors is None else int(anchors)

    def score_clips(self, clips: Sequence[np.ndarray], infos: Sequence[Sequence[Any]] | None = None) -> np.ndarray:
        out = np.empty(len(clips), dtype=np.float32)
        for i, x in enumerate(info_series(self, clips, infos)):
            if self.statistic == "covered":
                if x[0] == 0:
                    raise InvalidParameterError(f"progress_info_oracle: info[{self.clip_info_key!r}] is 0 at the episode's start; "
                                                "'covered' divides by it.")
                value = 1.0 - x[-1] / x[0]
            else:
                value = {"mean": x.mean(), "max": x.max(), "last": x[-1]}[self.statistic]
            out[i] = self.scale * value
        return out

    def describe(self) -> dict[str, Any]:
        return {"kind": "progress_info_oracle", "model": None, "key": self.clip_info_key, "statistic": self.statistic,
                "scale": self.scale, "max_frames": self.max_frames, "normalize": self.normalize, "anchors": self.anchors}
