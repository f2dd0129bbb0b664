"""Generative VLMs over several images in one user turn: next-token log-probabilities and generated text.

A :class:`~vlmreward.models.generative.GenerativeVLM` reads one image per question in
:meth:`~vlmreward.models.generative.GenerativeVLM.answer_log_probs`; a preference query (RL-VLM-F,
Wang et al., ICML 2024, ``prompt.py``) shows two images with text around each. Here a *content* is
a sequence of text pieces and frames in the order the model sees them, one user turn of the
model's own chat template (``processor.apply_chat_template``, the generation prompt after it):

* :func:`interleaved_answer_log_probs`: ``log Σ_{t ∈ answer} p(t | content)`` of the next token
  after the generation prompt, for a batch of contents in one forward pass per batch (rows
  left-padded, ``logits_to_keep=1``: the language head runs on the last position only), float32;
* :func:`interleaved_turn`: the chat text and the images of one content, which
  :func:`~vlmreward.models.generative_video.generate_after_frames` generates after.

Models without a chat template (PaliGemma, whose processor takes one image before the text) are
refused in one line by :func:`check_interleaved`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from vlmreward.errors import InvalidFramesError, InvalidParameterError
from vlmreward.models.generative import _NESTED_IMAGES, GenerativeVLM, check_generative

__all__ = ["Content", "check_interleaved", "interleaved_turn", "interleaved_answer_log_probs"]

Content = Sequence["str | np.ndarray"]
"""One user turn: text pieces and uint8 RGB frames ``[H, W, 3]``, in order."""


def check_interleaved(model: Any, kind: str) -> GenerativeVLM:
    """``model`` if it is a generative VLM whose chat template places images among text.

    Raises:
        InvalidParameterError: not a generative VLM, or one without a chat template (PaliGemma).
    """
    model = check_generative(model, kind)
    if not getattr(model.processor, "chat_template", None):
        raise InvalidParameterError(
            f"reward kind {kind!r} shows several images in one question, and {model.name!r} ({model.model_type}) has no chat "
            "template to place them; use Qwen2-VL, Qwen2.5-VL, Qwen3-VL or SmolVLM."
        )
    return model


def interleaved_turn(model: GenerativeVLM, content: Content) -> tuple[str, list[Any]]:
    """The chat text of one user turn of ``content`` (generation prompt included) and its images (PIL, in order).

    Raises:
        InvalidFramesError: a frame that is not uint8 RGB ``[H, W, 3]``.
    """
    from PIL import Image

    parts, images = [], []
    for piece in content:
        if isinstance(piece, str):
            parts.append({"type": "text", "text": piece})
            continue
        frame = np.asarray(piece)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
            raise InvalidFramesError(f"a frame must be uint8 RGB [H, W, 3]; got {frame.dtype} of shape {tuple(frame.shape)}.")
        parts.append({"type": "image"})
        images.append(Image.fromarray(frame))
    text = model.processor.apply_chat_template([{"role": "user", "content": parts}], add_generation_prompt=True, tokenize=False)
    return text, images


@torch.inference_mode()
def interleaved_answer_log_probs(
    model: GenerativeVLM, contents: Sequence[Content], answers: Sequence[Sequence[int]], batch_size: int | None = None
) -> torch.Tensor:
    """``log Σ_{t ∈ answers[j]} p(t | contents[i])`` for the token after each content's generation prompt.

    Args:
        model: a generative VLM with a chat template (:func:`check_interleaved`).
        contents: ``N`` user turns (:data:`Content`), each with any number of frames (none: text only).
        answers: token-id sets (:meth:`GenerativeVLM.answer_token_ids`), e.g. the ids of ``"1"`` and ``"2"``.
        batch_size: contents per forward pass (default ``model.batch_size``).

    Returns:
        ``torch.float32 [N, len(answers)]`` on the CPU, values ``≤ 0``: the log-softmax over the
        whole vocabulary of the last position's logits, summed (log-sum-exp) over each answer's ids.

    Raises:
        InvalidFramesError: a frame that is not uint8 RGB, or a sequence longer than the model's context.
        InvalidParameterError: no contents, or ``batch_size < 1``.
    """
    if not contents:
        raise InvalidParameterError("give at least one content (text and frames) to score.")
    step = int(model.batch_size if batch_size is None else batch_size)
    if step < 1:
        raise InvalidParameterError(f"batch_size must be at least 1; got {step}.")
    ids = [torch.tensor(list(a), dtype=torch.long) for a in answers]
    out = []
    for start in range(0, len(contents), step):
        turns = [interleaved_turn(model, c) for c in contents[start : start + step]]
        texts = [t for t, _ in turns]
        nested = [imgs for _, imgs in turns]
        images: Any = nested if model.model_type in _NESTED_IMAGES else [img for imgs in nested for img in imgs]
        model.tokenizer.padding_side = "left"
        batch = model.processor(text=texts, images=images or None, padding=True, return_tensors="pt")
        inputs = model.on_device(batch)
        model.check_length(inputs, "the question and its frames")
        with model.autocast():
            logits = model.model(**inputs, logits_to_keep=1).logits[:, -1]
        log_probs = torch.log_softmax(logits.float(), dim=-1).cpu()
        out.append(torch.stack([torch.logsumexp(log_probs[:, a], dim=-1) for a in ids], dim=-1))
    return torch.cat(out)
