"""JSON-safe copies of results (metrics, evaluations, dataset metadata), shared by ``rl`` and ``eval``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

__all__ = ["json_safe"]


def json_safe(value: Any) -> Any:
    """JSON-serialisable copy: NumPy scalars and arrays to Python, non-finite floats to None,
    tuples to lists, paths to strings, mapping keys to strings."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return json_safe(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value
