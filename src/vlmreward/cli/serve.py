"""``vlmreward serve CONFIG``: serve a run config's reward (any kind) over HTTP for ``reward.server: URL``.

The server builds the config's reward once (``reward`` and ``model`` sections, ``--set`` applied;
``reward.server`` itself is ignored), prints ``serving KIND at http://HOST:PORT``, and answers
until SIGINT or SIGTERM, after which it answers what is queued and exits 0. How it batches,
and what happens when it or a replica crashes: :mod:`vlmreward.distributed.server`.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer

from vlmreward.errors import InvalidParameterError

__all__ = ["serve"]


def serve(
    config: Annotated[Path, typer.Argument(help="A run config (its reward and model sections are served).")],
    overrides: Annotated[Optional[list[str]], typer.Option("--set", help="KEY=VALUE overrides, as for train.",
                                                           show_default=False)] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free one; the URL printed says which).")] = 8765,
    max_batch: Annotated[int, typer.Option(help="Frames (clips, queries) per batch.")] = 64,
    max_wait_ms: Annotated[float, typer.Option(help="Longest wait of a request for others to join its batch.")] = 5.0,
    backend: Annotated[str, typer.Option(help="local: the reward in this process; ray: --replicas Ray actors.")] = "local",
    replicas: Annotated[int, typer.Option(help="Ray replicas (--backend ray).")] = 1,
    gpus_per_replica: Annotated[float, typer.Option(help="GPUs Ray reserves per replica (--backend ray).")] = 0.0,
) -> None:
    """Serve CONFIG's reward over HTTP until Ctrl-C or SIGTERM; train with reward.server: URL."""
    from functools import partial

    from vlmreward.distributed.server import RewardServer
    from vlmreward.rl.builders import build_reward_model
    from vlmreward.rl.served import local_config, served_identity
    from vlmreward.rl.config import load_config

    if backend not in ("local", "ray"):
        raise InvalidParameterError(f"--backend {backend!r}: use local or ray.")
    if port < 0 or port > 65535:
        raise InvalidParameterError(f"--port {port}: use 0 to 65535.")
    run = local_config(load_config(config, overrides or ()))
    server = RewardServer(partial(build_reward_model, run), host=host, port=port, max_batch=max_batch,
                          max_wait_s=max_wait_ms / 1000, backend=backend, replicas=replicas,  # type: ignore[arg-type]
                          gpus_per_replica=gpus_per_replica,
                          **served_identity(run))
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server.start()
        except OSError as err:
            raise InvalidParameterError(f"cannot listen on {host}:{port} ({err.strerror or err}); pick another --port.") from None
        typer.echo(f"serving {run.reward.kind} at {server.url}", err=True)
        typer.echo(server.url)
        while not stop.wait(0.5):
            pass
        typer.echo("stopping: answering the queued requests", err=True)
    finally:
        server.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
