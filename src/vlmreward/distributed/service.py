"""A reward service on Ray: reward-model replicas that batch requests from many callers.

* :class:`RewardReplica` (a Ray actor: ``max_restarts=-1, max_task_retries=-1``) builds its reward
  with a reward factory (:class:`~vlmreward.distributed.spec.RewardSpec`, or any picklable
  callable with no arguments) once, in its constructor: the model is
  loaded and the prompts embedded once per replica (and once again after a restart). Its async
  :meth:`~_Replica.score` queues each request; a batching loop inside the actor scores the queue
  as one batch when it holds ``max_batch_size`` frames or when the oldest request has waited
  ``max_wait_s``, and answers every request with its own rewards, in order.
* :class:`RewardService`: the handle callers use. It starts the replicas, probes them once
  (:meth:`RewardService.wait_ready`: a replica that cannot load the model is a
  :class:`ClusterError` carrying the model's error), sends each request to the replica with the
  fewest outstanding frames (ties round-robin), splits large requests over replicas, and returns
  the rewards in request order.
* :class:`RemoteRewardModel`: the :class:`~vlmreward.rewards.base.RewardModel` protocol on top of a
  service, so :class:`~vlmreward.envs.vector.VLMRewardVecEnvWrapper`, the deferred buffers, the
  logs and the checkpoints work unchanged with remote scoring.

Why not Ray Serve's ``@serve.batch``: it needs Serve's HTTP stack (FastAPI, Starlette, uvicorn)
and a Serve application per run for what an async actor method does with ``asyncio``; the
batching here is the same policy (max batch size or max wait, whichever first), built on Ray
actors only, and callers hold ordinary actor handles.

Failure semantics: Ray restarts a replica that dies (crash, OOM kill, node loss, ``ray.kill``
with ``no_restart=False``) and re-sends the calls it held to the new process, which rebuilds the
reward and scores them. A call is answered exactly once, to the caller that made it; scoring is a
pure function of the frames, so a retried request gets the rewards the first attempt would have
given, and no transition is lost or scored twice. A replica killed for good
(``no_restart=True``) is routed around: its unanswered requests go to the other replicas.

The replica is :mod:`vlmreward.distributed.replica`, the RewardModel on top of a service
:mod:`vlmreward.distributed.remote`; this module is the service handle that routes between them.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Sequence

import numpy as np
import ray
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError, RayTaskError

from vlmreward.distributed.cluster import require_ray
from vlmreward.distributed.errors import ClusterError
from vlmreward.distributed.spec import RewardFactory, describe_factory
from vlmreward.models.preprocess import Frames

from vlmreward.distributed.replica import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_WAIT_S, RewardReplica, as_frames, first_line

__all__ = ["RewardService", "DEFAULT_MAX_BATCH_SIZE", "DEFAULT_MAX_WAIT_S"]

_log = logging.getLogger("vlmreward.distributed")


class RewardService:
    """A set of reward replicas on Ray, and the client side of scoring.

    Needs a connected Ray (:func:`~vlmreward.distributed.cluster.init_ray`). The handle can be
    passed to other Ray tasks and actors (rollout workers), each then sending requests itself;
    load balancing is per handle.

    Args:
        factory: what each replica calls once to build its reward: a
            :class:`~vlmreward.distributed.spec.RewardSpec`, or any picklable callable with no
            arguments returning a :class:`~vlmreward.rewards.base.RewardModel`.
        num_replicas: replicas (Ray actors); one per GPU is the usual choice.
        gpus_per_replica: GPUs Ray reserves per replica (0: CPU replicas).
        cpus_per_replica: CPUs Ray reserves per replica.
        max_batch_size: most frames a replica scores in one batch; also the largest piece a
            request is split into.
        max_wait_s: longest time a replica holds a request for others to join its batch.
        split_min_frames: a request is spread over several replicas only in pieces of at least
            this many frames (smaller pieces cost more in per-call overhead than they save).
        ready_timeout_s: how long :meth:`wait_ready` waits for the replicas to build the reward.
        request_timeout_s: how long a request may take, replica restarts included.
        runtime_env: Ray ``runtime_env`` of the replicas.
        wait: call :meth:`wait_ready` before returning.

    Raises:
        ClusterError: Ray is not connected; with ``wait``, as :meth:`wait_ready`.
    """

    def __init__(
        self,
        factory: RewardFactory,
        num_replicas: int = 1,
        *,
        gpus_per_replica: float = 0.0,
        cpus_per_replica: float = 1.0,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        split_min_frames: int = 32,
        ready_timeout_s: float = 300.0,
        request_timeout_s: float | None = 600.0,
        runtime_env: dict[str, Any] | None = None,
        wait: bool = True,
    ) -> None:
        if not require_ray().is_initialized():
            raise ClusterError("Ray is not connected; call vlmreward.distributed.init_ray() (or ray.init()) first.")
        if num_replicas < 1 or max_batch_size < 1 or split_min_frames < 1 or max_wait_s < 0:
            raise ClusterError(
                f"num_replicas, max_batch_size and split_min_frames must be ≥ 1 and max_wait_s ≥ 0; got {num_replicas}, "
                f"{max_batch_size}, {split_min_frames}, {max_wait_s}."
            )
        self.factory = factory
        self.max_batch_size = int(max_batch_size)
        self.split_min_frames = int(split_min_frames)
        self.ready_timeout_s = float(ready_timeout_s)
        self.request_timeout_s = request_timeout_s
        options: dict[str, Any] = {"num_cpus": cpus_per_replica, "num_gpus": gpus_per_replica}
        if runtime_env is not None:
            options["runtime_env"] = runtime_env
        self.replicas = [RewardReplica.options(**options).remote(factory, max_batch_size, max_wait_s, i) for i in range(num_replicas)]
        self.replica_info: list[dict[str, Any]] = []
        self._init_client()
        if wait:
            self.wait_ready()

    def _init_client(self) -> None:
        self._lock = threading.Lock()
        self._outstanding: list[list[tuple[Any, int]]] = [[] for _ in self.replicas]
        self._dead: set[int] = set()
        self._next = 0

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_lock", "_outstanding", "_dead", "_next"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_client()

    @property
    def num_replicas(self) -> int:
        return len(self.replicas)

    # ------------------------------------------------------------------ start-up
    def wait_ready(self, timeout_s: float | None = None) -> list[dict[str, Any]]:
        """Probe every replica once (one ``ready()`` call each); the replicas are shut down on failure.

        Returns:
            Each replica's ``ready()`` answer (pid, node, GPUs, device, reward description).

        Raises:
            ClusterError: a replica could not build the reward (the message carries the
                model's or reward's own error), died while starting, or did not answer within
                ``timeout_s`` (default ``ready_timeout_s``: pending resources, a slow download).
        """
        timeout = self.ready_timeout_s if timeout_s is None else timeout_s
        what = describe_factory(self.factory)
        try:
            infos = ray.get([r.ready.remote() for r in self.replicas], timeout=timeout)
        except GetTimeoutError:
            self.shutdown()
            raise ClusterError(
                f"{self.num_replicas} reward replica(s) for {what} did not start within {timeout:g} s: the cluster may lack "
                "the resources (see `ray status`), or the model download is slow (raise scale.ready_timeout_s)."
            ) from None
        except RayActorError as err:
            self.shutdown()
            raise ClusterError(f"a reward replica for {what} died while starting: {first_line(err)}") from None
        failed = [info for info in infos if info["error"] is not None]
        if failed:
            self.shutdown()
            info = failed[0]
            raise ClusterError(
                f"reward replica {info['index']} could not build {what}: {info['error']} "
                f"({len(failed)} of {self.num_replicas} replica(s) failed; the model must be loadable on the cluster's nodes)"
            )
        self.replica_info = infos
        return infos

    def describe(self) -> dict[str, Any]:
        """The reward's ``describe()`` (as a replica built it), plus ``"ray_replicas"``."""
        if not self.replica_info:
            self.wait_ready()
        return {**self.replica_info[0]["describe"], "ray_replicas": self.num_replicas}

    # ------------------------------------------------------------------ requests
    def _prune(self) -> None:
        refs = [ref for out in self._outstanding for ref, _ in out]
        if not refs:
            return
        done, _ = ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=False)
        finished = set(done)
        self._outstanding = [[(ref, n) for ref, n in out if ref not in finished] for out in self._outstanding]

    def _pick(self, exclude: Sequence[int] = ()) -> int:
        with self._lock:
            self._prune()
            live = [i for i in range(self.num_replicas) if i not in self._dead and i not in exclude]
            if not live:
                raise ClusterError(
                    f"all {self.num_replicas} reward replica(s) are gone (killed without restart); start a new RewardService."
                )
            k = self.num_replicas
            best = min(live, key=lambda i: (sum(n for _, n in self._outstanding[i]), (i - self._next) % k))
            self._next = (best + 1) % k
            return best

    def _send(self, frames: np.ndarray, exclude: Sequence[int] = ()) -> tuple[int, Any]:
        index = self._pick(exclude)
        ref = self.replicas[index].score.remote(frames)
        with self._lock:
            self._outstanding[index].append((ref, len(frames)))
        return index, ref

    def submit(self, frames: Frames) -> Any:
        """Send one request to the least-loaded replica without waiting.

        Args:
            frames: uint8 RGB ``[N, H, W, 3]`` (or one ``[H, W, 3]``).

        Returns:
            A Ray ``ObjectRef`` of the ``float32 [N]`` rewards (``ray.get`` it, or pass it on).

        Raises:
            InvalidFramesError: frames that are not uint8 RGB.
        """
        return self._send(as_frames(frames))[1]

    def split(self, n: int) -> list[tuple[int, int]]:
        """How a request of ``n`` frames is cut: ``[(start, stop), ...]`` in order.

        At least ``ceil(n / max_batch_size)`` pieces, and as many as there are live replicas
        while each piece keeps ``split_min_frames`` frames.
        """
        live = max(1, self.num_replicas - len(self._dead))
        pieces = max(math.ceil(n / self.max_batch_size), min(live, n // self.split_min_frames), 1)
        bounds = np.linspace(0, n, pieces + 1).round().astype(int)
        return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]

    def score(self, frames: Frames) -> np.ndarray:
        """Rewards of frames, ``float32 [N]`` in frame order (blocking).

        A large request is split (:meth:`split`) and its pieces scored concurrently on several
        replicas. A piece whose replica died is retried by Ray on the restarted replica; one
        whose replica is gone for good is sent to another replica.

        Raises:
            InvalidFramesError: frames that are not uint8 RGB.
            ClusterError: no answer within ``request_timeout_s``, or no replica left.
            Exception: whatever the reward raised on the replica (its own type and message).
        """
        batch = as_frames(frames)
        pieces = [(a, b, *self._send(batch[a:b])) for a, b in self.split(len(batch))]
        deadline = None if self.request_timeout_s is None else time.monotonic() + self.request_timeout_s
        out = []
        for a, b, index, ref in pieces:
            tried: list[int] = []
            while True:
                try:
                    out.append(self._get(ref, deadline))
                    break
                except ActorUnavailableError:  # transient (Ray gave up waiting on a restart): send it again
                    index, ref = self._send(batch[a:b])
                except RayActorError as err:  # killed for good: Ray retries every other death itself
                    _log.warning("reward replica %d is gone (%s); sending its request elsewhere", index, first_line(err))
                    with self._lock:
                        self._dead.add(index)
                    tried.append(index)
                    index, ref = self._send(batch[a:b], exclude=tried)
        return np.concatenate(out)  # a new, writable array (Ray's results are read-only views)

    def _get(self, ref: Any, deadline: float | None) -> np.ndarray:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            return ray.get(ref, timeout=timeout)
        except GetTimeoutError:
            raise ClusterError(
                f"no reward within {self.request_timeout_s:g} s (scale.request_timeout_s); the replicas may be restarting "
                "without the resources to do so (see `ray status`)."
            ) from None
        except RayTaskError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise

    def gather(self, refs: Sequence[Any]) -> list[np.ndarray]:
        """``ray.get`` of :meth:`submit` results, in order (errors as :meth:`score`)."""
        deadline = None if self.request_timeout_s is None else time.monotonic() + self.request_timeout_s
        return [self._get(ref, deadline) for ref in refs]

    # ------------------------------------------------------------------ inspection, end
    def stats(self) -> list[dict[str, Any]]:
        """Each live replica's :meth:`_Replica.stats`."""
        live = [r for i, r in enumerate(self.replicas) if i not in self._dead]
        return ray.get([r.stats.remote() for r in live], timeout=self.request_timeout_s)

    def reset_stats(self) -> None:
        ray.get([r.reset_stats.remote() for i, r in enumerate(self.replicas) if i not in self._dead])

    def shutdown(self) -> None:
        """Kill the replicas (no restart); idempotent."""
        for replica in self.replicas:
            try:
                ray.kill(replica, no_restart=True)
            except Exception:  # noqa: BLE001 (already gone)
                pass
        self._dead = set(range(self.num_replicas))
