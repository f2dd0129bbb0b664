"""Connecting to Ray and checking that the cluster can hold a run, before anything starts.

* :func:`init_ray`: a local Ray instance (``ray.init()``), or an existing cluster at ``address``.
  An address that cannot be reached is a :class:`ClusterError` within seconds (a TCP probe of the
  address first: Ray itself waits about a minute and then exits the process).
* :func:`check_resources`: the replicas' GPUs (and the actors' CPUs) against
  ``ray.cluster_resources()`` and the largest node, so a request the cluster can never schedule
  fails at once instead of waiting forever for resources.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Optional

from vlmreward.distributed.config import ScaleConfig, required_cpus, required_gpus
from vlmreward.distributed.errors import ClusterError

__all__ = ["RaySession", "init_ray", "check_resources", "local_cpus", "require_ray", "probe_address", "DEFAULT_RAY_PORT", "DEFAULT_CLIENT_PORT"]

_log = logging.getLogger("vlmreward.distributed")

DEFAULT_RAY_PORT = 6379
"""Port of a Ray head's GCS when the address gives none (``ray start --head`` default)."""
DEFAULT_CLIENT_PORT = 10001
"""Port of a Ray Client server when a ``ray://`` address gives none."""


def require_ray() -> Any:
    """The ``ray`` module.

    Raises:
        ClusterError: Ray is not installed (with the install command).
    """
    try:
        import ray
    except ImportError as err:
        raise ClusterError(
            f"scale: needs Ray, which is not installed ({err}); install it with pip install 'vlmreward[ray]' "
            "(or pip install 'ray>=2.30'), or remove the scale section to train in one process."
        ) from None
    return ray


@dataclass
class RaySession:
    """The Ray connection of a run.

    Attributes:
        address: the address given to :func:`init_ray` (None: a local instance).
        started: whether :func:`init_ray` called ``ray.init`` (then :meth:`shutdown` ends it);
            False when this process was already connected.
        resources: ``ray.cluster_resources()`` at connection time (``"CPU"``, ``"GPU"``, ...).
    """

    address: Optional[str]
    started: bool
    resources: dict[str, float] = field(default_factory=dict)

    @property
    def where(self) -> str:
        """``"the local Ray instance"`` or ``"the Ray cluster at ADDRESS"``, for messages."""
        return "the local Ray instance" if self.address is None else f"the Ray cluster at {self.address!r}"

    def shutdown(self) -> None:
        """Disconnect (and stop a local instance) if :func:`init_ray` connected; idempotent."""
        if self.started:
            ray = require_ray()
            if ray.is_initialized():
                ray.shutdown()
            self.started = False


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``HOST:PORT``/``ray://HOST[:PORT]``; None for ``auto``/``local``."""
    if address in ("auto", "local"):
        return None
    client = address.startswith("ray://")
    rest = address[len("ray://") :] if client else address
    rest = rest.split("/", 1)[0]
    if rest.startswith("["):  # [IPv6]:port
        host, _, port = rest[1:].partition("]")
        port = port.removeprefix(":")
    elif rest.count(":") == 1:
        host, _, port = rest.partition(":")
    else:
        host, port = rest, ""
    if not host:
        raise ClusterError(f"scale.address {address!r} names no host; use 'auto', 'HOST:PORT' or 'ray://HOST:PORT'.")
    if not port:
        return host, DEFAULT_CLIENT_PORT if client else DEFAULT_RAY_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f"scale.address {address!r}: {port!r} is not a port number; use 'HOST:PORT', e.g. 'head-node:6379'.")
    return host, int(port)


def probe_address(address: str, timeout_s: float = 5.0) -> None:
    """Raise unless a TCP connection to ``address`` opens within ``timeout_s`` seconds.

    Only reachability is checked (no Ray protocol); ``"auto"`` is left to Ray, which fails at
    once when no local cluster runs.

    Raises:
        ClusterError: the host does not resolve, refuses the connection or does not answer.
    """
    target = _host_port(address)
    if target is None:
        return
    host, port = target
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as err:
        reason = "no answer" if isinstance(err, TimeoutError) else (err.strerror or str(err))
        raise ClusterError(
            f"cannot reach the Ray cluster at {address!r} ({host}:{port}: {reason} within {timeout_s:g} s); start it with "
            f"`ray start --head` on that machine, check scale.address and the firewall, or set scale.address: null "
            "for a local Ray instance."
        ) from None


def init_ray(
    address: str | None = None,
    *,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    runtime_env: dict[str, Any] | None = None,
    include_dashboard: bool = False,
    log_to_driver: bool = True,
    probe_timeout_s: float = 5.0,
) -> RaySession:
    """Connect this process to Ray: a new local instance, or an existing cluster.

    Args:
        address: None starts a local instance (``ray.init()``; Ray honours ``RAY_ADDRESS``);
            ``"auto"``, ``"HOST:PORT"`` or ``"ray://HOST:PORT"`` connect to a running cluster.
        num_cpus, num_gpus: logical resources of a local instance (default: Ray's detection);
            ignored when connecting to a cluster.
        runtime_env: Ray ``runtime_env`` for every task and actor.
        include_dashboard: start Ray's dashboard with a local instance.
        log_to_driver: show the actors' output in this process.
        probe_timeout_s: how long the reachability probe of ``address`` waits.

    Returns:
        A :class:`RaySession`; ``started`` is False when this process was already connected
        (then nothing is changed and :meth:`RaySession.shutdown` leaves the connection open).

    Raises:
        ClusterError: Ray is not installed, ``address`` cannot be reached (within about
            ``probe_timeout_s``) or Ray refuses to connect (the message names the address).
    """
    ray = require_ray()
    if address is not None:
        probe_address(address, probe_timeout_s)
    if ray.is_initialized():
        return RaySession(address, started=False, resources=dict(ray.cluster_resources()))
    kwargs: dict[str, Any] = dict(include_dashboard=include_dashboard, log_to_driver=log_to_driver)
    if runtime_env is not None:
        kwargs["runtime_env"] = runtime_env
    if address is None:
        if num_cpus is not None:
            kwargs["num_cpus"] = num_cpus
        if num_gpus is not None:
            kwargs["num_gpus"] = num_gpus
    else:
        kwargs["address"] = address
        if address.startswith("ray://"):
            kwargs.pop("include_dashboard")
    where = "a local Ray instance" if address is None else f"the Ray cluster at {address!r}"
    try:
        ray.init(**kwargs)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError, SystemExit) as err:
        # SystemExit: Ray's driver exits when the GCS never answers (a port that is open but not Ray's)
        raise ClusterError(f"could not connect to {where}: {' '.join(str(err).split()) or type(err).__name__}.") from None
    resources = dict(ray.cluster_resources())
    _log.info("connected to %s: %s", where, resources)
    return RaySession(address, started=True, resources=resources)


def _node_resources() -> list[dict[str, float]]:
    ray = require_ray()
    return [dict(node.get("Resources", {})) for node in ray.nodes() if node.get("Alive", False)]


def check_resources(scale: ScaleConfig, *, replicas: bool = True, where: str = "the Ray cluster") -> dict[str, float]:
    """Raise unless the connected cluster can schedule the run's actors.

    Checks ``num_reward_replicas · gpus_per_replica`` against the cluster's GPUs, each replica's
    ``gpus_per_replica`` against the largest node's (one actor lives on one node), and the same
    for CPUs (workers' and replicas'). Resources are as the cluster reports them now: an
    autoscaling cluster that would add nodes later is refused; start its nodes first.

    Args:
        scale: the ``scale`` section.
        replicas: whether the run starts reward replicas (False for a kind that trains on the environment's reward).
        where: how messages name the cluster (:attr:`RaySession.where`).

    Returns:
        ``ray.cluster_resources()``.

    Raises:
        ClusterError: more GPUs or CPUs asked than the cluster (or any one node) has.
    """
    ray = require_ray()
    total = dict(ray.cluster_resources())
    nodes = _node_resources()
    have_gpus, need_gpus = float(total.get("GPU", 0.0)), required_gpus(scale, replicas)
    if need_gpus > have_gpus + 1e-9:
        raise ClusterError(
            f"scale asks for {need_gpus:g} GPU(s) ({scale.num_reward_replicas} reward replica(s) × "
            f"scale.gpus_per_replica {scale.gpus_per_replica:g}) but {where} has {have_gpus:g}; lower "
            "scale.num_reward_replicas or scale.gpus_per_replica (0 runs the replicas on CPU), or add GPU nodes."
        )
    biggest_gpu = max((n.get("GPU", 0.0) for n in nodes), default=have_gpus)
    if replicas and scale.gpus_per_replica > biggest_gpu + 1e-9:
        raise ClusterError(
            f"scale.gpus_per_replica is {scale.gpus_per_replica:g} but no node of {where} has more than "
            f"{biggest_gpu:g} GPU(s), and a replica lives on one node; lower scale.gpus_per_replica."
        )
    have_cpus, need_cpus = float(total.get("CPU", 0.0)), required_cpus(scale, replicas)
    if need_cpus > have_cpus + 1e-9:
        raise ClusterError(
            f"scale asks for {need_cpus:g} CPU(s) ({scale.num_env_workers} env worker(s) × {scale.cpus_per_env_worker:g}"
            + (f" + {scale.num_reward_replicas} reward replica(s) × {scale.cpus_per_replica:g}" if replicas else "")
            + f") but {where} has {have_cpus:g}; lower scale.num_env_workers, scale.cpus_per_env_worker or "
            "scale.cpus_per_replica, or add nodes."
        )
    biggest_cpu = max((n.get("CPU", 0.0) for n in nodes), default=have_cpus)
    for key, value in (("cpus_per_replica", scale.cpus_per_replica if replicas else 0.0), ("cpus_per_env_worker", scale.cpus_per_env_worker)):
        if value > biggest_cpu + 1e-9:
            raise ClusterError(f"scale.{key} is {value:g} but no node of {where} has more than {biggest_cpu:g} CPU(s); lower it.")
    return total


def local_cpus(scale: ScaleConfig, replicas: bool = True) -> int:
    """Logical CPUs of a local Ray instance for ``scale``: the machine's cores, or what the actors
    reserve if that is more (on one machine the actors share the cores as processes always do)."""
    return int(max(os.cpu_count() or 1, math.ceil(required_cpus(scale, replicas))))
