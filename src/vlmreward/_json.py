"""JSON-safe copies of results (metrics, evaluations, dataset metadata), shared by ``rl`` and ``eval``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

__all__ = ["json_safe"]


def json_safe(value: Any, nonfinite_as_none: bool = True) -> Any:
    """JSON-serialisable copy: NumPy scalars and arrays to Python, non-finite floats to None (kept,
    as Python's ``json`` writes and reads them, with ``nonfinite_as_none=False``), tuples to lists,
    paths to strings, mapping keys to strings."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, nonfinite_as_none) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, nonfinite_as_none) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist(), nonfinite_as_none)
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return json_safe(value.item(), nonfinite_as_none)
    if isinstance(value, float) and not math.isfinite(value) and nonfinite_as_none:
        return None
    if isinstance(value, Path):
        return str(value)
    return value
