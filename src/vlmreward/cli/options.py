"""Command-line options the commands share: the model options (one :class:`~vlmreward.models.spec.ModelSpec`
for ``score``, ``evaluate`` and ``sweep``) and the reward-kind options (``--reward-kind``, ``--param``)."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from vlmreward.errors import InvalidParameterError
from vlmreward.models.autotune import AUTO
from vlmreward.models.base import DEFAULT_BATCH_SIZE
from vlmreward.models.spec import AUTO_DEVICE, ModelSpec

__all__ = [
    "Resize", "Runtime", "Quantize", "AntialiasOption", "RuntimeOption", "QuantizeOption",
    "RewardKindOption", "ParamOption", "OverwriteOption", "parse_params", "parse_batch_size", "model_spec",
]

OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace the results of an earlier run in the output folder.")
]
"""``--overwrite``: every command refuses to replace earlier outputs without it."""


class Resize(str, Enum):
    """``--resize`` choices (:data:`vlmreward.models.preprocess.ResizeMode`)."""

    squash = "squash"
    crop = "crop"
    pad = "pad"


AntialiasOption = Annotated[
    bool,
    typer.Option(
        "--antialias/--no-antialias",
        help="Resize frames with antialiasing like PIL (as CLIP was trained); --no-antialias: the VLM-RM "
        "reference code's plain bicubic resize, for runs that must compare with the paper.",
    ),
]
"""``--antialias/--no-antialias`` of ``score``, ``evaluate`` and ``sweep`` (``load_model(antialias=...)``)."""


RewardKindOption = Annotated[
    Optional[str],
    typer.Option(
        "--reward-kind",
        help="A registered reward kind (vlmreward reward-kinds lists them), an installed plugin's, or "
        "package.module:ClassName; default: the kind the prompts select (the goal-baseline reward, or the softmax "
        "reward with --negative).",
        show_default=False,
    ),
]
ParamOption = Annotated[
    Optional[list[str]],
    typer.Option("--param", help="KEY=VALUE parameter of --reward-kind (a YAML value; repeat).", show_default=False),
]


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``--param KEY=VALUE`` options as a mapping (values read as YAML: ``0.5``, ``true``, ``[a, b]``).

    Raises:
        InvalidParameterError: an item without ``=`` or with an empty key.
    """
    from vlmreward.config import parse_value

    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise InvalidParameterError(f"--param expects KEY=VALUE (e.g. --param scale=2); got {item!r}.")
        params[key.strip()] = parse_value(text)
    return params


class Runtime(str, Enum):
    """``--runtime`` choices (:data:`vlmreward.models.registry.RUNTIMES`)."""

    torch = "torch"
    onnx = "onnx"


class Quantize(str, Enum):
    """``--quantize`` choices (:data:`vlmreward.models.onnx.QUANTIZE_MODES`)."""

    int8 = "int8"


RuntimeOption = Annotated[
    Runtime,
    typer.Option(
        "--runtime", "--backend",
        help="What runs the vision tower: torch, or onnx (ONNX Runtime; exported once and cached, "
        "needs pip install 'vlmreward\\[onnx]'). --backend is its former name.",
    ),
]
QuantizeOption = Annotated[
    Optional[Quantize],
    typer.Option(help="With --runtime onnx: quantise the weights (int8).", show_default="none (float32)"),
]


def model_spec(
    name: str,
    device: str | None,
    dtype: str | None,
    resize: Resize,
    antialias: bool,
    checkpoint: Path | None,
    runtime: Runtime = Runtime.torch,
    quantize: Quantize | None = None,
    truncate: bool = False,
    batch_size: int | str = DEFAULT_BATCH_SIZE,
) -> ModelSpec:
    """The :class:`~vlmreward.models.spec.ModelSpec` of the model options every command shares."""
    return ModelSpec(
        name, device=device or AUTO_DEVICE, dtype=dtype, resize=resize.value, antialias=antialias,
        checkpoint=os.fspath(checkpoint) if checkpoint is not None else None, runtime=runtime.value,
        quantize=quantize.value if quantize is not None else None, truncate=truncate, batch_size=batch_size,
    )


def parse_batch_size(value: str | None) -> int | str | None:
    """``--batch-size``: None (not given), a number ≥ 1, or ``"auto"`` (:mod:`vlmreward.models.autotune`).

    Raises:
        InvalidParameterError: anything else.
    """
    if value is None or value == AUTO:
        return value
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise InvalidParameterError(f"--batch-size must be a number of frames ≥ 1 or {AUTO!r}; got {value!r}.")
    return number
