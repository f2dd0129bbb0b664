"""The :class:`~vlmreward.rewards.base.RewardModel` protocol on top of a
:class:`~vlmreward.distributed.service.RewardService`, and the stand-in of a frame scored where it
was rendered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from vlmreward.distributed.service import RewardService
from vlmreward.models.preprocess import Frames

__all__ = ["RemoteRewardModel", "ScoredFrame"]


@dataclass(frozen=True)
class ScoredFrame:
    """Stands in for a frame that was scored where it was rendered.

    :class:`~vlmreward.distributed.rollouts.RayVecEnv` with a ``reward_service`` puts one in
    ``info["frame"]`` instead of the ``uint8 [H, W, 3]`` array: its env worker sent the frames to
    the service and kept only the reward, so frames do not travel to the learner.
    :class:`RemoteRewardModel` returns ``reward`` for it.

    Attributes:
        reward: the reward model's reward of the frame (``float32`` value, before ``weight``).
    """

    reward: float


class RemoteRewardModel:
    """A :class:`~vlmreward.rewards.base.RewardModel` whose frames are scored by a :class:`RewardService`.

    Drop-in for a local reward: ``VLMRewardVecEnvWrapper(venv, RemoteRewardModel(service))``
    scores every step's frames (or, deferred, every ``score_batch_size`` frames) on the replicas
    and gets the rewards in frame order. It does not own the service (shut that down yourself).
    It also takes a list mixing frames and :class:`ScoredFrame` stand-ins (what a ``RayVecEnv``
    that scores on its workers hands out): the stand-ins give their reward, the frames are scored.

    Args:
        service: a started :class:`RewardService`.
    """

    def __init__(self, service: RewardService) -> None:
        self.service = service
        self._describe = service.describe()

    def __call__(self, frames: Frames | Sequence[np.ndarray | ScoredFrame]) -> np.ndarray:
        """Rewards of uint8 RGB frames ``[N, H, W, 3]`` (or one ``[H, W, 3]``), or of a list of
        ``[H, W, 3]`` frames and :class:`ScoredFrame` stand-ins: ``float32 [N]``, in order.

        Raises:
            InvalidFramesError, ClusterError: as :meth:`RewardService.score`.
        """
        if isinstance(frames, (list, tuple)) and any(isinstance(f, ScoredFrame) for f in frames):
            out = np.array([f.reward if isinstance(f, ScoredFrame) else np.nan for f in frames], dtype=np.float32)
            todo = [i for i, f in enumerate(frames) if not isinstance(f, ScoredFrame)]
            if todo:
                out[todo] = self.service.score(np.stack([frames[i] for i in todo]))
            return out
        return self.service.score(frames)  # type: ignore[arg-type]

    def from_embeddings(self, image_embeddings: Any) -> np.ndarray:
        """Not available: the text embeddings and the reward live on the replicas.

        Raises:
            NotImplementedError: always; score frames, or build the reward locally (call the
                service's ``factory``) to work with embeddings.
        """
        raise NotImplementedError(
            "RemoteRewardModel scores frames on Ray replicas, which hold the text embeddings; call it with frames, "
            "or build the reward locally (call service.factory()) to score embeddings."
        )

    def describe(self) -> dict[str, Any]:
        """The served reward's description (kind, model, prompts, parameters) plus ``"ray_replicas"``."""
        return dict(self._describe)
