"""Hugging Face ``transformers`` backend: ``CLIPModel`` and ``SiglipModel``, the video model X-CLIP
(:mod:`.video`) and the generative VLMs of :mod:`.generative`.

Loads a hub id (``openai/clip-vit-base-patch32``, ``google/siglip-base-patch16-224``) or a local
directory written by ``save_pretrained`` (model, tokenizer and image processor saved together).
Preprocessing parameters come from the saved image processor (``preprocessor_config.json``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from vlmreward.errors import ModelNotFoundError, VLMRewardError
from vlmreward.models._compat import ensure_torchvision_importable
from vlmreward.models.base import VisionLanguageModel, check_tokenizer
from vlmreward.models.generative import GENERATIVE_MODEL_TYPES, load_generative_model
from vlmreward.models.hub import hub_context
from vlmreward.models.preprocess import PreprocessConfig, ResizeMode
from vlmreward.models.video import VIDEO_MODEL_TYPES

__all__ = ["HFModel", "load_hf_model", "SUPPORTED_MODEL_TYPES"]

SUPPORTED_MODEL_TYPES = ("clip", "siglip")
"""``config.json`` ``model_type`` values this backend loads."""

_DOWNLOAD_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors", "*.jinja"]
_PIL_FILTERS = {2: "bilinear", 3: "bicubic"}  # PIL.Image.Resampling values


class HFModel(VisionLanguageModel):
    """A ``transformers`` CLIP or SigLIP model behind the :class:`VisionLanguageModel` interface."""

    backend = "hf"

    def __init__(self, model, tokenizer, *, pad_to_max_length: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.tokenizer = tokenizer
        self._padding = "max_length" if pad_to_max_length else True

    def _embed_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return _features(self.model.get_image_features(pixel_values=pixels))

    def _embed_prompts(self, prompts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(
            prompts, padding=self._padding, truncation=True, max_length=self.context_length, return_tensors="pt"
        )
        inputs = {k: v.to(self.device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
        return _features(self.model.get_text_features(**inputs))

    def count_tokens(self, prompt: str) -> int:
        return len(self.tokenizer(prompt, truncation=False)["input_ids"])


def _features(output) -> torch.Tensor:
    """``get_*_features`` returns a tensor (transformers 4) or an output with ``pooler_output`` (5)."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _embed_dim(config) -> int:
    if config.model_type == "siglip":  # the text head maps hidden_size → projection_size
        return int(getattr(config.text_config, "projection_size", None) or config.text_config.hidden_size)
    return int(config.projection_dim)


def _resolve(name: str) -> Path:
    """A local directory for ``name``: the directory itself, or the hub snapshot (downloaded if needed)."""
    if os.path.isdir(name):
        return Path(name)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError

    hint = "load_model('/path/to/dir') on a directory written by model.save_pretrained() and processor.save_pretrained()"
    try:
        with hub_context(name, hint):
            return Path(snapshot_download(name, allow_patterns=_DOWNLOAD_PATTERNS))
    except (RepositoryNotFoundError, GatedRepoError, HFValidationError) as err:
        raise ModelNotFoundError(
            f"no model {name!r}: not a local directory, nor a Hugging Face hub repository you can access. "
            "Use a hub id such as 'openai/clip-vit-base-patch32', a save_pretrained() directory, or "
            "'open_clip:ARCH/TAG' (vlmreward models lists the open_clip names)."
        ) from err


def load_hf_model(
    name: str, *, device: torch.device, dtype: torch.dtype | None, resize: ResizeMode, antialias: bool, truncate: bool
) -> HFModel | Any:
    """Load a ``transformers`` CLIP or SigLIP model with its tokenizer and preprocessing, or a
    generative VLM (:data:`~vlmreward.models.generative.GENERATIVE_MODEL_TYPES`) as a
    :class:`~vlmreward.models.generative.GenerativeVLM` (its processor resizes frames as the model
    was trained; ``resize``, ``antialias`` and ``truncate`` do not apply to it).

    Args:
        name: hub id or local ``save_pretrained`` directory.
        device: where the model runs.
        dtype: weight dtype (default: ``float32``).
        resize: resize mode of the preprocessing (:data:`~vlmreward.models.preprocess.ResizeMode`).
        antialias: antialiased (PIL-like) resize, or the VLM-RM reference's plain bicubic.
        truncate: truncate over-long prompts instead of raising.

    Raises:
        ModelNotFoundError: unknown hub id, a ``model_type`` this backend does not load, or a
            directory that cannot be loaded (no or invalid ``config.json``, missing, empty or
            truncated weights, weights of other shapes, no processor or tokenizer files).
        ModelNotAvailableError: not cached and the hub unreachable.
    """
    from safetensors import SafetensorError

    path = _resolve(name)
    try:
        return _load(name, path, device=device, dtype=dtype, resize=resize, antialias=antialias, truncate=truncate)
    except VLMRewardError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError, SafetensorError) as err:
        reason = " ".join(str(err).split())[:300] or type(err).__name__
        raise ModelNotFoundError(
            f"cannot load the model in {str(path)!r} ({type(err).__name__}: {reason}); a model directory needs "
            "config.json, its weights (model.safetensors) and its processor and tokenizer files, as "
            "model.save_pretrained(dir) and processor.save_pretrained(dir) write them."
        ) from err


def _load(
    name: str, path: Path, *, device: torch.device, dtype: torch.dtype | None, resize: ResizeMode, antialias: bool, truncate: bool
) -> HFModel | Any:
    ensure_torchvision_importable()
    import transformers
    from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer

    config = AutoConfig.from_pretrained(path)
    if config.model_type in GENERATIVE_MODEL_TYPES:
        return load_generative_model(name, path, config.model_type, device=device, dtype=dtype)
    if config.model_type not in SUPPORTED_MODEL_TYPES + VIDEO_MODEL_TYPES:
        raise ModelNotFoundError(
            f"model {name!r} is a {config.model_type!r} model; the transformers backend loads "
            f"{' and '.join(SUPPORTED_MODEL_TYPES)} models, the video model X-CLIP and the generative VLMs "
            f"{', '.join(GENERATIVE_MODEL_TYPES)}."
        )
    processor = AutoImageProcessor.from_pretrained(path, backend="pil")
    size = processor.crop_size if getattr(processor, "do_center_crop", False) else processor.size
    image_size = size.get("height") or size.get("shortest_edge") or config.vision_config.image_size
    preprocess_config = PreprocessConfig(
        image_size=int(image_size),
        mean=tuple(processor.image_mean),
        std=tuple(processor.image_std),
        interpolation=_PIL_FILTERS.get(int(processor.resample), "bicubic"),
        resize=resize,
        antialias=antialias,
        crop_rounding="floor",
    )
    if config.model_type in VIDEO_MODEL_TYPES:
        from vlmreward.models.video import load_xclip_model

        return load_xclip_model(name, path, device=device, dtype=dtype, preprocess_config=preprocess_config, truncate=truncate)
    model_class = transformers.SiglipModel if config.model_type == "siglip" else transformers.CLIPModel
    model = model_class.from_pretrained(path, dtype=dtype or torch.float32).to(device).eval()
    tokenizer = check_tokenizer(AutoTokenizer.from_pretrained(path), name, path)
    return HFModel(
        model,
        tokenizer,
        pad_to_max_length=config.model_type == "siglip",  # SigLIP's text tower was trained on padded input
        name=name,
        embed_dim=_embed_dim(config),
        context_length=int(config.text_config.max_position_embeddings),
        preprocess_config=preprocess_config,
        device=device,
        dtype=dtype or torch.float32,
        truncate=truncate,
    )
