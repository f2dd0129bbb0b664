"""The sections of a run configuration (pydantic): ``env``, ``reward``, ``model``, ``goals``,
``log``, ``scale`` and the run's own keys, validated into a :class:`RunConfig`.

The ``reward`` section is a union of every reward kind's config model, chosen by ``kind``
(:mod:`vlmreward.rewards.registry`); the ``model`` section is :class:`vlmreward.config.ModelConfig`.
Reading a YAML file, ``--set`` overrides and error messages: :mod:`vlmreward.rl.config`.
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal, Optional, Union

from pydantic import BeforeValidator, Field, field_validator, model_validator

from vlmreward.config.fields import Count, FiniteFloat, PositiveFloat, Prompt
from vlmreward.config.model import ModelConfig, Strict, model_shortcut
from vlmreward.distributed.config import ScaleConfig, check_scale_fits
from vlmreward.rewards.registry import RewardContext, builtin_reward_kinds, reward_kind

__all__ = [
    "RunConfig", "EnvConfig", "ModelConfig", "LogConfig", "RewardConfig", "BUILTIN_REWARD_KINDS", "reward_config_union",
    "GoalsConfig", "GoalSplitConfig", "ScaleConfig", "ALGORITHMS", "RESUME_OVERRIDABLE",
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
    "model.compile",
    "reward.server",
    "score_batch_size",
    "scale",
)
"""Keys that ``--set`` may change when a run is resumed; the rest would make it another run."""

_SET_BY_TRAINER = ("env", "policy", "seed", "verbose", "tensorboard_log", "_init_setup_model")


class EnvConfig(Strict):
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


class GoalSplitConfig(Strict):
    """``goals.split``: which goals are held out from training (:meth:`vlmreward.goals.GoalFamily.split`)."""

    by: Literal["object", "kind", "colour", "template", "goal_type", "app"]
    held_out: Annotated[list[Prompt], Field(min_length=1)]


class GoalsConfig(Strict):
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


class LogConfig(Strict):
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


class RunConfig(Strict):
    """A whole training run. See the module docstring and ``configs/*.yaml``.

    Attributes:
        env: :class:`EnvConfig`.
        reward: a reward kind (:mod:`vlmreward.rewards.registry`) and its parameters, chosen by ``kind``.
        mode: ``"replace"`` (the agent sees ``weight · r_vlm``, VLM-RM's set-up) or ``"add"``
            (``r_env + weight · r_vlm``).
        weight: scale of the VLM reward.
        model: :class:`ModelConfig`.
        scoring: ``"per_step"`` (each step's frames scored at once), ``"deferred"`` (frames kept
            and scored in batches of ``score_batch_size`` before the learner reads them) or
            ``"overlapped"`` (deferred, each full batch scored on a background thread while the
            environments step: :mod:`vlmreward.envs.overlap`; the same rewards as ``"deferred"``).
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
    model: Annotated[ModelConfig, BeforeValidator(model_shortcut)] = Field(default_factory=ModelConfig)
    scoring: Literal["per_step", "deferred", "overlapped"] = "per_step"
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
        """Deferred scoring, unless the kind's reward is learned during the run (scored per step by the model of that moment)."""
        return self.scoring in ("deferred", "overlapped") and not self.reward_kind.learned

    @property
    def overlapped(self) -> bool:
        """Deferred batches scored on a background thread (``scoring: overlapped``, where scoring is deferred)."""
        return self.deferred and self.scoring == "overlapped"

    @property
    def reward_mode(self) -> tuple[str, float]:
        """``(mode, weight)`` of the reward wrappers: ``("add", 0.0)`` for a kind that trains on the
        environment's own reward (a kind declared ``environment_reward``), else ``(self.mode, self.weight)``."""
        if self.reward_kind.environment_reward:
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
        offline = [k for k in self.reward_kind.params.offline_only if getattr(self.reward, k, None) is not None]
        if offline:
            raise ValueError(f"reward.{offline[0]} is read by an offline evaluation (vlmreward evaluate --param "
                             f"{offline[0]}=...), not by training; remove it")
        _check_algorithm_kwargs(self.algorithm, self.algorithm_kwargs, self.deferred)
        if self.scale is not None:
            if getattr(self.reward, "server", None) is not None:
                raise ValueError("reward.server and the scale section both say where the reward is scored; keep one "
                                 "(reward.server: ray serves every kind on Ray replicas)")
            check_scale_fits(self.env.n_envs, self.scale)
            if self.goals is not None:
                raise ValueError("goal-conditioned runs (a goals section) cannot run on Ray yet; remove the scale section")
            if self.reward_kind.learned:
                raise ValueError(f"reward.kind '{self.reward.kind}' learns its reward in the training process and cannot be "
                                 "served by Ray replicas yet; remove the scale section")
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
