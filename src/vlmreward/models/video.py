"""Video-language models: a clip of frames and a sentence → their similarity. X-CLIP through ``transformers``.

A *clip* is a sequence of uint8 RGB frames ``[T, H, W, 3]`` of any length ``T ≥ 1``: an episode
or a window of one. The model sees ``num_frames`` of them (X-CLIP: 8), spread evenly over the
clip by :func:`uniform_frame_indices`, each preprocessed as the image models' frames are
(:mod:`vlmreward.models.preprocess`: resize mode, antialiasing, the checkpoint's mean and std).

X-CLIP (Ni et al., "Expanding Language-Image Pretrained Models for General Video Recognition",
ECCV 2022) embeds each frame with a CLIP vision tower, integrates the frames' embeddings over
time (the multi-frame integration transformer) into one video embedding, and conditions the
text embedding on the video ("video-specific prompting"): the similarity of a clip and a
sentence is therefore a joint forward pass, not a dot product of two independent embeddings.
:meth:`VideoLanguageModel.similarity` computes it as ``XCLIPModel.forward`` does
(``transformers/models/x_clip/modeling_x_clip.py``: ``logits_per_video / logit_scale.exp()``),
with the text tower run once per sentence and cached; ``tests/test_video_rewards.py`` checks it
against ``XCLIPModel.forward`` itself.

Loaded by :func:`vlmreward.load_model` from a hub id (``microsoft/xclip-base-patch32``) or a
``save_pretrained`` directory whose ``config.json`` has ``model_type: xclip``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vlmreward.errors import InvalidFramesError, InvalidParameterError, PromptError
from vlmreward.models.base import check_prompt, check_tokenizer
from vlmreward.models.preprocess import PreprocessConfig, as_frame_batch, preprocess

__all__ = ["VideoLanguageModel", "uniform_frame_indices", "as_clip_list", "load_xclip_model", "VIDEO_MODEL_TYPES"]

VIDEO_MODEL_TYPES: tuple[str, ...] = ("xclip",)
"""``config.json`` ``model_type`` values loaded as :class:`VideoLanguageModel`."""

DEFAULT_VIDEO_BATCH_SIZE = 8
"""Clips per forward pass (each of ``num_frames`` frames) unless a call says otherwise."""


def uniform_frame_indices(length: int, num_frames: int) -> np.ndarray:
    """Indices of ``num_frames`` frames spread evenly over a clip of ``length`` frames.

    ``round(linspace(0, length - 1, num_frames))``: the first and the last frame are always
    kept (the last is the state the episode ended in); a clip shorter than ``num_frames``
    repeats frames. transformers' X-CLIP examples sample the frames the same way
    (``sample_frame_indices``: ``np.linspace`` over the segment, in ``modeling_x_clip.py``'s
    docstrings); RoboCLIP keeps every 4th frame of a 128-step episode for S3D, which takes any
    length (``metaworld_envs.py``, ``MetaworldSparse.preprocess_metaworld``).

    Returns:
        ``int64 [num_frames]``, non-decreasing, in ``[0, length - 1]``.

    Raises:
        InvalidParameterError: ``length < 1`` or ``num_frames < 1``.
    """
    if length < 1 or num_frames < 1:
        raise InvalidParameterError(f"a clip needs at least one frame and one sample; got length {length}, num_frames {num_frames}.")
    return np.rint(np.linspace(0, length - 1, num_frames)).astype(np.int64)


def as_clip_list(videos: Any) -> list[np.ndarray | torch.Tensor]:
    """Clips as a list: a uint8 array ``[E, T, H, W, 3]``, one clip ``[T, H, W, 3]`` is not accepted
    (ambiguous with a batch of frames), or a sequence of clips ``[T_i, H, W, 3]`` of any lengths.

    Raises:
        InvalidFramesError: no clips, or a clip that is not ``[T, H, W, 3]`` with ``T ≥ 1``.
    """
    if isinstance(videos, (np.ndarray, torch.Tensor)):
        if videos.ndim != 5:
            raise InvalidFramesError(
                f"videos must be uint8 [E, T, H, W, 3] or a list of clips [T, H, W, 3]; got an array of shape {tuple(videos.shape)}."
            )
        clips = list(videos)
    else:
        clips = list(videos)
    if not clips:
        raise InvalidFramesError("no clips given; pass at least one clip of frames [T, H, W, 3].")
    for clip in clips:
        if getattr(clip, "ndim", None) != 4 or clip.shape[0] < 1:
            raise InvalidFramesError(
                f"each clip must be uint8 frames [T, H, W, 3] with T ≥ 1; got shape {tuple(getattr(clip, 'shape', ()))}."
            )
    return clips


class VideoLanguageModel:
    """X-CLIP behind vlmreward's model interface: clips → video embeddings, sentences → similarities.

    Attributes:
        name: hub id or directory it was loaded from.
        model: the ``transformers`` ``XCLIPModel``, in eval mode.
        num_frames: ``T``, frames per clip the model consumes (``vision_config.num_frames``).
        embed_dim: ``D``, the joint embedding size (``projection_dim``).
        context_length: maximum sentence length in tokens.
        preprocess_config: the per-frame preprocessing (:class:`PreprocessConfig`).
        device, dtype: where and in which dtype the weights are (outputs are ``float32``).
        batch_size: clips per forward pass.
        backend, runtime: ``"hf"`` and ``"torch"``.
    """

    backend = "hf"
    runtime = "torch"
    family = "video"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        preprocess_config: PreprocessConfig,
        device: torch.device,
        dtype: torch.dtype,
        truncate: bool = False,
        batch_size: int = DEFAULT_VIDEO_BATCH_SIZE,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.preprocess_config = preprocess_config
        self.device = torch.device(device)
        self.dtype = dtype
        self.truncate = truncate
        self.batch_size = int(batch_size)
        self.num_frames = int(model.config.vision_config.num_frames)
        self.embed_dim = int(model.config.projection_dim)
        self.context_length = int(model.config.text_config.max_position_embeddings)
        self.autocast_dtype = None
        self._text_cache: dict[str, torch.Tensor] = {}  # sentence → projected text embedding [D], not normalised

    image_size = property(lambda self: self.preprocess_config.image_size)
    resize = property(lambda self: self.preprocess_config.resize)
    antialias = property(lambda self: self.preprocess_config.antialias)

    def __repr__(self) -> str:
        return (
            f"VideoLanguageModel(name={self.name!r}, num_frames={self.num_frames}, embed_dim={self.embed_dim}, "
            f"image_size={self.image_size}, device={str(self.device)!r})"
        )

    # ------------------------------------------------------------------ clips
    def sample(self, clip: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """The ``num_frames`` frames of ``clip`` (``[T, H, W, 3]``) the model sees (:func:`uniform_frame_indices`)."""
        return clip[uniform_frame_indices(len(clip), self.num_frames)]

    def preprocess_clips(self, clips: Sequence[np.ndarray | torch.Tensor]) -> torch.Tensor:
        """Clips of any lengths → pixels ``[E, num_frames, 3, S, S]`` in the model's dtype on its device.

        Raises:
            InvalidFramesError: frames not uint8 RGB, or clips of different frame sizes.
        """
        sampled = [as_frame_batch(self.sample(clip)) for clip in clips]
        if len({tuple(s.shape[1:]) for s in sampled}) > 1:
            raise InvalidFramesError("the clips of one call must have frames of one size; score them in separate calls.")
        frames = torch.cat(sampled).to(self.device)
        pixels = preprocess(frames, self.preprocess_config, self.dtype)
        return pixels.view(len(sampled), self.num_frames, *pixels.shape[1:])

    def _video_features(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, T, 3, S, S]`` → (video embeddings ``[B, D]``, not normalised; per-patch image features
        ``[B, P, D]``), the first half of ``XCLIPModel.forward``."""
        m = self.model
        b, t = pixels.shape[:2]
        vision = m.vision_model(pixel_values=pixels.reshape(b * t, *pixels.shape[2:]))
        cls = m.visual_projection(vision.pooler_output).view(b, t, -1)
        video = m.mit(cls).pooler_output
        patches = m.prompts_visual_layernorm(vision.last_hidden_state[:, 1:, :]) @ m.prompts_visual_projection
        return video, patches.view(b, t, -1, video.shape[-1]).mean(dim=1)

    @torch.inference_mode()
    def encode_videos(self, videos: Any, batch_size: int | None = None) -> torch.Tensor:
        """Embed clips: X-CLIP's video embedding (frames through the vision tower, integrated over time).

        Args:
            videos: uint8 ``[E, T, H, W, 3]`` or a list of ``E`` clips ``[T_i, H, W, 3]`` (any lengths).
            batch_size: clips per forward pass (default: the model's ``batch_size``).

        Returns:
            ``torch.float32 [E, D]`` on the model's device, unit L2 norm.

        Raises:
            InvalidFramesError: see :func:`as_clip_list` and :meth:`preprocess_clips`.
        """
        clips = as_clip_list(videos)
        step = self._step(batch_size)
        out = [self._video_features(self.preprocess_clips(clips[i : i + step]))[0].float() for i in range(0, len(clips), step)]
        return F.normalize(torch.cat(out), dim=-1)

    # ------------------------------------------------------------------ text
    def check_prompt(self, prompt: str) -> None:
        """Raise if ``prompt`` cannot be embedded as given.

        Raises:
            PromptError: not a string, or empty.
            PromptTooLongError: more than ``context_length`` tokens while ``truncate`` is off.
        """
        check_prompt(prompt, self.count_tokens, self.context_length, self.truncate, self.name)

    def count_tokens(self, prompt: str) -> int:
        """Tokens of ``prompt``, special tokens included."""
        return len(self.tokenizer(prompt, truncation=False)["input_ids"])

    def _text_embeddings(self, prompts: Sequence[str]) -> torch.Tensor:
        """Projected text embeddings ``[M, D]`` (before video-specific prompting), computed once per sentence."""
        missing = list(dict.fromkeys(p for p in prompts if p not in self._text_cache))
        if missing:
            for prompt in missing:
                self.check_prompt(prompt)
            tokens = self.tokenizer(missing, padding=True, truncation=True, max_length=self.context_length, return_tensors="pt")
            inputs = {k: v.to(self.device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
            text = self.model.text_projection(self.model.text_model(**inputs).pooler_output)
            self._text_cache.update(zip(missing, text))
        return torch.stack([self._text_cache[p] for p in prompts])

    @torch.inference_mode()
    def encode_text(self, prompts: str | Sequence[str]) -> torch.Tensor:
        """Unit text embeddings ``float32 [M, D]`` before X-CLIP's video-specific prompting (the text
        tower and projection only; :meth:`similarity` conditions them on each clip).

        Raises:
            PromptError, PromptTooLongError: see :meth:`check_prompt`.
        """
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts:
            raise PromptError("no prompts given; pass at least one sentence.")
        return F.normalize(self._text_embeddings(prompts).float(), dim=-1)

    @torch.inference_mode()
    def similarity(self, videos: Any, prompts: str | Sequence[str], batch_size: int | None = None) -> torch.Tensor:
        """Cosine similarity of each clip with each sentence, as X-CLIP scores them.

        ``cos(v, t + PromptGenerator(t, patches(v)))``: ``XCLIPModel.forward``'s
        ``logits_per_video`` divided by ``logit_scale.exp()``
        (``transformers/models/x_clip/modeling_x_clip.py``).

        Args:
            videos: as for :meth:`encode_videos`.
            prompts: one sentence or ``M``.
            batch_size: clips per forward pass.

        Returns:
            ``torch.float32 [E, M]`` on the model's device, in ``[-1, 1]``.

        Raises:
            InvalidFramesError, PromptError, PromptTooLongError.
        """
        clips = as_clip_list(videos)
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts:
            raise PromptError("no prompts given; pass at least one sentence.")
        text = self._text_embeddings(prompts)  # [M, D]
        step = self._step(batch_size)
        out = []
        for i in range(0, len(clips), step):
            video, patches = self._video_features(self.preprocess_clips(clips[i : i + step]))
            conditioned = text.unsqueeze(0).expand(len(video), -1, -1)
            conditioned = conditioned + self.model.prompts_generator(conditioned, patches)
            out.append(torch.einsum("bd,bkd->bk", F.normalize(video, dim=-1), F.normalize(conditioned, dim=-1)).float())
        return torch.cat(out)

    def _step(self, batch_size: int | None) -> int:
        step = self.batch_size if batch_size is None else batch_size
        if step < 1:
            raise InvalidParameterError(f"batch_size must be at least 1; got {step}.")
        return step


def load_xclip_model(
    name: str, path: Path, *, device: torch.device, dtype: torch.dtype | None, preprocess_config: PreprocessConfig, truncate: bool
) -> VideoLanguageModel:
    """Load an X-CLIP ``save_pretrained`` directory (``XCLIPModel`` and its CLIP tokenizer).

    Raises:
        OSError, ValueError: files missing or of the wrong shapes (:func:`vlmreward.models.hf.load_hf_model`
            turns them into one :class:`~vlmreward.errors.ModelNotFoundError` line).
    """
    from transformers import AutoTokenizer, XCLIPModel

    model = XCLIPModel.from_pretrained(path, dtype=dtype or torch.float32).to(device).eval()
    tokenizer = check_tokenizer(AutoTokenizer.from_pretrained(path), name, path)
    return VideoLanguageModel(
        model, tokenizer, name=name, preprocess_config=preprocess_config, device=device, dtype=dtype or torch.float32, truncate=truncate
    )
