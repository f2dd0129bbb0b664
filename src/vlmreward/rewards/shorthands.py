"""What a reward kind declares for the command line and for comparisons: its shorthand options and
the parameter a sweep varies.

A :class:`Shorthand` is a command-line option that sets one parameter: ``--alpha 0.5`` is
``--param alpha=0.5`` (``score``, ``evaluate``) and ``--set reward.alpha=0.5`` (``train``,
``relabel``). The commands generate their shorthand options from the registry
(:func:`vlmreward.rewards.registry.shorthands`): a kind declares its own, and every kind whose
parameters have a field of that name accepts it. A :class:`SweepParameter` names the parameter
``evaluate`` draws one curve per value of and ``sweep`` varies over its grid, with the symbol that
labels each value (``α = 0.5``).

The built-in kinds' shorthands are :data:`BASELINE`, :data:`NEGATIVES`, :data:`ALPHA`,
:data:`TEMPERATURE` and :data:`THRESHOLD`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from vlmreward.errors import InvalidParameterError

__all__ = [
    "PROMPT_ROLES", "Shorthand", "SweepParameter", "BASELINE", "NEGATIVES", "ALPHA", "TEMPERATURE", "THRESHOLD",
    "RESERVED_OPTIONS", "format_value",
]

PROMPT_ROLES = ("goal", "baseline", "negatives")
"""The prompt roles a kind may take (fields of its parameters); ``goal`` is every command's ``--goal``."""

RESERVED_OPTIONS = frozenset({
    "--goal", "--model", "--models", "--param", "--reward-kind", "--out", "--overwrite", "--device", "--dtype",
    "--batch-size", "--resize", "--checkpoint", "--runtime", "--backend", "--quantize", "--set", "--config",
    "--label", "--reference", "--prompts", "--k", "--x", "--facet", "--template", "--help", "--resume", "--mode",
    "--mismatch", "--progress-file", "--suite", "--only", "--lerobot", "--data", "--episodes",
})
"""Options the commands own; a shorthand may not take one of these names."""

_OPTION = re.compile(r"^--[a-z][a-z0-9-]*$")


@dataclass(frozen=True)
class Shorthand:
    """A command-line option that sets one reward parameter.

    Attributes:
        param: the parameter it sets (a field name of the kind's ``Params``).
        option: the option, ``"--alpha"``.
        help: one sentence for ``--help``.
        short: a one-letter alias (``"-b"``) where the command has it free, or None.
        prompts: the value is a list of prompts: the option repeats, one prompt each.
        type: ``float`` or ``str``: what one value on the command line is.

    Raises:
        InvalidParameterError: an option that is not ``--lower-case-words``, or one of
            :data:`RESERVED_OPTIONS`.
    """

    param: str
    option: str
    help: str
    short: Optional[str] = None
    prompts: bool = False
    type: type = float

    def __post_init__(self) -> None:
        if not _OPTION.match(self.option) or self.option in RESERVED_OPTIONS:
            raise InvalidParameterError(
                f"shorthand {self.option!r} of parameter {self.param!r}: give an option like '--scale' that no command "
                f"already has ({', '.join(sorted(RESERVED_OPTIONS))} are taken)."
            )
        if self.type not in (float, str, int):
            raise InvalidParameterError(f"shorthand {self.option}: type must be float, int or str; got {self.type!r}.")

    @property
    def identifier(self) -> str:
        """The Python name of the option in a generated command signature (``shorthand_alpha``)."""
        return "shorthand_" + self.option[2:].replace("-", "_")


@dataclass(frozen=True)
class SweepParameter:
    """The parameter a comparison varies: one curve per value in ``evaluate``, a grid in ``sweep``.

    Attributes:
        param: the parameter (a field of the kind's ``Params``), e.g. ``"alpha"``.
        symbol: how a value is labelled in tables and reports (``"α"`` gives ``α = 0.5``).
        grid: the values ``sweep`` tries when the command line gives none.
        needs: a prompt role (``"baseline"``) that every value but ``neutral`` requires, or None.
        neutral: the value that works without ``needs`` (``α = 0``).
        with_needs: ``evaluate``'s values when ``needs`` is given and the command line gives none
            (default: the parameter's default value alone).
        calibrate: ``evaluate`` also picks the value whose rewards are closest to the reference
            reward by EPIC distance (``metrics.json`` ``calibration.<param>_by_epic``), as
            Rocamonde et al. choose ``α``.
    """

    param: str
    symbol: str
    grid: tuple[float, ...]
    needs: Optional[str] = None
    neutral: float = 0.0
    with_needs: Optional[tuple[float, ...]] = None
    calibrate: bool = False

    def grid_text(self) -> str:
        """``"0, 0.5, 1"``: the grid as ``sweep`` and ``reward-kinds`` print it."""
        return ", ".join(format_value(v) for v in self.grid)

    def label(self, value: Any) -> str:
        """``"α = 0.5"``: the display name of one value."""
        return f"{self.symbol} = {format_value(value)}"

    def ascii_label(self, value: Any) -> str:
        """``"alpha=0.5"``: the CSV-friendly name of one value."""
        return f"{self.param}={format_value(value)}"


def format_value(value: Any) -> str:
    """A parameter value as tables print it: numbers with ``:g`` (``0.5``, ``2``), the rest as ``str``."""
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


BASELINE = Shorthand("baseline", "--baseline", "Baseline prompt (the scene without the goal); repeat for several.",
                     short="-b", prompts=True, type=str)
NEGATIVES = Shorthand("negatives", "--negative", "Negative prompt; any of them selects the softmax reward p(goal | frame). "
                      "Repeat for several.", short="-n", prompts=True, type=str)
ALPHA = Shorthand("alpha", "--alpha", "Goal-baseline regularisation strength in [0, 1]; > 0 needs --baseline.")
TEMPERATURE = Shorthand("temperature", "--temperature", "Softmax temperature > 0 (with --negative); smaller is sharper.")
THRESHOLD = Shorthand("threshold", "--threshold", "Turn p(goal | frame) into a 0/1 reward at this value in [0, 1].")
