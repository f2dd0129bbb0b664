"""The rewards an evaluation or a sweep scores: reward settings and how each is built.

A :class:`RewardSetting` is a registered reward kind (:mod:`vlmreward.rewards.registry`) with the
parameter that varies across a comparison: ``α`` of the goal-baseline reward, ``τ`` of the softmax
reward, or any other kind's ``--param`` values. :func:`reward_settings` turns the command-line
options into settings (refusing options that do not belong together) and :func:`build_reward`
builds each through the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from vlmreward.errors import InvalidParameterError
from vlmreward.models.base import VisionLanguageModel
from vlmreward.rewards import DEFAULT_TEMPERATURE
from vlmreward.rewards.registry import build_reward as registry_build_reward
from vlmreward.rewards.registry import reward_kind as lookup_reward_kind

__all__ = ["RewardSetting", "reward_settings", "build_reward", "DEFAULT_ALPHAS_WITH_BASELINE"]

DEFAULT_ALPHAS_WITH_BASELINE: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
"""The ``α`` curves drawn when a baseline is given and no ``α`` is."""


@dataclass(frozen=True)
class RewardSetting:
    """One reward to evaluate: a reward kind (:mod:`vlmreward.rewards.registry`) and the parameters
    that vary: the goal-baseline reward at ``alpha``, the softmax or goal-family probability at
    ``temperature``, or any other kind with its ``params`` (``--reward-kind``, ``--param``)."""

    kind: str  # a registered kind: "goal_baseline", "softmax_threshold", "goal_family_softmax", a plugin's
    alpha: float | None = None
    temperature: float | None = None
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        """Short display name: ``"α = 0.5"``, ``"τ = 0.01"``, or the kind and its parameters."""
        if self.kind == "goal_baseline":
            return f"α = {self.alpha:g}"
        if self.temperature is not None:
            return f"τ = {self.temperature:g}"
        return ", ".join([self.kind, *(f"{k} = {v}" for k, v in self.params)])

    @property
    def ascii_name(self) -> str:
        """``"alpha=0.5"``, ``"temperature=0.01"`` or ``"KIND[,key=value...]"`` (CSV-friendly)."""
        if self.kind == "goal_baseline":
            return f"alpha={self.alpha:g}"
        if self.temperature is not None:
            return f"temperature={self.temperature:g}"
        return ",".join([self.kind, *(f"{k}={v}" for k, v in self.params)])


def check_temperatures(temperatures: Sequence[float] | None) -> None:
    """Refuse a softmax temperature that is not a positive finite number (the softmax divides by it).

    Raises:
        InvalidParameterError: ``τ ≤ 0``, or not finite.
    """
    import math

    bad = [t for t in temperatures or () if not (math.isfinite(float(t)) and float(t) > 0)]
    if bad:
        raise InvalidParameterError(
            f"--temperature must be > 0 (the softmax divides the similarities by it; smaller is sharper); got {bad[0]:g}."
        )


def reward_settings(
    baseline: Sequence[str] | None,
    negatives: Sequence[str] | None,
    alphas: Sequence[float] | None = None,
    temperatures: Sequence[float] | None = None,
    kind: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> list[RewardSetting]:
    """The settings to evaluate for one set of prompts.

    With ``negatives``: the softmax probability at each temperature (default
    :data:`~vlmreward.rewards.DEFAULT_TEMPERATURE`). Otherwise the goal-baseline reward at each
    ``α``; by default ``α = 0`` without a baseline and :data:`DEFAULT_ALPHAS_WITH_BASELINE` with one.
    With another ``kind`` (``--reward-kind``): that kind with ``params``, once.

    Raises:
        InvalidParameterError: ``α > 0`` without a baseline, ``α`` or ``τ`` with the other reward,
            goal-baseline or softmax options with another kind.
        UnknownRewardKindError: an unknown ``kind``.
    """
    check_temperatures(temperatures)
    if kind is not None and kind not in ("goal_baseline", "softmax_threshold"):
        lookup_reward_kind(kind)  # unknown kinds fail here, before anything is loaded
        given = [o for o, v in (("--baseline", baseline), ("--negative", negatives), ("--alpha", alphas),
                                ("--temperature", temperatures)) if v]
        if given:
            raise InvalidParameterError(
                f"{', '.join(given)} belong(s) to the goal-baseline and softmax rewards, not to reward kind {kind!r}; "
                "give its parameters with --param KEY=VALUE."
            )
        return [RewardSetting(kind, params=tuple(sorted((params or {}).items())))]
    if params:
        raise InvalidParameterError("--param goes with --reward-kind of another kind; use --alpha, --temperature, ... here.")
    if kind == "softmax_threshold" and not negatives:
        raise InvalidParameterError("reward kind 'softmax_threshold' needs --negative prompts to compare the goal against.")
    if kind == "goal_baseline" and negatives:
        raise InvalidParameterError("--negative selects the softmax reward, but --reward-kind says goal_baseline; drop one.")
    if negatives:
        if alphas:
            raise InvalidParameterError(
                "--alpha belongs to the goal-baseline reward, but --negative selects the softmax reward; drop one."
            )
        return [RewardSetting("softmax_threshold", temperature=float(t)) for t in (temperatures or [DEFAULT_TEMPERATURE])]
    if temperatures:
        raise InvalidParameterError(
            "--temperature sets the softmax reward, which needs --negative prompts to compare the goal against."
        )
    if not alphas:
        alphas = DEFAULT_ALPHAS_WITH_BASELINE if baseline else (0.0,)
    if not baseline and any(float(a) > 0 for a in alphas):
        raise InvalidParameterError(
            "α > 0 projects onto the goal-baseline direction and needs --baseline (e.g. 'a pole on a cart')."
        )
    return [RewardSetting("goal_baseline", alpha=float(a)) for a in dict.fromkeys(alphas)]


def build_reward(
    model: VisionLanguageModel,
    setting: RewardSetting,
    goal: Sequence[str],
    baseline: Sequence[str] | None,
    negatives: Sequence[str] | None,
) -> Any:
    """The reward of a setting, built by the reward registry (the softmax one dense: ``threshold=None``).

    A kind other than goal-baseline and softmax gets the goal when its parameters include one,
    and the setting's ``params``.

    Raises:
        UnknownRewardKindError, InvalidParameterError, PromptError: from the registry and the reward.
    """
    if setting.kind == "softmax_threshold":
        params: dict[str, Any] = {"goal": list(goal), "negatives": list(negatives or []),
                                  "temperature": DEFAULT_TEMPERATURE if setting.temperature is None else setting.temperature}
    elif setting.kind == "goal_baseline":
        params = {"goal": list(goal), "baseline": list(baseline) if baseline else None, "alpha": setting.alpha or 0.0}
    else:
        fields = lookup_reward_kind(setting.kind).params.model_fields
        params = {**({"goal": list(goal)} if "goal" in fields and goal else {}), **dict(setting.params)}
    return registry_build_reward(setting.kind, params, model)
