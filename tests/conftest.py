"""Session fixtures: tiny random-weight models of the real architectures, saved in each library's
own format, and real rendered gymnasium frames.

No pretrained weights can be downloaded in CI, so the tests build models with 2 layers of width
32 (CLIP ViT-B/32 and SigLIP layouts, the real tokenizers' formats), save them the way the
libraries save real checkpoints (``save_pretrained`` directories, open_clip checkpoint files,
the Hugging Face hub cache layout) and load them through :func:`vlmreward.load_model`, which is
the same code path a real model takes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

# Before anything imports huggingface_hub: a private cache, and a hub endpoint that refuses
# connections at once, so no test can reach (or wait for) the network.
_HF_HOME = tempfile.mkdtemp(prefix="vlmreward-hf-home-")
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_HUB_CACHE"] = os.path.join(_HF_HOME, "hub")
os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"
os.environ.pop("HF_HUB_OFFLINE", None)
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vlmreward.models._compat import ensure_torchvision_importable  # noqa: E402
from vlmreward.models.testing import render_cartpole_frames, write_tiny_clip, write_tiny_xclip  # noqa: E402

ensure_torchvision_importable()

TINY_OPEN_CLIP_ARCH = "vlmreward-tiny-ViT-B-32"
"""open_clip architecture registered by the fixtures: ViT-B/32 layout, 2 layers of width 32."""

HUB_REVISION = "0123456789abcdef0123456789abcdef01234567"


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001
    shutil.rmtree(_HF_HOME, ignore_errors=True)


@pytest.fixture(autouse=True)
def _run_in_tmp_path(tmp_path, monkeypatch):
    """Every test runs in its own temporary working directory, so that what a command writes
    relative to it (``scores/``, ``runs/``, ``evaluations/``) never meets the README's outputs, an
    earlier test's, or a test running beside it (pytest-xdist). A test that needs the repository
    root says so with ``monkeypatch.chdir(REPO)``."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def tiny_hf_clip(tmp_path_factory) -> Path:
    """A ``save_pretrained`` directory of a random 2-layer ``CLIPModel`` with CLIP's tokenizer and
    processor (:func:`vlmreward.models.testing.write_tiny_clip`)."""
    return write_tiny_clip(tmp_path_factory.mktemp("tiny-hf-clip"))


@pytest.fixture(scope="session")
def tiny_xclip(tmp_path_factory) -> Path:
    """A ``save_pretrained`` directory of a random 2-layer ``XCLIPModel`` (8 frames) with CLIP's tokenizer
    and processor (:func:`vlmreward.models.testing.write_tiny_xclip`)."""
    return write_tiny_xclip(tmp_path_factory.mktemp("tiny-xclip"))


@pytest.fixture(scope="session")
def tiny_hf_siglip(tmp_path_factory) -> Path:
    """A ``save_pretrained`` directory of a random 2-layer ``SiglipModel`` with a SentencePiece tokenizer."""
    import sentencepiece as spm
    from transformers import SiglipConfig, SiglipImageProcessorPil, SiglipModel, SiglipTokenizer

    directory = tmp_path_factory.mktemp("tiny-hf-siglip")
    build = tmp_path_factory.mktemp("siglip-spm")
    corpus = build / "corpus.txt"
    words = "a the photo of robot humanoid kneeling standing cart pole upright car mountain flag red blue green ball box key"
    corpus.write_text("\n".join(" ".join(np.random.default_rng(i).permutation(words.split())) for i in range(200)))
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(build / "spiece"), vocab_size=64, model_type="unigram", hard_vocab_limit=False,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
        minloglevel=2,
    )
    tokenizer = SiglipTokenizer(vocab_file=str(build / "spiece.model"), model_max_length=64)
    torch.manual_seed(1)
    config = SiglipConfig(
        text_config=dict(
            vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=1,
        ),
        vision_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            image_size=224, patch_size=32,
        ),
    )
    SiglipModel(config).eval().save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    SiglipImageProcessorPil().save_pretrained(directory)  # SigLIP's defaults: 224 × 224, bicubic
    return directory


@pytest.fixture(scope="session")
def tiny_open_clip(tmp_path_factory) -> tuple[str, Path]:
    """``(architecture, checkpoint)``: a registered tiny ViT-B/32-layout open_clip model and its weights file."""
    import open_clip
    from safetensors.torch import save_file

    directory = tmp_path_factory.mktemp("tiny-open-clip")
    config_file = directory / f"{TINY_OPEN_CLIP_ARCH}.json"
    config_file.write_text(json.dumps(_TINY_OPEN_CLIP_CONFIG))
    open_clip.add_model_config(config_file)
    torch.manual_seed(2)
    model = open_clip.create_model(TINY_OPEN_CLIP_ARCH, pretrained=None)
    checkpoint = directory / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(checkpoint))
    return TINY_OPEN_CLIP_ARCH, checkpoint


_TINY_OPEN_CLIP_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 32, "head_width": 16, "patch_size": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def add_to_hub_cache(repo_id: str, files: dict[str, Path]) -> Path:
    """Place files in the Hugging Face hub cache layout, as a download of ``repo_id`` leaves them.

    ``models--ORG--NAME/snapshots/REVISION/FILE`` plus ``refs/main``; returns the snapshot folder.
    """
    repo = Path(os.environ["HF_HUB_CACHE"]) / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / HUB_REVISION
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        shutil.copy(source, snapshot / name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(HUB_REVISION)
    return snapshot


@pytest.fixture(scope="session")
def hub_cached_hf_clip(tiny_hf_clip) -> str:
    """Hub id of the tiny transformers CLIP, present in the hub cache only (the hub is unreachable)."""
    repo_id = "vlmreward-test/tiny-clip"
    add_to_hub_cache(repo_id, {p.name: p for p in tiny_hf_clip.iterdir()})
    return repo_id


@pytest.fixture(scope="session")
def hub_cached_open_clip(tiny_open_clip, tmp_path_factory) -> str:
    """``hf-hub:`` id of the tiny open_clip model in open_clip's hub format, in the hub cache only."""
    _, checkpoint = tiny_open_clip
    build = tmp_path_factory.mktemp("open-clip-hub")
    config = build / "open_clip_config.json"
    config.write_text(
        json.dumps(
            {
                "model_cfg": _TINY_OPEN_CLIP_CONFIG,
                "preprocess_cfg": {
                    "mean": [0.48145466, 0.4578275, 0.40821073],
                    "std": [0.26862954, 0.26130258, 0.27577711],
                    "interpolation": "bicubic",
                    "resize_mode": "shortest",
                },
            }
        )
    )
    repo_id = "vlmreward-test/tiny-open-clip"
    add_to_hub_cache(repo_id, {"open_clip_config.json": config, "open_clip_model.safetensors": checkpoint})
    return f"hf-hub:{repo_id}"


@pytest.fixture(scope="session")
def cartpole_frames() -> np.ndarray:
    """``uint8 [12, 400, 600, 3]``: :func:`vlmreward.models.testing.render_cartpole_frames`."""
    return render_cartpole_frames(12)


@pytest.fixture
def train_cli():
    """The ``train`` and ``evaluate-policy`` commands as :mod:`vlmreward.cli.main` registers them, but
    without its error handler: a user error surfaces as the exception itself in ``result.exception``."""
    import typer

    from vlmreward.cli.train import evaluate_policy, train

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command("train")(train)
    app.command("evaluate-policy")(evaluate_policy)
    return app


@pytest.fixture
def one_torch_thread():
    """PyTorch on one thread for the test: the tiny CLIP and the MLP policies run fastest so; on a
    busy CI machine OpenMP's spinning threads make them 20-50 times slower (measured: 3 ms vs
    66-148 ms a batch)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def hf_clip_model(tiny_hf_clip):
    """The tiny transformers CLIP loaded through ``load_model`` (default resize)."""
    import vlmreward

    return vlmreward.load_model(tiny_hf_clip)


@pytest.fixture()
def unit_vectors():
    """``make(n, d, seed)``: ``float32 [n, d]`` random unit vectors."""

    def make(n: int, d: int, seed: int = 0) -> np.ndarray:
        v = np.random.default_rng(seed).standard_normal((n, d))
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    return make


def signal_when(command: list[str], ready, signum: int, log, timeout: float = 180, delay: float = 0.0,  # noqa: ANN001
                env: dict | None = None) -> int:
    """Run ``command`` (stderr into the open file ``log``: a file, not a pipe, which could stall
    the child), wait until ``ready()`` holds, ``delay`` seconds more, send ``signum``, and return the
    exit code. The process is killed if anything fails on the way.

    Raises:
        AssertionError: the process ended, or ``ready()`` never held within ``timeout`` seconds.
    """
    import subprocess
    import time

    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    try:
        deadline = time.monotonic() + timeout
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, f"the process ended (exit {proc.returncode}) before it could be signalled"
        assert ready(), f"not ready within {timeout} s"
        time.sleep(delay)
        proc.send_signal(signum)
        return proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
