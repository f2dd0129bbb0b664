"""Errors of the Ray layer: a cluster that cannot run the requested set-up."""

from __future__ import annotations

from vlmreward.errors import VLMRewardError

__all__ = ["ClusterError", "RewardServerError"]


class ClusterError(VLMRewardError, RuntimeError):
    """The Ray cluster cannot run what ``scale:`` asks for.

    Raised before training starts: Ray is not installed, the cluster address cannot be reached,
    the cluster has fewer GPUs (or CPUs) than the replicas and workers need, a reward replica or
    an environment worker could not be built (the message carries the replica's own error), or
    they did not come up in time. The message names the address or resource and what to do.
    """


class RewardServerError(VLMRewardError, RuntimeError):
    """A reward server could not answer: it is unreachable (nothing listens at the URL, or it did
    not come back within the client's ``request_timeout_s``), it is not a vlmreward reward server,
    or scoring failed on it (the message carries the server's error)."""
