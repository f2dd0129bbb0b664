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

from vlmreward.models.testing import write_clip_family_model

__all__ = ["vit_b32_directory", "xclip_base_directory"]

_DEFAULT_DIR = Path(tempfile.gettempdir()) / "vlmreward-bench-vit-b32"


def vit_b32_directory(directory: str | os.PathLike | None = None) -> Path:
    """A ``save_pretrained`` directory of a random-weight ViT-B/32 ``CLIPModel`` (built once, reused).

    Args:
        directory: where to write it (default: ``$TMPDIR/vlmreward-bench-vit-b32``).

    Returns:
        The directory, loadable with ``vlmreward.load_model(path)`` and ``CLIPModel.from_pretrained``.
    """
    from vlmreward.models._compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    from transformers import CLIPConfig, CLIPModel

    path = Path(directory) if directory is not None else _DEFAULT_DIR
    if (path / "config.json").is_file() and (path / "preprocessor_config.json").is_file():
        return path
    return write_clip_family_model(path, lambda: CLIPModel(CLIPConfig()))


def xclip_base_directory(directory: str | os.PathLike | None = None) -> Path:
    """A ``save_pretrained`` directory of a random-weight X-CLIP base/32 (``XCLIPConfig()``: ViT-B/32,
    8 frames; built once, reused) with CLIP's tokenizer and image processor."""
    from vlmreward.models._compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    from transformers import XCLIPConfig, XCLIPModel

    path = Path(directory) if directory is not None else Path(tempfile.gettempdir()) / "vlmreward-bench-xclip-base"
    if (path / "config.json").is_file() and (path / "preprocessor_config.json").is_file():
        return path
    return write_clip_family_model(path, lambda: XCLIPModel(XCLIPConfig()))
