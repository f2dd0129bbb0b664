"""Make ``torchvision`` importable next to a PyTorch build it was not compiled for.

PyPI's torchvision wheels carry CUDA kernels; next to a CPU-only PyTorch their compiled extension
fails to load, torchvision then registers fake kernels for ``torchvision::nms`` and
``torchvision::qnms`` on operators that were never defined, and ``import torchvision`` raises
``RuntimeError: operator torchvision::nms does not exist``. ``open_clip`` (through ``timm``) and
``transformers`` import torchvision whenever it is installed, so both break with it.

:func:`ensure_torchvision_importable` imports torchvision; only if that fails with exactly this
error does it define the two operator schemas (no kernels: the detection ops stay unusable, which
nothing here needs) and import it again. A working torchvision is left untouched.
"""

from __future__ import annotations

import importlib.util
import sys

import torch

_SHIM_LIBRARY: torch.library.Library | None = None  # kept alive: dropping it unregisters the ops


def ensure_torchvision_importable() -> None:
    """Import torchvision, defining its missing operator schemas first if that is what it needs.

    Does nothing when torchvision is not installed or already imported.

    Raises:
        RuntimeError: torchvision fails to import for any other reason.
    """
    global _SHIM_LIBRARY
    if "torchvision" in sys.modules or importlib.util.find_spec("torchvision") is None:
        return
    try:
        import torchvision  # noqa: F401
    except RuntimeError as err:
        if "torchvision::nms does not exist" not in str(err):
            raise
        for module in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[module]
        _SHIM_LIBRARY = torch.library.Library("torchvision", "DEF")
        _SHIM_LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _SHIM_LIBRARY.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        import torchvision  # noqa: F401,F811
