"""Which reward kind a command's options ask for, and its parameters from those options.

Every command that takes prompts and shorthand options (``score``, ``evaluate``; ``sweep`` per
prompt set) goes through :func:`choose_kind` and :func:`gather_params`:

* without ``--reward-kind``, the kinds that declare ``selected_by`` compete: those whose roles were
  all given, the most specific first (``--goal`` alone: ``goal_baseline``; ``--goal`` and
  ``--negative``: ``softmax_threshold``; a goal dataset: ``goal_family_softmax``);
* an option the chosen kind has no parameter for is refused, in one line that says which kind it
  belongs to and why another was chosen;
* each shorthand value is validated by the kind's own parameter model, and the message names
  the option (``--alpha must be in [0, 1]; got 1.5``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Collection, Mapping, Optional

from pydantic import TypeAdapter, ValidationError

from vlmreward.errors import InvalidParameterError
from vlmreward.rewards.registry import RewardKind, loaded_kinds, reward_kind, shorthands

__all__ = ["given_roles", "default_kind", "choose_kind", "option_of", "check_value", "gather_params", "is_given"]


def is_given(value: Any) -> bool:
    """An option's value counts as given: not None and not an empty list."""
    return value is not None and not (isinstance(value, (list, tuple)) and not value)


def option_of(param: str) -> str:
    """The command-line option that sets ``param``: ``--goal``, a shorthand, or ``--param KEY=...``."""
    if param == "goal":
        return "--goal"
    for shorthand in shorthands():
        if shorthand.param == param:
            return shorthand.option
    return f"--param {param}=..."


def given_roles(given: Mapping[str, Any], per_frame_goals: bool = False) -> set[str]:
    """The roles a kind's ``selected_by`` is matched against: the parameters given, plus ``"goals"``
    for per-frame goals (a goal dataset or a goal-conditioned run)."""
    return {key for key, value in given.items() if is_given(value)} | ({"goals"} if per_frame_goals else set())


def default_kind(roles: Collection[str]) -> Optional[RewardKind]:
    """The kind chosen when none is named: of the kinds whose ``selected_by`` roles were all given,
    the one with the most roles (registration order breaks ties); None when no kind matches."""
    matches = [k for k in loaded_kinds() if k.selected_by is not None and set(k.selected_by) <= set(roles)]
    return max(matches, key=lambda k: len(k.selected_by or ()), default=None)


def _options(params: list[str]) -> str:
    return " and ".join(option_of(p) for p in params)


def _selector(kind: RewardKind) -> str:
    chosen = [r for r in kind.selected_by or () if r != "goal"]
    return _options(chosen) if chosen else "its absence"


def _foreign_error(kind: RewardKind, foreign: list[str], roles: set[str], named: bool) -> InvalidParameterError:
    owners = [k for k in loaded_kinds() if k is not kind and k.takes(foreign[0])]
    defaults = [k for k in owners if k.selected_by is not None]
    names = " and ".join(dict.fromkeys(f"the {k.display_name} reward" for k in owners[:2])) or "another reward kind"
    verb = "belong" if len(foreign) > 1 else "belongs"
    if named:
        return InvalidParameterError(
            f"reward kind {kind.name!r}: {foreign[0]}: unknown parameter ({_options(foreign)} {verb} to {names}; its "
            f"parameters: {', '.join(kind.params.model_fields) or 'none'}, given with --param KEY=VALUE)."
        )
    if not defaults:  # an option of a kind that only its name chooses
        choose = f"; choose it with --reward-kind {' or '.join(o.name for o in owners)}" if owners else ""
        return InvalidParameterError(
            f"{_options(foreign)} {verb} to {names}, but the prompts select the {kind.display_name} reward{choose}."
        )
    owner = defaults[0]
    if set(owner.selected_by or ()) <= roles:  # the owner matched too, but a more specific kind won
        theirs = [s.param for s in owner.shorthands if not kind.takes(s.param)] or foreign
        return InvalidParameterError(
            f"{_options(theirs)} belong{'s' if len(theirs) == 1 else ''} to the {owner.display_name} reward, but "
            f"{_selector(kind)} selects the {kind.display_name} reward; drop one or the other."
        )
    missing = " and ".join(_role(r) for r in owner.selected_by or () if r not in roles)
    return InvalidParameterError(
        f"{_options(foreign)} {'set' if len(foreign) > 1 else 'sets'} the {owner.display_name} reward, which needs "
        f"{missing}; give it, or drop {_options(foreign)}.".replace("....", "...")
    )


def _role(role: str) -> str:
    return "per-frame goals (a goal dataset, without --goal)" if role == "goals" else f"{option_of(role)} prompts"


def choose_kind(name: Optional[str], given: Mapping[str, Any], per_frame_goals: bool = False) -> RewardKind:
    """The kind the options ask for.

    Args:
        name: ``--reward-kind`` (a registered name, ``package.module:Class`` or an entry point), or None.
        given: parameter → value of ``--goal`` and the shorthand options (None or empty: not given).
        per_frame_goals: every frame has its own goal (a goal dataset).

    Returns:
        The :class:`~vlmreward.rewards.registry.RewardKind`.

    Raises:
        UnknownRewardKindError: an unknown ``name``.
        InvalidParameterError: no kind matches the options, or an option the kind does not take.
    """
    roles = given_roles(given, per_frame_goals)
    kind = reward_kind(name) if name is not None else default_kind(roles)
    if kind is None:
        raise InvalidParameterError(
            "no reward kind fits these options: give --goal (the goal prompt), or --reward-kind KIND "
            "(vlmreward reward-kinds lists them)."
        )
    foreign = [p for p, v in given.items() if is_given(v) and not kind.takes(p)]
    if foreign:
        raise _foreign_error(kind, foreign, roles, named=name is not None)
    return kind


@lru_cache(maxsize=None)
def _adapter(kind: RewardKind, param: str) -> TypeAdapter:
    from typing import Annotated

    field = kind.params.model_fields[param]
    return TypeAdapter(Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation)


def check_value(kind: RewardKind, param: str, value: Any, option: Optional[str] = None) -> Any:
    """``value`` validated as the kind's parameter ``param``, or one line naming ``option``.

    Raises:
        InvalidParameterError: ``--alpha must be in [0, 1]; got 1.5`` (the parameter's own validator).
    """
    try:
        return _adapter(kind, param).validate_python(value)
    except ValidationError as err:
        msg = str(err.errors()[0].get("msg", "invalid")).removeprefix("Value error, ")
        raise InvalidParameterError(f"{option or option_of(param)} {msg}.".replace("..", ".")) from None


def gather_params(kind: RewardKind, given: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The kind's parameters: the given options it takes, each validated (:func:`check_value`), and
    ``--param`` values.

    Raises:
        InvalidParameterError: a value out of range, or a parameter given both ways.
    """
    out = {p: check_value(kind, p, v) for p, v in given.items() if is_given(v) and kind.takes(p) and p != "goal"}
    if is_given(given.get("goal")) and kind.takes("goal"):
        out["goal"] = list(given["goal"]) if isinstance(given["goal"], (list, tuple)) else given["goal"]
    twice = sorted(set(out) & set(params or {}))
    if twice:
        raise InvalidParameterError(f"{twice[0]} is given twice ({option_of(twice[0])} and --param {twice[0]}=...); keep one.")
    return {**out, **dict(params or {})}
