"""The run configuration: one YAML file describes a training run.

A config names the environment, the reward (a sentence for a VLM, or a non-VLM reference reward),
the vision-language model, the stable-baselines3 algorithm and the run's bookkeeping::

    env: {id: CartPole-v1, n_envs: 4}
    reward: {kind: goal_baseline, goal: "pole vertically upright on top of the cart",
             baseline: "pole and cart", alpha: 0.5}
    model: openai/clip-vit-base-patch32          # or {name: ..., device: cuda, dtype: bf16}
    algorithm: DQN
    algorithm_kwargs: {learning_rate: 2.3e-3}
    total_steps: 50000

A goal-conditioned run adds a ``goals`` section (:class:`GoalsConfig`: the goal family, its
split into training and held-out goals, the contrastive reward's negatives) and uses the reward
kind ``goal_family_softmax`` (Baumli et al.), e.g. ``configs/miniworld_goals.yaml``.

A ``scale`` section (:class:`~vlmreward.distributed.config.ScaleConfig`) moves the same run onto
a Ray cluster: environment workers and reward-model replicas as Ray actors (``docs/ray.md``).

:func:`load_config` reads such a file, applies ``--set KEY=VALUE`` overrides and validates it into
a :class:`RunConfig`. Every problem (a missing file, bad YAML, an unknown key, a value out of
range) is a :class:`ConfigError` whose message names the key path (``reward.alpha``) and what is
allowed there.

Why one module: the run-config schema (pydantic sections), the ``--set`` overrides and the
translation of pydantic's errors into one line naming the key path are one concept, and a new
config key touches all three.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal, Optional, Union

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from vlmreward._paths import atomic_write_text
from vlmreward._yamlfile import read_yaml_file
from vlmreward.distributed.config import ScaleConfig, check_scale_fits
from vlmreward.errors import VLMRewardError
from vlmreward.models.onnx import QUANTIZE_MODES
from vlmreward.models.preprocess import ResizeMode
from vlmreward.models.registry import AUTOCAST_NAMES, DTYPE_NAMES, RUNTIMES
from vlmreward.models.spec import ModelSpec
from vlmreward.rewards.params import Count, FiniteFloat, PositiveFloat, Prompt
from vlmreward.rewards.registry import (
    RewardContext,
    UnknownRewardKindError,
    builtin_reward_kinds,
    is_registered,
    reward_kind,
    reward_kinds,
)

__all__ = [
    "ConfigError",
    "RunConfig",
    "EnvConfig",
    "ModelConfig",
    "LogConfig",
    "RewardConfig",
    "BUILTIN_REWARD_KINDS",
    "reward_config_union",
    "GoalsConfig",
    "GoalSplitConfig",
    "ScaleConfig",
    "ALGORITHMS",
    "RESUME_OVERRIDABLE",
    "load_config",
    "parse_config",
    "apply_overrides",
    "parse_value",
    "dump_config",
    "save_config",
]

ALGORITHMS: tuple[str, ...] = ("PPO", "SAC", "DQN")

RESUME_OVERRIDABLE: tuple[str, ...] = (
    "total_steps",
    "checkpoint_every",
    "keep_checkpoints",
    "checkpoint_replay_buffer",
    "eval_every",
    "eval_episodes",
    "video",
    "log",
    "model.device",
    "model.batch_size",
    "score_batch_size",
    "scale",
)
"""Keys that ``--set`` may change when a run is resumed; the rest would make it another run."""

_SET_BY_TRAINER = ("env", "policy", "seed", "verbose", "tensorboard_log", "_init_setup_model")


class ConfigError(VLMRewardError, ValueError):
    """A run configuration that cannot be read or is invalid; the message names the key and what is allowed."""


# ---------------------------------------------------------------------------------------------
# sections (their field types: vlmreward.rewards.params)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)



class EnvConfig(_Strict):
    """``env``: which environment, how many copies.

    Attributes:
        id: a gymnasium id (``CartPole-v1``, ``vlmreward/HumanoidTextured-v0``); rendered with
            ``render_mode="rgb_array"``.
        kwargs: keyword arguments of ``gymnasium.make`` (``max_episode_steps``, the environment's own).
        n_envs: sub-environments stepped together; their frames are scored in one batch.
        normalize_observations: wrap the vector environment in ``VecNormalize`` (observations only;
            the statistics are checkpointed with the model).
    """

    id: Prompt
    kwargs: dict[str, Any] = Field(default_factory=dict)
    n_envs: Count = 1
    normalize_observations: bool = False

    @field_validator("kwargs")
    @classmethod
    def _no_render_mode(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "render_mode" in value:
            raise ValueError("render_mode is always 'rgb_array' (the reward needs frames); remove it")
        return value


BUILTIN_REWARD_KINDS: tuple[str, ...] = builtin_reward_kinds()
"""The reward kinds vlmreward registers itself (:mod:`vlmreward.rewards.registry`); any other
``reward.kind`` (an entry point, or ``"package.module:ClassName"``) is looked up when a config names it."""


def reward_config_union(kinds: Iterable[str]) -> Any:
    """The ``reward`` section's type: the config models of ``kinds``, chosen by ``kind``."""
    models = tuple(reward_kind(k).config_model() for k in dict.fromkeys(kinds))
    return Annotated[Union[models], Field(discriminator="kind")]


RewardConfig = reward_config_union(BUILTIN_REWARD_KINDS)
"""A validated ``reward`` section: ``kind`` plus the parameters of that kind (its ``Params`` model)."""


class GoalSplitConfig(_Strict):
    """``goals.split``: which goals are held out from training (:meth:`vlmreward.goals.GoalFamily.split`)."""

    by: Literal["object", "kind", "colour", "template", "goal_type", "app"]
    held_out: Annotated[list[Prompt], Field(min_length=1)]


class GoalsConfig(_Strict):
    """``goals``: train one goal-conditioned agent on a goal family (Baumli et al.).

    The environment (e.g. ``vlmreward/MiniWorldGoals-v0``) gets the family and draws a training
    goal at every reset; the observation becomes ``{"image" | "state": ..., "goal": text
    embedding}`` (:class:`~vlmreward.envs.GoalObservation`; use ``policy: MultiInputPolicy``);
    ``vlmreward evaluate-policy`` reports success on training and held-out goals separately.

    Attributes:
        family: goal-family YAML file (:func:`vlmreward.goals.load_goal_family`); None for the
            default family (``configs/goals/miniworld_objects.yaml``).
        split: training vs held-out goals; None: the family file's ``split`` (if any, else all
            goals are trained on).
        types: restrict the goals to these types (``[find]``).
        negatives: the contrastive reward's negatives: ``all`` other goals, those of the
            ``same_template``, or ``k_sampled`` (``k`` per goal).
        k: negatives per goal for ``k_sampled``.
        text_encoder: what embeds the goal sentence for the policy: ``model`` (the VLM's text
            tower), ``bag_of_words`` (a fixed random stand-in, for runs without a VLM), or
            ``auto`` (the VLM when the run loads one).
        encoder_dim: embedding size of ``bag_of_words``.
    """

    family: Optional[str] = None
    split: Optional[GoalSplitConfig] = None
    types: Optional[Annotated[list[Prompt], Field(min_length=1)]] = None
    negatives: Literal["all", "same_template", "k_sampled"] = "all"
    k: Optional[Count] = None
    text_encoder: Literal["auto", "model", "bag_of_words"] = "auto"
    encoder_dim: Count = 64

    @model_validator(mode="after")
    def _check_family(self) -> "GoalsConfig":
        from vlmreward.errors import VLMRewardError as _Error
        from vlmreward.goals import as_goal_family

        if self.negatives == "k_sampled" and self.k is None:
            raise ValueError("k is required when negatives is k_sampled (the number of negatives per goal)")
        try:
            family = as_goal_family(self.family)
            if self.types is not None:
                family.goals(self.types)
            if self.split is not None:
                family.split(self.split.by, self.split.held_out, self.types)
        except _Error as err:
            raise ValueError(str(err).rstrip(".")) from None
        return self

    def load_family(self):  # noqa: ANN201 (GoalFamily; imported lazily)
        """The :class:`~vlmreward.goals.GoalFamily` of ``family``."""
        from vlmreward.goals import as_goal_family

        return as_goal_family(self.family)

    def split_kwargs(self) -> dict[str, Any]:
        """``split_by``/``held_out`` keyword arguments of a goal-conditioned environment (empty: the family's)."""
        if self.split is None:
            return {}
        return {"split_by": self.split.by, "held_out": list(self.split.held_out)}

    def has_split(self) -> bool:
        """Whether there are held-out goals (this split or the family's)."""
        return self.split is not None or self.load_family().split_spec is not None


def _model_shortcut(value: Any) -> Any:
    return {"name": value} if isinstance(value, (str, os.PathLike)) else value


class ModelConfig(_Strict):
    """``model``: the vision-language model (arguments of :func:`vlmreward.load_model`).

    ``model: NAME`` in YAML (or ``--set model=NAME``) is short for ``model: {name: NAME}``.

    Attributes:
        name: hub id, ``save_pretrained`` directory, ``open_clip:ARCH/TAG``, ...; None for rewards
            that need no VLM.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda:1"``, ...
        dtype: weight dtype (``float32``, ``float16``, ``bfloat16``, ...) or None for float32.
        resize: how frames are fitted to the square model input.
        antialias: resize with antialiasing like PIL (default; CLIP's training images were), or
            False for the VLM-RM reference code's plain bicubic resize (``configs/vlmrm/``).
        checkpoint: weights file for an ``open_clip:ARCH`` name.
        batch_size: frames per forward pass of the vision tower.
        runtime: ``"torch"`` or ``"onnx"`` (ONNX Runtime runs the vision tower; faster on CPUs,
            see ``benchmarks/RESULTS.md``; needs ``pip install 'vlmreward[onnx]'``). ``backend:``,
            its former name, is still read (run directories written before 0.4 have it).
        quantize: with ``runtime: onnx``, ``int8`` for dynamic int8 weights (None: float32).
        autocast: on CUDA, ``bf16``/``fp16`` mixed precision (None: from ``dtype``; False: never).
    """

    name: Optional[str] = None
    device: str = "auto"
    dtype: Optional[Literal[DTYPE_NAMES]] = None  # type: ignore[valid-type]
    resize: ResizeMode = "squash"
    antialias: bool = True
    checkpoint: Optional[str] = None
    batch_size: Count = 64
    runtime: Literal[RUNTIMES] = "torch"  # type: ignore[valid-type]
    quantize: Optional[Literal[QUANTIZE_MODES]] = None  # type: ignore[valid-type]
    autocast: Optional[Union[Literal[AUTOCAST_NAMES], bool]] = None  # type: ignore[valid-type]

    def spec(self) -> ModelSpec:
        """The :class:`~vlmreward.models.spec.ModelSpec` of this section.

        Raises:
            ConfigError: no ``name``.
        """
        if not self.name:
            raise ConfigError("model.name is not set; give one (--set model=openai/clip-vit-base-patch32).")
        return ModelSpec(
            self.name, device=self.device, dtype=self.dtype, resize=self.resize, antialias=self.antialias,
            checkpoint=self.checkpoint, runtime=self.runtime, quantize=self.quantize, autocast=self.autocast,
            batch_size=self.batch_size,
        )

    @model_validator(mode="before")
    @classmethod
    def _former_backend_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and "backend" in data:
            data = dict(data)
            backend = data.pop("backend")
            if data.setdefault("runtime", backend) != backend:
                raise ValueError("model.backend is the former name of model.runtime; give runtime only")
        return data

    @model_validator(mode="after")
    def _quantize_needs_onnx(self) -> "ModelConfig":
        if self.quantize is not None and self.runtime != "onnx":
            raise ValueError("model.quantize needs model.runtime: onnx (int8 weights run on ONNX Runtime)")
        return self


class LogConfig(_Strict):
    """``log``: SB3 logger outputs in ``RUN_DIR/logs`` (``progress.csv`` always).

    Attributes:
        tensorboard: also write TensorBoard event files.
        stdout: also print SB3's tables (off: a progress bar shows progress on a terminal).
        stats_window: episodes averaged into the ``rollout/*`` means.
        progress_every_s: seconds between progress lines (step, steps/s, ETA, VLM and GT return,
            success; :mod:`vlmreward.rl.progress`).
        wandb: also log to Weights & Biases (:mod:`vlmreward.rl.wandb_log`; the ``wandb`` extra).
        wandb_project, wandb_entity: the W&B project and entity (team or user; None: your default).
        wandb_mode: ``"online"``, ``"offline"`` (written locally, ``wandb sync`` later) or
            ``"disabled"``; None: W&B's own setting (``WANDB_MODE``).
    """

    tensorboard: bool = True
    stdout: bool = False
    stats_window: Count = 100
    progress_every_s: PositiveFloat = 10.0
    wandb: bool = False
    wandb_project: str = "vlmreward"
    wandb_entity: Optional[str] = None
    wandb_mode: Optional[Literal["online", "offline", "disabled"]] = None

    @field_validator("wandb")
    @classmethod
    def _wandb_installed(cls, value: bool) -> bool:
        if value and importlib.util.find_spec("wandb") is None:
            raise ValueError('the wandb package is not installed: pip install -e ".[wandb]", or set log.wandb: false')
        return value


class RunConfig(_Strict):
    """A whole training run. See the module docstring and ``configs/*.yaml``.

    Attributes:
        env: :class:`EnvConfig`.
        reward: a reward kind (:mod:`vlmreward.rewards.registry`) and its parameters, chosen by ``kind``.
        mode: ``"replace"`` (the agent sees ``weight · r_vlm``, VLM-RM's set-up) or ``"add"``
            (``r_env + weight · r_vlm``).
        weight: scale of the VLM reward.
        model: :class:`ModelConfig`.
        scoring: ``"per_step"`` (each step's frames scored at once) or ``"deferred"`` (frames kept
            and scored in batches of ``score_batch_size`` before the learner reads them).
        score_batch_size: frames per deferred scoring batch.
        algorithm: ``"PPO"``, ``"SAC"`` or ``"DQN"`` (stable-baselines3).
        policy: SB3 policy name.
        algorithm_kwargs: keyword arguments of the algorithm (``learning_rate``, ``batch_size``, ...);
            ``learning_rate``/``clip_range`` may be ``"lin_<value>"`` (linear decay to 0, as the RL
            zoo), ``policy_kwargs.activation_fn`` a ``torch.nn`` name (``"ReLU"``).
        total_steps: environment steps in all (summed over sub-environments). PPO stops at the end
            of a rollout, so make it a multiple of ``n_steps · n_envs`` to stop exactly.
        seed: seeds Python, NumPy, PyTorch, the algorithm and the environments; in ``[0, 2**32)``.
        output_dir: where run directories are created.
        run_name: the run directory's name under ``output_dir`` (default ``<algo>-<env>-<time>``).
        checkpoint_every: steps between checkpoints (None: only on interruption and at the end).
        keep_checkpoints: most recent checkpoints kept on disk (None: all).
        checkpoint_replay_buffer: write the off-policy replay buffer into each checkpoint (False:
            much smaller checkpoints; a resumed run starts from an empty buffer, so it is not
            identical to an uninterrupted one).
        eval_every: steps between evaluations (None: none).
        eval_episodes: episodes per evaluation.
        video: save a video of the first episode of each evaluation.
        log: :class:`LogConfig`.
        goals: :class:`GoalsConfig` for a goal-conditioned run, else None.
        scale: :class:`~vlmreward.distributed.config.ScaleConfig` to run the environments and the
            reward model as Ray actors (``pip install 'vlmreward[ray]'``); None: one process.
    """

    env: EnvConfig
    reward: RewardConfig
    mode: Literal["replace", "add"] = "replace"
    weight: FiniteFloat = 1.0
    model: Annotated[ModelConfig, BeforeValidator(_model_shortcut)] = Field(default_factory=ModelConfig)
    scoring: Literal["per_step", "deferred"] = "per_step"
    score_batch_size: Count = 256
    algorithm: Literal["PPO", "SAC", "DQN"]
    policy: str = "MlpPolicy"
    algorithm_kwargs: dict[str, Any] = Field(default_factory=dict)
    total_steps: Count
    seed: Annotated[int, Field(ge=0, lt=2**32)] = 0  # NumPy and gymnasium seeds are unsigned 32-bit
    output_dir: Path = Path("runs")
    run_name: Optional[Annotated[str, Field(pattern=r"^[\w.\-]+$")]] = None
    checkpoint_every: Optional[Count] = 10_000
    keep_checkpoints: Optional[Count] = 2
    checkpoint_replay_buffer: bool = True
    eval_every: Optional[Count] = 10_000
    eval_episodes: Count = 5
    video: bool = True
    log: LogConfig = Field(default_factory=LogConfig)
    goals: Optional[GoalsConfig] = None
    scale: Optional[ScaleConfig] = None

    @property
    def reward_kind(self) -> Any:
        """The :class:`~vlmreward.rewards.registry.RewardKind` of ``reward.kind``."""
        return reward_kind(self.reward.kind)

    @property
    def needs_vlm(self) -> bool:
        """Whether the reward needs a vision-language model loaded."""
        requirement = self.reward_kind.model
        return requirement == "required" or (requirement == "optional" and self.model.name is not None)

    def reward_params(self) -> Any:
        """The reward's parameters (its kind's ``Params`` model), without ``kind``."""
        params = self.reward_kind.params
        return params.model_validate(self.reward.model_dump(include=set(params.model_fields)))

    def reward_context(self) -> RewardContext:
        """What a goal-conditioned reward needs from the ``goals`` section (:class:`RewardContext`)."""
        if self.goals is None:
            return RewardContext(seed=self.seed)
        return RewardContext(
            family=self.goals.load_family(), negatives=self.goals.negatives, k=self.goals.k, types=self.goals.types,
            seed=self.seed,
        )

    @property
    def deferred(self) -> bool:
        return self.scoring == "deferred"

    @property
    def reward_mode(self) -> tuple[str, float]:
        """``(mode, weight)`` of the reward wrappers: ``("add", 0.0)`` for ``ground_truth`` (the
        environment's own reward), else ``(self.mode, self.weight)``."""
        if self.reward.kind == "ground_truth":
            return "add", 0.0
        return self.mode, self.weight

    @model_validator(mode="after")
    def _check_model_and_kwargs(self) -> "RunConfig":
        if self.reward_kind.goals and self.goals is None:
            raise ValueError(
                f"reward.kind '{self.reward.kind}' scores frames against their episode's goal and needs a goals section "
                "(e.g. goals: {family: configs/goals/miniworld_objects.yaml}) and a goal-conditioned env such as "
                "vlmreward/MiniWorldGoals-v0"
            )
        if self.goals is not None and self.goals.text_encoder == "model" and not self.model.name:
            raise ValueError("goals.text_encoder: 'model' embeds goals with the VLM, so model.name is required")
        if self.reward_kind.model == "required" and not self.model.name:
            raise ValueError(
                f"model.name is required for reward.kind '{self.reward.kind}'; set it in the config or with "
                "--set model=openai/clip-vit-base-patch32 (any name vlmreward.load_model accepts)"
            )
        _check_algorithm_kwargs(self.algorithm, self.algorithm_kwargs, self.deferred)
        if self.scale is not None:
            check_scale_fits(self.env.n_envs, self.scale)
            if self.goals is not None:
                raise ValueError("goal-conditioned runs (a goals section) cannot run on Ray yet; remove the scale section")
        return self


def _check_algorithm_kwargs(algorithm: str, kwargs: dict[str, Any], deferred: bool) -> None:
    """Reject keyword arguments the algorithm does not take, or that the trainer sets itself."""
    import stable_baselines3

    cls = getattr(stable_baselines3, algorithm)
    allowed = [name for name in inspect.signature(cls.__init__).parameters if name not in ("self", *_SET_BY_TRAINER)]
    for key in kwargs:
        if key in _SET_BY_TRAINER:
            where = {"env": "env", "policy": "policy", "seed": "seed"}.get(key)
            raise ValueError(
                f"algorithm_kwargs.{key} is set by the trainer"
                + (f"; use the top-level '{where}' key instead" if where else "; remove it")
            )
        if key not in allowed:
            raise ValueError(
                f"algorithm_kwargs.{key} is not an argument of {algorithm}; allowed: {', '.join(sorted(allowed))}"
            )
        if deferred and key in ("rollout_buffer_class", "replay_buffer_class"):
            raise ValueError(f"algorithm_kwargs.{key} is set by the trainer for scoring: deferred; remove it")


# ---------------------------------------------------------------------------------------------
# reading, overriding, validating


def load_config(path: str | os.PathLike, overrides: Iterable[str] = ()) -> RunConfig:
    """Read a YAML run config, apply ``--set`` overrides and validate it.

    Args:
        path: the YAML file.
        overrides: ``"KEY=VALUE"`` strings; ``KEY`` is dotted (``model.name``, ``reward.alpha``,
            ``algorithm_kwargs.learning_rate``), ``VALUE`` a YAML scalar or flow collection
            (``0.5``, ``true``, ``null``, ``[a, b]``); ``model=NAME`` sets ``model.name``.

    Returns:
        The validated :class:`RunConfig`.

    Raises:
        ConfigError: the file is missing or unreadable, is not valid YAML or not a mapping, an
            override is malformed, or validation fails (the message names every offending key
            and what is allowed).
    """
    path = Path(path)
    data = read_yaml_file(path, "config file", ConfigError, "; pass a YAML file such as configs/cartpole.yaml")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys (env:, reward:, ...); got a {type(data).__name__}.")
    data = resolve_config_paths(data, path.resolve().parent)  # the file's paths: relative to the file
    data = resolve_config_paths(apply_overrides(data, overrides), Path.cwd())  # --set paths: relative to here
    return parse_config(data, source=str(path))


PATH_KEYS: tuple[tuple[str, ...], ...] = (
    ("model", "name"), ("model", "checkpoint"), ("goals", "family"), ("env", "kwargs", "textures_dir"),
)
"""Config keys that may name a local file or directory."""


def resolve_config_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """``data`` with each relative path of :data:`PATH_KEYS` that exists under ``base`` made absolute.

    A config's paths are read relative to the config file's folder, and ``--set`` paths relative
    to the current directory; a value that names nothing there (a hub id such as
    ``openai/clip-vit-base-patch32``, ``open_clip:...``, a path relative to the current directory
    in a config file) is left as it is, so the current directory still serves as before. The run
    directory's ``config.yaml`` then holds absolute paths, and ``--resume`` works from anywhere.
    """
    out = dict(data)
    if isinstance(out.get("model"), (str, os.PathLike)):
        out["model"] = {"name": out["model"]}
    for keys in PATH_KEYS:
        parent: Any = out
        for key in keys[:-1]:
            if not isinstance(parent.get(key), dict):
                break
            parent[key] = dict(parent[key])
            parent = parent[key]
        else:
            value = parent.get(keys[-1])
            if isinstance(value, (str, os.PathLike)) and str(value) and not os.path.isabs(value) and ":" not in str(value):
                candidate = base / value
                if candidate.exists():
                    parent[keys[-1]] = str(candidate.resolve())
    return out


def parse_config(data: dict[str, Any], source: str = "config") -> RunConfig:
    """Validate a config mapping (as read from YAML) into a :class:`RunConfig`.

    Raises:
        ConfigError: every validation problem, one per key path, with the allowed values.
    """
    model = RunConfig
    kind = data.get("reward", {}).get("kind") if isinstance(data.get("reward"), dict) else None
    if isinstance(kind, str) and kind not in BUILTIN_REWARD_KINDS:
        try:
            reward_kind(kind)  # an entry point or "package.module:Class": imported and registered here
        except UnknownRewardKindError as err:
            raise ConfigError(f"invalid {source}: reward.kind: {err}") from None
        model = _run_config_with(kind)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = [_describe_error(e) for e in err.errors()]
        raise ConfigError(f"invalid {source}: " + "; ".join(problems) + ".") from None


@lru_cache(maxsize=None)
def _run_config_with(kind: str) -> type[RunConfig]:
    """:class:`RunConfig` whose ``reward`` section also accepts ``kind`` (a plugin's)."""
    return create_model("RunConfig", __base__=RunConfig, reward=(reward_config_union((*BUILTIN_REWARD_KINDS, kind)), ...))


_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def parse_value(text: str) -> Any:
    """A ``--set`` value: YAML (``0.5``, ``true``, ``[1, 2]``), with ``1e-3`` read as a number."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value)
    return value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``"KEY=VALUE"`` overrides to a config mapping (a copy; the input is unchanged).

    Raises:
        ConfigError: an override without ``=``, an empty key, or a key below a non-mapping value.
    """
    import copy

    out = copy.deepcopy(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set expects KEY=VALUE with a dotted KEY (e.g. --set reward.alpha=0.5); got {item!r}.")
        value = parse_value(text)
        parts = key.split(".")
        if parts == ["model"] and not isinstance(value, dict):
            parts = ["model", "name"]  # --set model=NAME
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif part == "model" and i == 0 and isinstance(child, str):
                child = node[part] = {"name": child}
            elif not isinstance(child, dict):
                here = ".".join(parts[: i + 1])
                raise ConfigError(f"--set {key}: {here} is {child!r}, not a section with keys.")
            node = child
        node[parts[-1]] = value
    return out


def dump_config(config: RunConfig) -> str:
    """The resolved config (every default filled in) as YAML text that :func:`load_config` reads back."""
    data = config.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


def save_config(config: RunConfig, path: str | os.PathLike) -> Path:
    """Write :func:`dump_config` to ``path`` atomically (:func:`vlmreward._paths.atomic_write_text`)."""
    path = Path(path)
    atomic_write_text(path, dump_config(config))
    return path


# ---------------------------------------------------------------------------------------------
# error messages


def _section_model(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that holds the field at ``loc[-1]`` (None when ``loc`` leaves the models)."""
    cls: Any = RunConfig
    i = 0
    while i < len(loc) - 1:
        part = loc[i]
        field = cls.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        if part == "reward" and isinstance(cls, type) and issubclass(cls, RunConfig):
            if i + 1 < len(loc) and _is_reward_kind(loc[i + 1]):
                cls = reward_kind(loc[i + 1]).config_model()
                i += 2
                continue
            return None
        annotation = field.annotation
        if not isinstance(annotation, type):  # Optional[Section]: the section
            members = [a for a in getattr(annotation, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)]
            annotation = members[0] if len(members) == 1 else annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            cls = annotation
            i += 1
            continue
        return None
    return cls


def _is_reward_kind(part: Any) -> bool:
    """Whether a location part is a reward kind (the discriminated union's tag), without importing anything."""
    return is_registered(part)


def _key_path(loc: tuple[Any, ...]) -> str:
    """Dotted key path of a pydantic error location, without union tags (``reward.alpha``)."""
    parts: list[str] = []
    for i, part in enumerate(loc):
        if i == 1 and loc[0] == "reward" and _is_reward_kind(part):
            continue  # the discriminated union's tag
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
            continue
        if isinstance(part, str) and part in ("str", "list[str]"):
            continue  # union member names of prompt fields
        parts.append(str(part))
    return ".".join(parts)


def _describe_error(error: dict[str, Any]) -> str:
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    path = _key_path(loc) or "config"
    value = error.get("input")
    msg = str(error.get("msg", "")).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        section = _section_model(loc)
        where = ".".join(_key_path(loc).split(".")[:-1]) or "the top level"
        allowed = ", ".join(section.model_fields) if section is not None else "see the documentation"
        return f"{path}: unknown key; allowed keys in {where}: {allowed}"
    if kind == "missing":
        return f"{path}: required key is missing"
    if kind == "literal_error":
        return f"{path}: {value!r} is not allowed; use one of {ctx.get('expected', '')}"
    if kind == "union_tag_invalid":
        return f"{path}.kind: {ctx.get('tag')!r} is not a reward kind; use one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        return f"{path}.kind: missing; use one of {', '.join(map(repr, reward_kinds()))}"
    if kind == "value_error":
        if _is_model_level(loc):
            return msg  # a model validator's message names its keys itself
        return f"{path}: {msg}"
    if kind == "too_short":
        return f"{path}: must hold at least {ctx.get('min_length', 1)} item(s); got {value!r}"
    if kind == "string_pattern_mismatch":
        return f"{path}: {value!r} does not match the pattern {ctx.get('pattern')}"
    return f"{path}: {msg.rstrip('.')}; got {value!r}"


def _is_model_level(loc: tuple[Any, ...]) -> bool:
    """Whether an error location points at a whole section (a model validator) rather than a field."""
    if not loc:
        return True
    if loc[0] == "reward":
        return len(loc) <= 2
    if len(loc) == 1:
        return False
    section = _section_model(loc)
    return section is None or loc[-1] not in section.model_fields
