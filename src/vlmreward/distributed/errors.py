"""Errors of the Ray layer: a cluster that cannot run the requested set-up."""

from __future__ import annotations

from vlmreward.errors import VLMRewardError

__all__ = ["ClusterError"]


class ClusterError(VLMRewardError, RuntimeError):
    """The Ray cluster cannot run what ``scale:`` asks for.

    Raised before training starts: Ray is not installed, the cluster address cannot be reached,
    the cluster has fewer GPUs (or CPUs) than the replicas and workers need, a reward replica or
    an environment worker could not be built (the message carries the replica's own error), or
    they did not come up in time. The message names the address or resource and what to do.
    """
