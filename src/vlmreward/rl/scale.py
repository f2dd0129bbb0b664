"""Training on Ray: what the ``scale:`` section changes in :func:`vlmreward.rl.train.train`.

With ``scale`` set, :func:`~vlmreward.rl.train.train` and :func:`~vlmreward.rl.train.resume` get
their reward model and training environment from a :class:`RayRuntime`, which, before any
training step:

1. connects to Ray (:func:`~vlmreward.distributed.cluster.init_ray`: a local instance, or
   ``scale.address``) and checks the cluster's GPUs and CPUs
   (:func:`~vlmreward.distributed.cluster.check_resources`);
2. starts ``scale.num_reward_replicas`` reward replicas
   (:class:`~vlmreward.distributed.service.RewardService`) and, meanwhile, the
   ``scale.num_env_workers`` environment workers
   (:class:`~vlmreward.distributed.rollouts.RayVecEnv`);
3. probes each replica and worker once: a replica that cannot load the model, or a worker that
   cannot build the environment, stops the run here with that error.

The training environment is the ``RayVecEnv`` wrapped in the usual
:class:`~vlmreward.envs.vector.VLMRewardVecEnvWrapper` with a
:class:`~vlmreward.distributed.remote.RemoteRewardModel` (with ``scale.score_on_workers`` the
env workers send their frames to the replicas themselves and the learner receives rewards). The learner (stable-baselines3, in this
process), deferred scoring, logs, checkpoints, evaluation (in this process, scored by the
replicas) and resume are the single-process ones. Each replica builds its reward with
:func:`~vlmreward.rl.train.build_reward_model` on :func:`replica_config` (the run's config with
the replica's device), so it scores exactly what a single-process run would.
"""

from __future__ import annotations

import logging
from typing import Any

from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from vlmreward.distributed.cluster import RaySession, check_resources, init_ray, local_cpus
from vlmreward.distributed.errors import ClusterError
from vlmreward.distributed.spec import RewardFactory
from vlmreward.envs.vector import VLMRewardVecEnvWrapper
from vlmreward.rewards.base import RewardModel
from vlmreward.rl.config import ConfigError, RunConfig

__all__ = ["RayRuntime", "replica_config"]

_log = logging.getLogger("vlmreward.rl")


def replica_config(config: RunConfig) -> RunConfig:
    """The run config as a reward replica builds it: ``model.device`` is the device Ray gives it.

    ``model.device: auto`` becomes ``cuda`` when ``scale.gpus_per_replica > 0``, else ``cpu``;
    ``cuda:N`` becomes ``cuda`` (the replica sees only the GPU(s) Ray assigned to it, through
    ``CUDA_VISIBLE_DEVICES``); ``cpu`` stays.

    Raises:
        ConfigError: ``model.device`` is a CUDA device but ``scale.gpus_per_replica`` is 0.
    """
    assert config.scale is not None
    gpus = config.scale.gpus_per_replica
    device = config.model.device
    if device == "auto":
        device = "cuda" if gpus > 0 else "cpu"
    elif device.startswith("cuda"):
        if gpus <= 0:
            raise ConfigError(
                f"model.device is {device!r} but scale.gpus_per_replica is 0, so Ray gives the reward replicas no GPU; "
                "set scale.gpus_per_replica (e.g. 1) or model.device: auto."
            )
        device = "cuda"
    return config.model_copy(update={"model": config.model.model_copy(update={"device": device})})


class RayRuntime:
    """Ray, the reward service and the environment workers of one run (see the module docstring).

    Args:
        config: the run config, with a ``scale`` section.
        reward_factory: what each replica calls to build the reward (picklable, no arguments);
            None for a run whose reward needs no replicas (a kind that trains on the environment's reward).
        local_reward: the reward model of a run without replicas.
        env_seed: the seed of the first :meth:`make_training_env` call: its workers then start
            while the replicas load the model (start-up takes the longer of the two, not the sum).
        log_to_driver: show the actors' output in this process.

    Attributes (after :meth:`start`):
        reward_model: a :class:`~vlmreward.distributed.remote.RemoteRewardModel`, or ``local_reward``.
        service: the :class:`~vlmreward.distributed.service.RewardService`, or None.
        session: the :class:`~vlmreward.distributed.cluster.RaySession`.

    Raises (from :meth:`start`):
        ClusterError: Ray missing or unreachable, too few GPUs/CPUs, a replica that cannot load
            the model or a worker that cannot build the environment (with their own error),
            replicas or workers that do not start within ``scale.ready_timeout_s``.
    """

    def __init__(
        self,
        config: RunConfig,
        reward_factory: RewardFactory | None = None,
        local_reward: RewardModel | None = None,
        *,
        env_seed: int | None = None,
        log_to_driver: bool = True,
    ) -> None:
        if config.scale is None:
            raise ConfigError("the config has no scale section; add scale: {num_env_workers: 2, num_reward_replicas: 1}.")
        if (reward_factory is None) == (local_reward is None):
            raise ValueError("give exactly one of reward_factory (served by replicas) and local_reward")
        self.config = config
        self.scale = config.scale
        self.reward_factory = reward_factory
        self.local_reward = local_reward
        self.env_seed = env_seed
        self.log_to_driver = log_to_driver
        self.session: RaySession | None = None
        self.service: Any = None
        self.reward_model: RewardModel | None = None
        self._early_env: Any = None
        self._envs: list[Any] = []

    def __enter__(self) -> "RayRuntime":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def start(self) -> "RayRuntime":
        """Connect, check resources, start and probe the replicas and workers; closes itself on failure."""
        scale, serve = self.scale, self.reward_factory is not None
        self.session = init_ray(
            scale.address,
            num_cpus=local_cpus(scale, serve) if scale.address is None else None,
            runtime_env=scale.runtime_env,
            log_to_driver=self.log_to_driver,
        )
        try:
            check_resources(scale, replicas=serve, where=self.session.where)
            if serve:
                from vlmreward.distributed.service import RewardService

                self.service = RewardService(
                    self.reward_factory,  # type: ignore[arg-type]
                    scale.num_reward_replicas,
                    gpus_per_replica=scale.gpus_per_replica,
                    cpus_per_replica=scale.cpus_per_replica,
                    max_batch_size=scale.max_batch_size,
                    max_wait_s=scale.max_wait_ms / 1000.0,
                    ready_timeout_s=scale.ready_timeout_s,
                    request_timeout_s=scale.request_timeout_s,
                    runtime_env=scale.runtime_env,
                    wait=False,
                )
            if self.env_seed is not None:  # the workers start while the replicas load the model
                self._early_env = self._ray_vec_env(self.env_seed, wait=False)
            if self.service is not None:
                from vlmreward.distributed.remote import RemoteRewardModel

                self.service.wait_ready()  # a replica that cannot load the model stops the run here
                self.reward_model = RemoteRewardModel(self.service)
                _log.info(
                    "%d reward replica(s) ready on %s: %s", scale.num_reward_replicas, self.session.where,
                    ", ".join(f"pid {i['pid']} {i['device']}" for i in self.service.replica_info),
                )
            else:
                self.reward_model = self.local_reward
            if self._early_env is not None:
                self._early_env.wait_started()  # an environment that cannot be built stops the run here too
        except BaseException:
            self.close()
            raise
        return self

    def _ray_vec_env(self, seed: int, wait: bool = True) -> Any:
        from vlmreward.distributed.rollouts import RayVecEnv

        config, scale = self.config, self.scale
        venv = RayVecEnv(
            config.env.id,
            config.env.n_envs,
            scale.num_env_workers,
            seed=seed,
            env_kwargs=config.env.kwargs,
            cpus_per_worker=scale.cpus_per_env_worker,
            runtime_env=scale.runtime_env,
            start_timeout_s=scale.ready_timeout_s,
            reward_service=self.service if scale.score_on_workers else None,
            wait=wait,
        )
        self._envs.append(venv)
        return venv

    def make_training_env(self, seed: int, normalize: bool = True) -> VecEnv:
        """The VLM-rewarded training environment on Ray (as :func:`vlmreward.rl.train.make_training_env`).

        Args:
            seed: sub-environment ``i`` resets with ``seed + i``.
            normalize: wrap in a fresh ``VecNormalize`` when ``env.normalize_observations``.

        Raises:
            ClusterError: the runtime is not started, or a worker could not create the
                environment (its error in the message).
        """
        if self.reward_model is None:
            raise ClusterError("the runtime is not started; use `with RayRuntime(...) as runtime:`.")
        config = self.config
        if self._early_env is not None and seed == self.env_seed:
            venv_ray, self._early_env = self._early_env.wait_started(), None
        else:
            venv_ray = self._ray_vec_env(seed)
        mode, weight = config.reward_mode
        venv: VecEnv = VLMRewardVecEnvWrapper(
            venv_ray, self.reward_model, mode=mode, weight=weight, deferred=config.deferred, overlap=config.overlapped,  # type: ignore[arg-type]
            score_batch_size=config.score_batch_size,
        )
        if normalize and config.env.normalize_observations:
            venv = VecNormalize(venv, norm_obs=True, norm_reward=False)
        return venv

    def close(self) -> None:
        """Stop the workers and replicas, and a Ray instance this runtime started; idempotent."""
        for venv in self._envs:
            try:
                venv.close()
            except Exception:  # noqa: BLE001 (best effort at shutdown)
                pass
        self._envs, self._early_env = [], None
        if self.service is not None:
            self.service.shutdown()
            self.service = None
        if self.session is not None:
            self.session.shutdown()
            self.session = None
