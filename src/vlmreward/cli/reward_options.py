"""The reward options of ``score``, ``evaluate``, ``sweep``, ``train`` and ``relabel``, generated
from the reward-kind registry.

A command declares one parameter ``reward_options: RewardOptions``; :func:`with_reward_options`
replaces it, each time the command line is built, by one option per shorthand that the known
kinds declare (:func:`vlmreward.rewards.registry.shorthands`: ``--baseline``, ``--negative``,
``--alpha``, ``--temperature``, ``--threshold`` of the built-in kinds, and an installed plugin's
own), and hands the command the values given as one mapping ``{param: value}``. How an option
takes values depends on the command:

* ``score``: one value each (prompts repeat);
* ``evaluate``: a kind's sweep parameter repeats (one curve per value), the rest take one value;
* ``sweep``: only the sweep parameters, each a list (the grid);
* ``config`` (``train``, ``relabel``): one value each, which becomes ``--set reward.PARAM=VALUE``.
"""

from __future__ import annotations

import inspect
import json
from typing import Annotated, Any, Callable, Literal, Optional

import typer

from vlmreward.rewards.registry import loaded_kinds, shorthands
from vlmreward.rewards.selection import option_of
from vlmreward.rewards.shorthands import Shorthand, format_value

__all__ = ["RewardOptions", "with_reward_options", "as_overrides", "Style"]

Style = Literal["score", "evaluate", "sweep", "config"]
RewardOptions = dict
"""``{param: value}`` of the shorthand options given (a list for repeated options); absent: not given."""

_PLACEHOLDER = "reward_options"


def _sweep_params() -> set[str]:
    return {k.sweep.param for k in loaded_kinds() if k.sweep is not None}


def _default_text(shorthand: Shorthand) -> Optional[str]:
    for kind in loaded_kinds():
        field = kind.params.model_fields.get(shorthand.param)
        if field is not None and shorthand in kind.shorthands and not field.is_required():
            default = field.get_default(call_default_factory=True)
            return None if default in (None, [], {}) else format_value(default)
    return None


def _own_options(signature: inspect.Signature) -> set[str]:
    names: set[str] = set()
    for param in signature.parameters.values():
        names.add("--" + param.name.replace("_", "-"))
        for meta in getattr(param.annotation, "__metadata__", ()):
            names.update(d for d in (getattr(meta, "param_decls", None) or ()) if isinstance(d, str))
            default = getattr(meta, "default", None)
            if isinstance(default, str) and default.startswith("-"):
                names.add(default)
    return names


def _parameter(shorthand: Shorthand, style: Style, swept: set[str], taken: set[str]) -> inspect.Parameter:
    repeat = shorthand.prompts or (style in ("evaluate", "sweep") and shorthand.param in swept)
    value_type = list[shorthand.type] if repeat else shorthand.type  # type: ignore[valid-type]
    decls = [shorthand.option] + ([shorthand.short] if shorthand.short and style != "config" and shorthand.short not in taken else [])
    help_text = shorthand.help + (" Repeat for one curve (row) each." if repeat and not shorthand.prompts else "")
    default = _default_text(shorthand)
    sweeps = [k.sweep for k in loaded_kinds() if k.sweep is not None and k.sweep.param == shorthand.param]
    if style == "sweep" and sweeps:  # the declared grid
        default = sweeps[0].grid_text()
    elif style == "evaluate" and sweeps and sweeps[0].needs and sweeps[0].with_needs and default is not None:
        with_needs = ", ".join(format_value(v) for v in sweeps[0].with_needs)
        default = f"{default}, or {with_needs} with {option_of(sweeps[0].needs)}"
    option = typer.Option(*decls, help=help_text, show_default=default if default is not None else False)
    return inspect.Parameter(shorthand.identifier, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[Optional[value_type], option])


class _RewardOptionCommand:
    """A typer command whose reward options are generated from the registry when the CLI is built."""

    def __init__(self, func: Callable[..., Any], style: Style) -> None:
        self._func, self._style = func, style
        self.__name__, self.__qualname__ = func.__name__, func.__qualname__
        self.__module__, self.__doc__ = func.__module__, func.__doc__

    def _shorthands(self) -> list[Shorthand]:
        own = _own_options(inspect.signature(self._func, eval_str=True))
        swept = _sweep_params()
        found = [s for s in shorthands() if s.option not in own]
        return [s for s in found if s.param in swept] if self._style == "sweep" else found

    @property
    def __signature__(self) -> inspect.Signature:  # read by typer (inspect.signature) at each build
        signature = inspect.signature(self._func, eval_str=True)
        params = list(signature.parameters.values())
        at = [p.name for p in params].index(_PLACEHOLDER)
        taken = _own_options(signature)
        swept = _sweep_params()
        generated = [_parameter(s, self._style, swept, taken) for s in self._shorthands()]
        after = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params[at + 1:]]
        return signature.replace(parameters=params[:at] + generated + after)

    @property
    def __annotations__(self) -> dict[str, Any]:  # type: ignore[override]
        return {p.name: p.annotation for p in self.__signature__.parameters.values()}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        values: RewardOptions = {}
        for shorthand in shorthands():
            value = kwargs.pop(shorthand.identifier, None)
            if value is not None and not (isinstance(value, list) and not value):
                values[shorthand.param] = value
        return self._func(*args, **kwargs, **{_PLACEHOLDER: values})


def with_reward_options(style: Style) -> Callable[[Callable[..., Any]], Any]:
    """Decorator of a command with a ``reward_options`` parameter: see the module docstring."""

    def decorate(func: Callable[..., Any]) -> Any:
        return _RewardOptionCommand(func, style)

    return decorate


def as_overrides(values: RewardOptions) -> list[str]:
    """``--set`` overrides of a config's reward section: ``["reward.alpha=0.5", 'reward.baseline=["a pole"]']``."""
    return [f"reward.{param}={json.dumps(value)}" for param, value in values.items()]
