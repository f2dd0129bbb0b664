"""Reaching the Hugging Face hub, or failing fast and clearly when it cannot be reached.

``huggingface_hub`` retries a failed connection five times with back-off (about 50 s) before it
gives up. Before any load that may download, :func:`hub_context` checks once per process whether
the hub answers at all (a TCP connection with a short timeout); if it does not, or the user set
``HF_HUB_OFFLINE=1``, the load runs in ``huggingface_hub``'s offline mode, which reads the local
cache only and fails at once. Such a failure becomes a :class:`ModelNotAvailableError` that names
the model and says how to point at a local copy.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
from typing import Iterator
from urllib.parse import urlparse

from vlmreward.errors import ModelNotAvailableError

__all__ = ["hub_reachable", "hub_context", "offline_message", "PROBE_TIMEOUT_S"]

PROBE_TIMEOUT_S = 3.0
"""Seconds the reachability check waits for a TCP connection to the hub."""

_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


@functools.lru_cache(maxsize=None)
def _probe(endpoint: str, timeout: float) -> bool:
    url = urlparse(endpoint)
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether the Hugging Face hub can be downloaded from now (result cached per process).

    False when ``HF_HUB_OFFLINE`` is set or a TCP connection to the endpoint (``HF_ENDPOINT``,
    default https://huggingface.co) fails within ``timeout`` seconds. Behind a proxy
    (``HTTPS_PROXY`` and kin) the direct check means nothing, so the hub is assumed reachable.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    if any(os.environ.get(var) for var in _PROXY_VARIABLES):
        return True
    return _probe(constants.ENDPOINT, timeout)


def offline_reason() -> str:
    """Why a model that is not cached cannot be had now: ``"it is not in the local cache (DIR) and ..."``."""
    from huggingface_hub import constants

    why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else f"the hub ({constants.ENDPOINT}) cannot be reached"
    return f"it is not in the local cache ({constants.HF_HUB_CACHE}) and {why}"


def offline_message(name: str, local_hint: str) -> str:
    """The one-line error for a model whose weights are not cached while the hub is unreachable
    (the Python API's wording; the command line names its own options instead of ``local_hint``)."""
    return (
        f"model {name!r}: {offline_reason()}. "
        f"Download it where there is network (it is cached on first use), or point at a local copy: {local_hint}. "
        "To try every command offline with a tiny random model: vlmreward demo."
    )


@contextlib.contextmanager
def hub_context(name: str, local_hint: str) -> Iterator[bool]:
    """Run a load that may download: offline (cache only) when the hub is unreachable.

    Yields whether the hub is reachable. Inside the block ``huggingface_hub`` is in offline mode
    if it is not; an exception escaping the block then becomes :class:`ModelNotAvailableError`.

    Args:
        name: the model name, for the message.
        local_hint: how to load a local copy instead, for the message.
    """
    from huggingface_hub import constants

    if hub_reachable():
        yield True
        return
    reason = offline_reason()  # before offline mode is forced below
    message = offline_message(name, local_hint)
    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield False
    except ModelNotAvailableError:
        raise
    except Exception as err:  # anything a cache-only load raises means: not cached
        raise ModelNotAvailableError(message, model=name, reason=reason) from err
    finally:
        constants.HF_HUB_OFFLINE = saved
