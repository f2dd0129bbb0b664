"""``preference``: a reward learned from pairwise preferences while the agent trains (RL-VLM-F, PEBBLE).

RL-VLM-F (Wang et al., ICML 2024; ``yufeiwang63/RL-VLM-F`` on PEBBLE, Lee et al., ICML 2021): the
frames the agent reaches are kept in a pool; every ``update_every`` environment steps,
``queries_per_update`` pairs of pooled frames are labelled (which of the two better achieves the
goal) and an ensemble of small reward heads is trained on every label so far with the
Bradley–Terry loss (:mod:`vlmreward.rewards.preference_model`). The agent's reward is the
ensemble's mean ``r̂`` of the frame it reached, in ``[-1, 1]``.

* Labels come from a local generative VLM (``labeller: vlm``, both orders of each pair asked,
  cached on disk; :class:`~vlmreward.rewards.preference_labels.VLMPreferenceLabeller`) or from a
  ground-truth value (``labeller: oracle``, RL-VLM-F's GT-preference control) read from
  ``info[truth_key]`` (``gt_reward``: the environment's step reward).
* Pairs: uniformly from the pool at the first update (the ensemble is untrained; PEBBLE's first
  feedback session), then PEBBLE's disagreement sampling: of ``large_batch · queries_per_update``
  uniform candidates, those with the largest ensemble standard deviation of ``P(x⁰ ≻ x¹)``.
* Training: up to ``epochs`` passes over all labels, stopping once the ensemble's training accuracy
  exceeds 0.97 (BPref ``train_PEBBLE.py``'s early stop); ``NO_PREFERENCE`` labels are dropped
  (RL-VLM-F's ``good_idx``).

The pool, the labels, the ensemble with its optimiser and the query RNG are the reward's state
(:meth:`PreferenceReward.state_dict`), which training checkpoints and restores, so a resumed run
continues exactly. Rewards change after each update: :mod:`vlmreward.rl` scores each step with the
current ensemble and relabels stored transitions after an update.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal, Optional

import numpy as np
import torch
from pydantic import Field, model_validator

from vlmreward.errors import InvalidFramesError, InvalidParameterError
from vlmreward.models.preprocess import Frames, as_frame_batch
from vlmreward.rewards.params import Count, PositiveFloat, RewardParams
from vlmreward.rewards.preference_labels import (
    NO_PREFERENCE,
    LabelCache,
    OracleLabeller,
    ServedLabeller,
    VLMPreferenceLabeller,
    label_accuracy,
)
from vlmreward.rewards.preference_model import RewardEnsemble, ensemble_disagreement
from vlmreward.rewards.registry import RewardContext, register

__all__ = ["PreferenceParams", "PreferenceReward", "resize_frames", "EARLY_STOP_ACCURACY"]

EARLY_STOP_ACCURACY = 0.97
"""Reward training stops once the ensemble's training accuracy exceeds this (BPref ``train_PEBBLE.py``)."""


class PreferenceParams(RewardParams):
    """Parameters of ``preference`` (see the module docstring)."""

    labeller: Literal["vlm", "oracle"] = "vlm"
    goal: Optional[str] = Field(None, min_length=1)
    stages: Literal[1, 2] = 1
    margin: float = Field(0.0, ge=0)
    queries_per_update: Count = 32
    update_every: Count = 1000
    ensemble: Count = 3
    head: Literal["cnn", "mlp"] = "cnn"
    image_size: int = Field(64, ge=47)
    query_size: int = Field(224, ge=16)
    pool_size: Count = 2000
    large_batch: Count = 10
    epochs: Count = 50
    lr: PositiveFloat = 3e-4
    train_batch_size: Count = 64
    truth_key: Optional[str] = None
    truth_sign: Literal[1, -1] = 1
    cache: Optional[str] = None
    seed: int = 0
    max_new_tokens: Count = 128
    labels: Optional[str] = Field(None, min_length=1)
    labels_dataset: Optional[str] = Field(None, min_length=1)
    state: Optional[str] = Field(None, min_length=1)

    offline_only: ClassVar[tuple[str, ...]] = ("labels", "labels_dataset", "state")

    @model_validator(mode="after")
    def _needs(self) -> "PreferenceParams":
        trained_offline = self.labels is not None or self.state is not None  # nothing is labelled
        if self.labeller == "vlm" and self.goal is None and not trained_offline:
            raise ValueError("labeller 'vlm' asks about a goal: give goal (e.g. 'to balance the pole upright on the cart'); "
                             "to evaluate a trained reward offline, give labels=LABELS.csv or state=reward_state.pt")
        if self.labels is not None and self.state is not None:
            raise ValueError("labels (train on a label-preferences file) and state (a trained reward state) exclude each other")
        if self.labels_dataset is not None and self.labels is None:
            raise ValueError("labels_dataset names the dataset of a labels file: give labels too")
        if self.labeller == "oracle" and self.truth_key is None and not trained_offline:
            raise ValueError("labeller 'oracle' compares ground-truth values: give truth_key (e.g. 'gt_reward')")
        return self


def resize_frames(frames: Frames, size: int) -> np.ndarray:
    """``uint8 [N, size, size, 3]``: frames resized by area averaging (``torch`` ``interpolate(mode="area")``), rounded."""
    batch = as_frame_batch(frames).permute(0, 3, 1, 2).float()
    out = torch.nn.functional.interpolate(batch, size=(size, size), mode="area")
    return out.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


@register("preference", PreferenceParams, model="optional", family="generative", display="learned from preferences")
class PreferenceReward:
    """The ensemble's mean ``r̂`` of a frame (``float32``, in ``[-1, 1]``), learned from preferences (module docstring).

    Protocol beyond a frame reward (used by :mod:`vlmreward.envs` and :mod:`vlmreward.rl`):
    :meth:`reward_inputs` and :meth:`score_inputs` (the head's inputs of frames and their rewards),
    :meth:`observe` (pool the frames the agent reached), :meth:`due` and :meth:`update` (label and
    train), :meth:`state_dict` / :meth:`load_state_dict`.

    Raises:
        InvalidParameterError: ``labeller: vlm`` without a generative VLM with a chat template.
    """

    learned = True

    def __init__(self, params: PreferenceParams, model: Any = None, labeller: Any = None) -> None:
        self.params = p = params
        if labeller is not None:  # e.g. a ServedLabeller: the VLM is on a reward server (:meth:`served`)
            self.labeller = labeller
        elif p.labeller == "vlm" and p.labels is None and p.state is None:  # offline, trained from a file: nothing is asked
            if model is None:
                raise InvalidParameterError("reward kind 'preference' with labeller 'vlm' asks a generative VLM; give model.name "
                                            "(e.g. Qwen/Qwen2.5-VL-3B-Instruct) or use labeller 'oracle'.")
            cache = LabelCache(p.cache) if p.cache else None
            self.labeller: Any = VLMPreferenceLabeller(model, p.goal, p.stages, p.margin, cache, p.max_new_tokens)
        else:
            self.labeller = OracleLabeller(p.margin)
        self.ensemble: RewardEnsemble | None = None  # built on the first input (the MLP head needs the observation size)
        self.rng = np.random.default_rng(p.seed)
        self.pool: dict[str, np.ndarray] = {}
        self.pool_count = 0  # frames ever pooled; the ring's next slot is pool_count % pool_size
        self.labelled: dict[str, np.ndarray] = {}
        self.steps_observed = 0
        self.last_update_step = 0
        self.updates = 0
        self.history: list[dict[str, Any]] = []
        self.offline: dict[str, Any] | None = None  # what an offline evaluation trained or loaded it from
        self._staged: list[tuple[np.ndarray | None, np.ndarray, np.ndarray | None]] = []

    @classmethod
    def from_params(cls, params: PreferenceParams, model: Any = None, context: RewardContext | None = None) -> "PreferenceReward":
        return cls(params, model)

    @classmethod
    def served(cls, params: PreferenceParams, server: Any) -> "PreferenceReward":
        """The reward trained here whose VLM labeller's model calls go to a reward server (``reward.server``).

        Args:
            params: the parameters (the same as the server's).
            server: what answers :meth:`ask` (a :class:`~vlmreward.distributed.client.ServedReward`) and ``describe()``
                (the server's reward, with its labeller's ``fingerprint``).
        """
        if params.labeller != "vlm" or params.labels is not None or params.state is not None:
            return cls(params)  # nothing is asked of a VLM
        p, served = params, server.describe()
        cache = LabelCache(p.cache) if p.cache else None
        return cls(params, labeller=ServedLabeller(server.ask, served, p.goal, p.stages, p.margin, cache, p.max_new_tokens))

    def ask(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """``float32 [Q, 2]``: the VLM labeller's ``log p("1"), log p("2")`` with ``first[i]`` shown as Image 1, asked
        now (no cache): what a reward server answers for a :meth:`served` reward.

        Raises:
            InvalidParameterError: the labeller is not a VLM.
        """
        if not isinstance(self.labeller, VLMPreferenceLabeller):
            raise InvalidParameterError("this preference reward's labeller is not a VLM; nothing to ask.")
        return self.labeller._ask(list(zip(first, second)))

    def use_cache(self, path: str | Path) -> None:
        """Cache the VLM labeller's answers in ``path`` unless a cache was configured (no effect for the oracle)."""
        if isinstance(self.labeller, VLMPreferenceLabeller) and self.labeller.cache is None:
            self.labeller.cache = LabelCache(path)

    # ------------------------------------------------------------------ inputs and rewards
    def reward_inputs(self, frames: Frames, observations: np.ndarray | None = None) -> np.ndarray:
        """The head's inputs: ``uint8 [N, S, S, 3]`` frames (``cnn``) or ``float32 [N, D]`` observations (``mlp``).

        Raises:
            InvalidFramesError: the ``mlp`` head without observations.
        """
        if self.params.head == "cnn":
            return resize_frames(frames, self.params.image_size)
        if observations is None:
            raise InvalidFramesError("the preference reward's 'mlp' head reads the environment's observations; score it "
                                     "through training (or use head 'cnn', which reads frames).")
        return np.asarray(observations, dtype=np.float32).reshape(len(observations), -1)

    def _ensemble_for(self, inputs: np.ndarray) -> RewardEnsemble:
        if self.ensemble is None:
            p = self.params
            self.ensemble = RewardEnsemble(p.head, inputs.shape[1:], p.ensemble, p.lr, p.train_batch_size, p.seed)
        return self.ensemble

    def score_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """``float32 [N]`` in ``[-1, 1]``: the ensemble's mean reward of head inputs (:meth:`reward_inputs`)."""
        return self._ensemble_for(inputs).rewards(inputs)

    def __call__(self, frames: Frames) -> np.ndarray:
        """Rewards of uint8 frames ``[N, H, W, 3]``: ``float32 [N]`` in ``[-1, 1]`` (``cnn`` head)."""
        return self.score_inputs(self.reward_inputs(frames))

    def from_embeddings(self, image_embeddings: Any) -> np.ndarray:
        raise InvalidParameterError("the preference reward reads frames, not embeddings.")

    # ------------------------------------------------------------------ the pool
    def observe(self, frames: np.ndarray, inputs: np.ndarray, truths: np.ndarray | None = None) -> None:
        """Stage the frames the agent reached for the pool (:meth:`commit` adds them; a rollout cut short is
        :meth:`discard_staged`, so a checkpoint taken at the rollout's start holds the pool of that moment).

        Args:
            frames: uint8 ``[N, H, W, 3]`` (kept at ``query_size`` for a VLM labeller).
            inputs: their head inputs (:meth:`reward_inputs`).
            truths: ``float [N]`` ground-truth values (``info[truth_key]``), NaN where missing, or None.
        """
        kept = resize_frames(frames, self.params.query_size) if self.params.labeller == "vlm" else None
        self._staged.append((kept, np.array(inputs, copy=True), None if truths is None else np.array(truths, np.float32)))

    def commit(self) -> None:
        """Add the staged frames to the pool, in the order observed."""
        staged, self._staged = self._staged, []
        for kept, inputs, truths in staged:
            self._pool_add(kept, inputs, truths)

    def discard_staged(self) -> None:
        """Forget the staged frames (their steps belong to no checkpoint)."""
        self._staged = []

    def _pool_add(self, kept: np.ndarray | None, inputs: np.ndarray, truths: np.ndarray | None) -> None:
        """Pool head inputs, truths and (VLM labeller) frames: a ring of ``pool_size``, RL-VLM-F's FIFO of recent frames."""
        n, p = len(inputs), self.params
        truth = np.full(n, np.nan, np.float32) if truths is None else p.truth_sign * np.asarray(truths, np.float32)
        items = {"inputs": np.asarray(inputs), "truth": truth}
        if kept is not None:
            items["frames"] = kept
        if not self.pool:
            self.pool = {k: np.zeros((p.pool_size, *v.shape[1:]), v.dtype) for k, v in items.items()}
        slots = (self.pool_count + np.arange(n)) % p.pool_size
        for k, v in items.items():
            self.pool[k][slots] = v
        self.pool_count += n
        self.steps_observed += n

    @property
    def pool_filled(self) -> int:
        return min(self.pool_count, self.params.pool_size)

    def due(self, steps: int) -> bool:
        """Whether an update is due at ``steps`` environment steps (``update_every`` since the last, and two pooled frames)."""
        return steps - self.last_update_step >= self.params.update_every and self.pool_filled >= 2

    # ------------------------------------------------------------------ labelling and training
    def _candidates(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        filled = self.pool_filled
        i = self.rng.integers(0, filled, n)
        j = (i + self.rng.integers(1, filled, n)) % filled  # uniform over the other frames: never a frame against itself
        return i, j

    def select_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Pool indices of the pairs to query: uniform at the first update, then disagreement sampling (module docstring)."""
        p = self.params
        if self.updates == 0:
            return self._candidates(p.queries_per_update)
        i, j = self._candidates(p.queries_per_update * p.large_batch)
        ensemble = self._ensemble_for(self.pool["inputs"][:1])
        disagreement = ensemble_disagreement(ensemble.probabilities(self.pool["inputs"][i], self.pool["inputs"][j]))
        top = np.argsort(-disagreement, kind="stable")[: p.queries_per_update]
        return i[top], j[top]

    def update(self, steps: int) -> dict[str, Any]:
        """Label ``queries_per_update`` pairs and train the ensemble on all labels so far.

        Returns:
            Statistics: ``queries``, ``labelled`` (pairs with a preference), ``labels_total``, ``model_calls``,
            ``cache_hits``, ``position_bias`` (mean first-shown preference, VLM labeller), ``label_accuracy``
            (agreement with the ground truth where both have a preference; None without truths), ``train_accuracy``, ``loss``.
        """
        i, j = self.select_pairs()
        pool = self.pool
        calls, hits = self.labeller.model_calls, self.labeller.cache_hits
        a_frames = pool["frames"][i] if "frames" in pool else pool["inputs"][i]
        b_frames = pool["frames"][j] if "frames" in pool else pool["inputs"][j]
        result = self.labeller.label(a_frames, b_frames, pool["truth"][i], pool["truth"][j])
        keep = result.labels != NO_PREFERENCE
        new = {"x0": pool["inputs"][i][keep], "x1": pool["inputs"][j][keep], "y": result.labels[keep].astype(np.int64)}
        self.labelled = new if not self.labelled else {k: np.concatenate([self.labelled[k], v]) for k, v in new.items()}
        stats: dict[str, Any] = {"step": int(steps), "queries": int(len(i)), "labelled": int(keep.sum()),
                                 "labels_total": int(len(self.labelled["y"])),
                                 "model_calls": self.labeller.model_calls - calls, "cache_hits": self.labeller.cache_hits - hits,
                                 "position_bias": float(result.first_bias.mean()) if len(i) else 0.0,
                                 "label_accuracy": label_accuracy(result.labels, pool["truth"][i] - pool["truth"][j])}
        fit = self._train(pool["inputs"][:1])
        stats.update(train_accuracy=fit["accuracy"], loss=fit["loss"])
        self.updates += 1
        self.last_update_step = int(steps)
        self.history.append(stats)
        return stats

    def _train(self, example: np.ndarray) -> dict[str, Any]:
        """Up to ``epochs`` passes over every label so far, stopping above :data:`EARLY_STOP_ACCURACY`."""
        ensemble = self._ensemble_for(example)
        fit: dict[str, Any] = {"loss": None, "accuracy": None}
        if len(self.labelled.get("y", ())):
            for _ in range(self.params.epochs):
                fit = ensemble.train_epoch(self.labelled["x0"], self.labelled["x1"], self.labelled["y"], self.rng)
                if fit["accuracy"] > EARLY_STOP_ACCURACY:
                    break
        return fit

    def fit_labels(self, first: Frames, second: Frames, labels: np.ndarray) -> dict[str, Any]:
        """Train the ensemble offline on labelled pairs of frames (``vlmreward evaluate --param labels=…``), as one update.

        Args:
            first, second: uint8 frames ``[N, H, W, 3]``, the two frames of each pair.
            labels: ``int [N]``: 0 (first preferred), 1 (second) or -1 (no preference: dropped).

        Returns:
            ``labels_total`` (pairs with a preference), ``train_accuracy`` and ``loss`` (None without any such pair).

        Raises:
            InvalidFramesError: the ``mlp`` head (it reads observations, not frames).
        """
        labels = np.asarray(labels, np.int64)
        keep = labels != NO_PREFERENCE
        x0, x1 = self.reward_inputs(first), self.reward_inputs(second)
        self.labelled = {"x0": x0[keep], "x1": x1[keep], "y": labels[keep]}
        fit = self._train(x0[:1])
        self.updates += 1
        return {"labels_total": int(keep.sum()), "train_accuracy": fit["accuracy"], "loss": fit["loss"]}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue exactly: pool, labels, ensemble and optimiser, RNG, counters
        (tensors, NumPy arrays, numbers and strings: loadable with ``torch.load(weights_only=True)`` once arrays are tensors)."""
        return {
            "pool": {k: torch.from_numpy(v.copy()) for k, v in self.pool.items()},
            "labelled": {k: torch.from_numpy(v.copy()) for k, v in self.labelled.items()},
            "ensemble": None if self.ensemble is None else self.ensemble.state_dict(),
            "input_shape": None if self.ensemble is None else list(self.ensemble.input_shape),
            "rng": self.rng.bit_generator.state,
            "counters": {"pool_count": self.pool_count, "steps_observed": self.steps_observed,
                         "last_update_step": self.last_update_step, "updates": self.updates},
            "history": list(self.history),
            "label_cache": None if getattr(self.labeller, "cache", None) is None else str(self.labeller.cache.path),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pool = {k: v.numpy() for k, v in state["pool"].items()}
        self.labelled = {k: v.numpy() for k, v in state["labelled"].items()}
        if state["ensemble"] is not None:
            self._ensemble_for(np.zeros((1, *state["input_shape"]), np.uint8 if self.params.head == "cnn" else np.float32))
            self.ensemble.load_state_dict(state["ensemble"])  # type: ignore[union-attr]
        self.rng.bit_generator.state = state["rng"]
        for key, value in state["counters"].items():
            setattr(self, key, int(value))
        self.history = list(state["history"])

    def describe(self) -> dict[str, Any]:
        p = self.params
        return {"kind": "preference", "model": getattr(self.labeller, "model_name", None),
                **self.labeller.describe(), "head": p.head, "image_size": p.image_size, "ensemble": p.ensemble,
                "queries_per_update": p.queries_per_update, "update_every": p.update_every, "truth_key": p.truth_key,
                "updates": self.updates, **({"trained_offline": self.offline} if self.offline is not None else {})}

