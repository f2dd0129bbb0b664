"""What travels to a reward replica: a picklable recipe that builds the reward there, once.

A reward model holds a loaded VLM (hundreds of MB to GB, on a device) and cannot travel to a Ray
actor; what travels is a *reward factory*: any picklable callable with no arguments that returns a
:class:`~vlmreward.rewards.base.RewardModel`. A replica calls it once in its constructor (load the
model once, embed the prompts once) and again after a restart.

:class:`RewardSpec` is the factory for the common case, a registered reward kind with its parameters
and a :class:`~vlmreward.models.spec.ModelSpec`;
``vlmreward train`` passes ``functools.partial(build_reward_model, config)`` instead, so that a
replica builds exactly what a single-process run would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from vlmreward.models.spec import ModelSpec
from vlmreward.rewards.registry import build_reward, validate_params

if TYPE_CHECKING:
    from vlmreward.rewards.base import RewardModel

__all__ = ["RewardSpec", "RewardFactory", "describe_factory"]

RewardFactory = Callable[[], "RewardModel"]
"""A picklable callable with no arguments that builds a reward model (called on the replica)."""


@dataclass(frozen=True)
class RewardSpec:
    """A reward factory: :func:`~vlmreward.rewards.registry.build_reward` of a kind, its parameters
    and a :class:`~vlmreward.models.spec.ModelSpec`, built where it is called.

    Attributes:
        kind: a reward kind's name (registered, an entry point's, or ``"package.module:ClassName"``;
            :mod:`vlmreward.rewards.registry`; ``vlmreward reward-kinds`` lists them).
        params: its parameters (``goal``, ``baseline``, ``alpha``, ...).
        model: the model to load on the replica (``device="auto"`` picks CUDA when the replica
            sees a GPU); None for kinds without a VLM.

    Example:
        ``RewardSpec(KIND, {"goal": "a pole upright", "baseline": "a pole", "alpha": 0.5},
        ModelSpec("openai/clip-vit-base-patch32", dtype="bf16"))``

    Raises:
        UnknownRewardKindError: an unknown kind; InvalidParameterError: bad parameters (both
            checked here, before anything travels).
    """

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    model: Optional[ModelSpec] = None

    def __post_init__(self) -> None:
        validate_params(self.kind, self.params)

    def __call__(self) -> "RewardModel":
        """Load the model (if any) and build the reward: the prompts are embedded here, once.

        Raises:
            ModelNotFoundError, ModelNotAvailableError, PromptError, InvalidParameterError: from
                :meth:`ModelSpec.load` and the reward kind.
        """
        return build_reward(self.kind, self.params, self.model.load() if self.model is not None else None)

    def __str__(self) -> str:
        return f"reward {self.kind}" + (f" with model {self.model.name!r}" if self.model is not None else "")


def describe_factory(factory: RewardFactory) -> str:
    """How messages name a reward factory: ``"reward GoalBaselineReward with model 'DIR'"``, a
    ``partial``'s function, or the callable's qualified name."""
    if isinstance(factory, RewardSpec):
        return str(factory)
    func = getattr(factory, "func", factory)  # functools.partial
    name = getattr(func, "__qualname__", None) or type(func).__name__
    return f"reward factory {getattr(func, '__module__', '?')}.{name}"
