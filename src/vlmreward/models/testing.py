"""Helpers for tests, benchmarks and demos: random-weight models of the real architectures, and
rendered frames to score.

No pretrained weights are needed to exercise the loading code: a model with random weights,
saved in its library's own format next to the real tokenizer files, loads through
:func:`vlmreward.load_model` exactly as a downloaded checkpoint does.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["write_clip_bpe_tokenizer_files", "write_clip_family_model", "write_tiny_clip", "write_tiny_xclip", "render_cartpole_frames"]


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


_TINY_TEXT = dict(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  max_position_embeddings=77)
_TINY_VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=224, patch_size=32)


def write_clip_family_model(directory: str | Path, build_model) -> Path:  # noqa: ANN001
    """Save ``build_model()`` (called after ``torch.manual_seed(0)``) with CLIP's real tokenizer and
    image processor to ``directory``: what every CLIP-family test and benchmark model shares.

    Returns:
        ``directory``.
    """
    import torch

    from vlmreward.models._compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    from transformers import CLIPImageProcessorPil, CLIPTokenizer

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    build_model().eval().save_pretrained(directory)
    with tempfile.TemporaryDirectory(prefix="vlmreward-clip-bpe-") as build:
        vocab_file, merges_file = write_clip_bpe_tokenizer_files(Path(build))
        CLIPTokenizer(str(vocab_file), str(merges_file)).save_pretrained(directory)
    CLIPImageProcessorPil().save_pretrained(directory)  # CLIP's defaults (X-CLIP's too): shortest edge 224, crop, bicubic
    return directory


def write_tiny_clip(directory: str | Path) -> Path:
    """Save the test suite's tiny random CLIP to ``directory`` (a ``save_pretrained`` directory).

    CLIP ViT-B/32's layout (224 px, patch 32) and CLIP's real tokenizer and image processor, but
    2 layers of width 32 and random weights (seed 0): every code path runs in seconds on a CPU,
    while its rewards mean nothing.

    Returns:
        ``directory``.
    """
    from vlmreward.models._compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    from transformers import CLIPConfig, CLIPModel

    config = CLIPConfig(text_config=_TINY_TEXT, vision_config=_TINY_VISION, projection_dim=16)
    return write_clip_family_model(directory, lambda: CLIPModel(config))


def write_tiny_xclip(directory: str | Path, num_frames: int = 8) -> Path:
    """Save a tiny random X-CLIP to ``directory`` (a ``save_pretrained`` directory).

    ``microsoft/xclip-base-patch32``'s layout (224 px, patch 32, ``num_frames`` frames, the
    multi-frame integration transformer and the video-specific prompt generator), CLIP's real
    tokenizer and image processor, but 2 layers of width 32 and random weights (seed 0).

    Returns:
        ``directory``.
    """
    from vlmreward.models._compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    from transformers import XCLIPConfig, XCLIPModel

    vision = dict(_TINY_VISION, num_frames=num_frames, mit_hidden_size=16, mit_intermediate_size=32,
                  mit_num_hidden_layers=1, mit_num_attention_heads=2)
    config = XCLIPConfig(text_config=_TINY_TEXT, vision_config=vision, projection_dim=16, prompt_layers=1,
                         prompt_num_attention_heads=2)
    return write_clip_family_model(directory, lambda: XCLIPModel(config))


def render_cartpole_frames(n: int, seed: int = 0) -> np.ndarray:
    """``uint8 [n, 400, 600, 3]``: frames rendered by gymnasium's CartPole-v1 (``rgb_array``) under
    random actions (seeded), resetting when an episode ends."""
    import gymnasium as gym

    env = gym.make("CartPole-v1", render_mode="rgb_array")
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        frames.append(env.render())
        _, _, terminated, truncated, _ = env.step(int(rng.integers(2)))
        if terminated or truncated:
            env.reset()
    env.close()
    return np.stack(frames)
