"""Rewards without a vision-language model, for checking the training path and for baselines.

* ``cartpole_pixel_oracle`` (:class:`CartPolePixelReward`): an informative reward read off
  CartPole's pixels;
* ``ground_truth`` (:class:`GroundTruthOnlyReward`): 0 for every frame, so that the agent trains on
  the environment's own reward while the logs keep a VLM run's columns;
* ``custom`` (:func:`build_custom_reward`): any reward built by ``factory(**kwargs)``.


A CLIP model with random weights gives no learning signal, and real weights cannot be had in CI.
:class:`CartPolePixelReward` implements the same :class:`~vlmreward.rewards.base.RewardModel`
protocol from the rendered frame alone: it finds the pole (gymnasium's CartPole draws it in
``POLE_COLOUR``), measures its angle from vertical by the principal axis of its pixels, tells up
from down by where the pole lies relative to the axle (``AXLE_COLOUR``), and rewards ``cos θ``:
1 upright, -1 hanging down (which only the VLM-RM CartPole, never ending on failure, shows). Plugged through the same wrappers, batching and deferred scoring as a VLM
reward, it shows that the whole training path turns a frame-based reward into a policy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pydantic import Field

from vlmreward._importing import import_object
from vlmreward.errors import InvalidParameterError
from vlmreward.models.preprocess import Frames, as_frame_batch
from vlmreward.rewards.params import RewardParams
from vlmreward.rewards.registry import RewardKind, register, register_kind

__all__ = ["CartPolePixelReward", "GroundTruthOnlyReward", "CustomRewardParams", "build_custom_reward", "POLE_COLOUR", "AXLE_COLOUR"]

POLE_COLOUR = (202, 152, 101)
"""RGB of the pole in gymnasium's ``CartPoleEnv.render`` (``pygame`` polygon colour)."""
AXLE_COLOUR = (129, 132, 203)
"""RGB of the axle (the pole's pivot, a circle drawn over the pole) in gymnasium's render."""
_AXLE_MARGIN = 12
"""Pixels around the pole's bounding box searched for the axle (its radius is 5 pixels)."""


@register("cartpole_pixel_oracle", model="none", display="CartPole pixel oracle")
class CartPolePixelReward:
    """``cos θ`` of the pole angle ``θ`` measured on rendered CartPole frames, in ``[-1, 1]``.

    ``from_embeddings`` takes this model's "embedding", ``float32 [N, 2]`` = ``(cos θ, |sin θ|)``
    from :meth:`embed`; a frame without a visible pole (none in the picture) embeds to ``(0, 1)``.
    ``cos θ`` is negative when the pole's pixels lie below the axle's (a pole hanging down).
    """

    def embed(self, frames: Frames) -> np.ndarray:
        """Frames ``uint8 [N, H, W, 3]`` → ``float32 [N, 2]``: ``(cos θ, |sin θ|)`` of the pole axis."""
        batch = as_frame_batch(frames).cpu().numpy()
        out = np.tile(np.array([0.0, 1.0], dtype=np.float32), (len(batch), 1))
        mask = _colour_mask(batch, POLE_COLOUR)
        for i in range(len(batch)):
            rows, cols = np.nonzero(mask[i])
            if len(rows) < 10:
                continue
            coords = np.stack([rows, cols]).astype(np.float64)
            centre_row = coords[0].mean()
            coords -= coords.mean(axis=1, keepdims=True)
            _, vectors = np.linalg.eigh(coords @ coords.T)
            axis = vectors[:, -1]  # principal axis, unit; component 0 along the image's vertical
            # the axle sits at the pole's pivot: look for it around the pole only (a whole-frame mask costs 1 ms a frame)
            r0, c0 = max(0, rows.min() - _AXLE_MARGIN), max(0, cols.min() - _AXLE_MARGIN)
            near = batch[i, r0 : rows.max() + _AXLE_MARGIN + 1, c0 : cols.max() + _AXLE_MARGIN + 1]
            axle_rows = np.nonzero(_colour_mask(near, AXLE_COLOUR))[0] + r0
            below = len(axle_rows) > 0 and centre_row > axle_rows.mean()  # image rows grow downwards
            out[i] = (-abs(axis[0]) if below else abs(axis[0]), abs(axis[1]))
        return out

    def __call__(self, frames: Frames) -> np.ndarray:
        """Rewards of frames: ``float32 [N]`` in ``[-1, 1]``, 1 for an upright pole, -1 hanging down."""
        return self.from_embeddings(self.embed(frames))

    def from_embeddings(self, image_embeddings: torch.Tensor | np.ndarray) -> np.ndarray:
        """Rewards of :meth:`embed` outputs ``[N, 2]``: ``float32 [N]`` = ``cos θ``."""
        return np.asarray(image_embeddings, dtype=np.float32).reshape(-1, 2)[:, 0].copy()

    def describe(self) -> dict[str, Any]:
        return {"kind": "cartpole_pixel_oracle", "model": None, "reward": "cos(pole angle) measured on pixels"}


def _colour_mask(batch: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """``bool [..., H, W]``: pixels of exactly ``colour`` (three compares: ~10× faster than ``np.all(..., axis=-1)``)."""
    r, g, b = colour
    mask = batch[..., 0] == r
    mask &= batch[..., 1] == g
    mask &= batch[..., 2] == b
    return mask


@register("ground_truth", model="none", display="ground truth", environment_reward=True)
class GroundTruthOnlyReward:
    """The reward of ``reward.kind: ground_truth``: 0 for every frame. A run with it trains on the
    environment's own reward (the trainer adds it with weight 0) and logs the same columns as a
    VLM run (the VLM return is 0)."""

    def __call__(self, frames: Any) -> np.ndarray:
        n = 1 if getattr(frames, "ndim", 4) == 3 else len(frames)
        return np.zeros(n, dtype=np.float32)

    def from_embeddings(self, image_embeddings: Any) -> np.ndarray:
        return np.zeros(len(image_embeddings), dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        return {"kind": "ground_truth", "model": None}


class CustomRewardParams(RewardParams):
    """Parameters of ``custom``: ``factory`` is ``"package.module:callable"``, called with ``kwargs``
    (and ``model=`` the loaded vision-language model, when the run names one)."""

    factory: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
    kwargs: dict[str, Any] = Field(default_factory=dict)


def build_custom_reward(params: CustomRewardParams, model: Any = None, context: Any = None) -> Any:
    """``factory(**kwargs, model=model)`` (``model=`` only when given).

    The factory is imported and called: a config that names one runs code (as a pickle or a
    Python file would), so run only configs you trust.

    Raises:
        InvalidParameterError: the factory cannot be imported, is not callable, does not take the
            keyword arguments, or returns something that is not a reward.
    """
    try:
        target = import_object(params.factory)
    except (ImportError, AttributeError, ValueError) as err:
        raise InvalidParameterError(f"reward.factory: cannot import {params.factory!r} ({err}); give 'package.module:callable'.") from err
    if not callable(target):
        raise InvalidParameterError(f"reward.factory: {params.factory!r} is a {type(target).__name__}, not a callable.")
    kwargs = dict(params.kwargs)
    if model is not None:
        kwargs["model"] = model
    try:
        reward = target(**kwargs)
    except TypeError as err:
        raise InvalidParameterError(
            f"reward.factory: {params.factory}(**reward.kwargs{', model=...' if model is not None else ''}) failed: {err}. "
            f"{_TRUST}"
        ) from err
    if not callable(reward):
        raise InvalidParameterError(
            f"reward.factory: {params.factory} returned a {type(reward).__name__}, not a reward (a callable: uint8 frames "
            f"[N, H, W, 3] -> float32 [N]). {_TRUST}"
        )
    return reward


_TRUST = "A config's factory is code that vlmreward imports and runs: run only configs you trust."


register_kind(RewardKind("custom", build_custom_reward, CustomRewardParams, model="optional", builder=True))
