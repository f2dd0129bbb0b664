"""Generative VLMs over frame sequences: the log-probability of an answer after a video, and text generated after interleaved frames.

Two readings of a :class:`~vlmreward.models.generative.GenerativeVLM` that the progress and
value reward kinds (:mod:`vlmreward.rewards.progress`, :mod:`vlmreward.rewards.value`) build on:

* :func:`video_answer_log_probs`: ``log p(answer | video, text)`` for a batch of videos (episode
  prefixes), each in its own row of **one** forward pass. The text is TOPReward's
  (arXiv 2602.19313; LeRobot ``rewards/topreward/processor_topreward.py``): the model's chat
  template around one user turn of the video and ``prefix_text``, cut before that turn's
  end-of-turn token, then the instruction sentence ending in the answer ("... The answer is:
  True"); the score is the sum of the log-probabilities of the answer's tokens, read from the
  logits of the positions before them (``logits_to_keep``: the language head runs on those
  positions only). Videos go through the model's own video processor (``do_sample_frames=False``:
  the caller chose the frames; ``fps`` is the frame rate the processor's timestamps assume).
  Rows are left-padded, so the answer is every row's last tokens.
* :func:`generate_after_frames`: greedy ``generate`` after a user turn of interleaved text and
  frames (GVL's prompt, Ma et al., ICLR 2025), decoded to text.

Only Qwen2-VL, Qwen2.5-VL and Qwen3-VL (:data:`VIDEO_INPUT_MODEL_TYPES`) take video input here;
:func:`check_video_input` says so in one line for any other model.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from vlmreward.errors import InvalidFramesError, InvalidParameterError
from vlmreward.models.generative import GenerativeVLM, check_generative
from vlmreward.models.generative_images import interleaved_turn

__all__ = [
    "VIDEO_INPUT_MODEL_TYPES",
    "check_video_input",
    "video_prompt_text",
    "answer_token_count",
    "video_answer_log_probs",
    "generate_after_frames",
]

VIDEO_INPUT_MODEL_TYPES: tuple[str, ...] = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
"""``model_type`` values of the generative VLMs whose processors take videos (Qwen-VL's M-RoPE video input)."""


def check_video_input(model: Any, kind: str) -> GenerativeVLM:
    """``model`` if it is a generative VLM that takes video input (:data:`VIDEO_INPUT_MODEL_TYPES`).

    Raises:
        InvalidParameterError: not a generative VLM, or one without video input (e.g. SmolVLM,
            PaliGemma), or a processor without a video processor.
    """
    model = check_generative(model, kind)
    if model.model_type not in VIDEO_INPUT_MODEL_TYPES or getattr(model.processor, "video_processor", None) is None:
        raise InvalidParameterError(
            f"reward kind {kind!r} reads a video prefix, and {model.name!r} ({model.model_type}) takes no video input here; "
            f"use a Qwen2-VL, Qwen2.5-VL or Qwen3-VL model (e.g. 'Qwen/Qwen3-VL-8B-Instruct')."
        )
    return model


def video_prompt_text(model: GenerativeVLM, prefix_text: str, suffix: str) -> str:
    """The text of one video row: the chat template's user turn ``[video, prefix_text]`` without its
    end-of-turn token, then ``suffix`` (which ends with the answer).

    LeRobot's TOPReward cuts the templated turn at the *first* end-of-sequence token, the end of
    the user turn when that turn is the template's first (Qwen3-VL's template has no default
    system turn); templates with a default system turn (Qwen2-VL, Qwen2.5-VL) end that turn
    first, so the cut here is at the *last* one, which keeps the user turn for both (the real
    Qwen3-VL template is not on this machine: that the two cuts agree there is not tested).
    """
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prefix_text}]}]
    chat = model.processor.apply_chat_template(messages, add_generation_prompt=False, tokenize=False)
    eos = model.tokenizer.eos_token
    if eos and eos in chat:
        chat = chat[: chat.rindex(eos)]
    return chat + suffix


def answer_token_count(model: GenerativeVLM, text: str, answer: str) -> int:
    """How many of ``text``'s last tokens spell ``answer`` (``text`` ends with it, after a space): the
    tokens of ``text`` minus those of ``text`` without the answer and the spaces before it. The
    space belongs to the answer (Qwen's vocabulary spells `` True`` as one token, ``ĠTrue``, the
    one token LeRobot's TOPReward scores; the tests' tiny tokenizer takes several).

    Raises:
        InvalidParameterError: ``text`` does not end with ``answer``, or the answer adds no token.
    """
    if not answer or not text.endswith(answer):
        raise InvalidParameterError(f"the scored text must end with the answer {answer!r}.")
    full = model.tokenizer.encode(text, add_special_tokens=False)
    head = model.tokenizer.encode(text[: -len(answer)].rstrip(), add_special_tokens=False)
    n = len(full) - len(head)
    if n < 1 or full[: len(head)] != head:
        raise InvalidParameterError(
            f"the answer {answer!r} does not tokenize apart from the text before it with {model.name!r}'s tokenizer; "
            "end the prompt before the answer with a word or punctuation."
        )
    return n


def _video_tensor(video: np.ndarray) -> torch.Tensor:
    video = np.asarray(video)
    if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3:
        raise InvalidFramesError(
            f"a video must be uint8 RGB frames [T, H, W, 3]; got {video.dtype} of shape {tuple(video.shape)}."
        )
    return torch.from_numpy(np.ascontiguousarray(video)).permute(0, 3, 1, 2)


@torch.inference_mode()
def video_answer_log_probs(
    model: GenerativeVLM,
    videos: Sequence[np.ndarray],
    texts: Sequence[str],
    answer_tokens: Sequence[int],
    *,
    fps: float,
    batch_size: int | None = None,
) -> torch.Tensor:
    """``Σ_{j} log p(a_j | video_i, text_i[:a_j])`` over the answer's tokens, for every video.

    Args:
        model: a generative VLM that takes video (:func:`check_video_input`).
        videos: uint8 ``[T_i, H, W, 3]`` each (lengths may differ; Qwen-VL needs ``T_i ≥ 2``).
        texts: one :func:`video_prompt_text` per video, each ending with the answer.
        answer_tokens: per text, how many last tokens are the answer (:func:`answer_token_count`).
        fps: frames per second the video processor's timestamps assume (TOPReward's default 2).
        batch_size: videos per forward pass (default the model's ``batch_size``).

    Returns:
        ``torch.float32 [len(videos)]`` on the CPU, values ``≤ 0`` (natural log).

    Raises:
        InvalidFramesError: a video that is not uint8 ``[T, H, W, 3]``, or a row longer than the
            model's context.
        InvalidParameterError: lengths of ``videos``, ``texts`` and ``answer_tokens`` differ.
    """
    if not (len(videos) == len(texts) == len(answer_tokens)):
        raise InvalidParameterError(f"give one text and one answer length per video; got {len(videos)}, {len(texts)}, {len(answer_tokens)}.")
    step = max(1, int(model.batch_size if batch_size is None else batch_size))
    out = []
    for start in range(0, len(videos), step):
        chunk = [_video_tensor(v) for v in videos[start : start + step]]
        counts = [int(k) for k in answer_tokens[start : start + step]]
        metadata = [{"total_num_frames": len(v), "fps": float(fps), "frames_indices": list(range(len(v)))} for v in chunk]
        batch = model.processor(
            text=list(texts[start : start + step]), videos=chunk, video_metadata=metadata, do_sample_frames=False,
            padding=True, padding_side="left", return_tensors="pt",
        )
        inputs = model.on_device(batch)
        ids = inputs["input_ids"]
        if model.max_sequence_length is not None and ids.shape[1] > model.max_sequence_length:
            raise InvalidFramesError(
                f"a video of {len(chunk[0])} frames makes {ids.shape[1]} tokens, more than the {model.max_sequence_length} "
                f"{model.name!r} takes; lower max_frames or score smaller frames."
            )
        k = max(counts)
        with model.autocast():
            logits = model.model(**inputs, logits_to_keep=k + 1).logits
        log_probs = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # position p predicts token p + 1
        targets = ids[:, -k:]
        picked = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # [B, k]
        mask = torch.arange(k, device=picked.device)[None, :] >= (k - torch.tensor(counts, device=picked.device))[:, None]
        out.append((picked * mask).sum(dim=1).cpu())
    return torch.cat(out) if out else torch.zeros(0)


@torch.inference_mode()
def generate_after_frames(model: GenerativeVLM, content: Sequence[str | np.ndarray], max_new_tokens: int) -> str:
    """Greedy completion of one user turn made of text pieces and frames (uint8 ``[H, W, 3]``), in order.

    Returns:
        The generated text (special tokens removed).

    Raises:
        InvalidFramesError: a frame that is not uint8 RGB ``[H, W, 3]``.
    """
    text, images = interleaved_turn(model, content)
    batch = model.processor(text=[text], images=images or None, return_tensors="pt")
    inputs = model.on_device(batch)
    with model.autocast():
        generated = model.model.generate(**inputs, max_new_tokens=int(max_new_tokens), do_sample=False)
    return model.tokenizer.decode(generated[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
