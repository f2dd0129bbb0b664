"""GVL's value reward: a generative VLM states the completion percentage of shuffled frames.

``generative_value`` (:class:`GenerativeValueReward`) is Generative Value Learning (Ma et al.,
"Vision Language Models are In-Context Value Learners", ICLR 2025; open reimplementation
``budzianowski/opengvl``). For an episode (or, online, an episode prefix):

1. ``max_frames`` frames are sampled evenly (:func:`~vlmreward.models.video.uniform_frame_indices`)
   and shown in a random order (``seed``), after the task prompt, optional in-context example
   episodes (frames in order, each with its true completion ``100 · i / (T − 1)`` %), and the
   episode's first frame as the "initial robot scene" at 0 % (OpenGVL's
   ``configs/prompt_phrases/default.yaml`` phrases);
2. the model completes the turn greedily (:func:`~vlmreward.models.generative_video.generate_after_frames`);
3. :func:`parse_completions` reads one percentage per ``Frame i:`` label of the answer and
   :func:`unshuffle` puts them back in time order; values are percentages / 100, in ``[0, 1]``.

Answers that cannot be read are **counted** (:attr:`GenerativeValueReward.parse_stats`, in
``describe()``, so in ``metrics.json``), never silently zero: a frame without an answer takes
the value interpolated from its episode's answered frames; an episode without any answered frame
scores 0 at every frame and is counted in ``episodes_without_answer``.

Offline (``evaluate``, ``relabel``, ``reward(frames)``) an episode costs one ``generate``; the
sampled frames' values are interpolated to every frame. Online the kind is a prefix reward:
at every step one ``generate`` over the prefix, paid the value of its last frame.
"""

from __future__ import annotations

import re
from typing import Any, Optional, Sequence

import numpy as np
from pydantic import Field

from vlmreward.errors import InvalidParameterError
from vlmreward.models.generative import check_generative
from vlmreward.models.generative_video import generate_after_frames
from vlmreward.models.video import uniform_frame_indices
from vlmreward.rewards.base import as_prompt_list
from vlmreward.rewards.params import Prompts, RewardParams
from vlmreward.rewards.progress import check_instruction_template, InstructionTemplate
from vlmreward.rewards.registry import register
from vlmreward.rewards.video import ClipMode, read_video

__all__ = ["GenerativeValueReward", "DEFAULT_GVL_PROMPT", "parse_completions", "unshuffle", "shuffled_order"]

DEFAULT_GVL_PROMPT = (
    "You are an expert roboticist tasked to predict task completion percentages for frames of a robot for the task of "
    "{instruction}. The task completion percentages are between 0 and 100, where 100 corresponds to full task completion. "
    "The frames may be in random order; reason about each frame independently when estimating completion."
)
"""OpenGVL's ``configs/prompts/default.yaml`` template."""

_QUERY = (
    "Now, for the task of {instruction}, output the task completion percentage for the following frames that are "
    "presented in random order. For each frame, format your response as follows: Frame {{i}}: Task Completion "
    "Percentage: {{p}}%"
)
_FRAME_LABEL = re.compile(r"Frame\s*(\d+)\s*:", re.IGNORECASE)
_PERCENT = re.compile(r"(-?\d+(?:\.\d+)?)\s*%")


def shuffled_order(count: int, seed: int) -> np.ndarray:
    """The order frames are shown in: ``shown[j] = frames[order[j]]``, a permutation of ``range(count)``
    from ``numpy.random.default_rng(seed)``. ``int64 [count]``."""
    return np.random.default_rng(seed).permutation(count).astype(np.int64)


def unshuffle(answers: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Answers in time order: ``answers[j]`` is the answer for shown frame ``j`` (frame ``order[j]``),
    so ``out[order[j]] = answers[j]``. ``float64 [count]``."""
    out = np.full(len(order), np.nan)
    out[np.asarray(order, dtype=np.int64)] = np.asarray(answers, dtype=np.float64)
    return out


def parse_completions(text: str, count: int) -> np.ndarray:
    """The completion percentage of each shown frame ``1 … count`` in a model's answer.

    For each ``Frame i:`` label (1-based, the first occurrence of each ``i``), the first
    ``NUMBER %`` after it and before the next label; clipped to ``[0, 100]``.

    Returns:
        ``float64 [count]`` in shown order; NaN where no percentage was found.
    """
    out = np.full(int(count), np.nan)
    labels = list(_FRAME_LABEL.finditer(text))
    for n, label in enumerate(labels):
        i = int(label.group(1)) - 1
        if not 0 <= i < count or np.isfinite(out[i]):
            continue
        end = labels[n + 1].start() if n + 1 < len(labels) else len(text)
        found = _PERCENT.search(text, label.end(), end)
        if found is not None:
            out[i] = min(100.0, max(0.0, float(found.group(1))))
    return out


class GenerativeValueParams(RewardParams):
    """Parameters of ``generative_value``.

    Attributes:
        goal: the task instruction.
        prompt: the task prompt, with ``{instruction}`` (default OpenGVL's).
        max_frames: frames of an episode (or prefix) shown, shuffled (at least 2).
        seed: the shuffle's seed.
        examples: in-context example episodes: paths of videos, GIFs or frame folders showing the task done.
        example_frames: frames shown of each example.
        max_new_tokens: tokens generated per answer.
    """

    goal: Prompts
    prompt: InstructionTemplate = DEFAULT_GVL_PROMPT
    max_frames: int = Field(16, ge=2)
    seed: int = 0
    examples: Optional[list[str]] = None
    example_frames: int = Field(8, ge=2)
    max_new_tokens: int = Field(512, ge=1)


@register("generative_value", GenerativeValueParams, display="generative value (GVL)", family="generative", mode="prefix")
class GenerativeValueReward:
    """GVL: completion percentages of shuffled frames, stated by a generative VLM, unshuffled.

    Args:
        model: a :class:`~vlmreward.models.generative.GenerativeVLM` (any; frames go in as images).
        goal: the task instruction (one sentence).
        prompt, max_frames, seed, examples, example_frames, max_new_tokens: as in :class:`GenerativeValueParams`.

    Values in ``[0, 1]`` (``float32``). Cost: one ``generate`` of up to ``max_new_tokens`` tokens
    over ``max_frames`` (+ examples) images per episode offline, per step online.

    Raises:
        InvalidParameterError: not a generative model; no goal or several; a prompt without
            ``{instruction}``; ``max_frames < 2``; an unreadable example.
    """

    clip_mode: ClipMode = "prefix"
    window = None
    clip_info_key = None

    def __init__(
        self,
        model: Any,
        goal: str | Sequence[str] | None = None,
        prompt: str = DEFAULT_GVL_PROMPT,
        max_frames: int = 16,
        seed: int = 0,
        examples: Sequence[str] | None = None,
        example_frames: int = 8,
        max_new_tokens: int = 512,
    ) -> None:
        self.model = check_generative(model, "generative_value")
        if goal is None:
            raise InvalidParameterError("generative_value needs the task instruction: give goal=... (--goal on the command line).")
        goals = as_prompt_list(goal, "goal")
        if len(goals) != 1:
            raise InvalidParameterError(f"generative_value takes one task instruction; got {len(goals)}.")
        try:
            self.prompt = check_instruction_template(prompt)
        except ValueError as err:
            raise InvalidParameterError(f"{err}.") from None
        if int(max_frames) < 2 or int(example_frames) < 2:
            raise InvalidParameterError(f"max_frames and example_frames must be at least 2; got {max_frames} and {example_frames}.")
        self.goal = goals[0]
        self.max_frames, self.seed, self.max_new_tokens = int(max_frames), int(seed), int(max_new_tokens)
        self.examples = [str(e) for e in examples or []]
        self.example_frames = int(example_frames)
        self._example_content: list[Any] = []
        for path in self.examples:
            video = read_video(path)
            idx = uniform_frame_indices(len(video), self.example_frames)
            for i, j in enumerate(idx):
                self._example_content += [f"Frame {i + 1}:", video[j],
                                          f"Task Completion Percentage: {round(100 * i / (len(idx) - 1))}%"]
        self.parse_stats = {"answers": 0, "frames_asked": 0, "frames_parsed": 0, "episodes_without_answer": 0}

    def clip_indices(self, length: int) -> np.ndarray:
        """The frames shown of an episode (or prefix) of ``length`` frames: ``min(length, max_frames)``, evenly spread."""
        return uniform_frame_indices(length, min(length, self.max_frames))

    def content(self, frames: Sequence[np.ndarray], order: np.ndarray) -> list[Any]:
        """The user turn for ``frames`` (time order) shown in ``order``: text pieces and frames."""
        out: list[Any] = [self.prompt.format(instruction=self.goal)]
        out += self._example_content
        out += ["Initial robot scene:", frames[0], "In the initial robot scene, the task completion percentage is 0%.",
                _QUERY.format(instruction=self.goal)]
        for j, i in enumerate(order):
            out += [f"Frame {j + 1}:", frames[int(i)]]
        return out

    def values(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """Completion in ``[0, 1]`` of each of ``frames`` (time order; NaN where unanswered): one ``generate``."""
        order = shuffled_order(len(frames), self.seed)
        text = generate_after_frames(self.model, self.content(frames, order), self.max_new_tokens)
        values = unshuffle(parse_completions(text, len(frames)), order) / 100.0
        parsed = int(np.isfinite(values).sum())
        self.parse_stats["answers"] += 1
        self.parse_stats["frames_asked"] += len(frames)
        self.parse_stats["frames_parsed"] += parsed
        return values

    def score_clips(self, clips: Sequence[np.ndarray], infos: Sequence[Sequence[Any]] | None = None) -> np.ndarray:
        """Online: the value of each prefix's last frame (interpolated when unanswered; 0 when nothing was). ``float32 [E]``."""
        out = np.empty(len(clips), dtype=np.float32)
        for e, clip in enumerate(clips):
            out[e] = self._curve(self.values(list(clip)), np.arange(len(clip)), len(clip))[-1]
        return out

    def _curve(self, values: np.ndarray, positions: np.ndarray, length: int) -> np.ndarray:
        """Values at every frame ``0 … length − 1`` from those at ``positions`` (NaN: unanswered), interpolated."""
        answered = np.isfinite(values)
        if not answered.any():
            self.parse_stats["episodes_without_answer"] += 1
            return np.zeros(length, dtype=np.float32)
        return np.interp(np.arange(length), positions[answered], values[answered]).astype(np.float32)

    def episode_rewards(self, frames: Any, infos: Sequence[Any] | None = None) -> np.ndarray:
        """Per-frame values of one episode ``[N, H, W, 3]``: ``float32 [N]`` in ``[0, 1]`` (one ``generate``)."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        idx = self.clip_indices(len(frames))
        return self._curve(self.values([frames[i] for i in idx]), idx, len(frames))

    def __call__(self, frames: Any, batch_size: int | None = None) -> np.ndarray:
        """Per-frame values of ``frames`` taken as one episode (:meth:`episode_rewards`)."""
        return self.episode_rewards(frames)

    def describe(self) -> dict[str, Any]:
        stats = dict(self.parse_stats)
        stats["frames_unparsed"] = stats["frames_asked"] - stats["frames_parsed"]
        return {
            "kind": "generative_value", "model": self.model.name, "goal": self.goal, "prompt": self.prompt,
            "max_frames": self.max_frames, "seed": self.seed, "examples": self.examples, "parse": stats,
        }
