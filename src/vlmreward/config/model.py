"""The ``model`` section of every config that loads a vision-language model (``train``,
``relabel``): the arguments of :func:`vlmreward.load_model` as a pydantic schema, and its
:class:`~vlmreward.models.spec.ModelSpec`."""

from __future__ import annotations

import os
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, model_validator

from vlmreward.config.errors import ConfigError
from vlmreward.config.fields import Count
from vlmreward.models.onnx import QUANTIZE_MODES
from vlmreward.models.preprocess import ResizeMode
from vlmreward.models.registry import AUTOCAST_NAMES, COMPILE_MODES, DTYPE_NAMES, RUNTIMES
from vlmreward.models.spec import ModelSpec

__all__ = ["ModelConfig", "Strict", "model_shortcut"]


class Strict(BaseModel):
    """Base of a config section: unknown keys are errors, defaults are validated."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


def model_shortcut(value: Any) -> Any:
    return {"name": value} if isinstance(value, (str, os.PathLike)) else value


class ModelConfig(Strict):
    """``model``: the vision-language model (arguments of :func:`vlmreward.load_model`).

    ``model: NAME`` in YAML (or ``--set model=NAME``) is short for ``model: {name: NAME}``.

    Attributes:
        name: hub id, ``save_pretrained`` directory, ``open_clip:ARCH/TAG``, ...; None for rewards
            that need no VLM.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda:1"``, ...
        dtype: weight dtype (``float32``, ``float16``, ``bfloat16``, ...) or None for float32.
        resize: how frames are fitted to the square model input.
        antialias: resize with antialiasing like PIL (default; CLIP's training images were), or
            False for the VLM-RM reference code's plain bicubic resize (``configs/vlmrm/``).
        checkpoint: weights file for an ``open_clip:ARCH`` name.
        batch_size: frames per forward pass of the vision tower, or ``auto``: timed on first use per frame size
            and cached (:mod:`vlmreward.models.autotune`; contrastive models).
        runtime: ``"torch"`` or ``"onnx"`` (ONNX Runtime runs the vision tower; faster on CPUs,
            see ``benchmarks/RESULTS.md``; needs ``pip install 'vlmreward[onnx]'``). ``backend:``,
            its former name, is still read (run directories written before 0.4 have it).
        quantize: with ``runtime: onnx``, ``int8`` for dynamic int8 weights (None: float32).
        autocast: on CUDA, ``bf16``/``fp16`` mixed precision (None: from ``dtype``; False: never).
        compile: ``torch.compile`` the forward pass that scores frames: True, False or a mode
            (``max-autotune``, ``reduce-overhead``; :data:`~vlmreward.models.registry.COMPILE_MODES`).
    """

    name: Optional[str] = None
    device: str = "auto"
    dtype: Optional[Literal[DTYPE_NAMES]] = None  # type: ignore[valid-type]
    resize: ResizeMode = "squash"
    antialias: bool = True
    checkpoint: Optional[str] = None
    batch_size: Union[Count, Literal["auto"]] = 64
    runtime: Literal[RUNTIMES] = "torch"  # type: ignore[valid-type]
    quantize: Optional[Literal[QUANTIZE_MODES]] = None  # type: ignore[valid-type]
    autocast: Optional[Union[Literal[AUTOCAST_NAMES], bool]] = None  # type: ignore[valid-type]
    compile: Union[bool, Literal[COMPILE_MODES]] = False  # type: ignore[valid-type]

    def spec(self) -> ModelSpec:
        """The :class:`~vlmreward.models.spec.ModelSpec` of this section.

        Raises:
            ConfigError: no ``name``.
        """
        if not self.name:
            raise ConfigError("model.name is not set; give one (--set model=openai/clip-vit-base-patch32).")
        return ModelSpec(
            self.name, device=self.device, dtype=self.dtype, resize=self.resize, antialias=self.antialias,
            checkpoint=self.checkpoint, runtime=self.runtime, quantize=self.quantize, autocast=self.autocast,
            batch_size=self.batch_size, compile=self.compile,
        )

    @model_validator(mode="before")
    @classmethod
    def _former_backend_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and "backend" in data:
            data = dict(data)
            backend = data.pop("backend")
            if data.setdefault("runtime", backend) != backend:
                raise ValueError("model.backend is the former name of model.runtime; give runtime only")
        return data

    @model_validator(mode="after")
    def _quantize_needs_onnx(self) -> "ModelConfig":
        if self.quantize is not None and self.runtime != "onnx":
            raise ValueError("model.quantize needs model.runtime: onnx (int8 weights run on ONNX Runtime)")
        return self
