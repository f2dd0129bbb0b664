"""VLM reward serving and rollouts on Ray (``pip install 'vlmreward[ray]'``).

* :class:`RewardService` / :class:`RemoteRewardModel`: reward-model replicas as Ray actors that
  batch requests from many callers (max batch size or max wait) and answer in request order.
* :class:`RayVecEnv`: a stable-baselines3 ``VecEnv`` whose sub-environments step in Ray actors
  (optionally sending their frames to the service themselves: :class:`ScoredFrame`).
* :func:`init_ray`, :func:`check_resources`: connect and check the cluster before training.
* :class:`ScaleConfig`: the ``scale:`` section of a run config, with which ``vlmreward train``
  uses all of the above (:mod:`vlmreward.rl.scale`).
* :class:`RewardSpec`: a picklable recipe that builds a reward on a replica.

Importing this package does not import Ray; the names that need it load it on first use.
See ``docs/ray.md``.
"""

from __future__ import annotations

from typing import Any

from vlmreward.distributed.config import ScaleConfig
from vlmreward.distributed.errors import ClusterError
from vlmreward.distributed.spec import RewardFactory, RewardSpec

__all__ = [
    "ScaleConfig",
    "ClusterError",
    "RewardSpec",
    "RewardFactory",
    "init_ray",
    "check_resources",
    "RaySession",
    "RewardService",
    "RemoteRewardModel",
    "ScoredFrame",
    "RewardReplica",
    "RayVecEnv",
    "EnvWorker",
]

_LAZY = {
    "init_ray": "cluster",
    "check_resources": "cluster",
    "RaySession": "cluster",
    "RewardService": "service",
    "RemoteRewardModel": "remote",
    "ScoredFrame": "remote",
    "RewardReplica": "replica",
    "RayVecEnv": "rollouts",
    "EnvWorker": "rollouts",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        if _LAZY[name] != "cluster":
            from vlmreward.distributed.cluster import require_ray

            require_ray()  # a ClusterError naming the install command, not a bare ImportError
        return getattr(importlib.import_module(f"vlmreward.distributed.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'vlmreward.distributed' has no attribute {name!r}")
