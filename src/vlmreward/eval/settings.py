"""The rewards an evaluation or a sweep scores: reward settings and how each is built.

A :class:`RewardSetting` is a registered reward kind (:mod:`vlmreward.rewards.registry`) with the
parameters of one curve or one row: the value of the kind's declared sweep parameter
(:class:`~vlmreward.rewards.shorthands.SweepParameter`, ``α`` of the goal-baseline reward, ``τ``
of the softmax reward, a plugin's own) and any ``--param`` values. :func:`reward_settings` turns a
command's options into settings through the registry (:mod:`vlmreward.rewards.selection`), and
:func:`build_setting` builds each with the prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from vlmreward.errors import InvalidParameterError
from vlmreward.rewards.registry import RewardContext, RewardKind, build_reward, reward_kind
from vlmreward.rewards.shorthands import PROMPT_ROLES, format_value
from vlmreward.rewards.selection import check_value, choose_kind, gather_params, given_roles, is_given, option_of

__all__ = ["RewardSetting", "reward_settings", "scores_per_frame_goals", "settings_of", "sweep_values", "build_setting"]


@dataclass(frozen=True)
class RewardSetting:
    """One reward to evaluate: a reward kind and the parameters of this curve (without prompts).

    Attributes:
        kind: a reward kind's name (registered, an entry point or ``package.module:Class``).
        params: ``(key, value)`` pairs, sorted by key.
    """

    kind: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def spec(self) -> RewardKind:
        """The registered :class:`~vlmreward.rewards.registry.RewardKind`."""
        return reward_kind(self.kind)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of parameter ``key`` in this setting."""
        return dict(self.params).get(key, default)

    def _only_sweep_value(self) -> bool:
        sweep = self.spec.sweep
        return sweep is not None and self.spec.selected_by is not None and [k for k, _ in self.params] == [sweep.param]

    @property
    def name(self) -> str:
        """Display name: ``"α = 0.5"``, ``"τ = 0.01"`` (a default kind's sweep value), or the kind's
        display name and its parameters (``"scaled cosine, scale = 2"``)."""
        sweep = self.spec.sweep
        if self._only_sweep_value():
            return sweep.label(self.params[0][1])  # type: ignore[union-attr]
        values = [sweep.label(v) if sweep is not None and k == sweep.param else f"{k} = {format_value(v)}" for k, v in self.params]
        return ", ".join([self.spec.display_name, *values])

    @property
    def ascii_name(self) -> str:
        """``"alpha=0.5"``, ``"temperature=0.01"`` or ``"KIND[,key=value...]"`` (CSV-friendly)."""
        if self._only_sweep_value():
            return self.spec.sweep.ascii_label(self.params[0][1])  # type: ignore[union-attr]
        return ",".join([self.kind, *(f"{k}={format_value(v)}" for k, v in self.params)])


def sweep_values(
    kind: RewardKind, given: Sequence[Any] | None, roles: set[str], *, grid: bool = False, notes: list[str] | None = None,
    where: str = "",
) -> list[Any]:
    """The values of the kind's sweep parameter to evaluate.

    Args:
        kind: a kind with a ``sweep`` parameter.
        given: the values from the command line (each validated by the kind's parameter), or None.
        roles: the prompt roles given (``needs`` is checked against them).
        grid: ``sweep``'s defaults (the declared grid) rather than ``evaluate``'s (the
            parameter's default, or ``with_needs`` when ``needs`` is given).
        notes: with ``grid``, values that need a missing prompt are dropped with a note here
            instead of an error.
        where: what ``notes`` name (``"prompt set 'plain'"``).

    Raises:
        InvalidParameterError: a value out of range, or one that needs a prompt not given.
    """
    sweep = kind.sweep
    assert sweep is not None
    option = option_of(sweep.param)
    if given:
        values = [check_value(kind, sweep.param, v, option) for v in dict.fromkeys(given)]
    elif grid:
        values = list(sweep.grid)
    elif sweep.needs is not None and sweep.needs in roles and sweep.with_needs:
        values = list(sweep.with_needs)
    else:
        values = [kind.params.model_fields[sweep.param].get_default(call_default_factory=True)]
    if sweep.needs is None or sweep.needs in roles:
        return values
    usable = [v for v in values if v == sweep.neutral]
    if len(usable) == len(values):
        return values
    if notes is None:
        bad = next(v for v in values if v != sweep.neutral)
        raise InvalidParameterError(
            f"{sweep.label(bad)} needs {option_of(sweep.needs)} (the {kind.display_name} reward works without it only at "
            f"{sweep.label(sweep.neutral)}; e.g. {option_of(sweep.needs)} 'a pole on a cart')."
        )
    notes.append(f"{where} has no {sweep.needs}, so only {sweep.label(sweep.neutral)} was evaluated for it.")
    return usable or [sweep.neutral]


def settings_of(
    kind: RewardKind, given: Mapping[str, Any], params: Mapping[str, Any] | None = None, *, per_frame_goals: bool = False,
    grid: bool = False, notes: list[str] | None = None, where: str = "",
) -> list[RewardSetting]:
    """The settings of one kind: one per value of its sweep parameter (unless ``params`` fixes it),
    each with the other given options and ``params``.

    Raises:
        InvalidParameterError: see :func:`sweep_values` and
            :func:`~vlmreward.rewards.selection.gather_params`.
    """
    sweep = kind.sweep
    varied = sweep.param if sweep is not None and sweep.param not in (params or {}) else None
    one = {k: _one_value(kind, k, v) for k, v in given.items() if k != varied and kind.takes(k)}
    fixed = gather_params(kind, one, params)
    fixed = {k: v for k, v in fixed.items() if k not in PROMPT_ROLES}
    if varied is None:
        return [RewardSetting(kind.name, tuple(sorted(fixed.items())))]
    raw = given.get(varied)
    values = sweep_values(kind, [raw] if is_given(raw) and not isinstance(raw, (list, tuple)) else raw,
                          given_roles(given, per_frame_goals), grid=grid, notes=notes, where=where)
    return [RewardSetting(kind.name, tuple(sorted({**fixed, varied: v}.items()))) for v in values]


def _one_value(kind: RewardKind, param: str, value: Any) -> Any:
    """A repeated option's values for a parameter the kind does not vary: the one value given."""
    if param in PROMPT_ROLES or not isinstance(value, (list, tuple)):
        return value
    if len(value) > 1:
        raise InvalidParameterError(
            f"{option_of(param)} takes one value with reward kind {kind.name!r} (it varies "
            f"{kind.sweep.param if kind.sweep is not None else 'no parameter'}); got {len(value)}."
        )
    return value[0] if value else None


def scores_per_frame_goals(kind_name: Optional[str], goal: Sequence[str] | None) -> bool:
    """Whether ``evaluate`` scores each frame against its own goal: no ``--goal``, and no kind named
    (``--reward-kind``) or one that reads per-frame goals (a goal dataset).

    Raises:
        UnknownRewardKindError: an unknown ``kind_name``.
    """
    return not goal and (kind_name is None or reward_kind(kind_name).goals)


def reward_settings(
    kind: Optional[str], given: Mapping[str, Any], params: Mapping[str, Any] | None = None, *, per_frame_goals: bool = False,
) -> list[RewardSetting]:
    """The settings ``evaluate`` scores for one set of prompts and options.

    Args:
        kind: ``--reward-kind``, or None for the kind the prompts select
            (:func:`~vlmreward.rewards.selection.choose_kind`).
        given: ``{"goal": [...], "baseline": [...], "alpha": [...], ...}``: ``--goal`` and the
            shorthand options (a sweep parameter's values as a list; None: not given).
        params: ``--param`` values.
        per_frame_goals: each frame is scored against its own goal (a goal dataset).

    Returns:
        One setting per value of the kind's sweep parameter (``α = 0``, or ``0 0.25 0.5 0.75 1``
        with a baseline; ``τ = 0.01``), or one.

    Raises:
        UnknownRewardKindError: an unknown ``kind``.
        InvalidParameterError: options that do not belong together or are out of range.
    """
    return settings_of(choose_kind(kind, given, per_frame_goals), given, params, per_frame_goals=per_frame_goals)


def build_setting(
    model: Any, setting: RewardSetting, prompts: Mapping[str, Sequence[str] | None], context: RewardContext | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Any:
    """The reward of a setting, built by the registry: the setting's parameters plus the prompts
    (``goal``, ``baseline``, ``negatives``) the kind takes and ``extra`` parameters (not part of
    the setting's name, e.g. a goal dataset's prompt templates).

    Raises:
        UnknownRewardKindError, InvalidParameterError, PromptError: from the registry and the reward.
    """
    spec = setting.spec
    given = {role: list(v) for role, v in prompts.items() if is_given(v) and spec.takes(role)}
    return build_reward(setting.kind, {**given, **dict(setting.params), **dict(extra or {})}, model, context)
