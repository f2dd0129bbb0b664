"""Goal-conditioned environments: the goal's text embedding in the observation, and a state oracle.

A goal-conditioned environment reports its current goal in ``info["goal"]`` at ``reset`` and at
every ``step`` (a :class:`~vlmreward.goals.Goal`, or any object with a ``sentence``, or a
string). Then:

* :class:`GoalObservation` makes the observation a ``Dict`` of the environment's observation
  (``"image"`` or ``"state"``) and ``"goal"``: the ``float32 [D]`` text embedding of the goal's
  sentence. With the vision-language model's own text tower (:class:`ModelTextEncoder`), goals
  never seen in training are still representable, in the space the reward is computed in.
  stable-baselines3 trains on it with ``MultiInputPolicy``.
* Goal-aware reward models (``goal_info_key`` and ``reward(frames, goals=...)``, e.g.
  :class:`~vlmreward.rewards.GoalFamilySoftmaxReward`) receive each frame's ``info["goal"]``
  from :class:`~vlmreward.envs.VLMRewardWrapper` and
  :class:`~vlmreward.envs.VLMRewardVecEnvWrapper` (also with deferred scoring).
* :class:`GoalStateOracleReward` is a goal-aware reward computed from the simulator's state
  (``info["goal_state"]``, a :class:`GoalState`) instead of the frames: it goes through the same
  wrappers, batching and deferred scoring, so training on it checks the goal-conditioned RL path
  without a VLM (a random-weight CLIP teaches nothing).
* :class:`BagOfWordsTextEncoder` is a deterministic stand-in for a text tower (tests, oracle runs).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Protocol, Sequence, SupportsFloat, runtime_checkable

import gymnasium as gym
import numpy as np

from vlmreward.errors import InvalidParameterError, VLMRewardError
from vlmreward.rewards.params import NoParams

__all__ = [
    "TextEncoder",
    "ModelTextEncoder",
    "BagOfWordsTextEncoder",
    "as_text_encoder",
    "goal_sentence",
    "GoalObservation",
    "GoalState",
    "GoalStateOracleReward",
    "GOAL_KEY",
    "ORACLE_LENGTH",
]

GOAL_KEY = "goal"
"""Key of the goal embedding in the ``Dict`` observation, and of the goal in ``info``."""


@runtime_checkable
class TextEncoder(Protocol):
    """Sentences → ``float32 [M, D]`` NumPy rows (unit norm); ``dim`` is ``D``."""

    dim: int

    def __call__(self, sentences: Sequence[str]) -> np.ndarray: ...


class ModelTextEncoder:
    """A vision-language model's text tower as a :class:`TextEncoder` (``model.encode_text``, cached).

    The embeddings are the ones the model's rewards use (unit norm, ``float32``), on the CPU.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.dim = int(model.embed_dim)
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, sentences: Sequence[str]) -> np.ndarray:
        missing = [s for s in dict.fromkeys(sentences) if s not in self._cache]
        if missing:
            rows = self.model.encode_text(missing).float().cpu().numpy()
            self._cache.update(zip(missing, rows.astype(np.float32)))
        return np.stack([self._cache[s] for s in sentences]) if sentences else np.zeros((0, self.dim), np.float32)

    def describe(self) -> dict[str, Any]:
        return {"kind": "model", "model": getattr(self.model, "name", None), "dim": self.dim}


class BagOfWordsTextEncoder:
    """A deterministic stand-in text encoder: the normalised sum of one fixed random vector per word.

    Word vectors are standard normal, seeded by a BLAKE2b hash of the word and ``seed``, so every
    process gets the same embedding. It is compositional ("red" and "ball" contribute the same
    vectors in every sentence), but knows nothing of what words mean: an unseen word is an
    unseen direction. Use it for tests and oracle runs; train with the VLM's text tower.

    Args:
        dim: embedding size.
        seed: varies every word vector.
    """

    def __init__(self, dim: int = 64, seed: int = 0) -> None:
        if int(dim) < 1:
            raise InvalidParameterError(f"dim must be at least 1; got {dim}.")
        self.dim = int(dim)
        self.seed = int(seed)
        self._words: dict[str, np.ndarray] = {}

    def _word(self, word: str) -> np.ndarray:
        vector = self._words.get(word)
        if vector is None:
            digest = hashlib.blake2b(f"{self.seed}:{word}".encode(), digest_size=8).digest()
            vector = np.random.default_rng(int.from_bytes(digest, "little")).standard_normal(self.dim)
            self._words[word] = vector
        return vector

    def __call__(self, sentences: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(sentences), self.dim), dtype=np.float64)
        for i, sentence in enumerate(sentences):
            for word in str(sentence).lower().split():
                out[i] += self._word(word.strip(".,;:!?\"'"))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.where(norms > 0, norms, 1.0)).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {"kind": "bag_of_words", "dim": self.dim, "seed": self.seed}


def as_text_encoder(encoder: Any) -> TextEncoder:
    """A :class:`TextEncoder` from a vision-language model, an encoder, or None (bag of words, 64-d).

    Raises:
        InvalidParameterError: anything else.
    """
    if encoder is None:
        return BagOfWordsTextEncoder()
    if hasattr(encoder, "encode_text") and hasattr(encoder, "embed_dim"):
        return ModelTextEncoder(encoder)
    if callable(encoder) and isinstance(getattr(encoder, "dim", None), int):
        return encoder
    raise InvalidParameterError(
        f"{type(encoder).__name__} is not a text encoder; pass a vision-language model (vlmreward.load_model), "
        "a BagOfWordsTextEncoder, or a callable with a 'dim' attribute returning float32 [M, dim]."
    )


def goal_sentence(goal: Any) -> str:
    """The sentence of a goal: ``goal.sentence`` if it has one, else ``str(goal)``."""
    sentence = getattr(goal, "sentence", None)
    return str(sentence if sentence is not None else goal)


class GoalObservation(gym.Wrapper):
    """Observation ``Dict{"image" | "state": obs, "goal": float32 [D]}``: the goal as a text embedding.

    The goal is read from ``info["goal"]`` at ``reset`` (and updated from every ``step``'s info);
    its sentence is embedded once by ``encoder`` and cached. Put it under
    :class:`~vlmreward.envs.RenderFrame` (``make_vlm_vec_env(..., wrapper=...)`` does).

    Args:
        env: a goal-conditioned environment (reports ``info["goal"]``).
        encoder: a vision-language model (its text tower), a :class:`TextEncoder`, or None
            (:class:`BagOfWordsTextEncoder`).
        key: the key of the environment's observation (default ``"image"`` for a uint8 image
            space, else ``"state"``); a ``Dict`` observation space keeps its own keys.

    Raises:
        InvalidParameterError: the environment's observation space has a ``"goal"`` key already.
        VLMRewardError: (at reset) the environment reports no ``info["goal"]``.
    """

    def __init__(self, env: gym.Env, encoder: Any = None, key: str | None = None) -> None:
        super().__init__(env)
        self.encoder = as_text_encoder(encoder)
        space = env.observation_space
        goal_space = gym.spaces.Box(-np.inf, np.inf, shape=(self.encoder.dim,), dtype=np.float32)
        if isinstance(space, gym.spaces.Dict):
            if GOAL_KEY in space.spaces:
                raise InvalidParameterError(f"the observation space already has a {GOAL_KEY!r} key.")
            self.key = None
            self.observation_space = gym.spaces.Dict({**space.spaces, GOAL_KEY: goal_space})
        else:
            is_image = isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3
            self.key = key or ("image" if is_image else "state")
            self.observation_space = gym.spaces.Dict({self.key: space, GOAL_KEY: goal_space})
        self._embeddings: dict[str, np.ndarray] = {}
        self.goal: Any = None
        self._goal_vector: np.ndarray | None = None

    def embed(self, goal: Any) -> np.ndarray:
        """``float32 [D]`` embedding of a goal's sentence (cached)."""
        sentence = goal_sentence(goal)
        vector = self._embeddings.get(sentence)
        if vector is None:
            vector = self._embeddings[sentence] = np.asarray(self.encoder([sentence])[0], dtype=np.float32)
        return vector

    def _set_goal(self, info: dict[str, Any], required: bool) -> None:
        goal = info.get(GOAL_KEY)
        if goal is None:
            if required:
                env_id = self.env.spec.id if self.env.spec is not None else type(self.env.unwrapped).__name__
                raise VLMRewardError(
                    f"{env_id} reports no info['goal'] at reset; GoalObservation needs a goal-conditioned "
                    "environment such as vlmreward/MiniWorldGoals-v0."
                )
            return
        if goal is not self.goal:
            self.goal = goal
            self._goal_vector = self.embed(goal)

    def _observation(self, obs: Any) -> dict[str, Any]:
        if self.key is None:
            return {**obs, GOAL_KEY: self._goal_vector}
        return {self.key: obs, GOAL_KEY: self._goal_vector}

    def reset(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._set_goal(info, required=True)
        return self._observation(obs), info

    def step(self, action: Any) -> tuple[dict[str, Any], SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._set_goal(info, required=False)
        return self._observation(obs), reward, terminated, truncated, info


# ---------------------------------------------------------------------------------------------
# the simulator-state oracle


ORACLE_LENGTH = 1.5
"""Length scale (m) of :class:`GoalStateOracleReward`'s approach shaping: the reward of standing at
``d`` metres falls by a factor ``e`` per 1.5 m, so every step towards the object pays."""


@dataclass(frozen=True)
class GoalState:
    """What a goal-conditioned simulator knows about the progress on its goal, after a step.

    Distances in metres, angles in radians. Reported in ``info["goal_state"]`` by
    :class:`~vlmreward.envs.miniworld_goals.MiniWorldGoalsEnv`.

    Attributes:
        goal: the goal.
        goal_type: ``goal.type``.
        object_distance: from the agent's centre to the goal object's centre.
        object_bearing: angle from the agent's heading to the goal object, in ``(-π, π]``.
        carrying_object: the agent carries the goal object.
        carrying_other: the agent carries another object.
        target_distance: from the goal object to the target object (``nan`` without a target).
        success: the ground-truth success of the goal.
        scale: a length that normalises distances (the room's diagonal).
    """

    goal: Any
    goal_type: str
    object_distance: float
    object_bearing: float
    carrying_object: bool
    carrying_other: bool
    target_distance: float
    success: bool
    scale: float


class GoalStateOracleReward:
    """An informative goal-conditioned reward from the simulator's state, through the VLM reward's path.

    Reads ``info["goal_state"]`` (:class:`GoalState`) of each frame's step
    (``goal_info_key = "goal_state"``; the frames themselves are ignored). With
    ``near(d) = exp(-d / ORACLE_LENGTH)`` (:data:`ORACLE_LENGTH` = 1.5 m) and
    ``facing(θ) = (1 + cos θ) / 2``:

    * ``find``: 1 on success, else ``0.5 · near(object_distance) · facing(object_bearing)``;
    * ``lift``: 1 while carrying the goal object, 0 while carrying another, else
      ``0.5 · near · facing`` towards the object;
    * ``place``: 1 on success; while carrying the goal object ``0.4 + 0.4 · near(target_distance)``;
      otherwise ``0.3 · near · facing`` towards the object.

    Any other goal type gets 1 on success, else 0. The shaping rises towards success and success
    pays most, so a policy that maximises it reaches the goal.
    """

    goal_info_key = "goal_state"
    kind = "goal_state_oracle"  # reward kind, registered by vlmreward's own "vlmreward.rewards" entry point
    Params = NoParams
    model_requirement = "none"
    display_name = "goal-state oracle"

    @staticmethod
    def reward_of(state: GoalState) -> float:
        """The reward of one :class:`GoalState` (see the class docstring)."""

        def near(distance: float) -> float:
            return math.exp(-float(distance) / ORACLE_LENGTH) if math.isfinite(distance) else 0.0

        approach = near(state.object_distance) * (1.0 + math.cos(state.object_bearing)) / 2.0
        if state.success:
            return 1.0
        if state.goal_type == "find":
            return 0.5 * approach
        if state.goal_type == "lift":
            return 0.0 if state.carrying_other else 0.5 * approach
        if state.goal_type == "place":
            if state.carrying_object:
                return 0.4 + 0.4 * near(state.target_distance)
            return 0.0 if state.carrying_other else 0.3 * approach
        return 0.0

    def score_with_goals(self, frames: Any, goal_states: Sequence[GoalState | None]) -> np.ndarray:
        """One reward per frame from its step's :class:`GoalState`: ``float32 [N]``.

        Raises:
            VLMRewardError: a frame without a goal state (the environment reports none).
        """
        out = np.empty(len(goal_states), dtype=np.float32)
        for i, state in enumerate(goal_states):
            if state is None:
                raise VLMRewardError(
                    "GoalStateOracleReward needs info['goal_state'] at every step; use vlmreward/MiniWorldGoals-v0."
                )
            out[i] = self.reward_of(state)
        return out

    def __call__(self, frames: Any, goals: Sequence[GoalState | None] | None = None) -> np.ndarray:
        """The reward protocol's form of :meth:`score_with_goals` (``goals``: each frame's ``info["goal_state"]``).

        Raises:
            VLMRewardError: no goal states (the reward reads the simulator, not the frames).
        """
        if goals is None:
            raise VLMRewardError(
                "GoalStateOracleReward scores steps from their goal state: call it with goals=[info['goal_state'], ...] "
                "or use it in vlmreward/MiniWorldGoals-v0."
            )
        return self.score_with_goals(frames, goals)

    def describe(self) -> dict[str, Any]:
        return {"kind": "goal_state_oracle", "model": None, "reads": "info['goal_state']"}

