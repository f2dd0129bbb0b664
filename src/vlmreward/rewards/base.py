"""The reward-model interface: frames → embeddings → rewards ``float32 [N]``."""

from __future__ import annotations

import abc
import os
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from vlmreward.errors import InvalidParameterError, PromptError, VLMRewardError
from vlmreward.models.base import VisionLanguageModel
from vlmreward.models.preprocess import Frames

__all__ = ["RewardModel", "VLMReward", "as_prompt_list", "require_embedding_model", "is_learned", "save_reward_state", "load_reward_state"]


def require_embedding_model(model: Any, reward: str) -> Any:
    """``model`` if it embeds images and text (CLIP, SigLIP: ``encode_images``/``encode_text``).

    Raises:
        InvalidParameterError: a generative VLM (or anything else) given to a contrastive reward.
    """
    if not (hasattr(model, "encode_images") and hasattr(model, "encode_text")):
        hint = (
            "With a video-language model use --reward-kind episode_video (or window_video)."
            if hasattr(model, "encode_videos")
            else "With a generative VLM use --reward-kind vqa (or vqa_contrastive)."
        )
        raise InvalidParameterError(
            f"the {reward} reward compares image and text embeddings of a contrastive model (CLIP, SigLIP); "
            f"{getattr(model, 'name', model)!r} is a {type(model).__name__}. {hint}"
        )
    return model


@runtime_checkable
class RewardModel(Protocol):
    """Anything that turns frames into one reward per frame.

    ``from_embeddings`` is the pure part (a function of image embeddings only), so rewards of
    cached or batched embeddings need no image pass. A goal-aware reward declares the ``info`` key
    it reads as ``goal_info_key`` and takes ``reward(frames, goals=[...])``, one goal per frame
    (:class:`~vlmreward.rewards.GoalFamilySoftmaxReward`; the state-based
    ``GoalStateOracleReward`` reads ``info["goal_state"]`` the same way).
    """

    def __call__(self, frames: Frames) -> np.ndarray:
        """Rewards of uint8 RGB frames ``[N, H, W, 3]`` (or one ``[H, W, 3]``): ``float32 [N]``."""

    def from_embeddings(self, image_embeddings: torch.Tensor | np.ndarray) -> np.ndarray:
        """Rewards of unit image embeddings ``[N, D]``: ``float32 [N]``."""

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable description: kind, model, prompts, parameters."""


class VLMReward(abc.ABC):
    """Base of the rewards computed from a :class:`VisionLanguageModel`'s embeddings.

    Subclasses embed their prompts once at construction (kept on the model's device) and
    implement :meth:`_reward`, a batched torch function of unit image embeddings.
    """

    def __init__(self, model: VisionLanguageModel) -> None:
        self.model = require_embedding_model(model, getattr(self, "kind", type(self).__name__))

    def __call__(self, frames: Frames, batch_size: int | None = None) -> np.ndarray:
        """Rewards of frames.

        Args:
            frames: uint8 RGB ``[N, H, W, 3]`` or ``[H, W, 3]``, NumPy or torch, any size.
            batch_size: frames per forward pass of the vision tower.

        Returns:
            ``np.float32 [N]``.

        Raises:
            InvalidFramesError: frames not uint8 RGB of rank 3 or 4, or zero frames.
        """
        return self.from_embeddings(self.model.encode_images(frames, batch_size=batch_size))

    @torch.inference_mode()
    def from_embeddings(self, image_embeddings: torch.Tensor | np.ndarray) -> np.ndarray:
        """Rewards of image embeddings.

        Args:
            image_embeddings: ``[N, D]`` (or one ``[D]``), unit L2 norm, as returned by
                ``model.encode_images``; NumPy or torch, any device.

        Returns:
            ``np.float32 [N]``.
        """
        x = torch.as_tensor(image_embeddings).to(device=self.model.device, dtype=torch.float32)
        if x.ndim == 1:
            x = x.unsqueeze(0)
        if x.ndim != 2 or x.shape[1] != self.model.embed_dim:
            raise InvalidParameterError(
                f"image embeddings must have shape [N, {self.model.embed_dim}]; got {tuple(x.shape)}."
            )
        return self._reward(x).float().cpu().numpy()

    @abc.abstractmethod
    def _reward(self, x: torch.Tensor) -> torch.Tensor:
        """``float32 [N, D]`` unit embeddings on the model's device → ``[N]`` rewards."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-serialisable description: ``kind``, ``model``, prompts and parameters."""


def as_prompt_list(prompts: str | Sequence[str], what: str) -> list[str]:
    """One prompt or a non-empty sequence of prompts, as a list.

    Raises:
        PromptError: no prompts, or an element that is not a string.
    """
    result = [prompts] if isinstance(prompts, str) else list(prompts)
    if not result:
        raise PromptError(f"no {what} prompt given; pass at least one.")
    for prompt in result:
        if not isinstance(prompt, str):
            raise PromptError(f"{what} prompts must be strings; got {type(prompt).__name__}.")
    return result


# ---------------------------------------------------------------------------------------------
# learned rewards


def is_learned(reward: Any) -> bool:
    """Whether a reward (or its class) is learned during training: it declares ``learned = True`` and offers the
    protocol of :class:`~vlmreward.rewards.preference.PreferenceReward` (``observe``, ``commit``, ``due``, ``update``,
    ``state_dict`` / ``load_state_dict``), which :mod:`vlmreward.envs` and :mod:`vlmreward.rl` drive."""
    return bool(getattr(reward, "learned", False))


def save_reward_state(reward: Any, path: str | os.PathLike) -> None:
    """Write a learned reward's ``state_dict()`` to ``path`` (``torch.save``; tensors, numbers and strings only)."""
    torch.save(reward.state_dict(), path)


def load_reward_state(reward: Any, path: str | os.PathLike) -> None:
    """Restore a learned reward from ``path`` (``torch.load(weights_only=True)``: no code is unpickled).

    Raises:
        VLMRewardError: the file cannot be read as a reward state, or it does not fit the reward's parameters.
    """
    try:
        state = torch.load(path, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure to read is one message
        raise VLMRewardError(f"cannot read the reward state {path}: {err}") from err
    try:
        reward.load_state_dict(state)
    except VLMRewardError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise VLMRewardError(f"the reward state {path} does not fit this reward's parameters: {err}") from err
