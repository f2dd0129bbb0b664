"""Loading through ``load_model`` from every kind of name, embeddings, prompts and load errors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import vlmreward
from vlmreward.errors import (
    InvalidParameterError,
    ModelNotAvailableError,
    ModelNotFoundError,
    PromptError,
    PromptTooLongError,
)
from vlmreward.models.hf import HFModel
from vlmreward.models.openclip import OpenCLIPModel

PROMPTS = ["a pole vertically upright on top of a cart", "a cart", "a pole lying flat"]


@pytest.fixture(scope="module")
def models(tiny_hf_clip, tiny_hf_siglip, tiny_open_clip, hub_cached_hf_clip, hub_cached_open_clip, tmp_path_factory):
    """Every way to name a model, loaded through load_model."""
    arch, checkpoint = tiny_open_clip
    local_dir = tmp_path_factory.mktemp("open-clip-local-dir")
    hub_snapshot = os.path.join(os.environ["HF_HUB_CACHE"], "models--vlmreward-test--tiny-open-clip", "snapshots")
    for name in ("open_clip_config.json", "open_clip_model.safetensors"):
        snapshot = os.path.join(hub_snapshot, os.listdir(hub_snapshot)[0])
        os.symlink(os.path.join(snapshot, name), local_dir / name)
    return {
        "hf clip directory": vlmreward.load_model(tiny_hf_clip),
        "hf siglip directory": vlmreward.load_model(tiny_hf_siglip),
        "hf hub id (cached)": vlmreward.load_model(hub_cached_hf_clip),
        "open_clip arch + checkpoint": vlmreward.load_model(f"open_clip:{arch}", checkpoint=checkpoint),
        "open_clip hf-hub (cached)": vlmreward.load_model(hub_cached_open_clip),
        "open_clip local directory": vlmreward.load_model(local_dir),
    }


def test_every_name_loads_the_right_backend(models):
    expected = {
        "hf clip directory": (HFModel, 16, 77),
        "hf siglip directory": (HFModel, 32, 64),
        "hf hub id (cached)": (HFModel, 16, 77),
        "open_clip arch + checkpoint": (OpenCLIPModel, 16, 77),
        "open_clip hf-hub (cached)": (OpenCLIPModel, 16, 77),
        "open_clip local directory": (OpenCLIPModel, 16, 77),
    }
    for key, model in models.items():
        cls, dim, context = expected[key]
        assert isinstance(model, cls), key
        assert (model.embed_dim, model.context_length, model.image_size) == (dim, context, 224), key
        assert model.resize == "squash" and model.device == torch.device("cpu") and model.dtype == torch.float32


def test_hub_cache_copies_give_the_same_embeddings(models, cartpole_frames):
    """The same weights reached by directory and by hub id (resp. checkpoint, hf-hub, local-dir) agree."""
    for a, b in [
        ("hf clip directory", "hf hub id (cached)"),
        ("open_clip arch + checkpoint", "open_clip hf-hub (cached)"),
        ("open_clip arch + checkpoint", "open_clip local directory"),
    ]:
        torch.testing.assert_close(models[a].encode_images(cartpole_frames[:2]), models[b].encode_images(cartpole_frames[:2]))
        torch.testing.assert_close(models[a].encode_text(PROMPTS), models[b].encode_text(PROMPTS))


def test_embeddings_are_unit_float32_and_batch_independent(models, cartpole_frames):
    for key, model in models.items():
        images = model.encode_images(cartpole_frames)
        assert images.shape == (len(cartpole_frames), model.embed_dim) and images.dtype == torch.float32, key
        torch.testing.assert_close(images.norm(dim=-1), torch.ones(len(cartpole_frames)))
        torch.testing.assert_close(model.encode_images(cartpole_frames, batch_size=5), images, atol=1e-5, rtol=0)
        texts = model.encode_text(PROMPTS)
        assert texts.shape == (3, model.embed_dim) and texts.dtype == torch.float32, key
        torch.testing.assert_close(texts.norm(dim=-1), torch.ones(3))
        assert not torch.allclose(texts[0], texts[1]), key  # different prompts, different embeddings


def test_text_embeddings_match_the_library_and_are_cached(tiny_hf_clip):
    from transformers import CLIPModel, CLIPTokenizer

    model = vlmreward.load_model(tiny_hf_clip)
    reference_model = CLIPModel.from_pretrained(tiny_hf_clip).eval()
    tokens = CLIPTokenizer.from_pretrained(tiny_hf_clip)(PROMPTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        reference = reference_model.get_text_features(**tokens).pooler_output
    reference = torch.nn.functional.normalize(reference, dim=-1)
    calls = []
    original = model._embed_prompts
    model._embed_prompts = lambda prompts: calls.append(list(prompts)) or original(prompts)
    torch.testing.assert_close(model.encode_text(PROMPTS), reference, atol=1e-5, rtol=0)
    again = model.encode_text([PROMPTS[2], PROMPTS[0], PROMPTS[2]])
    torch.testing.assert_close(again, reference[[2, 0, 2]], atol=1e-5, rtol=0)
    assert calls == [PROMPTS]  # the second call was served from the cache
    assert model.encode_text(PROMPTS[1]).shape == (1, model.embed_dim)


def test_siglip_text_is_padded_to_max_length(tiny_hf_siglip):
    """SigLIP's text tower was trained on max-length padding; the embedding must use it."""
    from transformers import SiglipModel, SiglipTokenizer

    model = vlmreward.load_model(tiny_hf_siglip)
    reference_model = SiglipModel.from_pretrained(tiny_hf_siglip).eval()
    tokens = SiglipTokenizer.from_pretrained(tiny_hf_siglip)(PROMPTS, padding="max_length", max_length=64, return_tensors="pt")
    with torch.no_grad():
        reference = torch.nn.functional.normalize(reference_model.get_text_features(**tokens).pooler_output, dim=-1)
    torch.testing.assert_close(model.encode_text(PROMPTS), reference, atol=1e-5, rtol=0)


def test_open_clip_embeddings_match_the_library(tiny_open_clip, cartpole_frames):
    import open_clip
    from PIL import Image

    arch, checkpoint = tiny_open_clip
    model = vlmreward.load_model(f"open_clip:{arch}", checkpoint=checkpoint, resize="crop")
    reference_model, _, library_preprocess = open_clip.create_model_and_transforms(arch, pretrained=str(checkpoint))
    tokenizer = open_clip.get_tokenizer(arch)
    with torch.no_grad():
        text = torch.nn.functional.normalize(reference_model.eval().encode_text(tokenizer(PROMPTS)), dim=-1)
        pixels = torch.stack([library_preprocess(Image.fromarray(f)) for f in cartpole_frames[:4]])
        image = torch.nn.functional.normalize(reference_model.encode_image(pixels), dim=-1)
    torch.testing.assert_close(model.encode_text(PROMPTS), text, atol=1e-5, rtol=0)
    assert (model.encode_images(cartpole_frames[:4]) * image).sum(-1).min() >= 0.999


@pytest.mark.parametrize("prompt", ["", "   ", "\n"])
def test_empty_prompt_is_rejected(hf_clip_model, prompt):
    with pytest.raises(PromptError, match="empty"):
        hf_clip_model.encode_text([prompt])


def test_prompt_longer_than_the_context_is_rejected_unless_truncating(tiny_hf_clip, tiny_open_clip):
    long_prompt = " ".join(["a humanoid robot kneeling on the floor"] * 15)  # about 90 tokens
    arch, checkpoint = tiny_open_clip
    for name, kwargs in ((tiny_hf_clip, {}), (f"open_clip:{arch}", {"checkpoint": checkpoint})):
        strict = vlmreward.load_model(name, **kwargs)
        assert strict.count_tokens(long_prompt) > 77
        assert strict.count_tokens("a cart") == 4  # start, "a", "cart", end
        with pytest.raises(PromptTooLongError, match="77"):
            strict.encode_text([long_prompt])
        lenient = vlmreward.load_model(name, truncate=True, **kwargs)
        embedding = lenient.encode_text([long_prompt])
        assert embedding.shape == (1, lenient.embed_dim) and torch.isfinite(embedding).all()


def test_bfloat16_weights_give_float32_embeddings_close_to_float32(tiny_hf_clip, cartpole_frames):
    full = vlmreward.load_model(tiny_hf_clip)
    half = vlmreward.load_model(tiny_hf_clip, dtype="bf16")
    assert half.dtype == torch.bfloat16 and next(half.model.parameters()).dtype == torch.bfloat16
    images = half.encode_images(cartpole_frames[:4])
    assert images.dtype == torch.float32
    assert (images * full.encode_images(cartpole_frames[:4])).sum(-1).min() > 0.98
    with pytest.raises(InvalidParameterError, match="dtype"):
        vlmreward.load_model(tiny_hf_clip, dtype="int8")


@pytest.mark.parametrize(
    "name, kwargs, error, message",
    [
        ("open_clip:ViT-B-33/openai", {}, ModelNotFoundError, "ViT-B-32"),  # suggests the close match
        ("open_clip:ViT-B-32/no-such-tag", {}, ModelNotFoundError, "laion2b_s34b_b79k"),  # lists real tags
        ("open_clip:ViT-B-32", {}, ModelNotFoundError, "pretrained tag"),  # no weights at all
        ("open_clip:ViT-B-32", {"checkpoint": "/nonexistent/weights.pt"}, ModelNotFoundError, "does not exist"),
        ("./no/such/directory", {}, ModelNotFoundError, "does not exist"),
        ("", {}, ModelNotFoundError, "no model name"),
    ],
)
def test_unknown_models_are_rejected_clearly(name, kwargs, error, message):
    with pytest.raises(error, match=message):
        vlmreward.load_model(name, **kwargs)


def test_checkpoint_file_without_architecture_is_rejected(tiny_open_clip, tiny_hf_clip):
    _, checkpoint = tiny_open_clip
    with pytest.raises(ModelNotFoundError, match="open_clip:ARCH"):
        vlmreward.load_model(checkpoint)
    with pytest.raises(ModelNotFoundError, match="checkpoint="):
        vlmreward.load_model(tiny_hf_clip, checkpoint=checkpoint)


def test_unknown_resize_mode_is_rejected(tiny_hf_clip):
    with pytest.raises(InvalidParameterError, match="resize"):
        vlmreward.load_model(tiny_hf_clip, resize="stretch")


@pytest.mark.parametrize(
    "name", ["openai/clip-vit-base-patch32", "open_clip:ViT-B-32/laion2b_s34b_b79k", "hf-hub:timm/ViT-B-16-SigLIP"]
)
def test_uncached_model_with_unreachable_hub_names_the_model_and_the_way_out(name):
    """The conftest points the hub at a closed local port: not cached → an error at once, no retries."""
    with pytest.raises(ModelNotAvailableError) as info:
        vlmreward.load_model(name)
    message = str(info.value)
    assert name in message and "cannot be reached" in message and "local copy" in message


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_offline_mode_is_respected_in_a_fresh_process(tmp_path, variable):
    """With the real default endpoint but offline mode set, nothing is contacted and the error is clear."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_ENDPOINT", "HF_HUB_OFFLINE")}
    env.update({variable: "1", "HF_HOME": str(tmp_path)})
    script = (
        "import vlmreward\n"
        "try:\n"
        "    vlmreward.load_model('openai/clip-vit-base-patch32')\n"
        "except vlmreward.VLMRewardError as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("ModelNotAvailableError"), result.stderr
    assert "HF_HUB_OFFLINE is set" in result.stdout and "openai/clip-vit-base-patch32" in result.stdout


def test_repr_names_the_model(hf_clip_model):
    text = repr(hf_clip_model)
    assert "HFModel" in text and "embed_dim=16" in text and "resize='squash'" in text


def test_embeddings_on_real_frames_differ_between_frames(hf_clip_model, cartpole_frames):
    """Different frames give different embeddings (the model looks at the pixels)."""
    images = hf_clip_model.encode_images(cartpole_frames[[0, -1]]).numpy()
    assert not np.allclose(images[0], images[1], atol=1e-6)


@pytest.mark.parametrize(
    "damage",
    ["no_config", "invalid_config", "no_weights", "empty_weights", "truncated_weights", "no_preprocessor",
     "mismatched_shapes"],
)
def test_a_broken_model_directory_is_one_clear_error(tiny_hf_clip, tmp_path, damage):
    """Each way a save_pretrained() directory can be broken: ModelNotFoundError naming the directory
    and what a model directory needs, never a traceback from transformers or safetensors."""
    import json
    import shutil

    from vlmreward.errors import ModelNotFoundError

    broken = tmp_path / "model"
    shutil.copytree(tiny_hf_clip, broken)
    weights = broken / "model.safetensors"
    if damage == "no_config":
        (broken / "config.json").unlink()
    elif damage == "invalid_config":
        (broken / "config.json").write_text("{not json", encoding="utf-8")
    elif damage == "no_weights":
        weights.unlink()
    elif damage == "empty_weights":
        weights.write_bytes(b"")
    elif damage == "truncated_weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "no_preprocessor":
        (broken / "preprocessor_config.json").unlink()
    else:
        config = json.loads((broken / "config.json").read_text(encoding="utf-8"))
        config["projection_dim"] = config["projection_dim"] * 2
        (broken / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelNotFoundError, match=r"cannot load the model in .*model.*; a model directory needs config.json"):
        vlmreward.load_model(broken)
