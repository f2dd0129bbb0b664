"""Rewards of behaviour: a clip of frames (an episode, or a window of one) scored as a whole.

Two kinds score clips with a video-language model (:class:`~vlmreward.models.video.VideoLanguageModel`):

* ``episode_video``: RoboCLIP's sparse reward (Sontakke et al., "RoboCLIP: One Demonstration is
  Enough to Learn Robot Policies", NeurIPS 2023): 0 at every step, and at the
  episode's last step the similarity of the episode's video with the goal (a sentence, or a
  demonstration video). RoboCLIP's code rewards the dot product of S3D's video and text
  embeddings at the end of a 128-step episode (``metaworld_envs.py``, ``MetaworldSparse.step``);
  here it is the cosine similarity the video-language model computes (X-CLIP: conditioned on
  the clip), the mean over several goal sentences.
* ``window_video``: a dense variant: at every step, the similarity of the last ``window`` frames
  of the episode (fewer at its start) with the goal.

A third, ``episode_info_oracle``, rewards a clip with a statistic of a per-step ``info`` value
(e.g. the simulator's own reward or success) over the same sampled frames, through the same
path: the informative control that checks the episode machinery can train a policy at all.

Every *clip reward* follows :class:`ClipReward`: the environment wrappers
(:mod:`vlmreward.envs.clips`) keep each sub-environment's frames and hand clips over at the
right steps; deferred scoring (:mod:`vlmreward.rl.deferred`) writes the rewards back at those
transitions. Called on frames ``[N, H, W, 3]`` (``reward(frames)``), a clip reward treats them
as one episode and returns the ``[N]`` per-step rewards the wrappers would give.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from vlmreward.errors import InputFileError, InvalidParameterError
from vlmreward.models.video import as_clip_list, uniform_frame_indices
from vlmreward.rewards.base import as_prompt_list
from vlmreward.rewards.params import Count, FiniteFloat, Prompts, RewardParams
from vlmreward.rewards.registry import register

__all__ = [
    "ClipReward",
    "ClipMode",
    "is_clip_reward",
    "clip_step_rewards",
    "offline_episode_rewards",
    "info_series",
    "VideoReward",
    "EpisodeVideoReward",
    "WindowVideoReward",
    "EpisodeInfoOracleReward",
    "read_video",
]

ClipMode = Literal["episode", "window", "prefix"]


@runtime_checkable
class ClipReward(Protocol):
    """A reward of clips: ``score_clips(clips, infos) -> float32 [E]``.

    Attributes:
        clip_mode: ``"episode"`` (one clip per episode, rewarded at its last step),
            ``"window"`` (at every step, the episode's last ``window`` frames) or ``"prefix"``
            (at every step, the episode so far: frames ``0 … t``).
        window: frames per clip in ``"window"`` mode; None in ``"episode"`` mode.
        clip_info_key: the ``info`` key whose per-step values are kept with the frames and passed
            as ``infos`` (one list per clip), or None.
    """

    clip_mode: ClipMode
    window: Optional[int]
    clip_info_key: Optional[str]

    def clip_indices(self, length: int) -> np.ndarray:
        """Which frames of a clip of ``length`` frames the reward reads (``int64``); the wrappers keep only these."""

    def score_clips(self, clips: Sequence[np.ndarray], infos: Sequence[Sequence[Any]] | None = None) -> np.ndarray:
        """``float32 [E]``: one reward per clip (each clip already reduced to :meth:`clip_indices`)."""


def is_clip_reward(reward_model: Any) -> bool:
    """Whether ``reward_model`` scores clips (declares ``clip_mode``) rather than single frames."""
    return getattr(reward_model, "clip_mode", None) in ("episode", "window", "prefix")


def clip_step_rewards(reward: Any, frames: Any, infos: Sequence[Any] | None = None) -> np.ndarray:
    """The per-step rewards a clip reward gives an episode of ``frames`` ``[N, H, W, 3]``.

    ``"episode"``: zeros and, at the last step, the score of the whole episode; ``"window"``: at
    step ``t`` the score of frames ``max(0, t - window + 1) … t``; ``"prefix"``: at step ``t`` the
    score of frames ``0 … t``. This is the straightforward
    per-episode computation the wrappers' batched, deferred scoring is tested against.

    Args:
        reward: a :class:`ClipReward`.
        frames: uint8 ``[N, H, W, 3]``, one episode in step order.
        infos: the episode's per-step ``info[reward.clip_info_key]`` values, when the reward reads one.

    Returns:
        ``float32 [N]``.
    """
    frames = np.asarray(frames) if not isinstance(frames, torch.Tensor) else frames
    if frames.ndim == 3:
        frames = frames[None]
    n = len(frames)
    ends = [n] if reward.clip_mode == "episode" else list(range(1, n + 1))
    starts = [max(0, end - reward.window) if reward.clip_mode == "window" else 0 for end in ends]
    clips, clip_infos = [], None if infos is None else []
    for start, end in zip(starts, ends):
        keep = start + reward.clip_indices(end - start)
        clips.append(frames[keep])
        if clip_infos is not None:
            clip_infos.append([infos[i] for i in keep])
    scores = np.asarray(reward.score_clips(clips, clip_infos), dtype=np.float32)
    if reward.clip_mode != "episode":
        return scores
    out = np.zeros(n, dtype=np.float32)
    out[-1] = scores[0]
    return out


def offline_episode_rewards(reward: Any, frames: Any, infos: Sequence[Any] | None = None) -> np.ndarray:
    """Per-frame rewards of one recorded episode ``[N, H, W, 3]`` (``float32 [N]``): the reward's own
    offline scoring when it has one (``episode_rewards``: a prefix reward's anchored curve), else
    the rewards the wrappers pay (:func:`clip_step_rewards`)."""
    if hasattr(reward, "episode_rewards"):
        return np.asarray(reward.episode_rewards(frames, infos), dtype=np.float32)
    return clip_step_rewards(reward, frames, infos)


def read_video(path: str | Path) -> np.ndarray:
    """Frames of a demonstration: a GIF or video file, a folder of images or a frames array, read by
    :func:`vlmreward.media.iter_frames` (RGB, alpha dropped, grey expanded): uint8 ``[T, H, W, 3]``.

    Raises:
        InvalidParameterError: the path does not exist, cannot be read, has no frames, or frames
            of different sizes.
    """
    from vlmreward.media import iter_frames

    try:
        frames = [frame for _, frame in iter_frames(Path(path).expanduser())]
        return np.stack(frames).astype(np.uint8, copy=False)
    except (InputFileError, ValueError) as err:
        raise InvalidParameterError(f"demonstration video: {err}") from None


class _ClipRewardBase:
    """What every clip reward shares: ``reward(frames)`` as one episode (:func:`clip_step_rewards`)."""

    clip_mode: ClipMode = "episode"
    window: Optional[int] = None
    clip_info_key: Optional[str] = None

    def __call__(self, frames: Any, batch_size: int | None = None) -> np.ndarray:
        """Per-step rewards of ``frames`` ``[N, H, W, 3]`` taken as one episode: ``float32 [N]``."""
        return clip_step_rewards(self, frames)


class VideoRewardParams(RewardParams):
    """Parameters of ``episode_video``: the goal as sentence(s) or a demonstration video (one of them)."""

    goal: Optional[Prompts] = None
    demo_video: Optional[str] = None


class WindowVideoRewardParams(VideoRewardParams):
    """Parameters of ``window_video``: those of ``episode_video`` and ``window``, the frames per clip."""

    window: Count = 16


class VideoReward(_ClipRewardBase):
    """Similarity of clips with a goal, by a video-language model.

    With goal sentences ``l_1 … l_K`` the reward of a clip ``v`` is ``(1/K) Σ_k cos(v, l_k)`` as
    the model scores it (:meth:`~vlmreward.models.video.VideoLanguageModel.similarity`); with a
    demonstration video ``d`` it is ``cos(E(v), E(d))`` of the two video embeddings (RoboCLIP's
    code embeds a text or a demonstration GIF as its target the same way, ``metaworld_envs.py``,
    ``MetaworldSparse.__init__``). Values lie in ``[-1, 1]``.

    Args:
        model: a :class:`~vlmreward.models.video.VideoLanguageModel`.
        goal: one sentence or several.
        demo_video: path of a GIF or video file showing the task done (instead of ``goal``).

    Raises:
        InvalidParameterError: a model that does not score clips, neither or both of ``goal`` and
            ``demo_video``, or an unreadable demonstration.
        PromptError: an empty or over-long sentence.
    """

    kind = "video"

    def __init__(self, model: Any, goal: str | Sequence[str] | None = None, demo_video: str | None = None) -> None:
        if not hasattr(model, "similarity") or not hasattr(model, "encode_videos"):
            raise InvalidParameterError(
                f"the {self.kind} reward scores clips with a video-language model (X-CLIP, e.g. "
                f"'microsoft/xclip-base-patch32'); {getattr(model, 'name', model)!r} is a {type(model).__name__}."
            )
        if (goal is None) == (demo_video is None):
            raise InvalidParameterError(
                f"the {self.kind} reward needs its goal as either sentences (goal: ...) or a demonstration video "
                "(demo_video: PATH), not both and not neither."
            )
        self.model = model
        self.goal = None if goal is None else as_prompt_list(goal, "goal")
        self.demo_video = None if demo_video is None else str(demo_video)
        if self.goal is not None:
            model.encode_text(self.goal)  # checked and embedded once, here
            self.demo_embedding = None
        else:
            self.demo_embedding = model.encode_videos([read_video(self.demo_video)])[0]  # [D], unit

    def clip_indices(self, length: int) -> np.ndarray:
        return uniform_frame_indices(length, self.model.num_frames)

    @torch.inference_mode()
    def score_clips(self, clips: Sequence[np.ndarray], infos: Sequence[Sequence[Any]] | None = None) -> np.ndarray:
        """Rewards of clips (any lengths): ``float32 [E]``, in ``[-1, 1]``.

        Raises:
            InvalidFramesError: clips that are not uint8 ``[T, H, W, 3]``.
        """
        clips = as_clip_list(clips)
        if self.goal is not None:
            return self.model.similarity(clips, self.goal).mean(dim=1).cpu().numpy().astype(np.float32)
        return (self.model.encode_videos(clips) @ self.demo_embedding).cpu().numpy().astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "model": self.model.name, "goal": self.goal, "demo_video": self.demo_video,
            "num_frames": self.model.num_frames, "window": self.window,
        }


@register("episode_video", VideoRewardParams, display="episode video", family="video", mode="episode")
class EpisodeVideoReward(VideoReward):
    """RoboCLIP's sparse ``episode_video`` reward: 0 at every step and, at the episode's last step,
    :class:`VideoReward`'s score of the whole episode (sampled to the model's ``num_frames``).

    Raises:
        InvalidParameterError, PromptError: as :class:`VideoReward`.
    """

    kind = "episode_video"


@register("window_video", WindowVideoRewardParams, display="window video", family="video", mode="clip")
class WindowVideoReward(VideoReward):
    """The dense ``window_video`` reward: at every step, :class:`VideoReward`'s score of the episode's
    last ``window`` frames (all of them while the episode is shorter).

    Raises:
        InvalidParameterError: as :class:`VideoReward`; ``window < 1``.
    """

    kind = "window_video"
    clip_mode: ClipMode = "window"

    def __init__(self, model: Any, goal: str | Sequence[str] | None = None, demo_video: str | None = None, window: int = 16) -> None:
        if int(window) < 1:
            raise InvalidParameterError(f"window must be at least 1 frame; got {window}.")
        super().__init__(model, goal=goal, demo_video=demo_video)
        self.window = int(window)


def info_series(reward: Any, clips: Sequence[Any], infos: Sequence[Sequence[Any]] | None) -> list[np.ndarray]:
    """The ``info[reward.clip_info_key]`` values of each clip's steps as ``float64`` arrays (the oracles' input).

    Raises:
        InvalidParameterError: no infos passed, or a step whose value is missing or not a finite number.
    """
    name = reward.describe()["kind"]
    if infos is None or len(infos) != len(clips):
        raise InvalidParameterError(f"{name} reads info[{reward.clip_info_key!r}] of each step; none was passed.")
    out = []
    for values in infos:
        try:
            x = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            x = np.array([np.nan])
        if x.size == 0 or not np.all(np.isfinite(x)):
            raise InvalidParameterError(
                f"{name}: info[{reward.clip_info_key!r}] is missing or not a number at some step; "
                "the environment must set it at every step."
            )
        out.append(x)
    return out


class EpisodeInfoOracleParams(RewardParams):
    """Parameters of ``episode_info_oracle``: the ``info`` key, the statistic, a scale, the steps sampled."""

    key: str = "gt_reward"
    statistic: Literal["mean", "max", "last"] = "mean"
    scale: FiniteFloat = 1.0
    num_frames: Count = 8


@register("episode_info_oracle", EpisodeInfoOracleParams, model="none", display="episode info oracle", mode="episode")
class EpisodeInfoOracleReward(_ClipRewardBase):
    """An episode-level reward from the simulator, given through the video path.

    At the episode's last step: ``scale · statistic(info[key])`` over the same evenly sampled
    steps a video model would see (``num_frames`` of them; ``statistic`` is the mean, the maximum
    or the last value); 0 at the other steps. With ``key: gt_reward`` (the environment's own
    per-step reward, which :class:`~vlmreward.envs.wrappers.RenderFrame` records) it is an
    informative sparse reward; with ``key: is_success`` and ``statistic: mean`` it is VLM-RM's
    fraction of steps in the goal state. Frames are kept and handed over exactly as for
    ``episode_video``, so a policy trained on it tests the episode machinery, not a VLM.

    Raises:
        InvalidParameterError: a step whose ``info[key]`` is missing or not a number (at scoring).
    """

    clip_mode: ClipMode = "episode"

    def __init__(self, key: str = "gt_reward", statistic: str = "mean", scale: float = 1.0, num_frames: int = 8) -> None:
        self.clip_info_key = key
        self.statistic = statistic
        self.scale = float(scale)
        self.num_frames = int(num_frames)

    def clip_indices(self, length: int) -> np.ndarray:
        return uniform_frame_indices(length, self.num_frames)

    def score_clips(self, clips: Sequence[np.ndarray], infos: Sequence[Sequence[Any]] | None = None) -> np.ndarray:
        out = np.empty(len(clips), dtype=np.float32)
        for i, x in enumerate(info_series(self, clips, infos)):
            out[i] = self.scale * {"mean": x.mean(), "max": x.max(), "last": x[-1]}[self.statistic]
        return out

    def describe(self) -> dict[str, Any]:
        return {"kind": "episode_info_oracle", "model": None, "key": self.clip_info_key, "statistic": self.statistic, "scale": self.scale}
