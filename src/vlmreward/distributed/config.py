"""The ``scale:`` section of a run config: where and how wide a run goes on Ray.

Pure pydantic, importable without Ray: :mod:`vlmreward.rl.config` embeds :class:`ScaleConfig`
as ``RunConfig.scale`` (absent or ``null``: one process, as before)::

    scale:
      num_env_workers: 2        # Ray actors stepping the env.n_envs sub-environments
      num_reward_replicas: 1    # Ray actors holding the reward model (one per GPU)
      gpus_per_replica: 0       # 0: CPU replicas; 1: one GPU each; 0.5: two per GPU
      address: null             # null: a local Ray instance; "auto", "HOST:6379", "ray://HOST:10001"
      score_on_workers: false   # true: env workers send frames to the replicas, the learner gets rewards

``scale`` moves a run, it does not change it: ``env.n_envs`` stays the number of sub-environments
(split over the workers), the rewards the learner receives are those of single-process scoring.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict

__all__ = ["ScaleConfig", "check_scale_fits", "required_cpus", "required_gpus"]


def _at_least_one(value: int) -> int:
    if value < 1:
        raise ValueError(f"must be an integer ≥ 1; got {value}")
    return value


def _non_negative(value: float) -> float:
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"must be a number ≥ 0; got {value}")
    return value


def _positive(value: float) -> float:
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"must be a number > 0; got {value}")
    return value


def _address(value: Optional[str]) -> Optional[str]:
    if value is not None and not value.strip():
        raise ValueError("must be null (a local Ray instance), 'auto', 'HOST:PORT' or 'ray://HOST:PORT'")
    return None if value is None else value.strip()


Count = Annotated[int, AfterValidator(_at_least_one)]
NonNegative = Annotated[float, AfterValidator(_non_negative)]
Positive = Annotated[float, AfterValidator(_positive)]


class ScaleConfig(BaseModel):
    """``scale``: run the environments and the reward model as Ray actors.

    Attributes:
        address: the Ray cluster: None starts a local Ray instance (``ray.init()``); ``"auto"``
            joins the cluster this machine belongs to (``ray start``); ``"HOST:PORT"`` a cluster's
            GCS address; ``"ray://HOST:PORT"`` a Ray Client server.
        num_env_workers: Ray actors that step the ``env.n_envs`` sub-environments (each holds a
            contiguous slice, so ``env.n_envs ≥ num_env_workers``).
        num_reward_replicas: Ray actors that each hold one copy of the reward model.
        gpus_per_replica: GPUs Ray reserves for each replica (fractions share a GPU); 0 runs the
            replicas on CPU. With ``model.device: auto`` a replica uses ``cuda`` exactly when > 0.
        cpus_per_replica: CPUs Ray reserves for each replica (also its PyTorch thread count).
        cpus_per_env_worker: CPUs Ray reserves for each environment worker.
        score_on_workers: where frames go. False (default): worker → learner → replicas; the
            learner's deferred scoring sends them in large batches (``score_batch_size``), which
            keeps few replicas busy with few workers. True: each env worker sends its step's frames
            to the replicas and hands the learner only the rewards, so frames never cross the
            learner (its network link caps the default path: ``benchmarks/RESULTS_ray.md``); the
            replicas batch the requests of all workers (raise ``max_wait_ms`` to merge more). The
            rewards are the same either way.
        max_batch_size: a replica scores at most this many frames per batch; requests are also
            split into pieces of at most this size.
        max_wait_ms: a replica waits at most this long after a request arrives for others to fill
            the batch. 0 (default): score as soon as the replica is free; requests that arrive
            while a batch is scored form the next batch. In ``vlmreward train`` the learner is the
            only caller, so waiting only adds latency; raise it when many processes share replicas.
        ready_timeout_s: how long replicas and workers may take to start (model download and
            load included) before the run is abandoned with a :class:`ClusterError`.
        request_timeout_s: how long one scoring request may take, restarts and retries of a
            failed replica included, before the run stops with a :class:`ClusterError`.
        runtime_env: Ray ``runtime_env`` for every actor (``{"pip": [...]}``, ``env_vars``,
            ``working_dir``), for clusters whose nodes lack the packages.
    """

    model_config = ConfigDict(extra="forbid", validate_default=True)

    address: Annotated[Optional[str], AfterValidator(_address)] = None
    num_env_workers: Count = 1
    num_reward_replicas: Count = 1
    gpus_per_replica: NonNegative = 0.0
    cpus_per_replica: NonNegative = 1.0
    cpus_per_env_worker: NonNegative = 1.0
    score_on_workers: bool = False
    max_batch_size: Count = 256
    max_wait_ms: NonNegative = 0.0
    ready_timeout_s: Positive = 300.0
    request_timeout_s: Positive = 600.0
    runtime_env: Optional[dict[str, Any]] = None


def check_scale_fits(n_envs: int, scale: ScaleConfig) -> None:
    """Raise unless ``n_envs`` sub-environments can be split over ``scale.num_env_workers`` workers.

    Raises:
        ValueError: ``n_envs < num_env_workers`` (the message names both keys).
    """
    if n_envs < scale.num_env_workers:
        raise ValueError(
            f"scale.num_env_workers is {scale.num_env_workers} but env.n_envs is {n_envs}; each worker steps at "
            f"least one sub-environment, so raise env.n_envs to ≥ {scale.num_env_workers} or lower scale.num_env_workers"
        )


def required_gpus(scale: ScaleConfig, replicas: bool = True) -> float:
    """GPUs the run reserves: ``num_reward_replicas · gpus_per_replica`` (0 without replicas)."""
    return scale.num_reward_replicas * scale.gpus_per_replica if replicas else 0.0


def required_cpus(scale: ScaleConfig, replicas: bool = True) -> float:
    """CPUs the run's actors reserve: workers' plus replicas' (the learner's own process not counted)."""
    cpus = scale.num_env_workers * scale.cpus_per_env_worker
    return cpus + (scale.num_reward_replicas * scale.cpus_per_replica if replicas else 0.0)
