"""``ModelSpec``: everything that says which vision-language model to load and how, in one value.

Run configs (``model:``), every command's model options and the Ray reward replicas describe a
model with a :class:`ModelSpec` and load it with :meth:`ModelSpec.load`, so the options of
:func:`~vlmreward.models.registry.load_model` are written down once. :func:`resolve_device` is
the one place where ``"auto"`` and device names are checked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional, Union

import torch

from vlmreward.errors import InvalidParameterError
from vlmreward.models.autotune import AUTO

__all__ = ["ModelSpec", "resolve_device", "AUTO_DEVICE"]

AUTO_DEVICE = "auto"
"""The device name that means: CUDA when this process sees a GPU, else the CPU."""


def resolve_device(device: str | torch.device | None, what: str = "device") -> torch.device:
    """A device name as a ``torch.device``: ``None``/``"auto"`` → CUDA when available, else the CPU.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, a ``torch.device`` or None.
        what: how error messages name the setting (``"--device"``, ``"model.device"``).

    Raises:
        InvalidParameterError: not a device name, or a device this machine lacks (the message
            says what to use instead).
    """
    if device is None or device == AUTO_DEVICE:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError) as err:
        raise InvalidParameterError(f"{what} {str(device)!r} is not a device; use auto, cpu, cuda, cuda:1, mps.") from err
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidParameterError(f"{what} {str(device)!r}: no CUDA GPU is available here; use cpu or auto.")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise InvalidParameterError(
                f"{what} {str(device)!r}: there are only {torch.cuda.device_count()} CUDA device(s) (cuda:0 ...)."
            )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidParameterError(f"{what} {str(device)!r}: MPS is not available here; use cpu.")
    return resolved


@dataclass(frozen=True)
class ModelSpec:
    """Which model, and how to run it: the arguments of :func:`vlmreward.load_model` plus the batch size.

    Attributes:
        name: hub id, ``save_pretrained`` directory, ``open_clip:ARCH/TAG``, ``hf-hub:...``.
        device: ``"auto"`` (default), ``"cpu"``, ``"cuda:1"``, ... (:func:`resolve_device`).
        dtype: weight dtype name (``"bf16"``, ``"float16"``, ...) or None for float32.
        resize: ``"squash"``, ``"crop"`` or ``"pad"``.
        antialias: PIL-like resize (True) or the VLM-RM reference's plain bicubic (False).
        checkpoint: weights file of an ``open_clip:ARCH`` name.
        runtime: what runs the vision tower: ``"torch"`` or ``"onnx"`` (:data:`~vlmreward.models.registry.RUNTIMES`).
        quantize: with ``runtime="onnx"``, ``"int8"``.
        autocast: CUDA mixed precision (None: from ``dtype``; False: never; ``"bf16"``/``"fp16"``).
        truncate: truncate over-long prompts instead of raising.
        batch_size: frames per forward pass of the vision tower, or ``"auto"`` (:mod:`vlmreward.models.autotune`).
        compile: ``torch.compile`` the scoring forward pass: False, True or a mode name.

    Example:
        ``ModelSpec("openai/clip-vit-base-patch32", device="cuda", dtype="bf16").load()``
    """

    name: str
    device: str = AUTO_DEVICE
    dtype: Optional[str] = None
    resize: str = "squash"
    antialias: bool = True
    checkpoint: Optional[str] = None
    runtime: str = "torch"
    quantize: Optional[str] = None
    autocast: Optional[Union[str, bool]] = None
    truncate: bool = False
    batch_size: Union[int, str] = 64
    compile: Union[bool, str] = False

    def load(self, device_name: str = "device") -> Any:
        """Load the model (:func:`vlmreward.load_model`) on the resolved device, with ``batch_size`` set.

        Args:
            device_name: how device errors name the setting (``"model.device"``, ``"--device"``).

        Raises:
            InvalidParameterError: a bad device or option; ModelNotFoundError,
            ModelNotAvailableError, BackendNotAvailableError, ExportError: from ``load_model``.
        """
        from vlmreward.models.registry import load_model

        model = load_model(
            self.name,
            device=resolve_device(self.device, device_name),
            dtype=self.dtype,
            resize=self.resize,  # type: ignore[arg-type]
            antialias=self.antialias,
            checkpoint=os.fspath(self.checkpoint) if self.checkpoint is not None else None,
            truncate=self.truncate,
            runtime=self.runtime,
            quantize=self.quantize,
            autocast=self.autocast,
            compile=self.compile,
        )
        if self.batch_size == AUTO:
            if not hasattr(model, "batch_size_for"):
                raise InvalidParameterError(f"batch size {AUTO!r} tunes a contrastive model's vision tower; {self.name} is "
                                            "not one: give a number of frames per forward pass.")
            model.autotune = True
        else:
            model.batch_size = int(self.batch_size)
        return model
