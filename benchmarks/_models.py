"""A ViT-B/32-sized random-weight CLIP, saved as a real checkpoint directory, for the benchmarks.

Speed does not depend on the weights' values, so where ``openai/clip-vit-base-patch32`` is not
available the benchmarks build ``CLIPModel(CLIPConfig())`` (Hugging Face's defaults are the
ViT-B/32 architecture: vision width 768, 12 layers, patch 32, 224 px; text width 512, 12 layers;
projection 512), save it with ``save_pretrained`` next to CLIP's real tokenizer files and image
processor, and load it through :func:`vlmreward.load_model`, the code path of a real checkpoint.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path

__all__ = ["vit_b32_directory", "write_clip_bpe_tokenizer_files"]

_DEFAULT_DIR = Path(tempfile.gettempdir()) / "vlmreward-bench-vit-b32"


def write_clip_bpe_tokenizer_files(directory: Path) -> tuple[Path, Path]:
    """CLIP's real BPE vocabulary, rebuilt from the merges file open_clip ships.

    Returns ``(vocab.json, merges.txt)`` as ``CLIPTokenizer`` reads them (a copy of the test
    fixture's function, kept here so the benchmarks do not import the test suite).
    """
    import open_clip.tokenizer as oct

    with gzip.open(oct.default_bpe(), "rt", encoding="utf-8") as f:
        merges = f.read().split("\n")[1 : 49152 - 256 - 2 + 1]
    byte_chars = list(oct.bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    vocab_file, merges_file = directory / "vocab.json", directory / "merges.txt"
    vocab_file.write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}), encoding="utf-8")
    merges_file.write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return vocab_file, merges_file


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
