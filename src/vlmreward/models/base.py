"""The model interface: frames → unit image embeddings, prompts → unit text embeddings.

:class:`VisionLanguageModel` holds everything the backends share: frame validation, batched
preprocessing (:mod:`vlmreward.models.preprocess`), batching, L2 normalisation, prompt
validation and the per-prompt text-embedding cache. A backend (Hugging Face ``transformers``,
``open_clip``, ONNX Runtime) only implements the three library calls:
:meth:`~VisionLanguageModel._embed_pixels`, :meth:`~VisionLanguageModel._embed_prompts` and
:meth:`~VisionLanguageModel.count_tokens`.

On a CUDA device the image path also uses pinned host memory with non-blocking copies, autocast
(``bf16``/``fp16``) and, when a batch does not fit in GPU memory, splits it in halves until it
does (:meth:`VisionLanguageModel.encode_images`). On the CPU none of this applies.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import os
import uuid
from typing import Any, Callable, ContextManager, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vlmreward.errors import InvalidParameterError, PromptError, PromptTooLongError
from vlmreward.models.cache import EmbeddingCache, frame_keys
from vlmreward.models.preprocess import Frames, PreprocessConfig, as_frame_batch, preprocess

__all__ = ["VisionLanguageModel", "check_prompt", "check_tokenizer", "DEFAULT_BATCH_SIZE", "HALF_DTYPES"]

_log = logging.getLogger(__name__)

HALF_DTYPES = (torch.float16, torch.bfloat16)
"""Dtypes autocast can run in: a model with weights in one of them autocasts to it on CUDA."""

DEFAULT_BATCH_SIZE = 64
"""Frames per forward pass of the vision tower unless ``batch_size`` says otherwise."""


def check_prompt(prompt: str, count_tokens: Callable[[str], int], context_length: int, truncate: bool, model_name: str) -> None:
    """Raise if ``prompt`` cannot be embedded by a text tower of ``context_length`` tokens.

    Args:
        prompt: the sentence.
        count_tokens: the model's token count of a sentence, special tokens included.
        context_length: the text tower's maximum length in tokens.
        truncate: whether the model truncates over-long prompts (then length is not checked).
        model_name: named in the message.

    Raises:
        PromptError: not a string, or empty after stripping whitespace.
        PromptTooLongError: more than ``context_length`` tokens while ``truncate`` is off.
    """
    if not isinstance(prompt, str):
        raise PromptError(f"prompts must be strings; got {type(prompt).__name__}: {prompt!r}.")
    if not prompt.strip():
        raise PromptError("a prompt is empty; describe the goal in words, e.g. 'a humanoid robot kneeling'.")
    if not truncate:
        n_tokens = count_tokens(prompt)
        if n_tokens > context_length:
            shown = prompt if len(prompt) <= 60 else prompt[:57] + "..."
            raise PromptTooLongError(
                f"prompt {shown!r} has {n_tokens} tokens, more than the {context_length} of "
                f"model {model_name!r}; shorten it, or allow truncation (truncate=True, --truncate)."
            )


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
        batch_size: frames per forward pass of the vision tower unless a call says otherwise.
        autocast_dtype: ``torch.bfloat16``/``torch.float16`` to run the towers under
            ``torch.autocast`` on CUDA (default: the weights' dtype when it is one of these), or
            None. Ignored off CUDA.
        embedding_cache: an :class:`~vlmreward.models.cache.EmbeddingCache` every
            :meth:`encode_images` call uses unless it passes its own; None (default) for none.
    """

    backend: str = "abstract"
    """The library that loaded the model (``"hf"``, ``"open_clip"``, a plugin's)."""
    runtime: str = "torch"
    """What runs its vision tower: ``"torch"``, ``"onnx"`` or ``"onnx-int8"`` (:mod:`vlmreward.models.onnx`)."""

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
        autocast_dtype: torch.dtype | None = None,
    ) -> None:
        self.name = name
        self.embed_dim = int(embed_dim)
        self.context_length = int(context_length)
        self.preprocess_config = preprocess_config
        self.device = torch.device(device)
        self.dtype = dtype
        self.truncate = truncate
        self.batch_size = batch_size
        self.autocast_dtype = autocast_dtype if autocast_dtype is not None else (dtype if dtype in HALF_DTYPES else None)
        self.embedding_cache: EmbeddingCache | None = None
        self._text_cache: dict[str, torch.Tensor] = {}
        self._fitted_batch_size: int | None = None  # lowered after a CUDA out-of-memory error
        self.autotune = False  # batch_size "auto": tuned per frame size on first use (vlmreward.models.autotune)
        self.batch_choices: dict[tuple[int, int], Any] = {}  # frame size → BatchChoice
        self._cache_namespace = uuid.uuid4().bytes  # this instance's keys in a shared EmbeddingCache

    @property
    def image_size(self) -> int:
        """Side ``S`` of the square model input, in pixels."""
        return self.preprocess_config.image_size

    @property
    def resize(self) -> str:
        """The resize mode frames are fitted with (``"squash"``, ``"crop"`` or ``"pad"``)."""
        return self.preprocess_config.resize

    @property
    def antialias(self) -> bool:
        """Whether frames are resized with antialiasing (False: the VLM-RM reference's plain bicubic)."""
        return self.preprocess_config.antialias

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, embed_dim={self.embed_dim}, image_size={self.image_size}, "
            f"resize={self.resize!r}, antialias={self.antialias}, device={str(self.device)!r}, dtype={str(self.dtype).removeprefix('torch.')})"
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
    def encode_images(
        self, frames: Frames, batch_size: int | None = None, cache: EmbeddingCache | None = None
    ) -> torch.Tensor:
        """Embed frames.

        Args:
            frames: uint8 RGB frames ``[N, H, W, 3]`` or one ``[H, W, 3]`` frame, NumPy or torch,
                any ``H`` and ``W``; fitted to the model's input by the ``resize`` mode.
            batch_size: frames per forward pass (default: :meth:`batch_size_for` the frames' size); bounds memory.
            cache: an :class:`~vlmreward.models.cache.EmbeddingCache`: frames whose content it
                holds skip the vision tower, the others are embedded and stored (default: the
                model's ``embedding_cache``, usually None).

        Returns:
            ``torch.float32 [N, D]`` on the model's device, each row of unit L2 norm.

        Raises:
            InvalidFramesError: frames not uint8, of the wrong rank or channel count, or zero frames.
            InvalidParameterError: ``batch_size < 1``.
            torch.cuda.OutOfMemoryError: a single frame does not fit in GPU memory.

        On CUDA, frames move to the GPU from pinned host memory with non-blocking copies, the
        towers run under ``torch.autocast`` when ``autocast_dtype`` is set, and a batch that runs
        out of GPU memory is split in halves (recursively) and retried; the smaller size is then
        kept for the model's later calls. The results are those of one pass over all frames.
        """
        batch = as_frame_batch(frames)
        step = self.batch_size_for(tuple(batch.shape[1:3])) if batch_size is None else batch_size
        if step < 1:
            raise InvalidParameterError(f"batch_size must be at least 1; got {step}.")
        cache = cache if cache is not None else self.embedding_cache
        if cache is None:
            return self._encode_batch(batch, step)
        keys = frame_keys(batch, self._cache_namespace)
        hits, misses = cache.lookup(keys)
        out = torch.empty(batch.shape[0], self.embed_dim, dtype=torch.float32, device=self.device)
        if hits:
            index = torch.tensor(list(hits), dtype=torch.long)
            out[index.to(self.device)] = torch.from_numpy(np.stack(list(hits.values()))).to(self.device)
        if misses:
            first = torch.tensor([indices[0] for indices in misses.values()], dtype=torch.long)
            embedded = self._encode_batch(batch[first.to(batch.device)], step)  # [K, D], K distinct frames
            dest = [i for indices in misses.values() for i in indices]
            src = [row for row, indices in enumerate(misses.values()) for _ in indices]
            out[torch.tensor(dest, dtype=torch.long, device=self.device)] = embedded[torch.tensor(src, device=self.device)]
            for key, row in zip(misses, embedded.cpu().numpy()):
                cache.put(key, row)
        return out

    def batch_size_for(self, frame_size: tuple[int, int]) -> int:
        """Frames per forward pass for frames of ``(H, W)``: ``batch_size``, or with :attr:`autotune` the size timed
        fastest on this machine (:func:`~vlmreward.models.autotune.autotune_batch_size`, once per frame size, cached)."""
        if not self.autotune:
            return self.batch_size
        size = (int(frame_size[0]), int(frame_size[1]))
        if size not in self.batch_choices:
            from vlmreward.models.autotune import autotune_batch_size

            choice = autotune_batch_size(self, size)
            _log.info("%s: batch size %d for %dx%d frames (%s)", self.name, choice.batch_size, size[1], size[0],
                      "cached" if choice.cached else "timed " + ", ".join(f"{b}: {1e3 * t:.2f} ms/frame"
                                                                          for b, t in choice.seconds_per_frame.items()))
            self.batch_choices[size] = choice
        return self.batch_choices[size].batch_size

    def _encode_batch(self, batch: torch.Tensor, step: int) -> torch.Tensor:
        """``uint8 [N, H, W, 3]`` → unit ``float32 [N, D]`` on the model's device, ``step`` frames a pass."""
        out = torch.empty(batch.shape[0], self.embed_dim, dtype=torch.float32, device=self.device)
        start = 0
        while start < batch.shape[0]:
            size = min(step, self._fitted_batch_size or step)
            chunk = batch[start : start + size]
            out[start : start + len(chunk)] = self._embed_chunk(chunk)
            start += len(chunk)
        return F.normalize(out, dim=-1)

    def _embed_chunk(self, chunk: torch.Tensor) -> torch.Tensor:
        """One forward pass over ``uint8 [B, H, W, 3]`` → ``float32 [B, D]`` (unnormalised), halving on CUDA OOM."""
        try:
            pixels = preprocess(self._to_device(chunk), self.preprocess_config, self.dtype)
            with self._autocast():
                return self._embed_pixels(pixels).float()
        except torch.cuda.OutOfMemoryError:
            if len(chunk) <= 1:
                raise
        # Out of the except block, so the failed attempt's tensors (held by the traceback) are freed.
        pixels = None
        half = (len(chunk) + 1) // 2
        if self._fitted_batch_size is None or half < self._fitted_batch_size:
            _log.warning(
                "%s: a batch of %d frames ran out of GPU memory; splitting it, and using at most %d frames "
                "a pass from now on", self.name, len(chunk), half,
            )
            self._fitted_batch_size = half
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return torch.cat([self._embed_chunk(chunk[:half]), self._embed_chunk(chunk[half:])])

    def _to_device(self, chunk: torch.Tensor) -> torch.Tensor:
        """Frames onto the model's device; from pinned host memory, without blocking, onto a GPU."""
        if self.device.type == "cuda" and chunk.device.type == "cpu":
            return chunk.pin_memory().to(self.device, non_blocking=True)
        return chunk.to(self.device)

    def _autocast(self) -> ContextManager[object]:
        """``torch.autocast`` on CUDA with ``autocast_dtype``; a no-op context elsewhere or without one."""
        if self.device.type == "cuda" and self.autocast_dtype is not None:
            return torch.autocast(device_type="cuda", dtype=self.autocast_dtype)
        return contextlib.nullcontext()

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
            with self._autocast():
                embeddings = F.normalize(self._embed_prompts(missing).float(), dim=-1)
            self._text_cache.update(zip(missing, embeddings))
        return torch.stack([self._text_cache[p] for p in prompts])

    def check_prompt(self, prompt: str) -> None:
        """Raise if ``prompt`` cannot be embedded as given.

        Raises:
            PromptError: not a string, or empty after stripping whitespace.
            PromptTooLongError: more than ``context_length`` tokens while ``truncate`` is off.
        """
        check_prompt(prompt, self.count_tokens, self.context_length, self.truncate, self.name)

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


def check_tokenizer(tokenizer: Any, name: str, path: os.PathLike[str] | str) -> Any:
    """``tokenizer``, once it tells prompts apart; transformers builds a tokenizer with an empty
    vocabulary from a directory without tokenizer files, which reads every prompt the same (so the
    reward would be constant).

    Raises:
        ModelNotFoundError: two prompts of different lengths give the same tokens, or plain English
            words are all unknown tokens.
    """
    short, long = (list(tokenizer(text)["input_ids"]) for text in ("a photo", "a photo of a robot on a red cart"))
    words = list(tokenizer("a photo of a robot", add_special_tokens=False)["input_ids"])
    unknown = getattr(tokenizer, "unk_token_id", None)
    if short == long or not words or (unknown is not None and all(i == unknown for i in words)):
        from vlmreward.errors import ModelNotFoundError

        raise ModelNotFoundError(
            f"model {name!r}: {str(path)!r} has no usable tokenizer files (tokenizer.json, or vocab.json and merges.txt, "
            "or a SentencePiece model): every prompt would read the same and give the same reward. Save the tokenizer "
            "there too (tokenizer.save_pretrained(dir), or processor.save_pretrained(dir))."
        )
    return tokenizer
