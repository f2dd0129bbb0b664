"""What travels to a reward replica: a picklable recipe that builds the reward there, once.

A reward model holds a loaded VLM (hundreds of MB to GB, on a device) and cannot travel to a Ray
actor; what travels is a *reward factory*: any picklable callable with no arguments that returns a
:class:`~vlmreward.rewards.base.RewardModel`. A replica calls it once in its constructor (load the
model once, embed the prompts once) and again after a restart.

:class:`RewardSpec` is the factory for the common case, ``REWARD(load_model(MODEL, ...), **kwargs)``;
``vlmreward train`` passes ``functools.partial(build_reward_model, config)`` instead, so that a
replica builds exactly what a single-process run would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from vlmreward._importing import import_object
from vlmreward.errors import InvalidParameterError

if TYPE_CHECKING:
    from vlmreward.rewards.base import RewardModel

__all__ = ["RewardSpec", "RewardFactory", "describe_factory"]

RewardFactory = Callable[[], "RewardModel"]
"""A picklable callable with no arguments that builds a reward model (called on the replica)."""


@dataclass(frozen=True)
class RewardSpec:
    """A reward factory: ``reward(load_model(model, **load_kwargs), **kwargs)``, built where it is called.

    Attributes:
        reward: the reward class or factory: a name exported by :mod:`vlmreward.rewards`
            (``"GoalBaselineReward"``, ``"SoftmaxThresholdReward"``) or ``"package.module:callable"``
            (``"vlmreward.rewards.oracles:CartPolePixelReward"``).
        kwargs: its keyword arguments (``goal``, ``baseline``, ``alpha``, ...).
        model: the name :func:`vlmreward.load_model` takes (hub id, directory, ``open_clip:...``);
            None for rewards without a VLM (then ``reward(**kwargs)``). The loaded model is passed
            as the first positional argument.
        load_kwargs: keyword arguments of :func:`vlmreward.load_model` (``device``, ``dtype``,
            ``resize``, ``backend``, ...); ``device="auto"`` picks CUDA when the replica sees a GPU.
        batch_size: frames per forward pass of the vision tower (bounds the replica's memory).

    Example:
        ``RewardSpec("GoalBaselineReward", {"goal": "a pole upright", "baseline": "a pole", "alpha": 0.5},
        model="openai/clip-vit-base-patch32", load_kwargs={"device": "auto", "dtype": "bf16"})``

    Raises:
        InvalidParameterError: ``reward`` is neither a :mod:`vlmreward.rewards` name nor
            ``"package.module:callable"`` (checked here, before anything travels).
    """

    reward: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    model: Optional[str] = None
    load_kwargs: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int = 64

    def __post_init__(self) -> None:
        if ":" not in self.reward:
            import vlmreward.rewards as rewards

            if self.reward not in rewards.__all__:
                raise InvalidParameterError(
                    f"reward {self.reward!r} is not in vlmreward.rewards ({', '.join(rewards.__all__)}); "
                    "give one of those names or 'package.module:callable'."
                )

    def __call__(self) -> "RewardModel":
        """Load the model (if any) and build the reward: the prompts are embedded here, once.

        Raises:
            ModelNotFoundError, ModelNotAvailableError, PromptError, InvalidParameterError: from
                :func:`vlmreward.load_model` and the reward classes.
            ImportError, AttributeError: a ``"package.module:callable"`` that cannot be imported.
        """
        if ":" in self.reward:
            factory = import_object(self.reward)
        else:
            import vlmreward.rewards as rewards

            factory = getattr(rewards, self.reward)
        if self.model is None:
            return factory(**self.kwargs)
        import torch

        from vlmreward import load_model

        load_kwargs = dict(self.load_kwargs)
        if load_kwargs.get("device", "cpu") == "auto":
            load_kwargs["device"] = "cuda" if torch.cuda.is_available() else "cpu"
        vlm = load_model(self.model, **load_kwargs)
        vlm.batch_size = int(self.batch_size)
        return factory(vlm, **self.kwargs)

    def __str__(self) -> str:
        return f"reward {self.reward}" + (f" with model {self.model!r}" if self.model else "")


def describe_factory(factory: RewardFactory) -> str:
    """How messages name a reward factory: ``"reward GoalBaselineReward with model 'DIR'"``, a
    ``partial``'s function, or the callable's qualified name."""
    if isinstance(factory, RewardSpec):
        return str(factory)
    func = getattr(factory, "func", factory)  # functools.partial
    name = getattr(func, "__qualname__", None) or type(func).__name__
    return f"reward factory {getattr(func, '__module__', '?')}.{name}"
