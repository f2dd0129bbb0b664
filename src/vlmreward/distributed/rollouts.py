"""Rollouts on Ray: the sub-environments of a stable-baselines3 ``VecEnv`` live in Ray actors.

:class:`RayVecEnv` splits ``n_envs`` sub-environments into ``num_workers`` contiguous slices; each
slice lives in an :class:`EnvWorker` actor holding a ``DummyVecEnv`` of
``RenderFrame(Monitor(gymnasium.make(env_id, render_mode="rgb_array", **env_kwargs)))``, built
and seeded as :func:`vlmreward.envs.make_vlm_vec_env` builds and seeds its sub-environments
(sub-environment ``i`` resets with ``seed + i``, its action space seeded ``seed + i``). So
``RayVecEnv`` steps exactly like the single-process vector environment: same observations,
same auto-reset (``terminal_observation`` and ``TimeLimit.truncated`` in the infos), same frames
in ``info["frame"]`` for :class:`~vlmreward.envs.vector.VLMRewardVecEnvWrapper` to score. The
workers step in parallel.

Where frames are scored: by default they travel worker → learner, and the learner's reward model
scores them (with a :class:`~vlmreward.distributed.remote.RemoteRewardModel`: learner → reward
service, in the large batches of deferred scoring). With ``reward_service=`` each worker sends its
step's frames to the service itself and hands the learner a
:class:`~vlmreward.distributed.remote.ScoredFrame` (the reward) in ``info["frame"]`` instead of
the frame: frames then never cross the learner, whose network link stops being the limit, and
the replicas batch the requests of all workers (``max_wait_ms``). The wrapper's reward model must
be the service's ``RemoteRewardModel``; the rewards are the same.

A worker that dies (``ray.exceptions.RayActorError``: crash, node loss, ``ray.kill``) is
replaced by a new actor for the same slice, reset with a fresh seed. The step that was in
progress in each of its sub-environments is reported as a time-limit truncation that did not
move: ``done=True``, ``info["TimeLimit.truncated"] = True``, ``info["terminal_observation"]``
the observation the action was chosen on, ``info["frame"]`` that state's frame (so the VLM
reward is the reward of staying; when workers score, the :class:`ScoredFrame` of the step that
reached that state, or the frame itself after a reset), environment reward 0, ``info["worker_restarted"] = True``,
and the returned observation is the new episode's first. The episodes in progress are cut,
nothing else is lost; ``worker_restarts`` counts replacements.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
import ray
from ray.exceptions import GetTimeoutError, RayActorError
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from vlmreward.distributed.errors import ClusterError
from vlmreward.distributed.remote import ScoredFrame

__all__ = ["EnvWorker", "RayVecEnv", "split_slices", "REPLACEMENT_SEED_STRIDE"]

_log = logging.getLogger("vlmreward.distributed")

REPLACEMENT_SEED_STRIDE = 1_000_003
"""The ``k``-th replacement of a worker whose slice starts at ``s`` resets with
``seed + s + k · REPLACEMENT_SEED_STRIDE`` (fresh episodes, still reproducible)."""


def split_slices(n_envs: int, num_workers: int) -> list[tuple[int, int]]:
    """Contiguous ``[(start, stop), ...]`` slices of ``n_envs`` sub-environments, sizes differing by at most 1."""
    base, extra = divmod(n_envs, num_workers)
    out, start = [], 0
    for k in range(num_workers):
        stop = start + base + (1 if k < extra else 0)
        out.append((start, stop))
        start = stop
    return out


class _EnvWorker:
    """Sub-environments ``start … start + n_envs - 1`` of a :class:`RayVecEnv`, in one Ray actor."""

    def __init__(
        self,
        env_id: str | Callable[..., gym.Env],
        start: int,
        n_envs: int,
        seed: int | None,
        env_kwargs: dict[str, Any] | None,
        reward_service: Any = None,
    ) -> None:
        self.error: str | None = None
        self.venv: Any = None
        self.reward_service = reward_service
        try:
            import vlmreward.envs  # noqa: F401 (registers the vlmreward/ environments)
            from stable_baselines3.common.env_util import make_vec_env
            from stable_baselines3.common.vec_env import DummyVecEnv

            from vlmreward.envs.wrappers import RenderFrame

            kwargs = {"render_mode": "rgb_array", **(env_kwargs or {})}
            self.venv = make_vec_env(
                env_id, n_envs=n_envs, seed=seed, start_index=start, env_kwargs=kwargs,
                wrapper_class=RenderFrame, vec_env_cls=DummyVecEnv,
            )
            if seed is not None:
                self.venv.seed(seed + start)  # make_vec_env seeded the resets from `seed`, not `seed + start`
        except Exception as err:  # noqa: BLE001 (reported by spaces(), so the driver can say what failed)
            self.error = f"{type(err).__name__}: {' '.join(str(err).split())}"

    def spaces(self) -> dict[str, Any]:
        """``{"error", "observation_space", "action_space", "pid"}`` (spaces None on error)."""
        if self.error is not None:
            return {"error": self.error, "pid": os.getpid()}
        return {
            "error": None,
            "observation_space": self.venv.observation_space,
            "action_space": self.venv.action_space,
            "pid": os.getpid(),
        }

    def _frames(self, indices: Sequence[int]) -> dict[int, np.ndarray]:
        return {int(i): self.venv.envs[i].render() for i in indices}

    def reset(self) -> tuple[Any, list[dict[str, Any]], dict[int, np.ndarray]]:
        """``(observations, reset_infos, current frames)`` after resetting every sub-environment."""
        obs = self.venv.reset()
        return obs, list(self.venv.reset_infos), self._frames(range(self.venv.num_envs))

    def step(self, actions: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray, list[dict[str, Any]], list[dict[str, Any]], dict[int, np.ndarray]]:
        """``DummyVecEnv.step``, plus the reset infos and the frames of the sub-environments that auto-reset.

        With a reward service, ``info["frame"]`` becomes a :class:`ScoredFrame` (the frames are
        scored here, in one request; a replica restart only delays the answer).
        """
        obs, rewards, dones, infos = self.venv.step(actions)
        if self.reward_service is not None:
            scored = self.reward_service.score(np.stack([info["frame"] for info in infos]))
            for info, value in zip(infos, scored):
                info["frame"] = ScoredFrame(float(value))
        done = np.flatnonzero(dones)
        resets = [dict(self.venv.reset_infos[i]) if dones[i] else {} for i in range(self.venv.num_envs)]
        return obs, rewards, dones, infos, resets, self._frames(done)

    def seed(self, seed: int | None) -> None:
        self.venv.seed(seed)

    def set_options(self, options: list[dict[str, Any]] | dict[str, Any] | None) -> None:
        self.venv.set_options(options)

    def get_attr(self, name: str, indices: list[int]) -> list[Any]:
        return self.venv.get_attr(name, indices)

    def set_attr(self, name: str, value: Any, indices: list[int]) -> None:
        self.venv.set_attr(name, value, indices)

    def env_method(self, name: str, args: tuple, kwargs: dict[str, Any], indices: list[int]) -> list[Any]:
        return self.venv.env_method(name, *args, indices=indices, **kwargs)

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: list[int]) -> list[bool]:
        return self.venv.env_is_wrapped(wrapper_class, indices)

    def get_images(self) -> list[np.ndarray | None]:
        return list(self.venv.get_images())

    def close(self) -> None:
        if self.venv is not None:
            self.venv.close()

    def pid(self) -> int:
        return os.getpid()


EnvWorker = ray.remote(max_restarts=0, max_task_retries=0)(_EnvWorker)
"""The worker as a Ray actor class; not restarted by Ray (:class:`RayVecEnv` replaces it, reset)."""


def _index(obs: Any, i: int) -> Any:
    if isinstance(obs, dict):
        return {k: np.array(v[i]) for k, v in obs.items()}
    if isinstance(obs, tuple):
        return tuple(np.array(v[i]) for v in obs)
    return np.array(obs[i])


def _concat(parts: list[Any]) -> Any:
    first = parts[0]
    if isinstance(first, dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in first}
    if isinstance(first, tuple):
        return tuple(np.concatenate([p[j] for p in parts]) for j in range(len(first)))
    return np.concatenate(parts)


def _writable(obs: Any) -> Any:
    """Copies of Ray's read-only zero-copy arrays (observations are small)."""
    if isinstance(obs, dict):
        return {k: np.array(v) for k, v in obs.items()}
    if isinstance(obs, tuple):
        return tuple(np.array(v) for v in obs)
    return np.array(obs)


class RayVecEnv(VecEnv):
    """A stable-baselines3 ``VecEnv`` whose sub-environments are stepped by Ray actors.

    Args:
        env_id: a gymnasium id, or a picklable callable returning an environment (rendered
            with ``render_mode="rgb_array"``).
        n_envs: sub-environments in all.
        num_workers: Ray actors they are split over (contiguous slices, ``n_envs ≥ num_workers``).
        seed: sub-environment ``i`` resets with ``seed + i`` and its action space is seeded
            ``seed + i`` (as ``make_vec_env``); None for random seeds.
        env_kwargs: keyword arguments of ``gymnasium.make``.
        cpus_per_worker: CPUs Ray reserves for each worker.
        runtime_env: Ray ``runtime_env`` of the workers.
        start_timeout_s: how long a (new) worker may take to build its environments.
        max_worker_restarts: replacements allowed in all before a :class:`ClusterError` (a
            crash loop stops the run instead of spinning).
        reward_service: a :class:`~vlmreward.distributed.service.RewardService` the workers send
            their frames to (see the module docstring); None: frames go to the learner.
        wait: wait for the workers here; False returns at once (the workers start meanwhile,
            e.g. while reward replicas load a model) and :meth:`wait_started` must come before use.

    Raises:
        ClusterError: Ray is not connected, ``n_envs < num_workers``, a worker could not build
            its environments (the message carries the environment's error), or did not start in time.

    The module docstring gives the semantics of a worker that dies.
    """

    def __init__(
        self,
        env_id: str | Callable[..., gym.Env],
        n_envs: int,
        num_workers: int = 1,
        *,
        seed: int | None = None,
        env_kwargs: dict[str, Any] | None = None,
        cpus_per_worker: float = 1.0,
        runtime_env: dict[str, Any] | None = None,
        start_timeout_s: float = 120.0,
        max_worker_restarts: int = 100,
        reward_service: Any = None,
        wait: bool = True,
    ) -> None:
        if not ray.is_initialized():
            raise ClusterError("Ray is not connected; call vlmreward.distributed.init_ray() (or ray.init()) first.")
        if not 1 <= num_workers <= n_envs:
            raise ClusterError(f"num_workers must be between 1 and n_envs ({n_envs}); got {num_workers}.")
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})
        self.slices = split_slices(n_envs, num_workers)
        self.start_timeout_s = float(start_timeout_s)
        self.max_worker_restarts = int(max_worker_restarts)
        self.reward_service = reward_service
        self.worker_restarts = 0
        self._replacements = [0] * num_workers
        self._base_seed = seed
        self._options: list[dict[str, Any]] = [{} for _ in range(n_envs)]
        self._worker_options: dict[str, Any] = {"num_cpus": cpus_per_worker}
        if runtime_env is not None:
            self._worker_options["runtime_env"] = runtime_env
        self._n_envs = n_envs
        self._started = False
        self.workers = [self._new_worker(k, seed) for k in range(num_workers)]
        if wait:
            self.wait_started()

    def wait_started(self) -> "RayVecEnv":
        """Wait until every worker has built its environments (idempotent).

        Raises:
            ClusterError: a worker could not create the environment, or did not start in time.
        """
        if self._started:
            return self
        spaces = self._await_started(list(range(len(self.workers))))
        self._refs: list[Any] | None = None
        self._obs: list[Any] = [None] * len(self.workers)  # each worker's last observation batch
        self._frames: list[list[np.ndarray | None]] = [[None] * (b - a) for a, b in self.slices]
        super().__init__(self._n_envs, spaces["observation_space"], spaces["action_space"])
        self._started = True
        return self

    # ------------------------------------------------------------------ workers
    def _new_worker(self, k: int, seed: int | None) -> Any:
        start, stop = self.slices[k]
        return EnvWorker.options(**self._worker_options).remote(self.env_id, start, stop - start, seed, self.env_kwargs, self.reward_service)

    def _await_started(self, ks: list[int]) -> dict[str, Any]:
        try:
            answers = ray.get([self.workers[k].spaces.remote() for k in ks], timeout=self.start_timeout_s)
        except (GetTimeoutError, RayActorError) as err:
            self.close()
            why = f"did not start within {self.start_timeout_s:g} s (see `ray status`)" if isinstance(err, GetTimeoutError) else f"died: {err}"
            raise ClusterError(f"an environment worker for {self.env_id!r} {why}.") from None
        for k, answer in zip(ks, answers):
            if answer["error"] is not None:
                self.close()
                raise ClusterError(f"environment worker {k} could not create {self.env_id!r}: {answer['error']}")
        return answers[0]

    def _replace(self, k: int) -> tuple[Any, list[dict[str, Any]], dict[int, np.ndarray]]:
        """A new actor for worker ``k``'s slice, reset: ``(obs, reset_infos, frames)``."""
        if self.worker_restarts >= self.max_worker_restarts:
            raise ClusterError(
                f"environment workers died {self.worker_restarts} times (max_worker_restarts); the environment or the "
                "cluster is failing repeatedly, see the worker logs."
            )
        self.worker_restarts += 1
        self._replacements[k] += 1
        start, stop = self.slices[k]
        seed = None if self._base_seed is None else self._base_seed + self._replacements[k] * REPLACEMENT_SEED_STRIDE
        _log.warning("environment worker %d (sub-environments %d-%d) died; replacing it", k, start, stop - 1)
        try:
            ray.kill(self.workers[k], no_restart=True)
        except Exception:  # noqa: BLE001 (already gone)
            pass
        self.workers[k] = self._new_worker(k, seed)
        self._await_started([k])
        options = self._options[start:stop]
        if any(options):
            self.workers[k].set_options.remote(options)
        return ray.get(self.workers[k].reset.remote(), timeout=self.start_timeout_s)

    def _call(self, k: int, method: str, *args: Any) -> Any:
        """``worker.method(*args)``, replacing the worker once if it is dead."""
        try:
            return ray.get(getattr(self.workers[k], method).remote(*args))
        except RayActorError:
            self._replace(k)
            return ray.get(getattr(self.workers[k], method).remote(*args))

    def _locate(self, indices: VecEnvIndices) -> list[tuple[int, list[int]]]:
        """``[(worker, local indices), ...]`` of global sub-environment indices, in order."""
        out: list[tuple[int, list[int]]] = []
        for i in self._get_indices(indices):
            k = next(k for k, (a, b) in enumerate(self.slices) if a <= i < b)
            if out and out[-1][0] == k:
                out[-1][1].append(i - self.slices[k][0])
            else:
                out.append((k, [i - self.slices[k][0]]))
        return out

    # ------------------------------------------------------------------ VecEnv
    def reset(self) -> VecEnvObs:
        refs = [w.reset.remote() for w in self.workers]
        for k, ref in enumerate(refs):
            try:
                obs, infos, frames = ray.get(ref)
            except RayActorError:
                obs, infos, frames = self._replace(k)
            self._store_reset(k, obs, infos, frames)
        self._reset_seeds()
        self._reset_options()
        return _concat([_writable(o) for o in self._obs])

    def _store_reset(self, k: int, obs: Any, infos: list[dict[str, Any]], frames: dict[int, np.ndarray]) -> None:
        start, _ = self.slices[k]
        self._obs[k] = obs
        for j, info in enumerate(infos):
            self.reset_infos[start + j] = info
        for j, frame in frames.items():
            self._frames[k][j] = frame

    def step_async(self, actions: np.ndarray) -> None:
        self._refs = [w.step.remote(actions[a:b]) for w, (a, b) in zip(self.workers, self.slices)]

    def step_wait(self) -> VecEnvStepReturn:
        assert self._refs is not None, "step_async must come first"
        refs, self._refs = self._refs, None
        all_obs, all_rewards, all_dones, all_infos = [], [], [], []
        for k, ref in enumerate(refs):
            start, stop = self.slices[k]
            try:
                obs, rewards, dones, infos, resets, frames = ray.get(ref)
                for j in range(stop - start):
                    if dones[j]:
                        self.reset_infos[start + j] = resets[j]
                        self._frames[k][j] = frames[j]
                    else:
                        self._frames[k][j] = infos[j]["frame"]
                self._obs[k] = obs
            except RayActorError:
                obs, rewards, dones, infos = self._cut_episodes(k)
            all_obs.append(_writable(obs))
            all_rewards.append(np.asarray(rewards, dtype=np.float32))
            all_dones.append(np.asarray(dones, dtype=bool))
            all_infos.extend(infos)
        return _concat(all_obs), np.concatenate(all_rewards), np.concatenate(all_dones), all_infos

    def _cut_episodes(self, k: int) -> tuple[Any, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Worker ``k`` died during a step: replace it and report its steps as non-moving truncations."""
        start, stop = self.slices[k]
        last_obs, last_frames = self._obs[k], list(self._frames[k])
        obs, reset_infos, frames = self._replace(k)
        infos = []
        for j in range(stop - start):
            frame = last_frames[j]
            info: dict[str, Any] = {
                "TimeLimit.truncated": True,
                "terminal_observation": _index(last_obs, j),
                "gt_reward": 0.0,
                "worker_restarted": True,
            }
            if frame is not None:
                info["frame"] = frame
            infos.append(info)
        self._store_reset(k, obs, reset_infos, frames)
        n = stop - start
        return obs, np.zeros(n, dtype=np.float32), np.ones(n, dtype=bool), infos

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed the next reset: sub-environment ``i`` with ``seed + i`` (a random base when None)."""
        if seed is None:
            seed = int(np.random.randint(0, np.iinfo(np.uint32).max, dtype=np.uint32))
        self._base_seed = seed
        for k, (start, _) in enumerate(self.slices):
            self._call(k, "seed", seed + start)
        self._seeds = [seed + i for i in range(self.num_envs)]
        return self._seeds

    def set_options(self, options: list[dict] | dict | None = None) -> None:
        super().set_options(options)
        for k, (start, stop) in enumerate(self.slices):
            self._call(k, "set_options", self._options[start:stop])

    def close(self) -> None:
        for worker in getattr(self, "workers", []):
            try:
                ray.get(worker.close.remote(), timeout=5)
            except Exception:  # noqa: BLE001 (dead or hung: killed below)
                pass
            try:
                ray.kill(worker, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
        self.workers = []

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [image for k in range(len(self.workers)) for image in self._call(k, "get_images")]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [v for k, local in self._locate(indices) for v in self._call(k, "get_attr", attr_name, local)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        for k, local in self._locate(indices):
            self._call(k, "set_attr", attr_name, value, local)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any) -> list[Any]:
        return [
            v for k, local in self._locate(indices) for v in self._call(k, "env_method", method_name, method_args, method_kwargs, local)
        ]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [v for k, local in self._locate(indices) for v in self._call(k, "env_is_wrapped", wrapper_class, local)]
