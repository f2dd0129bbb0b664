"""A ViT-B/32-sized random-weight CLIP, saved as a real checkpoint directory, for the benchmarks.

Speed does not depend on the weights' values, so where ``openai/clip-vit-base-patch32`` is not
available the benchmarks build ``CLIPModel(CLIPConfig())`` (Hugging Face's defaults are the
ViT-B/32 architecture: vision width 768, 12 layers, patch 32, 224 px; text width 512, 12 layers;
projection 512), save it with ``save_pretrained`` next to CLIP's real tokenizer files and image
processor, and load it through :func:`vlmreward.load_model`, the code path of a real checkpoint.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from vlmreward.models.testing import write_clip_bpe_tokenizer_files

__all__ = ["vit_b32_directory"]

_DEFAULT_DIR = Path(tempfile.gettempdir()) / "vlmreward-bench-vit-b32"


def vit_b32_directory(directory: str | os.PathLike | None = None) -> Path:
    """A ``save_pretrained`` directory of a random-weight ViT-B/32 ``CLIPModel`` (built once, reused).

    Args:
        directory: where to write it (default: ``$TMPDIR/vlmreward-bench-vit-b32``).

    Returns:
        The directory, loadable with ``vlmreward.load_model(path)`` and ``CLIPModel.from_pretrained``.
    """
    import torch

    from vlmreward.models._compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

    path = Path(directory) if directory is not None else _DEFAULT_DIR
    if (path / "config.json").is_file() and (path / "preprocessor_config.json").is_file():
        return path
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    CLIPModel(CLIPConfig()).eval().save_pretrained(path)
    with tempfile.TemporaryDirectory() as build:
        vocab_file, merges_file = write_clip_bpe_tokenizer_files(Path(build))
        CLIPTokenizer(str(vocab_file), str(merges_file)).save_pretrained(path)
    CLIPImageProcessorPil().save_pretrained(path)  # CLIP's defaults: shortest edge 224, centre crop, bicubic
    return path
