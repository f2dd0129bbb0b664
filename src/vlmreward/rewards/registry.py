"""The reward-kind registry: one name per reward kind, its parameters, and one builder for all.

A reward kind is a class (or a builder function) registered under one name with the pydantic
model of its parameters (:class:`~vlmreward.rewards.params.RewardParams`) and everything the
commands need to know about it (:class:`RewardKind`): whether it needs a vision-language model
(``model="required" | "optional" | "none"``) and of which family, whether it scores each frame
against its episode's goal (``goals=True``), what one reward is a function of (``mode``), its
display name, its command-line shorthands and sweep parameter
(:mod:`vlmreward.rewards.shorthands`), and which prompts choose it when no kind is named
(``selected_by``; :mod:`vlmreward.rewards.selection`). Run configs (``reward: {kind: NAME, ...}``),
``vlmreward score/evaluate/sweep --reward-kind NAME --param KEY=VALUE``, goal-conditioned runs
and the Ray reward service all build rewards through :func:`build_reward`; error messages name
the parameters from the model. No module outside :mod:`vlmreward.rewards` names a built-in kind.

Where a kind comes from, first match wins (:func:`reward_kind`):

1. the kinds registered with :func:`register` (vlmreward's own: ``goal_baseline``,
   ``softmax_threshold``, ``goal_family_softmax``, ``vqa``, ``vqa_contrastive``,
   ``episode_video``, ``window_video``, ``episode_info_oracle``, ``token_progress``, ``generative_value``,
   ``progress_info_oracle``, ``preference``, ``cartpole_pixel_oracle``, ``ground_truth``, ``custom``; ``goal_state_oracle`` comes through vlmreward's own entry point);
2. ``"package.module:ClassName"``: the class is imported (it needs a ``Params`` attribute, a
   :class:`RewardParams` subclass, or a :func:`register` decorator);
3. the ``vlmreward.rewards`` entry-point group of installed distributions
   (``[project.entry-points."vlmreward.rewards"] my_kind = "my_package.module:MyReward"``).

Adding a kind is one file with one decorator; ``docs/extending.md`` walks through an example that
the tests run (``tests/plugins/``).
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Annotated, Any, Callable, Literal, Mapping, Optional, Sequence, get_args

from pydantic import AfterValidator, BaseModel, Field, ValidationError, create_model

from vlmreward._importing import import_object
from vlmreward.config.errors import describe_errors
from vlmreward.errors import InvalidParameterError, VLMRewardError
from vlmreward.models.spec import ModelSpec
from vlmreward.rewards.base import is_learned
from vlmreward.rewards.params import NoParams, RewardParams
from vlmreward.rewards.shorthands import PROMPT_ROLES, Shorthand, SweepParameter

__all__ = [
    "ENTRY_POINT_GROUP",
    "ModelRequirement",
    "ModelFamily",
    "RewardMode",
    "RewardKind",
    "RewardContext",
    "UnknownRewardKindError",
    "register",
    "register_kind",
    "reward_kind",
    "reward_kinds",
    "builtin_reward_kinds",
    "is_registered",
    "build_reward",
    "validate_params",
    "loaded_kinds",
    "shorthands",
]

ENTRY_POINT_GROUP = "vlmreward.rewards"
"""Entry-point group that installed packages add reward kinds to."""

ModelRequirement = Literal["required", "optional", "none"]
ModelFamily = Literal["contrastive", "generative", "video"]
"""What model a kind scores with: CLIP/SigLIP embeddings, a generative VLM's tokens, a video-language model."""
RewardMode = Literal["frame", "clip", "episode", "prefix"]
"""What one reward is a function of: a frame, a window of frames, a whole episode, an episode's prefix."""

_BUILTIN_MODULES = (
    "vlmreward.rewards.goal_baseline",
    "vlmreward.rewards.softmax_threshold",
    "vlmreward.rewards.goal_family",
    "vlmreward.rewards.oracles",
    "vlmreward.rewards.vqa",
    "vlmreward.rewards.video",
    "vlmreward.rewards.progress",
    "vlmreward.rewards.value",
    "vlmreward.rewards.preference",
)
"""The modules of :mod:`vlmreward.rewards` that register kinds when imported."""


class UnknownRewardKindError(VLMRewardError, LookupError):
    """A reward kind that is neither registered, importable as ``package.module:Class``, nor an entry point."""


@dataclass(frozen=True)
class RewardContext:
    """What a goal-conditioned reward needs besides its parameters (from a run's ``goals`` section).

    Attributes:
        family: the :class:`~vlmreward.goals.GoalFamily` (None: the reward's default).
        negatives: ``"all"``, ``"same_template"`` or ``"k_sampled"``.
        k: negatives per goal with ``k_sampled``.
        types: restrict the goals to these types.
        seed: seed of sampled negatives.
    """

    family: Any = None
    negatives: str = "all"
    k: Optional[int] = None
    types: Optional[Sequence[str]] = None
    seed: int = 0


@dataclass(frozen=True)
class RewardKind:
    """One registered reward kind.

    Attributes:
        name: the kind's one spelling (``reward.kind`` in configs, ``--reward-kind``).
        factory: the reward class, or a builder ``(params, model, context) -> reward``.
        params: its parameters' model (a :class:`RewardParams` subclass).
        model: ``"required"`` (a loaded vision-language model is passed first), ``"optional"``
            (passed as ``model=`` when given) or ``"none"``.
        goals: whether it scores each frame against its episode's goal (a goal family).
        origin: ``"built-in"``, ``"entry point"`` or ``"dotted path"``.
        builder: ``factory`` is a builder function ``(params, model=..., context=...)``, not a class.
        display: its name in tables, reports and messages (``"goal-baseline"``); default: ``name``
            with spaces for underscores.
        shorthands: the command-line options it declares (:class:`~vlmreward.rewards.shorthands.Shorthand`).
        sweep: the parameter ``evaluate`` and ``sweep`` vary, or None.
        family: the model family it scores with (None: no model).
        mode: what one reward is a function of (:data:`RewardMode`).
        selected_by: the prompt roles that choose this kind when no ``--reward-kind`` is given
            (``("goal",)`` for the default, ``("goal", "negatives")`` for the softmax reward,
            ``("goals",)`` for per-frame goals); None: only by name. The most specific match wins.
        environment_reward: a run with it trains on the environment's own reward (the kind's
            reward is logged beside it, added with weight 0).
    """

    name: str
    factory: Callable[..., Any]
    params: type[RewardParams] = NoParams
    model: ModelRequirement = "required"
    goals: bool = False
    origin: str = "built-in"
    builder: bool = False
    display: str = ""
    shorthands: tuple[Shorthand, ...] = ()
    sweep: Optional[SweepParameter] = None
    family: Optional[ModelFamily] = None
    mode: RewardMode = "frame"
    selected_by: Optional[tuple[str, ...]] = None
    environment_reward: bool = False

    def __post_init__(self) -> None:
        for field, value, allowed in (("family", self.family, (None, *get_args(ModelFamily))),
                                      ("mode", self.mode, get_args(RewardMode))):
            if value not in allowed:
                raise InvalidParameterError(f"reward kind {self.name!r}: {field}={value!r}; use one of {allowed}.")
        if self.sweep is not None and self.sweep.param not in self.params.model_fields:
            raise InvalidParameterError(
                f"reward kind {self.name!r}: its sweep parameter {self.sweep.param!r} is not one of its parameters "
                f"({', '.join(self.params.model_fields) or 'none'})."
            )

    @property
    def display_name(self) -> str:
        """``display``, or the name with spaces for underscores."""
        return self.display or self.name.replace("_", " ")

    @property
    def prompts(self) -> tuple[str, ...]:
        """The prompt roles it takes (:data:`~vlmreward.rewards.shorthands.PROMPT_ROLES` among its parameters)."""
        return tuple(role for role in PROMPT_ROLES if role in self.params.model_fields)

    @property
    def learned(self) -> bool:
        """Whether its reward is learned during training (its class declares ``learned = True``, :func:`is_learned`)."""
        return is_learned(self.factory)

    def takes(self, param: str) -> bool:
        """Whether ``param`` is one of its parameters."""
        return param in self.params.model_fields

    def requires(self, param: str) -> bool:
        """Whether ``param`` is one of its parameters without a default."""
        field = self.params.model_fields.get(param)
        return field is not None and field.is_required()

    def config_model(self) -> type[BaseModel]:
        """The pydantic model of a config's ``reward`` section: ``kind`` plus the parameters."""
        return _config_model(self.name, self.params)

    def build(self, params: RewardParams, model: Any = None, context: RewardContext | None = None) -> Any:
        """Build the reward from validated ``params``.

        A class with a ``from_params(params, model=..., context=...)`` classmethod is built by it;
        any other factory is called with the model first (``model="required"``), as ``model=``
        (``"optional"``, when given), or without it, and the parameters as keywords.
        """
        context = context or RewardContext()
        if self.model == "required" and model is None:
            raise InvalidParameterError(
                f"reward kind {self.name!r} scores frames with a vision-language model; give one (model.name in a "
                "config, --model on the command line)."
            )
        builder = self.factory if self.builder else getattr(self.factory, "from_params", None)
        if builder is not None:
            return builder(params, model=model, context=context)
        kwargs = params.model_dump()
        if self.model == "required":
            return self.factory(model, **kwargs)
        if self.model == "optional" and model is not None:
            return self.factory(model=model, **kwargs)
        return self.factory(**kwargs)


@lru_cache(maxsize=None)
def _config_model(name: str, params: type[RewardParams]) -> type[BaseModel]:
    title = "".join(part.title() for part in name.replace(":", "_").replace(".", "_").split("_") if part)
    return create_model(  # type: ignore[call-overload]
        f"{title}RewardConfig", __base__=params, kind=(Literal[name], ...),
        server=(Annotated[Optional[str], AfterValidator(_server_address)], Field(None, description=SERVER_HELP)),
    )


def _server_address(value: Optional[str]) -> Optional[str]:
    if value is not None and not re.fullmatch(r"ray|http://[^\s/:]+(:\d+)?/?", value):
        raise ValueError(f"{value!r} is not a reward server: give http://HOST:PORT (what `vlmreward serve` prints) or 'ray'")
    return value


SERVER_HELP = (
    "where the reward is scored: None (here), a reward server's http://HOST:PORT (`vlmreward serve CONFIG`), or 'ray' "
    "(reward replicas as Ray actors started by the run); every kind can be served"
)
"""``reward.server`` of every kind's config section (:mod:`vlmreward.distributed.server`)."""


_REGISTRY: dict[str, RewardKind] = {}
_builtins_loaded = False


def register_kind(kind: RewardKind) -> RewardKind:
    """Add ``kind`` to the registry (replacing a kind of the same name); returns it."""
    _REGISTRY[kind.name] = kind
    return kind


def register(
    name: str, params: type[RewardParams] = NoParams, *, model: ModelRequirement = "required", goals: bool = False,
    **declared: Any,
) -> Callable[[Any], Any]:
    """Class decorator: register the class as reward kind ``name`` with parameters ``params``.

    ``declared`` are the other :class:`RewardKind` fields (``display``, ``shorthands``, ``sweep``,
    ``family``, ``mode``, ``selected_by``, ``environment_reward``).

    Sets ``cls.kind = name`` and ``cls.Params = params`` (so ``"package.module:Class"`` finds
    them too). Example::

        class Params(RewardParams):
            goal: Prompts
            scale: PositiveFloat = 1.0

        @register("scaled_cosine", Params)
        class ScaledCosineReward(VLMReward): ...
    """
    if model not in ("required", "optional", "none"):
        raise InvalidParameterError(f"model={model!r}: use 'required', 'optional' or 'none'.")

    def decorate(cls: Any) -> Any:
        cls.kind = name
        cls.Params = params
        register_kind(RewardKind(name, cls, params, model, goals, **declared))
        return cls

    return decorate


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)


def _entry_points() -> dict[str, Any]:
    return _entry_points_on(tuple(sys.path))


@lru_cache(maxsize=8)
def _entry_points_on(path: tuple[str, ...]) -> dict[str, Any]:
    """The group's entry points of the distributions on ``path`` (scanned once per ``sys.path``:
    every command line built asks for them, and a scan reads every installed distribution)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _kind_of_object(name: str, obj: Any, origin: str) -> RewardKind:
    if isinstance(obj, RewardKind):
        return dataclasses.replace(obj, name=name, origin=origin)
    params = getattr(obj, "Params", None)
    if not (isinstance(params, type) and issubclass(params, RewardParams)):
        raise UnknownRewardKindError(
            f"reward kind {name!r} names {getattr(obj, '__qualname__', obj)!r}, which declares no parameters: give the "
            "class a Params attribute (a vlmreward.rewards.params.RewardParams subclass) or the @register decorator."
        )
    registered = _REGISTRY.get(getattr(obj, "kind", None) or "")
    if registered is not None and registered.factory is obj:
        return dataclasses.replace(registered, name=name, origin=origin)
    model = getattr(obj, "model_requirement", "required")
    declared = {field: getattr(obj, attr) for field, attr in _CLASS_DECLARATIONS.items() if hasattr(obj, attr)}
    return RewardKind(name, obj, params, model, bool(getattr(obj, "goal_info_key", None)), origin, **declared)


_CLASS_DECLARATIONS = {
    "display": "display_name", "shorthands": "shorthands", "sweep": "sweep_parameter", "family": "model_family",
    "mode": "reward_mode", "selected_by": "selected_by", "environment_reward": "environment_reward",
}
"""What a plugin class declares as attributes: :class:`RewardKind` field → class attribute."""


def reward_kind(name: str) -> RewardKind:
    """The reward kind called ``name`` (registered, ``"package.module:Class"`` or an entry point).

    Raises:
        UnknownRewardKindError: none of the three; the message lists the known kinds.
    """
    _load_builtins()
    if not isinstance(name, str) or not name.strip():
        raise UnknownRewardKindError(f"reward kind must be a name; got {name!r}. Known kinds: {', '.join(reward_kinds())}.")
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" in name:
        try:
            obj = import_object(name)
        except (ImportError, AttributeError, ValueError) as err:
            raise UnknownRewardKindError(f"reward kind {name!r} cannot be imported ({err}); give 'package.module:ClassName'.") from None
        return register_kind(_kind_of_object(name, obj, "dotted path"))
    found = _entry_points().get(name)
    if found is not None:
        try:
            obj = found.load()
        except Exception as err:  # noqa: BLE001 - a broken plugin is the user's to fix; say which
            raise UnknownRewardKindError(f"reward kind {name!r} (entry point {found.value!r}) cannot be loaded: {err}") from None
        return register_kind(_kind_of_object(name, obj, "entry point"))
    raise UnknownRewardKindError(
        f"{name!r} is not a reward kind; use one of {', '.join(map(repr, reward_kinds()))}, or "
        "'package.module:ClassName' of a class with a Params model."
    )


def reward_kinds() -> tuple[str, ...]:
    """Names of the known kinds: registered ones and the entry points of installed packages."""
    _load_builtins()
    return tuple(dict.fromkeys([*_REGISTRY, *_entry_points()]))


def loaded_kinds() -> tuple[RewardKind, ...]:
    """Every known kind, loaded: the registered ones and the installed entry points. A plugin that
    cannot be loaded is left out here (``vlmreward reward-kinds`` says why)."""
    kinds = []
    for name in reward_kinds():
        try:
            kinds.append(reward_kind(name))
        except VLMRewardError:
            continue
    return tuple(kinds)


def shorthands() -> tuple[Shorthand, ...]:
    """The shorthand options of every known kind, one per option (the first declaration wins)."""
    seen: dict[str, Shorthand] = {}
    for kind in loaded_kinds():
        for shorthand in kind.shorthands:
            seen.setdefault(shorthand.option, shorthand)
    return tuple(seen.values())


def is_registered(name: Any) -> bool:
    """Whether ``name`` is a kind registered in this process (no import, no entry-point scan)."""
    return isinstance(name, str) and name in _REGISTRY


def builtin_reward_kinds() -> tuple[str, ...]:
    """The kinds vlmreward itself provides: those its modules register and its own entry points
    (third-party entry points are left alone until a config or command names them)."""
    _load_builtins()
    own = [name for name, ep in _entry_points().items() if ep.value.startswith("vlmreward.")]
    return tuple(dict.fromkeys([*(k for k, v in _REGISTRY.items() if v.origin == "built-in"), *own]))


def validate_params(kind: RewardKind | str, params: Mapping[str, Any] | RewardParams | None) -> RewardParams:
    """``params`` validated by the kind's parameters model.

    Raises:
        InvalidParameterError: a parameter unknown to the kind, missing or out of range; the
            message names each one and the kind's parameters.
    """
    kind = reward_kind(kind) if isinstance(kind, str) else kind
    if isinstance(params, kind.params):
        return params
    try:
        return kind.params.model_validate(dict(params or {}))
    except ValidationError as err:
        allowed = ", ".join(kind.params.model_fields) or "none"
        raise InvalidParameterError(
            f"reward kind {kind.name!r}: {describe_errors(err, kind.params, unknown='unknown parameter')} (its parameters: {allowed})."
        ) from None


def build_reward(
    kind: str,
    params: Mapping[str, Any] | RewardParams | None = None,
    model: Any = None,
    context: RewardContext | None = None,
) -> Any:
    """Build a reward of ``kind``: the one function every command uses.

    Args:
        kind: a registered name, ``"package.module:Class"`` or an entry point's name.
        params: its parameters (a mapping, validated here, or an instance of its ``Params``).
        model: a loaded :class:`~vlmreward.models.base.VisionLanguageModel`, or a
            :class:`~vlmreward.models.spec.ModelSpec` (loaded here) for kinds that need one.
        context: the goal family and its negatives, for goal-conditioned kinds.

    Returns:
        The reward model (``__call__(frames) -> float32 [N]``; embedding kinds also ``from_embeddings``).

    Raises:
        UnknownRewardKindError: an unknown kind.
        InvalidParameterError: bad parameters, or no model for a kind that needs one.
        PromptError, ModelNotFoundError, ModelNotAvailableError: from the reward and model loading.
    """
    spec = reward_kind(kind)
    validated = validate_params(spec, params)
    if isinstance(model, ModelSpec):
        model = model.load() if spec.model != "none" else None
    return spec.build(validated, model=model, context=context)
