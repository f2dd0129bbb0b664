"""Environment probes: what a labelled dataset records of one family of environments.

A probe reads an environment's simulator state by name (state variables with units), its
success labels (with their detectors and thresholds), and sets states directly for a
*scripted sweep*; ``vlmreward collect`` (:mod:`vlmreward.eval.collect`) asks
:func:`probe_for` for the probe of the environment it runs and knows no simulator itself.

A probe is registered beside its environment, by the import path of the environment class it
reads (``"package.module:ClassName"``), so registering imports neither MuJoCo nor MiniWorld:
:func:`probe_for` matches the paths against the classes of ``env.unwrapped``'s MRO, most
derived first. An environment with no registered probe gets a :class:`GenericProbe`
(observation entries as state variables, ``info["is_success"]`` as label).

Adding an environment family is one file that subclasses :class:`EnvProbe` and decorates it
with :func:`register_probe` (see ``docs/extending.md``); the probes of this package are
:mod:`~vlmreward.envs.probes.classic_control` (CartPole, MountainCarContinuous),
:mod:`~vlmreward.envs.probes.humanoid` (gymnasium's Humanoid v4/v5 and ours),
:mod:`~vlmreward.envs.probes.metaworld` (Meta-World tasks),
:mod:`~vlmreward.envs.probes.miniworld` (MiniWorldGoals) and
:mod:`~vlmreward.envs.probes.android` (AndroidOpenApp).
"""

from __future__ import annotations

import math
from typing import Any, Callable, ClassVar, Iterator, Mapping

import gymnasium as gym
import numpy as np

from vlmreward.errors import InvalidParameterError

__all__ = [
    "EnvProbe",
    "GenericProbe",
    "NoSweepError",
    "register_probe",
    "probe_for",
    "registered_probes",
    "default_env_kwargs",
    "env_name",
    "first_line_of_doc",
    "goal_env_metadata",
]


class NoSweepError(InvalidParameterError):
    """A scripted sweep asked of an environment whose probe has none."""


_PROBES: dict[str, type["EnvProbe"]] = {}


def register_probe(*env_classes: str | type) -> Callable[[type["EnvProbe"]], type["EnvProbe"]]:
    """Class decorator: ``probe`` reads environments of ``env_classes`` (and their subclasses).

    Args:
        env_classes: environment classes, or their import paths ``"package.module:QualName"``
            (a path imports nothing: it is compared with ``cls.__module__ + ":" + cls.__qualname__``).

    Raises:
        ValueError: a path without ``":"``, or a class already registered to another probe.
    """

    paths = [cls if isinstance(cls, str) else f"{cls.__module__}:{cls.__qualname__}" for cls in env_classes]
    for path in paths:
        if ":" not in path:
            raise ValueError(f"an environment class path is 'package.module:ClassName'; got {path!r}.")

    def decorate(probe: type[EnvProbe]) -> type[EnvProbe]:
        for path in paths:
            if _PROBES.get(path, probe) is not probe:
                raise ValueError(f"{path} already has the probe {_PROBES[path].__qualname__}.")
            _PROBES[path] = probe
        return probe

    return decorate


def registered_probes() -> dict[str, type["EnvProbe"]]:
    """``{environment class path: probe class}`` of every registered probe."""
    _load_builtin_probes()
    return dict(_PROBES)


def probe_for(env: gym.Env, reset_info: Mapping[str, Any]) -> "EnvProbe":
    """The probe of ``env`` (the registered probe of the most derived class of ``env.unwrapped``
    that has one), else a :class:`GenericProbe`.

    Args:
        env: the (wrapped) environment, already reset.
        reset_info: the ``info`` of that reset (the generic probe labels ``is_success`` if it is there).
    """
    _load_builtin_probes()
    for cls in type(env.unwrapped).__mro__:
        probe = _PROBES.get(f"{cls.__module__}:{cls.__qualname__}")
        if probe is not None:
            return probe(env)
    return GenericProbe(env, reports_success="is_success" in reset_info)


def default_env_kwargs(env_id: str) -> dict[str, Any]:
    """The keyword arguments of ``gymnasium.make(env_id)`` that a registered probe asks for when
    recording a dataset (:attr:`EnvProbe.env_defaults`); ``{}`` for most ids."""
    _load_builtin_probes()
    out: dict[str, Any] = {}
    for probe in _PROBES.values():
        out.update(probe.env_defaults.get(env_id, {}))
    return out


def goal_env_metadata(env: gym.Env) -> dict[str, Any]:
    """``metadata.json`` entries of a goal-conditioned environment (``unwrapped.family``, ``goal_set``,
    ``goal_list``): the goal family, which goal set, and its goals' sentences, so that ``evaluate``
    scores each frame against its goal with the family's negatives."""
    u = env.unwrapped
    return {"goal_family": u.family.to_dict(), "goal_set": u.goal_set, "goals": [g.sentence for g in u.goal_list]}


def _load_builtin_probes() -> None:
    from vlmreward.envs.probes import android, classic_control, humanoid, metaworld, miniworld  # noqa: F401, PLC0415 - they register


def env_name(env: gym.Env) -> str:
    """The environment's gymnasium id, else its class name (for messages)."""
    return env.spec.id if env.spec is not None else type(env.unwrapped).__name__


def first_line_of_doc(fn: Callable[..., Any]) -> str:
    """The first paragraph of ``fn``'s docstring on one line (a detector's definition)."""
    return " ".join((fn.__doc__ or "").split("\n\n")[0].split())


class EnvProbe:
    """What a dataset records of one family of environments; subclass and override what applies.

    Class attributes:
        family: a short name of the family, stored as ``env_family`` in the dataset metadata.
        landscape_x: the state variable a landscape of episodes plots rewards against (or None).
        sweep_landscape: ``(x, facet)`` state variables for a landscape of the scripted sweep.
        episode_reward_definition / sweep_reward_definition / sweep_description: the texts the
            dataset's metadata documents its ``gt_reward`` column and its sweep with.
        env_defaults: ``{env id: keyword arguments}`` that ``collect`` gives ``gymnasium.make``
            unless the user gives them (e.g. the Humanoid's task).
    """

    family: ClassVar[str] = "generic"
    landscape_x: str | None = None
    sweep_landscape: tuple[str | None, str | None] = (None, None)
    episode_reward_definition = "the reward env.step returned for the step that reached the frame's state"
    sweep_reward_definition = ""
    sweep_description = ""
    env_defaults: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, env: gym.Env) -> None:
        self.env = env

    # columns ---------------------------------------------------------------------------------
    def state_variables(self) -> dict[str, dict[str, str]]:
        """``{name: {"type", "unit", "description"}}``; ``type`` is ``"float"``, ``"int"``, ``"str"`` or ``"bool"``."""
        return {}

    def labels(self) -> dict[str, dict[str, Any]]:
        """``{name: {"definition", "detector", "thresholds"}}`` of the binary success labels."""
        return {}

    # values ----------------------------------------------------------------------------------
    def observe(self, obs: Any) -> None:
        """Called with the observation of every reset and step, before :meth:`state_row`."""

    def state_row(self) -> dict[str, Any]:
        """The state variables of the current state."""
        return {}

    def label_row(self, info: Mapping[str, Any]) -> dict[str, Any]:
        """The labels of the current state (``info``: the step's, ``{}`` in a sweep)."""
        return {}

    # sweeps ----------------------------------------------------------------------------------
    def sweep(self, n: int) -> Iterator[tuple[int, int, dict[str, Any]]]:
        """Set ``n`` states one after the other; yields ``(line, index, extra_row)`` after each.

        Raises:
            NoSweepError: the family has no scripted sweep (the default).
        """
        families = sorted({p.family for p in registered_probes().values() if p.sweep is not EnvProbe.sweep})
        raise NoSweepError(
            f"there is no scripted sweep for {env_name(self.env)}; scripted sweeps exist for {', '.join(families)}. "
            "Use --policy random or a run directory."
        )

    def sweep_reward(self) -> float:
        """The ground-truth reward of the state just set by :meth:`sweep`."""
        raise NotImplementedError

    def extra_metadata(self) -> dict[str, Any]:
        """Entries added to ``metadata.json``."""
        return {}

    def expert_policy(self) -> Callable[[Any], Any] | None:
        """A scripted expert ``obs → action`` of the family (``collect --policy expert``), or None."""
        return None


class GenericProbe(EnvProbe):
    """Any environment: observation entries as state variables (up to 32), ``info["is_success"]`` if reported."""

    MAX_OBSERVATION_ENTRIES = 32

    def __init__(self, env: gym.Env, reports_success: bool) -> None:
        super().__init__(env)
        space = env.observation_space
        size = int(np.prod(space.shape)) if isinstance(space, gym.spaces.Box) and space.shape is not None else 0
        self.obs_size = size if 0 < size <= self.MAX_OBSERVATION_ENTRIES else 0
        self.reports_success = reports_success
        self.last_obs: np.ndarray | None = None
        self.landscape_x = "obs_0" if self.obs_size else None

    def state_variables(self):
        return {
            f"obs_{i}": {"type": "float", "unit": "", "description": f"entry {i} of the flattened observation"}
            for i in range(self.obs_size)
        }

    def labels(self):
        if not self.reports_success:
            return {}
        return {"is_success": {"definition": "info['is_success'] as the environment reports it", "detector": None, "thresholds": {}}}

    def observe(self, obs):
        self.last_obs = obs

    def state_row(self):
        obs = np.asarray(self.last_obs, dtype=np.float64).reshape(-1) if self.last_obs is not None else None
        return {f"obs_{i}": (float(obs[i]) if obs is not None else math.nan) for i in range(self.obs_size)}

    def label_row(self, info):
        return {"is_success": bool(info.get("is_success", False))} if self.reports_success else {}
