"""Field types of vlmreward's schemas (pydantic): reward parameters, run configs, goal families.

Each validator's message says what is allowed (``must be in [0, 1]; got 1.5``), and
:mod:`vlmreward.config.errors` puts the key path in front of it.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Union

from pydantic import AfterValidator, BeforeValidator

__all__ = ["UnitFloat", "PositiveFloat", "FiniteFloat", "Count", "Prompt", "Prompts"]


def _unit_interval(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"must be in [0, 1]; got {value}")
    return value


def _positive(value: float) -> float:
    if not value > 0.0:
        raise ValueError(f"must be > 0; got {value}")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number; got {value}")
    return value


def _at_least_one(value: int) -> int:
    if value < 1:
        raise ValueError(f"must be an integer ≥ 1; got {value}")
    return value


def _prompt(value: str) -> str:
    if not value.strip():
        raise ValueError("a prompt is empty; give a non-empty sentence")
    return value


def _prompts(value: Any) -> Any:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return value
    raise ValueError(f"a prompt is empty or not text; give a non-empty sentence or a non-empty list of them (got {value!r})")


UnitFloat = Annotated[float, AfterValidator(_unit_interval)]
PositiveFloat = Annotated[float, AfterValidator(_positive)]
FiniteFloat = Annotated[float, AfterValidator(_finite)]
Count = Annotated[int, AfterValidator(_at_least_one)]
Prompt = Annotated[str, AfterValidator(_prompt)]
Prompts = Annotated[Union[str, list[str]], BeforeValidator(_prompts)]
"""One prompt or several (their unit embeddings are averaged)."""
