"""Batched preprocessing against the libraries' own per-image preprocessing, on real frames.

Bound used throughout: our pixels differ from the library's by at most one grey level (1/255
before normalisation), the rounding of PIL's uint8 intermediate between its two separable
passes; the embeddings of both agree to cosine ≥ 0.999.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import vlmreward
from vlmreward.errors import InvalidFramesError, InvalidParameterError
from vlmreward.models.preprocess import PreprocessConfig, _resize_float, as_frame_batch, preprocess

ONE_GREY_LEVEL = 1.0 / 255.0 + 1e-6


def grey_levels(ours: torch.Tensor, reference: torch.Tensor, config: PreprocessConfig) -> torch.Tensor:
    """|difference| of two normalised batches, back in [0, 1] pixel units."""
    std = torch.tensor(config.std).view(1, 3, 1, 1)
    return ((ours.float() - reference.float()) * std).abs()


def assert_equivalent(model, frames: np.ndarray, reference: torch.Tensor) -> None:
    ours = model.preprocess(frames)
    assert ours.shape == reference.shape == (len(frames), 3, model.image_size, model.image_size)
    diff = grey_levels(ours, reference, model.preprocess_config)
    assert diff.max().item() <= ONE_GREY_LEVEL
    assert diff.mean().item() < 0.002 / 255.0  # nearly every pixel identical
    with torch.no_grad():
        theirs = torch.nn.functional.normalize(model._embed_pixels(reference).float(), dim=-1)
    cosine = (theirs * model.encode_images(frames)).sum(-1)
    assert cosine.min().item() >= 0.999


@pytest.mark.parametrize("orientation", ["wide", "tall"])
def test_hf_clip_crop_matches_clip_image_processor(tiny_hf_clip, cartpole_frames, orientation):
    from transformers import CLIPImageProcessorPil

    frames = cartpole_frames if orientation == "wide" else np.ascontiguousarray(cartpole_frames.transpose(0, 2, 1, 3))
    model = vlmreward.load_model(tiny_hf_clip, resize="crop")
    processor = CLIPImageProcessorPil.from_pretrained(tiny_hf_clip)
    reference = processor(images=[Image.fromarray(f) for f in frames], return_tensors="pt")["pixel_values"]
    assert_equivalent(model, frames, reference)


def test_hf_siglip_squash_matches_siglip_image_processor(tiny_hf_siglip, cartpole_frames):
    from transformers import SiglipImageProcessorPil

    model = vlmreward.load_model(tiny_hf_siglip, resize="squash")  # SigLIP's own processor squashes
    processor = SiglipImageProcessorPil.from_pretrained(tiny_hf_siglip)
    reference = processor(images=[Image.fromarray(f) for f in cartpole_frames], return_tensors="pt")["pixel_values"]
    assert_equivalent(model, cartpole_frames, reference)


def test_open_clip_crop_matches_open_clip_preprocess(tiny_open_clip, cartpole_frames):
    import open_clip

    arch, checkpoint = tiny_open_clip
    model = vlmreward.load_model(f"open_clip:{arch}", checkpoint=checkpoint, resize="crop")
    _, _, library_preprocess = open_clip.create_model_and_transforms(arch, pretrained=str(checkpoint))
    reference = torch.stack([library_preprocess(Image.fromarray(f)) for f in cartpole_frames])
    assert_equivalent(model, cartpole_frames, reference)


def test_odd_crop_offset_follows_each_library(tiny_hf_clip, tiny_open_clip, cartpole_frames):
    """A 224 × 227 frame is only cropped: 3 excess columns start at 1 (HF floor) or 2 (torchvision round)."""
    import open_clip
    from transformers import CLIPImageProcessorPil

    frames = np.ascontiguousarray(cartpole_frames[:2, :224, :227])
    hf = vlmreward.load_model(tiny_hf_clip, resize="crop")
    hf_reference = CLIPImageProcessorPil.from_pretrained(tiny_hf_clip)(
        images=[Image.fromarray(f) for f in frames], return_tensors="pt"
    )["pixel_values"]
    torch.testing.assert_close(hf.preprocess(frames), hf_reference, rtol=0, atol=1e-5)

    arch, checkpoint = tiny_open_clip
    oc = vlmreward.load_model(f"open_clip:{arch}", checkpoint=checkpoint, resize="crop")
    _, _, library_preprocess = open_clip.create_model_and_transforms(arch, pretrained=str(checkpoint))
    oc_reference = torch.stack([library_preprocess(Image.fromarray(f)) for f in frames])
    torch.testing.assert_close(oc.preprocess(frames), oc_reference, rtol=0, atol=1e-5)


def test_float_resize_path_matches_pil(cartpole_frames):
    """The non-CPU (float) resize path, run here on the CPU, agrees with PIL's uint8 bicubic filter."""
    frames = torch.from_numpy(cartpole_frames[:4]).permute(0, 3, 1, 2)
    ours = _resize_float(frames, (224, 224), "bicubic")
    reference = np.stack([np.asarray(Image.fromarray(f).resize((224, 224), Image.BICUBIC)) for f in cartpole_frames[:4]])
    diff = (ours - torch.from_numpy(reference).permute(0, 3, 1, 2).float()).abs()
    assert diff.max().item() <= 1.0
    assert ours.dtype == torch.float32 and ours.min() >= 0 and ours.max() <= 255


CONFIG = PreprocessConfig(image_size=224, mean=(0.48145466, 0.4578275, 0.40821073), std=(0.26862954, 0.26130258, 0.27577711))


def _config(resize: str) -> PreprocessConfig:
    return PreprocessConfig(CONFIG.image_size, CONFIG.mean, CONFIG.std, resize=resize)


def test_square_frames_are_identical_in_every_mode():
    frames = np.random.default_rng(0).integers(0, 256, (3, 300, 300, 3), dtype=np.uint8)
    outputs = [preprocess(as_frame_batch(frames), _config(mode)) for mode in ("squash", "crop", "pad")]
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=0)
    torch.testing.assert_close(outputs[0], outputs[2], rtol=0, atol=0)


def test_frames_at_model_size_are_only_normalised():
    frames = np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    out = preprocess(as_frame_batch(frames), CONFIG)
    mean, std = np.array(CONFIG.mean), np.array(CONFIG.std)
    expected = ((frames / 255.0 - mean) / std).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)


def test_pad_letterboxes_with_the_mean_colour(cartpole_frames):
    """400 × 600 → content 149 × 224 centred, 37 rows above and 38 below exactly 0 (the mean)."""
    out = preprocess(as_frame_batch(cartpole_frames[:2]), _config("pad"))
    assert out.shape == (2, 3, 224, 224)
    assert torch.all(out[:, :, :37] == 0) and torch.all(out[:, :, 37 + 149 :] == 0)
    content = np.stack([np.asarray(Image.fromarray(f).resize((224, 149), Image.BICUBIC)) for f in cartpole_frames[:2]])
    expected = (content / 255.0 - np.array(CONFIG.mean)) / np.array(CONFIG.std)
    diff = np.abs(out[:, :, 37 : 37 + 149].numpy().transpose(0, 2, 3, 1) - expected) * np.array(CONFIG.std)
    assert diff.max() <= ONE_GREY_LEVEL


def test_crop_keeps_only_the_centre(cartpole_frames):
    """The centre crop of a wide frame ignores its sides; squash and pad do not."""
    frames = cartpole_frames[:1].copy()
    edited = frames.copy()
    edited[:, :, :60] = 0  # black out the left 10 % of the frame (the cart's track end)
    for mode, sees_edge in (("crop", False), ("squash", True), ("pad", True)):
        a = preprocess(as_frame_batch(frames), _config(mode))
        b = preprocess(as_frame_batch(edited), _config(mode))
        assert (not torch.equal(a, b)) == sees_edge, mode


def test_numpy_torch_and_single_frame_inputs_agree(hf_clip_model, cartpole_frames):
    batch = hf_clip_model.encode_images(cartpole_frames[:3])
    torch.testing.assert_close(hf_clip_model.encode_images(torch.from_numpy(cartpole_frames[:3])), batch)
    torch.testing.assert_close(hf_clip_model.encode_images(list(cartpole_frames[:3])), batch)
    single = hf_clip_model.encode_images(cartpole_frames[1])
    assert single.shape == (1, hf_clip_model.embed_dim)
    torch.testing.assert_close(single[0], batch[1], atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "frames, message",
    [
        (np.zeros((2, 32, 32, 3), np.float32), "uint8"),
        (torch.zeros((2, 32, 32, 3), dtype=torch.float16), "uint8"),
        (np.zeros((32, 32), np.uint8), "rank 2"),
        (np.zeros((1, 2, 32, 32, 3), np.uint8), "rank 5"),
        (np.zeros((2, 32, 32, 4), np.uint8), "alpha"),
        (np.zeros((2, 3, 32, 32), np.uint8), "channel"),
        (np.zeros((0, 32, 32, 3), np.uint8), "zero frames"),
        ([], "zero frames"),
        ([np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8)], "one size"),
        (np.zeros((2, 0, 32, 3), np.uint8), "zero-sized"),
        ("frame.png", "NumPy array or torch tensor"),
    ],
)
def test_bad_frames_are_rejected_with_a_clear_message(frames, message):
    with pytest.raises(InvalidFramesError, match=message):
        as_frame_batch(frames)


def test_unknown_resize_mode_is_rejected():
    with pytest.raises(InvalidParameterError, match="squash"):
        _config("stretch")


# ---------------------------------------------------------------------------------------------
# antialias=False: the VLM-RM reference code's transform (reference.md §5, vlmrm @ 811d820)

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def _keys_weights(t: np.ndarray, a: float = -0.75) -> np.ndarray:
    """Keys' cubic convolution weights for the 4 taps at offsets -1, 0, 1, 2 (``float64 [..., 4]``)."""
    d = np.stack([t + 1, t, 1 - t, 2 - t], axis=-1)
    near = ((a + 2) * d - (a + 3)) * d * d + 1  # |d| <= 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a  # 1 < |d| < 2
    return np.where(d <= 1, near, far)


def _bicubic_axis(x: np.ndarray, out: int, axis: int) -> np.ndarray:
    """Plain bicubic resampling of one axis (half-pixel centres, border taps clamped), in float64."""
    n = x.shape[axis]
    src = (np.arange(out) + 0.5) * (n / out) - 0.5
    base = np.floor(src).astype(int)
    w = _keys_weights(src - base)  # [out, 4]
    idx = np.clip(base[:, None] + np.arange(-1, 3)[None, :], 0, n - 1)  # [out, 4]
    taken = np.take(x, idx, axis=axis)  # axis becomes [out, 4]
    shape = [1] * taken.ndim
    shape[axis], shape[axis + 1] = out, 4
    return (taken * w.reshape(shape)).sum(axis=axis + 1)


def reference_transform_numpy(frames: np.ndarray, size: int, mean, std) -> np.ndarray:
    """The reference transform written from its description alone, in NumPy float64: ``uint8 → /255``,
    bicubic to ``size × size`` (Keys a = -0.75, ``align_corners=False``, no antialias, no clamping),
    ``(x - mean) / std``. Returns ``[N, 3, size, size]``."""
    x = frames.astype(np.float64).transpose(0, 3, 1, 2) / 255.0
    x = _bicubic_axis(_bicubic_axis(x, size, axis=2), size, axis=3)
    return (x - np.asarray(mean).reshape(1, 3, 1, 1)) / np.asarray(std).reshape(1, 3, 1, 1)


def reference_transform_torchvision(frames: np.ndarray, size: int, mean, std) -> torch.Tensor:
    """The reference's own code (vlmrm ``CLIPEmbed``): torchvision ``Resize((S, S), BICUBIC)`` on the
    float tensor without antialiasing (torchvision 0.15's tensor default), ``CenterCrop``, ``Normalize``."""
    from vlmreward.models._compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    from torchvision import transforms as T

    transform = T.Compose([
        T.Resize((size, size), interpolation=T.InterpolationMode.BICUBIC, antialias=False),
        T.CenterCrop(size),
        T.Normalize(mean=mean, std=std),
    ])
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    return transform(x)


def test_reference_keys_weights_sum_to_one():
    t = np.linspace(0, 1, 11)
    np.testing.assert_allclose(_keys_weights(t).sum(-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(_keys_weights(np.zeros(1))[0], [0, 1, 0, 0], atol=1e-12)


@pytest.mark.parametrize("loader", ["hf", "open_clip"])
def test_no_antialias_equals_the_reference_transform_on_cartpole_renders(loader, tiny_hf_clip, tiny_open_clip, cartpole_frames):
    if loader == "hf":
        model = vlmreward.load_model(tiny_hf_clip, resize="squash", antialias=False)
    else:
        arch, checkpoint = tiny_open_clip
        model = vlmreward.load_model(f"open_clip:{arch}", checkpoint=checkpoint, resize="squash", antialias=False)
    assert model.preprocess_config.mean == pytest.approx(OPENAI_MEAN) and model.antialias is False
    ours = model.preprocess(cartpole_frames).double().numpy()
    size = model.image_size
    independent = reference_transform_numpy(cartpole_frames, size, OPENAI_MEAN, OPENAI_STD)
    torchvision_code = reference_transform_torchvision(cartpole_frames, size, OPENAI_MEAN, OPENAI_STD).double().numpy()
    # PyTorch computes the source coordinates (up to 600) and tap weights in float32: up to
    # ~2e-5 in [0, 1] pixel units (0.005 grey levels) from the float64 computation
    assert np.abs(ours - independent).max() < 1e-4
    assert np.abs(ours - torchvision_code).max() < 2e-6  # the reference's own code: same float32 kernel
    # bicubic overshoot is kept (no clamping): some pixels leave the [0, 1] range before normalising
    unit = ours * np.asarray(OPENAI_STD).reshape(1, 3, 1, 1) + np.asarray(OPENAI_MEAN).reshape(1, 3, 1, 1)
    assert unit.min() < -1e-3 or unit.max() > 1 + 1e-3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_no_antialias_equals_the_reference_transform_on_cuda(tiny_hf_clip, cartpole_frames):
    model = vlmreward.load_model(tiny_hf_clip, resize="squash", antialias=False, device="cuda")
    ours = model.preprocess(cartpole_frames).double().cpu().numpy()
    independent = reference_transform_numpy(cartpole_frames, model.image_size, OPENAI_MEAN, OPENAI_STD)
    assert np.abs(ours - independent).max() < 1e-4


def test_antialias_changes_the_pixels_of_large_frames(cartpole_frames):
    smooth = preprocess(as_frame_batch(cartpole_frames), _config("squash"))
    plain_config = PreprocessConfig(CONFIG.image_size, CONFIG.mean, CONFIG.std, resize="squash", antialias=False)
    plain = preprocess(as_frame_batch(cartpole_frames), plain_config)
    diff = grey_levels(smooth, plain, CONFIG) * 255
    assert diff.max() > 20  # thin edges (the pole, the track) alias without the filter
    # same-size frames: neither resizes, both only normalise
    square = cartpole_frames[:, :224, :224]
    np.testing.assert_allclose(
        preprocess(as_frame_batch(square), _config("squash")).numpy(),
        preprocess(as_frame_batch(square), plain_config).numpy(), atol=1e-5,
    )


@pytest.mark.parametrize("resize", ["crop", "pad"])
def test_no_antialias_in_the_other_resize_modes(resize, cartpole_frames):
    config = PreprocessConfig(CONFIG.image_size, CONFIG.mean, CONFIG.std, resize=resize, antialias=False)
    out = preprocess(as_frame_batch(cartpole_frames[:2]), config)
    assert out.shape == (2, 3, 224, 224) and out.is_contiguous()
    close = preprocess(as_frame_batch(cartpole_frames[:2]), PreprocessConfig(CONFIG.image_size, CONFIG.mean, CONFIG.std, resize=resize))
    assert grey_levels(out, close, CONFIG).mean() < 3 / 255  # same geometry, only the filter differs


def test_antialias_must_be_a_bool(tiny_hf_clip):
    with pytest.raises(InvalidParameterError, match="antialias"):
        vlmreward.load_model(tiny_hf_clip, antialias="no")
