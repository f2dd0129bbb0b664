"""``load_model``: one entry point from a model name to a :class:`VisionLanguageModel`.

Routing, first match wins:

========================================  ==========================================
name                                      backend
========================================  ==========================================
``PREFIX:...`` of a registered backend    its loader (:func:`register_backend`, or the
                                          ``vlmreward.models`` entry-point group)
``open_clip:...``, ``hf-hub:...``         ``open_clip`` (:mod:`.openclip`)
directory with ``open_clip_config.json``  ``open_clip`` (as ``local-dir:``)
directory with ``config.json``            ``transformers`` (:mod:`.hf`)
anything else                             ``transformers``, as a hub id
========================================  ==========================================
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import torch

from vlmreward.errors import InvalidParameterError, ModelNotFoundError
from vlmreward.models.base import VisionLanguageModel
from vlmreward.models.onnx import QUANTIZE_MODES
from vlmreward.models.preprocess import DEFAULT_RESIZE, RESIZE_MODES, ResizeMode

__all__ = [
    "load_model", "resolve_dtype", "register_backend", "ModelLoader", "MODEL_ENTRY_POINT_GROUP",
    "RUNTIMES", "RUNTIME_BACKENDS", "DTYPE_NAMES", "AUTOCAST_NAMES",
]

RUNTIMES: tuple[str, ...] = ("torch", "onnx")
"""What runs a loaded model's vision tower: PyTorch, or ONNX Runtime (:mod:`.onnx`)."""

RUNTIME_BACKENDS = RUNTIMES
"""The former name of :data:`RUNTIMES`."""

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}
DTYPE_NAMES: tuple[str, ...] = tuple(_DTYPES)
"""The dtype names ``dtype=`` takes (``"float32"``, ``"fp16"``, ``"bf16"``, ...)."""
AUTOCAST_NAMES: tuple[str, ...] = ("bf16", "fp16", "bfloat16", "float16")
"""The half dtype names ``autocast=`` takes (besides True, False and None)."""


def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """``None``, a ``torch`` floating dtype, or one of its names (``"bf16"``, ``"float16"``, ...).

    Raises:
        InvalidParameterError: an unknown name or a non-floating dtype.
    """
    if dtype is None or isinstance(dtype, torch.dtype) and dtype.is_floating_point:
        return dtype
    if isinstance(dtype, str) and dtype.lower().removeprefix("torch.") in _DTYPES:
        return _DTYPES[dtype.lower().removeprefix("torch.")]
    raise InvalidParameterError(f"dtype={dtype!r} is not a floating dtype; use one of {', '.join(_DTYPES)}.")


def load_model(
    name_or_path: str | os.PathLike,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str | None = None,
    resize: ResizeMode = DEFAULT_RESIZE,
    checkpoint: str | os.PathLike | None = None,
    truncate: bool = False,
    runtime: str | None = None,
    quantize: str | None = None,
    autocast: torch.dtype | str | bool | None = None,
    onnx_cache_dir: str | os.PathLike | None = None,
    antialias: bool = True,
    *,
    compile: bool | str = False,  # noqa: A002 (the option's name in configs: model.compile)
    backend: str | None = None,
) -> VisionLanguageModel:
    """Load a vision-language model for scoring frames.

    Args:
        name_or_path: a Hugging Face hub id of a CLIP or SigLIP model
            (``"openai/clip-vit-base-patch32"``), a local ``save_pretrained`` directory,
            ``"open_clip:ARCH/TAG"`` (``"open_clip:ViT-g-14/laion2b_s34b_b88k"``),
            ``"open_clip:ARCH"`` together with ``checkpoint``, ``"hf-hub:ORG/REPO"`` (open_clip
            format) or ``"open_clip:local-dir:PATH"``; or a generative VLM's hub id or directory
            (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, SmolVLM/Idefics3, PaliGemma; ``model_type`` in
            :data:`~vlmreward.models.generative.GENERATIVE_MODEL_TYPES`), which loads as a
            :class:`~vlmreward.models.generative.GenerativeVLM` for the VQA reward kinds; or an
            X-CLIP hub id or directory (``microsoft/xclip-base-patch32``, ``model_type: xclip``),
            which loads as a :class:`~vlmreward.models.video.VideoLanguageModel` for the
            video reward kinds (``family="video"``).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        dtype: weight dtype, ``torch.float16``/``"bf16"``/...; default ``float32``. Embeddings are
            returned as ``float32`` whatever the weights.
        resize: how frames are fitted to the square model input: ``"squash"`` (default; whole frame,
            as the VLM-RM reference code), ``"crop"`` (the CLIP processors' shorter side + centre
            crop) or ``"pad"`` (letterbox). See :data:`vlmreward.models.preprocess.ResizeMode`.
        checkpoint: local weights file for an ``open_clip:ARCH`` name.
        truncate: truncate prompts longer than the model's context instead of raising
            :class:`~vlmreward.errors.PromptTooLongError`.
        runtime: what runs the vision tower: ``"torch"`` (default, also for None) or ``"onnx"`` (ONNX Runtime:
            the loaded model's vision tower is exported once, cached on disk, and run by
            :class:`~vlmreward.models.onnx.ONNXModel`; needs ``pip install 'vlmreward[onnx]'``).
            The *backend* is the library that loads the model (``model.backend``: ``"hf"``,
            ``"open_clip"``, a plugin's), chosen by the name.
        quantize: with ``runtime="onnx"``: None (``float32``) or ``"int8"`` (dynamic quantisation).
        autocast: on CUDA, run the towers under ``torch.autocast``: None (default: in the weights'
            dtype when that is ``float16``/``bfloat16``), False (never), ``"bf16"``/``"fp16"`` (also
            with ``float32`` weights: mixed precision) or True (``"bf16"``). CUDA devices only.
        onnx_cache_dir: where ``runtime="onnx"`` caches its exports (default
            :func:`vlmreward.models.onnx.default_cache_dir`).
        antialias: True (default): resize frames like PIL, as CLIP's training images were.
            False: the VLM-RM reference code's transform (plain bicubic interpolation of float
            pixels, no antialiasing); with ``resize="squash"`` the pixels equal the reference's
            to float rounding. See :mod:`vlmreward.models.preprocess`.
        compile: ``torch.compile`` the forward pass that scores frames (PyTorch runtime): the
            vision tower and projection of a contrastive model, the language model forward of a
            generative or video model. True (mode ``"default"``) or a mode name
            (:data:`COMPILE_MODES`; ``"max-autotune"`` and ``"reduce-overhead"`` pay off on a GPU).
            Compiled once per input shape family (``dynamic=True``), on the first call; results
            equal eager execution to float rounding (tested on CPU). Needs a C++ compiler on CPU.
        backend: the former name of ``runtime`` (before 0.4), still accepted.

    Returns:
        A :class:`VisionLanguageModel` (or a :class:`~vlmreward.models.generative.GenerativeVLM`) in
        eval mode on ``device``.

    Raises:
        ModelNotFoundError: a name no backend knows, an unknown open_clip architecture or tag,
            an unsupported ``model_type``, or a checkpoint given for a non-open_clip name.
        ModelNotAvailableError: the weights are not cached and the hub cannot be reached; the
            message says how to load a local copy.
        InvalidParameterError: an unknown ``resize`` mode, ``dtype``, ``runtime``, ``quantize`` or ``compile`` mode;
            ``quantize`` without ``runtime="onnx"``; ``autocast`` off CUDA or not a half dtype;
            ``backend`` and ``runtime`` both given and different.
        BackendNotAvailableError: ``runtime="onnx"`` without onnxruntime installed.
        ExportError: the vision tower could not be exported to ONNX.
    """
    if backend is not None:  # the former name of runtime
        if runtime not in (None, backend):
            raise InvalidParameterError(f"backend={backend!r} is the former name of runtime={runtime!r}; give runtime only.")
        runtime = backend
    runtime = "torch" if runtime is None else runtime
    if runtime not in RUNTIMES:
        raise InvalidParameterError(f"runtime={runtime!r} is not a runtime; use one of {', '.join(map(repr, RUNTIMES))}.")
    if quantize is not None and quantize not in QUANTIZE_MODES:
        raise InvalidParameterError(f"quantize={quantize!r}: use None (float32) or one of {', '.join(map(repr, QUANTIZE_MODES))}.")
    if quantize is not None and runtime != "onnx":
        raise InvalidParameterError(f"quantize={quantize!r} needs runtime='onnx' (ONNX Runtime quantises the exported graph).")
    autocast_dtype = _resolve_autocast(autocast, torch.device(device))
    compile_mode = _compile_mode(compile, runtime)
    if resize not in RESIZE_MODES:
        raise InvalidParameterError(f"resize={resize!r} is not a resize mode; use one of {', '.join(RESIZE_MODES)}.")
    name = os.fspath(name_or_path).strip()
    if not name:
        raise ModelNotFoundError("no model name given; e.g. 'openai/clip-vit-base-patch32' or a local directory.")
    device = torch.device(device)
    if not isinstance(antialias, bool):
        raise InvalidParameterError(f"antialias={antialias!r}: use True (PIL-like resize) or False (the VLM-RM reference's).")
    kwargs = dict(device=device, dtype=resolve_dtype(dtype), resize=resize, antialias=antialias, truncate=truncate)
    prefix = name.partition(":")[0] if ":" in name and not os.path.exists(name) else None
    loader = _backend_loader(prefix) if prefix else None
    if loader is not None:  # a registered (or entry-point) backend owns this prefix
        return _finish(loader(name, checkpoint=checkpoint, **kwargs), runtime, quantize, autocast_dtype, onnx_cache_dir, compile_mode)
    if os.path.isdir(name) and (Path(name) / "open_clip_config.json").is_file():
        name = f"open_clip:local-dir:{name}"
    if name.startswith(("open_clip:", "hf-hub:")):
        from vlmreward.models.openclip import load_open_clip_model

        model = load_open_clip_model(name, checkpoint=checkpoint, **kwargs)
        return _finish(model, runtime, quantize, autocast_dtype, onnx_cache_dir, compile_mode)
    if checkpoint is not None:
        raise ModelNotFoundError(
            f"checkpoint= goes with an open_clip architecture, e.g. load_model('open_clip:ViT-B-32', "
            f"checkpoint=...); {name!r} is a transformers model, which loads from its directory."
        )
    if os.path.isfile(name):
        raise ModelNotFoundError(
            f"{name!r} is a file; a weights file needs its architecture: load_model('open_clip:ARCH', "
            "checkpoint=PATH). A transformers model loads from its save_pretrained() directory."
        )
    if os.path.sep in name and name.startswith((".", os.path.sep, "~")) and not os.path.isdir(name):
        raise ModelNotFoundError(f"model directory {name!r} does not exist.")
    from vlmreward.models.hf import load_hf_model

    return _finish(load_hf_model(name, **kwargs), runtime, quantize, autocast_dtype, onnx_cache_dir, compile_mode)


ModelLoader = Callable[..., VisionLanguageModel]
"""A model backend's loader: ``loader(name, *, checkpoint, device, dtype, resize, antialias, truncate)``
→ a :class:`VisionLanguageModel` (``device`` a ``torch.device``, ``dtype`` a ``torch.dtype`` or None)."""

MODEL_ENTRY_POINT_GROUP = "vlmreward.models"
"""Entry-point group of model backends: the entry's name is the prefix it loads (``PREFIX:...``)."""

_BACKENDS: dict[str, ModelLoader] = {}


def register_backend(prefix: str, loader: ModelLoader) -> ModelLoader:
    """Route model names ``"PREFIX:..."`` to ``loader`` (before the built-in routing).

    The loader builds a :class:`VisionLanguageModel` subclass (its few hooks: ``_embed_pixels``,
    ``_embed_text``, the :class:`PreprocessConfig`); batching, out-of-memory splitting, caching,
    dtype/device and the ONNX runtime are the base class's and :func:`load_model`'s, as for the
    built-in backends. Installed packages register the same way through the ``vlmreward.models``
    entry-point group (``my_prefix = "my_package.module:load"``). See ``docs/extending.md``.

    Raises:
        InvalidParameterError: an empty prefix, one with ``:``, or a built-in prefix.
    """
    if not prefix or ":" in prefix or prefix in ("open_clip", "hf-hub"):
        raise InvalidParameterError(f"backend prefix {prefix!r}: use a short name without ':' that is not open_clip or hf-hub.")
    _BACKENDS[prefix] = loader
    return loader


def _backend_loader(prefix: str) -> ModelLoader | None:
    if prefix in ("open_clip", "hf-hub"):
        return None
    if prefix in _BACKENDS:
        return _BACKENDS[prefix]
    from importlib.metadata import entry_points

    for ep in entry_points(group=MODEL_ENTRY_POINT_GROUP):
        if ep.name == prefix:
            try:
                return register_backend(prefix, ep.load())
            except Exception as err:  # noqa: BLE001 - a broken plugin: say which
                raise ModelNotFoundError(f"model backend {prefix!r} (entry point {ep.value!r}) cannot be loaded: {err}") from None
    return None


def _finish(
    model: VisionLanguageModel,
    runtime: str,
    quantize: str | None,
    autocast_dtype: torch.dtype | None | bool,
    onnx_cache_dir: str | os.PathLike | None,
    compile_mode: str | None = None,
) -> VisionLanguageModel:
    """Apply the runtime options to a loaded torch model: autocast, ``torch.compile``, or the ONNX Runtime wrapper."""
    if autocast_dtype is False:
        model.autocast_dtype = None
    elif autocast_dtype is not None:
        model.autocast_dtype = autocast_dtype  # type: ignore[assignment]
    if compile_mode is not None:
        _compile(model, compile_mode)
    if runtime == "onnx":
        from vlmreward.models.onnx import ONNXModel

        if not isinstance(model, VisionLanguageModel):
            raise InvalidParameterError(
                f"runtime='onnx' exports the vision tower of a CLIP or SigLIP model; {model.name!r} is a generative VLM, "
                "which runs on runtime='torch'."
            )

        return ONNXModel(model, quantize=quantize, cache_dir=onnx_cache_dir)
    return model


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
"""``torch.compile`` modes ``compile=`` accepts (True is ``"default"``)."""


def _compile_mode(value: bool | str, runtime: str) -> str | None:
    if value is False or value is None:
        return None
    mode = "default" if value is True else value
    if mode not in COMPILE_MODES:
        raise InvalidParameterError(f"compile={value!r}: use True, False or a torch.compile mode ({', '.join(COMPILE_MODES)}).")
    if runtime != "torch":
        raise InvalidParameterError(f"compile={value!r} compiles PyTorch's forward pass; runtime={runtime!r} does not run one.")
    return mode


def _compile(model: Any, mode: str) -> None:
    """``torch.compile`` the forward pass that scores frames (see :func:`load_model`'s ``compile``)."""
    if isinstance(model, VisionLanguageModel):
        model._embed_pixels = torch.compile(model._embed_pixels, mode=mode, dynamic=True)  # type: ignore[method-assign]
    else:  # a generative or video model: its transformers module
        module = model.model
        module.forward = torch.compile(module.forward, mode=mode, dynamic=True)
    model.compile_mode = mode


def _resolve_autocast(autocast: torch.dtype | str | bool | None, device: torch.device) -> torch.dtype | bool | None:
    """``autocast=`` as a half dtype, False (off) or None (the default rule).

    Raises:
        InvalidParameterError: an explicit autocast on a non-CUDA device, or not a half dtype.
    """
    if autocast is None or autocast is False:
        return autocast
    if device.type != "cuda":
        raise InvalidParameterError(
            f"autocast={autocast!r} applies on CUDA devices only (device {str(device)!r}); drop it, or use dtype= for the weights."
        )
    resolved = torch.bfloat16 if autocast is True else resolve_dtype(autocast)
    if resolved not in (torch.float16, torch.bfloat16):
        raise InvalidParameterError(f"autocast={autocast!r}: use 'bf16' or 'fp16' (or False to turn it off).")
    return resolved