"""Batched image preprocessing on tensors: frames ``uint8 [N, H, W, 3]`` → pixels ``[N, 3, S, S]``.

The vision towers of CLIP-family models expect square ``S × S`` inputs, normalised with the
model's per-channel mean and standard deviation. The libraries do this one PIL image at a time
(``CLIPImageProcessor``, open_clip's ``preprocess``); here the same steps run on a whole batch at
once on the model's device:

1. resize, following the ``resize`` mode (:data:`ResizeMode`), with antialiasing, using the
   model's own interpolation (PIL's bicubic or bilinear filter; PyTorch's antialiased kernels
   are ports of PIL's);
2. crop or pad to ``S × S``;
3. scale to ``[0, 1]`` and normalise: ``(x / 255 - mean) / std``, fused into one conversion
   pass and two in-place passes.

On the CPU the resize runs on ``uint8`` (as PIL does, and about three times faster than on
floats); on other devices on ``float32`` in two rounded passes. Both agree with PIL to within one
grey level (``tests/test_preprocess.py`` measures it on rendered CartPole frames).

``antialias=False`` (:class:`PreprocessConfig`) is the VLM-RM reference code's transform instead
(``vlmrm/reward_model.py`` at commit 811d820, torchvision 0.15): ``uint8 → float32 / 255``, plain
bicubic interpolation of the float tensor (``align_corners=False``, no antialiasing, no rounding
and no clamping, so bicubic overshoot stays), then ``(x - mean) / std``. On frames much larger
than the model's input (CartPole's 400 × 600 to 224 × 224) it samples 16 source pixels per output
pixel instead of averaging the whole footprint, so thin edges alias; the rewards differ from the
antialiased ones (``docs/reproducing-vlmrm.md`` gives the size measured on CartPole renders).
``tests/test_preprocess.py`` checks it against an independent implementation of the reference
transform.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal, Sequence, Union, get_args

import numpy as np
import torch
import torch.nn.functional as F

from vlmreward.errors import InvalidFramesError, InvalidParameterError

__all__ = ["ResizeMode", "RESIZE_MODES", "DEFAULT_RESIZE", "Frames", "PreprocessConfig", "as_frame_batch", "preprocess"]

ResizeMode = Literal["squash", "crop", "pad"]
"""How a frame of any aspect ratio becomes the model's square input.

* ``"squash"``: both sides straight to ``S`` (aspect ratio not kept). The VLM-RM reference
  code's geometry (with ``antialias=False`` also its pixels), and what SigLIP's own processor does.
* ``"crop"``: shorter side to ``S``, then a centre crop of ``S × S``. What CLIP's own processors
  (``CLIPImageProcessor``, open_clip) do; on a wide RL frame it can cut the agent out of the
  picture.
* ``"pad"``: longer side to ``S``, then padding to ``S × S`` with the model's mean colour
  (zero after normalisation): a letterbox. Keeps everything and the aspect ratio, at the cost
  of resolution.
"""

RESIZE_MODES: tuple[str, ...] = get_args(ResizeMode)

DEFAULT_RESIZE: ResizeMode = "squash"
"""The default resize mode, ``"squash"``: RL frames are rarely square (CartPole renders 400×600)
and the agent moves across the whole frame, so a centre crop can remove exactly what the reward
is about; squashing keeps the whole frame at full resolution, the geometry of the VLM-RM
reference code (whose pixels ``antialias=False`` adds; tested). Frames that are already square
are treated the same by all three modes."""

Frames = Union[np.ndarray, torch.Tensor, Sequence[np.ndarray]]
"""uint8 RGB frames: ``[N, H, W, 3]`` or one ``[H, W, 3]`` frame, NumPy or torch, or a sequence
of equally sized ``[H, W, 3]`` NumPy arrays."""

Interpolation = Literal["bicubic", "bilinear"]


@dataclass(frozen=True)
class PreprocessConfig:
    """A model's image preprocessing.

    Attributes:
        image_size: side ``S`` of the square input, in pixels.
        mean: per-channel mean of the normalisation, in ``[0, 1]`` units (RGB order).
        std: per-channel standard deviation of the normalisation, in ``[0, 1]`` units.
        interpolation: resampling filter of the resize (the model's own).
        resize: how non-square frames are fitted (:data:`ResizeMode`).
        crop_rounding: where the centre crop starts when the excess is odd: ``"floor"``
            (``(L - S) // 2``, Hugging Face's ``center_crop``) or ``"round"``
            (``round((L - S) / 2)``, torchvision's ``CenterCrop``, used by open_clip).
        antialias: True (default): resize like PIL, as CLIP's training images were; False: the
            VLM-RM reference code's plain bicubic interpolation of float pixels (module docstring).
    """

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: Interpolation = "bicubic"
    resize: ResizeMode = DEFAULT_RESIZE
    crop_rounding: Literal["floor", "round"] = "floor"
    antialias: bool = True

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise InvalidParameterError(
                f"resize={self.resize!r} is not a resize mode; use one of {', '.join(map(repr, RESIZE_MODES))}."
            )
        if self.interpolation not in get_args(Interpolation):
            raise InvalidParameterError(f"interpolation={self.interpolation!r}: use 'bicubic' or 'bilinear'.")


def as_frame_batch(frames: Frames) -> torch.Tensor:
    """Validate frames and return them as one ``uint8 [N, H, W, 3]`` tensor (no copy where possible).

    Args:
        frames: uint8 RGB frames, ``[N, H, W, 3]`` or ``[H, W, 3]``, as a NumPy array, a torch
            tensor (any device), or a sequence of equally sized ``[H, W, 3]`` NumPy arrays.

    Returns:
        ``torch.uint8`` tensor ``[N, H, W, 3]``, on the device the input was on.

    Raises:
        InvalidFramesError: not uint8, rank not 3 or 4, last axis not 3 (RGB), zero frames or a
            zero-sized side, or frames of different sizes in a sequence.
    """
    if isinstance(frames, (list, tuple)):
        if len(frames) == 0:
            raise InvalidFramesError("got zero frames; pass at least one uint8 RGB frame of shape [H, W, 3].")
        shapes = {np.shape(f) for f in frames}
        if len(shapes) > 1:
            raise InvalidFramesError(
                f"frames in one batch must share one size; got shapes {sorted(shapes)}. Score each size separately."
            )
        frames = np.stack([np.asarray(f) for f in frames])
    if isinstance(frames, np.ndarray):
        if frames.dtype != np.uint8:
            raise InvalidFramesError(_dtype_message(str(frames.dtype)))
        array = np.ascontiguousarray(frames)
        if array.flags.writeable:
            tensor = torch.from_numpy(array)
        else:  # a read-only memory map (a dataset's frames.npy): only read, never written
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                tensor = torch.from_numpy(array)
    elif isinstance(frames, torch.Tensor):
        if frames.dtype != torch.uint8:
            raise InvalidFramesError(_dtype_message(str(frames.dtype).removeprefix("torch.")))
        tensor = frames
    else:
        raise InvalidFramesError(
            f"frames must be a NumPy array or torch tensor of uint8 RGB pixels; got {type(frames).__name__}."
        )
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 4:
        raise InvalidFramesError(
            f"frames must have shape [N, H, W, 3] or [H, W, 3]; got rank {tensor.ndim} with shape {tuple(tensor.shape)}."
        )
    n, h, w, c = tensor.shape
    if c != 3:
        hint = " Drop the alpha channel with frames[..., :3]." if c == 4 else ""
        hint = " Channels-first input? Move the channel axis last." if c != 4 and h in (1, 3, 4) else hint
        raise InvalidFramesError(f"frames must be RGB with 3 channels last, shape [N, H, W, 3]; got {tuple(tensor.shape)}.{hint}")
    if n == 0:
        raise InvalidFramesError("got zero frames; pass at least one uint8 RGB frame of shape [H, W, 3].")
    if h == 0 or w == 0:
        raise InvalidFramesError(f"frames have a zero-sized side: shape {tuple(tensor.shape)}.")
    return tensor


def _dtype_message(dtype: str) -> str:
    return (
        f"frames must be uint8 RGB in [0, 255]; got dtype {dtype}. Floats in [0, 1] convert with "
        "(frames * 255).round().astype(np.uint8)."
    )


def preprocess(
    frames: torch.Tensor,
    config: PreprocessConfig,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Turn a batch of frames into normalised model inputs, batched on the frames' device.

    Args:
        frames: ``torch.uint8 [N, H, W, 3]`` RGB frames (see :func:`as_frame_batch`), on the
            device the model runs on.
        config: the model's :class:`PreprocessConfig`.
        dtype: floating dtype of the result.

    Returns:
        contiguous ``[N, 3, S, S]`` tensor of ``dtype`` on the frames' device, ``S = config.image_size``,
        values ``(pixel / 255 - mean) / std`` (about ``[-2, 2.7]`` for CLIP's statistics; padding
        is exactly 0).

    Source: the steps of Hugging Face ``CLIPImageProcessor`` / ``SiglipImageProcessor`` and
    open_clip's ``image_transform`` (resize, centre crop, ``ToTensor``, ``Normalize``), batched.
    """
    size = config.image_size
    n, h, w, _ = frames.shape
    x = frames.permute(0, 3, 1, 2)  # [N, 3, H, W], a view
    if config.antialias:
        resize = lambda t, hw: _resize(t, hw, config.interpolation)  # noqa: E731
    else:  # the reference transform: floats in [0, 1], resized without antialiasing
        x = x.to(torch.float32).div_(255.0)
        resize = lambda t, hw: _resize_plain(t, hw, config.interpolation)  # noqa: E731
    if config.resize == "squash":
        x = resize(x, (size, size))
    elif config.resize == "crop":
        short, long = (h, w) if h <= w else (w, h)
        new_long = int(size * long / short)  # as HF get_resize_output_image_size and torchvision Resize
        x = resize(x, (size, new_long) if h <= w else (new_long, size))
        top = _crop_start(x.shape[-2], size, config.crop_rounding)
        left = _crop_start(x.shape[-1], size, config.crop_rounding)
        x = x[..., top : top + size, left : left + size]
    else:  # pad
        scale = size / max(h, w)
        new_hw = (size, max(1, round(w * scale))) if h >= w else (max(1, round(h * scale)), size)
        x = resize(x, new_hw)
    x = _normalise(x, config, dtype) if config.antialias else _normalise_unit(x, config, dtype)  # contiguous
    if config.resize == "pad" and tuple(x.shape[-2:]) != (size, size):
        dh, dw = size - x.shape[-2], size - x.shape[-1]
        x = F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), value=0.0)
    return x


def _crop_start(length: int, size: int, rounding: str) -> int:
    excess = length - size
    return int(round(excess / 2.0)) if rounding == "round" else excess // 2


def _resize(x: torch.Tensor, hw: tuple[int, int], interpolation: str) -> torch.Tensor:
    """Antialiased resize of ``[N, 3, H, W]`` to ``hw``: uint8 kernels on the CPU, float elsewhere."""
    if tuple(x.shape[-2:]) == hw:
        return x  # PIL and torchvision also leave a same-size image untouched
    if x.dtype == torch.uint8 and x.device.type == "cpu":
        return _resize_uint8(x, hw, interpolation)
    return _resize_float(x, hw, interpolation)


def _resize_plain(x: torch.Tensor, hw: tuple[int, int], interpolation: str) -> torch.Tensor:
    """Float ``[N, 3, H, W]`` → ``hw`` without antialiasing, rounding or clamping.

    Source: torchvision 0.15's ``functional_tensor.resize`` on a float tensor (the VLM-RM
    reference's ``Resize((S, S), BICUBIC)``): ``interpolate(..., align_corners=False,
    antialias=False)``, the image returned unchanged when it already has the size.
    """
    if tuple(x.shape[-2:]) == hw:
        return x
    return F.interpolate(x, size=hw, mode=interpolation, align_corners=False, antialias=False)


def _resize_uint8(x: torch.Tensor, hw: tuple[int, int], interpolation: str) -> torch.Tensor:
    # PyTorch's uint8 antialiased kernels (ports of PIL's) want channels-last memory, which the
    # [N, H, W, 3] → [N, 3, H, W] view already is.
    return F.interpolate(x, size=hw, mode=interpolation, antialias=True, align_corners=False)


def _resize_float(x: torch.Tensor, hw: tuple[int, int], interpolation: str) -> torch.Tensor:
    """Float ``[N, 3, H, W]`` in ``[0, 255]`` → float, rounded to whole grey levels.

    Two separable passes, width then height, each rounded and clamped to ``[0, 255]`` like PIL's
    uint8 intermediate image; one pass would keep the bicubic overshoot at sharp edges and differ
    from PIL by up to 11 grey levels (measured on CartPole frames) instead of 1.
    """
    x = x.float()
    for size in ((x.shape[-2], hw[1]), hw):
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode=interpolation, antialias=True, align_corners=False)
            x = x.round_().clamp_(0, 255)
    return x


def _normalise(x: torch.Tensor, config: PreprocessConfig, dtype: torch.dtype) -> torch.Tensor:
    """``(x / 255 - mean) / std`` as ``x · scale + bias``, into a new contiguous ``[N, 3, S, S]`` tensor.

    One pass converts ``x`` (``uint8`` or float, any memory layout: the resize leaves channels-last
    memory) into a contiguous ``float32`` tensor, two in-place passes scale and shift it. The
    unfused form (four passes, a temporary per operation, then a layout copy) took about 2.7 ms a
    400 × 600 frame on a 2-core CPU, this about 0.7 ms (``benchmarks/RESULTS.md``).
    """
    scale = torch.tensor([1.0 / (255.0 * s) for s in config.std], dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    bias = torch.tensor([-m / s for m, s in zip(config.mean, config.std)], dtype=torch.float32, device=x.device)
    out = torch.empty(x.shape, dtype=torch.float32, device=x.device)  # contiguous
    out.copy_(x)
    out.mul_(scale).add_(bias.view(1, 3, 1, 1))
    return out if dtype == torch.float32 else out.to(dtype)


def _normalise_unit(x: torch.Tensor, config: PreprocessConfig, dtype: torch.dtype) -> torch.Tensor:
    """``(x - mean) / std`` of float pixels ``x`` in ``[0, 1]`` into a new contiguous tensor.

    Source: torchvision's ``Normalize`` (``tensor.sub_(mean).div_(std)``), as the VLM-RM reference
    applies it, in the same order so that the result equals it to the last bit.
    """
    mean = torch.tensor(config.mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(config.std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    out = (x - mean).div_(std).contiguous()
    return out if dtype == torch.float32 else out.to(dtype)
