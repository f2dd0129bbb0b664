"""Helpers to build random-weight models of the real architectures (tests, benchmarks, demos).

No pretrained weights are needed to exercise the loading code: a model with random weights,
saved in its library's own format next to the real tokenizer files, loads through
:func:`vlmreward.load_model` exactly as a downloaded checkpoint does.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

__all__ = ["write_clip_bpe_tokenizer_files"]


def write_clip_bpe_tokenizer_files(directory: Path) -> tuple[Path, Path]:
    """CLIP's real BPE vocabulary, rebuilt from the merges file open_clip ships.

    Returns ``(vocab.json, merges.txt)`` in ``directory`` as ``CLIPTokenizer`` reads them; the
    construction is open_clip's ``SimpleTokenizer.__init__`` (bytes, bytes + ``</w>``, merges,
    special tokens), 49408 tokens in all.
    """
    from vlmreward.models._compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    import open_clip.tokenizer as oct

    with gzip.open(oct.default_bpe(), "rt", encoding="utf-8") as f:
        merges = f.read().split("\n")[1 : 49152 - 256 - 2 + 1]
    byte_chars = list(oct.bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    directory = Path(directory)
    vocab_file, merges_file = directory / "vocab.json", directory / "merges.txt"
    vocab_file.write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}), encoding="utf-8")
    merges_file.write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return vocab_file, merges_file
