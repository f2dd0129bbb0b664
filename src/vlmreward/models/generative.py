"""Generative vision-language models (``transformers``): next-token probabilities of answers.

:class:`GenerativeVLM` wraps an ``AutoModelForImageTextToText`` and its ``AutoProcessor``
(Qwen2-VL, Qwen2.5-VL, Qwen3-VL, SmolVLM / Idefics3, PaliGemma and PaliGemma 2) and computes,
for frames and questions, the log-probability of each answer's first token at the position
after the question (:meth:`GenerativeVLM.answer_log_probs`). The VQA reward kinds
(:mod:`vlmreward.rewards.vqa`) build on it.

How it runs (speed is part of the design):

* one forward pass per batch of frames, no ``generate``: the answer's first token is read from
  the last position's next-token logits (``logits_to_keep=1``, so the language head runs on one
  position, not on the whole sequence);
* the question is formatted once per distinct question by the model's own chat template
  (``processor.apply_chat_template``: the image first, then the question, then the generation
  prompt), and every frame of a batch shares it; sequences of different lengths (frames of
  different sizes give different numbers of image tokens) are left-padded, so the last position
  is every row's own last token;
* the processor preprocesses the batch's images in one call; the model runs in the loaded
  ``dtype`` and, on CUDA, under ``torch.autocast`` when asked.
* A key/value cache of the text before the image is not reused across frames: every supported
  chat template puts the image before the question, so the text before the image is only the
  template's header (Qwen's system prompt, ~20 tokens; SmolVLM's ``User:``; nothing for
  PaliGemma), which is a small part of a sequence of image tokens.

Right padding is supported too (``padding_side="right"``: all positions' logits are computed and
each row's last real token is gathered); the tests check both against one frame at a time.

Answer tokens are found from the tokenizer, not hard-coded ids (:meth:`GenerativeVLM.answer_token_ids`):
every spelling of the word (``"yes"``, ``"Yes"``, ``" yes"``, ...) that the tokenizer encodes as
one token counts, and an answer's probability is the sum over them.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Sequence

import numpy as np
import torch

from vlmreward.errors import InvalidFramesError, InvalidParameterError
from vlmreward.models.preprocess import Frames, as_frame_batch

__all__ = [
    "GenerativeVLM",
    "GENERATIVE_MODEL_TYPES",
    "YES_SPELLINGS",
    "NO_SPELLINGS",
    "spellings_of",
    "load_generative_model",
    "DEFAULT_GENERATIVE_BATCH_SIZE",
    "frame_list",
    "check_generative",
]

GENERATIVE_MODEL_TYPES: tuple[str, ...] = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "idefics3", "smolvlm", "paligemma")
"""``config.json`` ``model_type`` values loaded as generative models (``AutoModelForImageTextToText``)."""

_NESTED_IMAGES = ("idefics3", "smolvlm")
"""Processors that take one list of images per text."""

DEFAULT_GENERATIVE_BATCH_SIZE = 8
"""Frames per forward pass unless the model spec says otherwise."""


def spellings_of(word: str) -> tuple[str, ...]:
    """The spellings of an answer word the tokenizer is searched for: lower, Capitalised and
    UPPER case, each bare and after a space (``"yes"`` → ``yes Yes YES ␣yes ␣Yes ␣YES``)."""
    forms = dict.fromkeys([word.lower(), word.capitalize(), word.upper()])
    return tuple([*forms, *(" " + f for f in forms)])


YES_SPELLINGS = spellings_of("yes")
NO_SPELLINGS = spellings_of("no")


class GenerativeVLM:
    """A generative VLM that scores answers by next-token probability.

    Attributes:
        name: hub id or directory it was loaded from.
        model: the ``transformers`` model (``AutoModelForImageTextToText``), in eval mode.
        processor: its ``AutoProcessor``.
        model_type: ``config.model_type`` (one of :data:`GENERATIVE_MODEL_TYPES`).
        device, dtype: where and in which dtype the weights are.
        batch_size: frames per forward pass.
        padding_side: ``"left"`` (default) or ``"right"``.
        autocast_dtype: on CUDA, the ``torch.autocast`` dtype, or None.
        backend, runtime: ``"hf"`` (transformers loads it) and ``"torch"`` (PyTorch runs it).
    """

    backend = "hf"
    runtime = "torch"
    resize = "processor"
    antialias = None
    image_size = None

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        name: str,
        model_type: str,
        device: torch.device,
        dtype: torch.dtype,
        batch_size: int = DEFAULT_GENERATIVE_BATCH_SIZE,
        padding_side: str = "left",
        autocast_dtype: torch.dtype | None = None,
    ) -> None:
        if padding_side not in ("left", "right"):
            raise InvalidParameterError(f"padding_side={padding_side!r}: use 'left' or 'right'.")
        self.model = model
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.name = name
        self.model_type = model_type
        self.device = torch.device(device)
        self.dtype = dtype
        self.batch_size = int(batch_size)
        self.padding_side = padding_side
        self.autocast_dtype = autocast_dtype
        self._prompts: dict[str, str] = {}
        config = getattr(model.config, "text_config", model.config)
        self.max_sequence_length = int(getattr(config, "max_position_embeddings", 0) or 0) or None

    # ------------------------------------------------------------------ prompts and answers
    def prompt(self, question: str) -> str:
        """The model's input text for one image and ``question``: its chat template with the image
        first and the generation prompt (PaliGemma, which has none, takes the question as it is;
        its processor adds the image tokens)."""
        if question not in self._prompts:
            template = getattr(self.processor, "chat_template", None)
            if template:
                messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
                text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            else:
                text = question
            self._prompts[question] = text
        return self._prompts[question]

    def answer_token_ids(self, spellings: Sequence[str]) -> tuple[int, ...]:
        """Ids of the single-token spellings of an answer (e.g. :data:`YES_SPELLINGS`), deduplicated.

        Raises:
            InvalidParameterError: none of the spellings is a single token of this tokenizer
                (the message lists those tried).
        """
        ids: list[int] = []
        for spelling in spellings:
            encoded = self.tokenizer.encode(spelling, add_special_tokens=False)
            if len(encoded) == 1 and encoded[0] not in ids:
                ids.append(int(encoded[0]))
        if not ids:
            raise InvalidParameterError(
                f"the tokenizer of {self.name!r} has no single-token spelling of the answer among "
                f"{', '.join(repr(s) for s in spellings)}; a VQA reward reads the answer's first token, so use a model "
                "whose tokenizer has one."
            )
        return tuple(ids)

    # ------------------------------------------------------------------ scoring
    @torch.inference_mode()
    def answer_log_probs(
        self,
        frames: Frames | Sequence[np.ndarray],
        questions: str | Sequence[str],
        answers: Sequence[Sequence[int]],
        batch_size: int | None = None,
    ) -> torch.Tensor:
        """``log Σ_{t ∈ answers[j]} p(t | frame_i, question_i)`` for every frame and answer.

        The probability is the softmax of the next-token logits at the position after the
        generation prompt, over the whole vocabulary, in float32.

        Args:
            frames: uint8 RGB ``[N, H, W, 3]`` (or ``[H, W, 3]``), or a sequence of ``[H, W, 3]``
                frames of any sizes.
            questions: one question for every frame, or one per frame (``N``).
            answers: token-id sets (:meth:`answer_token_ids`), e.g. ``[yes_ids, no_ids]``.
            batch_size: frames per forward pass (default :attr:`batch_size`).

        Returns:
            ``torch.float32 [N, len(answers)]`` on the CPU, values ``≤ 0``.

        Raises:
            InvalidFramesError: frames not uint8 RGB, or a frame whose image tokens make the
                sequence longer than the model's context (``max_position_embeddings``).
            InvalidParameterError: a number of questions other than 1 or ``N``.
        """
        images = frame_list(frames)
        texts = [questions] * len(images) if isinstance(questions, str) else list(questions)
        if len(texts) != len(images):
            raise InvalidParameterError(f"give one question or one per frame; got {len(texts)} for {len(images)} frames.")
        ids = [torch.tensor(list(a), dtype=torch.long) for a in answers]
        step = int(self.batch_size if batch_size is None else batch_size)
        if step < 1:
            raise InvalidParameterError(f"batch_size must be at least 1; got {step}.")
        out = []
        for start in range(0, len(images), step):
            log_probs = self._next_token_log_probs(images[start : start + step], texts[start : start + step])
            out.append(torch.stack([torch.logsumexp(log_probs[:, a], dim=-1) for a in ids], dim=-1))
        return torch.cat(out)

    def _next_token_log_probs(self, images: list[np.ndarray], questions: list[str]) -> torch.Tensor:
        inputs = self.inputs(images, questions)
        self.check_length(inputs, f"frames of {images[0].shape[1]}x{images[0].shape[0]} px")
        with self.autocast():
            if self.padding_side == "left":
                logits = self.model(**inputs, logits_to_keep=1).logits[:, -1]
            else:
                logits = self.model(**inputs).logits
                last = inputs["attention_mask"].sum(dim=1) - 1
                logits = logits[torch.arange(logits.shape[0], device=logits.device), last]
        return torch.log_softmax(logits.float(), dim=-1).cpu()

    def inputs(self, images: list[np.ndarray], questions: list[str]) -> dict[str, torch.Tensor]:
        """The processor's batched tensors for ``images`` and their questions, on the model's device."""
        from PIL import Image

        pil = [Image.fromarray(image) for image in images]
        self.tokenizer.padding_side = self.padding_side
        texts = [self.prompt(q) for q in questions]
        batch = self.processor(
            text=texts, images=[[p] for p in pil] if self.model_type in _NESTED_IMAGES else pil,
            padding=True, return_tensors="pt",
        )
        return self.on_device(batch)

    def check_length(self, inputs: dict[str, Any], what: str) -> None:
        """Refuse model inputs longer than the model's context (``max_position_embeddings``).

        Raises:
            InvalidFramesError: naming ``what`` made the tokens (e.g. "frames of 600x400 px").
        """
        length = inputs["input_ids"].shape[1]
        if self.max_sequence_length is not None and length > self.max_sequence_length:
            raise InvalidFramesError(
                f"{what} make {length} tokens, more than the {self.max_sequence_length} {self.name!r} takes; "
                "score smaller frames (render_width/render_height)."
            )

    def on_device(self, batch: Any) -> dict[str, Any]:
        """A processor's output as model inputs: tensors on the model's device, floating ones in its dtype
        (``labels``, which PaliGemma's processor adds for training, dropped: scoring computes no loss)."""
        out = {}
        for key, value in batch.items():
            if key == "labels":
                continue
            if isinstance(value, torch.Tensor):
                value = value.to(self.device)
                if value.is_floating_point():
                    value = value.to(self.dtype)
            out[key] = value
        return out

    def autocast(self) -> Any:
        """``torch.autocast`` in :attr:`autocast_dtype` on CUDA when set, else a null context."""
        if self.autocast_dtype is not None and self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=self.autocast_dtype)
        return contextlib.nullcontext()

    def __repr__(self) -> str:
        return f"GenerativeVLM({self.name!r}, {self.model_type}, {self.device}, {str(self.dtype).removeprefix('torch.')})"


def check_generative(model: Any, kind: str) -> GenerativeVLM:
    """``model`` if it is a :class:`GenerativeVLM` (the reward kind ``kind`` reads its answers).

    Raises:
        InvalidParameterError: any other model, in one line naming the models the kind takes.
    """
    if not isinstance(model, GenerativeVLM):
        raise InvalidParameterError(
            f"reward kind {kind!r} asks a generative VLM (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, SmolVLM, PaliGemma); "
            f"{getattr(model, 'name', model)!r} is a {type(model).__name__}, which has no answer to read. Use a "
            "contrastive kind (`vlmreward reward-kinds` lists them) with CLIP or SigLIP."
        )
    return model


def frame_list(frames: Frames | Sequence[np.ndarray]) -> list[np.ndarray]:
    """Frames as a list of uint8 ``[H, W, 3]`` arrays; sizes may differ across a sequence."""
    if isinstance(frames, (list, tuple)):
        if not frames:
            raise InvalidFramesError("got zero frames; pass at least one uint8 RGB frame of shape [H, W, 3].")
        return [as_frame_batch(np.asarray(f))[0].cpu().numpy() for f in frames]
    return list(as_frame_batch(frames).cpu().numpy())


def load_generative_model(
    name: str, path: str | os.PathLike, model_type: str, *, device: torch.device, dtype: torch.dtype | None
) -> GenerativeVLM:
    """Load a generative VLM from a local directory (a hub snapshot or ``save_pretrained`` output).

    Args:
        name: the name the user gave (kept for messages and reports).
        path: the directory with ``config.json``, the weights and the processor's files.
        model_type: its ``config.model_type`` (one of :data:`GENERATIVE_MODEL_TYPES`).
        device, dtype: where to put the weights, in which dtype (default float32).
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype or torch.float32).to(device).eval()
    processor = AutoProcessor.from_pretrained(path)
    return GenerativeVLM(model, processor, name=name, model_type=model_type, device=device, dtype=dtype or torch.float32)
