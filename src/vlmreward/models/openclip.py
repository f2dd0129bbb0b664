"""``open_clip`` backend: OpenAI CLIP, LAION CLIP, SigLIP and the other open_clip models.

Names (the ``open_clip:`` prefix is what routes them here):

* ``open_clip:ARCH/TAG``: a built-in architecture with a pretrained tag, e.g.
  ``open_clip:ViT-g-14/laion2b_s34b_b88k`` (the VLM-RM reference code's default);
* ``open_clip:ARCH`` with ``checkpoint=PATH``: a built-in (or ``open_clip.add_model_config``)
  architecture with a local checkpoint file (``.pt``, ``.bin`` or ``.safetensors``);
* ``hf-hub:ORG/REPO`` (or ``open_clip:hf-hub:ORG/REPO``): a hub repository in open_clip's
  format (``open_clip_config.json`` + weights);
* ``open_clip:local-dir:PATH``, or a directory holding ``open_clip_config.json``: the same,
  local.
"""

from __future__ import annotations

import difflib
import os

import torch

from vlmreward.errors import ModelNotFoundError
from vlmreward.models._compat import ensure_torchvision_importable
from vlmreward.models.base import VisionLanguageModel
from vlmreward.models.hub import hub_context
from vlmreward.models.preprocess import PreprocessConfig, ResizeMode

__all__ = ["OpenCLIPModel", "load_open_clip_model", "PREFIX"]

PREFIX = "open_clip:"


class OpenCLIPModel(VisionLanguageModel):
    """An ``open_clip`` model behind the :class:`VisionLanguageModel` interface."""

    backend = "open_clip"

    def __init__(self, model, tokenizer, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.tokenizer = tokenizer

    def _embed_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)

    def _embed_prompts(self, prompts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(prompts, context_length=self.context_length).to(self.device)
        return self.model.encode_text(tokens)

    def count_tokens(self, prompt: str) -> int:
        if hasattr(self.tokenizer, "sot_token_id"):  # open_clip's own BPE: start + text + end
            return len(self.tokenizer.encode(prompt)) + 2
        return len(self.tokenizer.tokenizer(prompt)["input_ids"])  # a wrapped transformers tokenizer


def _check_architecture(arch: str, open_clip) -> None:
    known = open_clip.list_models()
    if arch not in known:
        close = difflib.get_close_matches(arch, known, n=3)
        suggestion = f" Did you mean {', '.join(close)}?" if close else ""
        raise ModelNotFoundError(
            f"open_clip has no architecture {arch!r}.{suggestion} `vlmreward models` lists them all "
            "(a custom one must be registered with open_clip.add_model_config first)."
        )


def _check_tag(arch: str, tag: str, open_clip) -> None:
    tags = open_clip.list_pretrained_tags_by_model(arch)
    if tag not in tags:
        listing = ", ".join(tags) if tags else "none"
        raise ModelNotFoundError(
            f"open_clip has no pretrained tag {tag!r} for {arch!r} (known: {listing}); "
            f"for a local checkpoint use load_model('{PREFIX}{arch}', checkpoint=PATH)."
        )


def load_open_clip_model(
    name: str,
    *,
    checkpoint: str | os.PathLike | None,
    device: torch.device,
    dtype: torch.dtype | None,
    resize: ResizeMode,
    antialias: bool,
    truncate: bool,
) -> OpenCLIPModel:
    """Load an ``open_clip`` model, its tokenizer and its preprocessing.

    Args:
        name: ``open_clip:ARCH/TAG``, ``open_clip:ARCH`` (with ``checkpoint``),
            ``[open_clip:]hf-hub:ORG/REPO`` or ``open_clip:local-dir:PATH``.
        checkpoint: a local checkpoint file for ``open_clip:ARCH``.
        device: where the model runs.
        dtype: weight dtype (default: ``float32``).
        resize: resize mode of the preprocessing.
        antialias: antialiased (PIL-like) resize, or the VLM-RM reference's plain bicubic.
        truncate: truncate over-long prompts instead of raising.

    Raises:
        ModelNotFoundError: unknown architecture or tag, no tag and no checkpoint, or a missing
            checkpoint file.
        ModelNotAvailableError: not cached and the hub unreachable.
    """
    ensure_torchvision_importable()
    import open_clip

    spec = name.removeprefix(PREFIX)
    if spec.startswith(("hf-hub:", "local-dir:")):
        if checkpoint is not None:
            raise ModelNotFoundError(f"{name!r} brings its own weights; drop checkpoint= or name an architecture.")
        model_name, pretrained = spec, None
    else:
        arch, _, tag = spec.partition("/")
        _check_architecture(arch, open_clip)
        if checkpoint is not None:
            if tag:
                raise ModelNotFoundError(f"give either a pretrained tag ({name!r}) or checkpoint=, not both.")
            if not os.path.isfile(checkpoint):
                raise ModelNotFoundError(f"checkpoint file {os.fspath(checkpoint)!r} does not exist.")
            pretrained = os.fspath(checkpoint)
        elif tag:
            _check_tag(arch, tag, open_clip)
            pretrained = tag
        else:
            raise ModelNotFoundError(
                f"{name!r} names an architecture without weights (a reward from random weights is noise): "
                f"add a pretrained tag, e.g. '{PREFIX}{arch}/{_first_tag(arch, open_clip)}', or pass checkpoint=PATH."
            )
        model_name = arch

    hint = f"load_model('{PREFIX}ARCH', checkpoint='/path/to/weights.safetensors') or '{PREFIX}local-dir:/path/to/dir'"
    with hub_context(name, hint):
        model = open_clip.create_model(
            model_name, pretrained=pretrained, device=device, require_pretrained=True, pretrained_text=False
        )
        tokenizer = open_clip.get_tokenizer(model_name)
    model = model.to(device=device, dtype=dtype or torch.float32).eval()
    cfg = open_clip.get_model_preprocess_cfg(model)
    size = cfg.get("size", 224)
    return OpenCLIPModel(
        model,
        tokenizer,
        name=name,
        embed_dim=_embed_dim(model),
        context_length=int(getattr(tokenizer, "context_length", None) or model.context_length),
        preprocess_config=PreprocessConfig(
            image_size=int(size if isinstance(size, int) else size[0]),
            mean=tuple(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)),
            std=tuple(cfg.get("std", open_clip.OPENAI_DATASET_STD)),
            interpolation=cfg.get("interpolation", "bicubic"),
            resize=resize,
            antialias=antialias,
            crop_rounding="round",  # torchvision's CenterCrop
        ),
        device=device,
        dtype=dtype or torch.float32,
        truncate=truncate,
    )


def _embed_dim(model) -> int:
    projection = getattr(model, "text_projection", None)
    if isinstance(projection, torch.nn.Linear):
        return projection.out_features
    if isinstance(projection, torch.Tensor):
        return projection.shape[-1]
    return int(model.visual.output_dim)


def _first_tag(arch: str, open_clip) -> str:
    tags = open_clip.list_pretrained_tags_by_model(arch)
    return tags[0] if tags else "TAG"
