"""A run's reward scored by a reward server (``reward.server``, :mod:`vlmreward.distributed.server`):
the client side that :func:`~vlmreward.rl.builders.build_reward_model` returns, and what the
server and its clients agree on."""

from __future__ import annotations

from typing import Any, Callable

from vlmreward.config import ConfigError
from vlmreward.rewards.base import RewardModel
from vlmreward.rl.sections import RunConfig

__all__ = ["served_reward_model", "local_config", "served_identity"]


def local_config(config: RunConfig) -> RunConfig:
    """``config`` with ``reward.server`` removed: what a reward server builds."""
    if getattr(config.reward, "server", None) is None:
        return config
    return config.model_copy(update={"reward": config.reward.model_copy(update={"server": None})})


def served_identity(config: RunConfig) -> dict[str, Any]:
    """``{"kind", "params"}`` of the reward a server builds from ``config`` (JSON), which clients compare with theirs."""
    return {"kind": config.reward.kind, "params": config.reward_params().model_dump(mode="json")}


def served_reward_model(config: RunConfig, build_local: Callable[[RunConfig], RewardModel]) -> RewardModel:
    """The reward of ``config`` scored by the reward server ``reward.server`` names
    (:class:`~vlmreward.distributed.client.ServedReward`): at a URL (``vlmreward serve CONFIG``), or
    ``ray``: a server fronting one Ray replica, started here for this process (closed when the
    client is collected or the process exits). A learned kind is built here around its served part
    (its class's ``served(params, server)``: the preference reward's VLM labeller).

    Args:
        config: the run config (``reward.server`` set).
        build_local: builds a config's reward in this process
            (:func:`~vlmreward.rl.builders.build_reward_model`); what a ``ray`` server's replica runs.

    Raises:
        ConfigError: the server serves another kind, or a learned kind that cannot be served.
        RewardServerError: nothing answers at the URL.
    """
    import weakref
    from functools import partial

    from vlmreward.distributed.client import ServedReward

    address = config.reward.server
    owned = None
    if address == "ray":
        import torch

        from vlmreward.distributed.server import RewardServer

        gpus = 1.0 if torch.cuda.is_available() and config.model.device != "cpu" else 0.0
        owned = RewardServer(partial(build_local, local_config(config)), port=0, backend="ray", gpus_per_replica=gpus,
                             **served_identity(config))
        address = owned.start().url
    client = ServedReward(address)
    if owned is not None:
        client.owned_server = owned
        weakref.finalize(client, owned.close)
    mine, theirs = served_identity(config), {k: client.interface.get(k) for k in ("kind", "params")}
    if mine != theirs:
        keys = sorted(k for k in {**(mine["params"] or {}), **(theirs["params"] or {})}
                      if (mine["params"] or {}).get(k) != (theirs["params"] or {}).get(k))
        what = (f"reward kind {theirs['kind']!r}, not {mine['kind']!r}" if mine["kind"] != theirs["kind"]
                else f"a reward whose {', '.join(keys)} differ from this config's")
        raise ConfigError(f"the reward server at {address} serves {what}; start it with this config (vlmreward serve "
                          "CONFIG) or point reward.server at the server that has it.")
    if not config.reward_kind.learned:
        return client
    served = getattr(config.reward_kind.factory, "served", None)
    if served is None:
        raise ConfigError(f"reward.kind {config.reward.kind!r} is learned in the training process and has no served part; "
                          "remove reward.server.")
    return served(config.reward_params(), client)
