"""The model interface: frames → unit image embeddings, prompts → unit text embeddings.

:class:`VisionLanguageModel` holds everything the backends share: frame validation, batched
preprocessing (:mod:`vlmreward.models.preprocess`), batching, L2 normalisation, prompt
validation and the per-prompt text-embedding cache. A backend (Hugging Face ``transformers``,
``open_clip``) only implements the three library calls: :meth:`~VisionLanguageModel._embed_pixels`,
:meth:`~VisionLanguageModel._embed_prompts` and :meth:`~VisionLanguageModel.count_tokens`.
"""

from __future__ import annotations

import abc
from typing import Sequence

import torch
import torch.nn.functional as F

from vlmreward.errors import InvalidParameterError, PromptError, PromptTooLongError
from vlmreward.models.preprocess import Frames, PreprocessConfig, as_frame_batch, preprocess

__all__ = ["VisionLanguageModel", "DEFAULT_BATCH_SIZE"]

DEFAULT_BATCH_SIZE = 64
"""Frames per forward pass of the vision tower unless ``batch_size`` says otherwise."""


class VisionLanguageModel(abc.ABC):
    """A contrastive vision-language model (CLIP, SigLIP, ...) that embeds frames and prompts.

    Create one with :func:`vlmreward.load_model`. Embeddings are L2-normalised ``float32``, so the
    dot product of an image and a text embedding is their cosine similarity, as in
    ``R_CLIP(s) = cos(CLIP_L(l), CLIP_I(s))`` (Rocamonde et al. 2024, eq. 2).

    Attributes:
        name: the name the model was loaded with (hub id, path, or ``open_clip:ARCH/TAG``).
        embed_dim: ``D``, the size of the joint embedding space.
        image_size: side ``S`` of the square image the vision tower consumes, in pixels.
        context_length: maximum prompt length in tokens, special tokens included.
        device: where the model and its text-embedding cache live.
        dtype: floating dtype of the model's weights (outputs are always ``float32``).
        preprocess_config: the image preprocessing (:class:`PreprocessConfig`).
        truncate: whether prompts longer than ``context_length`` are truncated instead of rejected.
    """

    backend: str = "abstract"

    def __init__(
        self,
        *,
        name: str,
        embed_dim: int,
        context_length: int,
        preprocess_config: PreprocessConfig,
        device: torch.device,
        dtype: torch.dtype,
        truncate: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.name = name
        self.embed_dim = int(embed_dim)
        self.context_length = int(context_length)
        self.preprocess_config = preprocess_config
        self.device = torch.device(device)
        self.dtype = dtype
        self.truncate = truncate
        self.batch_size = batch_size
        self._text_cache: dict[str, torch.Tensor] = {}

    @property
    def image_size(self) -> int:
        """Side ``S`` of the square model input, in pixels."""
        return self.preprocess_config.image_size

    @property
    def resize(self) -> str:
        """The resize mode frames are fitted with (``"squash"``, ``"crop"`` or ``"pad"``)."""
        return self.preprocess_config.resize

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, embed_dim={self.embed_dim}, image_size={self.image_size}, "
            f"resize={self.resize!r}, device={str(self.device)!r}, dtype={str(self.dtype).removeprefix('torch.')})"
        )

    # ------------------------------------------------------------------ images
    def preprocess(self, frames: Frames) -> torch.Tensor:
        """Validate and preprocess frames into the vision tower's input.

        Args:
            frames: uint8 RGB frames ``[N, H, W, 3]`` or ``[H, W, 3]``, NumPy or torch, any ``H``, ``W``.

        Returns:
            ``[N, 3, S, S]`` tensor of the model's dtype on the model's device.

        Raises:
            InvalidFramesError: see :func:`vlmreward.models.preprocess.as_frame_batch`.
        """
        batch = as_frame_batch(frames).to(self.device)
        return preprocess(batch, self.preprocess_config, self.dtype)

    @torch.inference_mode()
    def encode_images(self, frames: Frames, batch_size: int | None = None) -> torch.Tensor:
        """Embed frames.

        Args:
            frames: uint8 RGB frames ``[N, H, W, 3]`` or one ``[H, W, 3]`` frame, NumPy or torch,
                any ``H`` and ``W``; fitted to the model's input by the ``resize`` mode.
            batch_size: frames per forward pass (default: the model's ``batch_size``); bounds memory.

        Returns:
            ``torch.float32 [N, D]`` on the model's device, each row of unit L2 norm.

        Raises:
            InvalidFramesError: frames not uint8, of the wrong rank or channel count, or zero frames.
            InvalidParameterError: ``batch_size < 1``.
        """
        batch = as_frame_batch(frames)
        step = batch_size or self.batch_size
        if step < 1:
            raise InvalidParameterError(f"batch_size must be at least 1; got {step}.")
        out = torch.empty(batch.shape[0], self.embed_dim, dtype=torch.float32, device=self.device)
        for start in range(0, batch.shape[0], step):
            chunk = batch[start : start + step].to(self.device)
            pixels = preprocess(chunk, self.preprocess_config, self.dtype)
            out[start : start + step] = self._embed_pixels(pixels).float()
        return F.normalize(out, dim=-1)

    # ------------------------------------------------------------------ text
    @torch.inference_mode()
    def encode_text(self, prompts: str | Sequence[str]) -> torch.Tensor:
        """Embed prompts, each computed once and then served from a cache on the model's device.

        Args:
            prompts: one prompt or a list of ``M`` prompts.

        Returns:
            ``torch.float32 [M, D]`` on the model's device, each row of unit L2 norm, in the
            order of ``prompts``.

        Raises:
            PromptError: a prompt is empty or only whitespace, or not a string.
            PromptTooLongError: a prompt has more than ``context_length`` tokens and the model
                was loaded with ``truncate=False``.
        """
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts:
            raise PromptError("no prompts given; pass at least one non-empty prompt.")
        for prompt in prompts:
            self.check_prompt(prompt)
        missing = list(dict.fromkeys(p for p in prompts if p not in self._text_cache))
        if missing:
            embeddings = F.normalize(self._embed_prompts(missing).float(), dim=-1)
            self._text_cache.update(zip(missing, embeddings))
        return torch.stack([self._text_cache[p] for p in prompts])

    def check_prompt(self, prompt: str) -> None:
        """Raise if ``prompt`` cannot be embedded as given.

        Raises:
            PromptError: not a string, or empty after stripping whitespace.
            PromptTooLongError: more than ``context_length`` tokens while ``truncate`` is off.
        """
        if not isinstance(prompt, str):
            raise PromptError(f"prompts must be strings; got {type(prompt).__name__}: {prompt!r}.")
        if not prompt.strip():
            raise PromptError("a prompt is empty; describe the goal in words, e.g. 'a humanoid robot kneeling'.")
        if not self.truncate:
            n_tokens = self.count_tokens(prompt)
            if n_tokens > self.context_length:
                shown = prompt if len(prompt) <= 60 else prompt[:57] + "..."
                raise PromptTooLongError(
                    f"prompt {shown!r} has {n_tokens} tokens, more than the {self.context_length} of "
                    f"model {self.name!r}; shorten it, or allow truncation (truncate=True, --truncate)."
                )

    # ------------------------------------------------------------------ backend hooks
    @abc.abstractmethod
    def _embed_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Vision tower plus projection: ``[B, 3, S, S]`` (model dtype, device) → ``[B, D]``, unnormalised."""

    @abc.abstractmethod
    def _embed_prompts(self, prompts: list[str]) -> torch.Tensor:
        """Tokenise (padding, truncating at ``context_length``) and embed: ``M`` prompts → ``[M, D]``."""

    @abc.abstractmethod
    def count_tokens(self, prompt: str) -> int:
        """Number of tokens of ``prompt`` before truncation, special tokens included."""
