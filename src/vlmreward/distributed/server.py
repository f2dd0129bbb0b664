"""The reward server: ``vlmreward serve CONFIG`` serves the config's reward, of any kind, over HTTP.

How it runs:

* **Start.** The server builds the reward once (the model loads, the prompts are embedded) in one
  or more *replicas*: in this process (``backend="local"``, one replica), or as Ray actors
  (``backend="ray"``, ``replicas`` of them; ``pip install 'vlmreward[ray]'``). Then it listens on
  ``http://HOST:PORT`` (standard library ``ThreadingHTTPServer``; one thread per connection) and
  prints that URL. ``GET /healthz`` answers ``ok`` once the replicas are built.
* **Requests.** ``POST /v1/call/<call>`` with a body of arrays (:func:`~vlmreward.distributed.served.encode`)
  is queued in a :class:`~vlmreward.distributed.served.DynamicBatcher` (``max_batch`` items or
  ``max_wait_s``, whichever first) and answered with that request's rows. ``GET /v1/interface``
  says what the reward is and which calls it answers; ``GET /v1/stats`` counts requests, batches
  and items. A malformed request is answered ``400`` with ``{"error", "message"}``; the client
  raises the same error type (:class:`~vlmreward.distributed.client.ServedReward`).
* **Stop.** SIGINT or SIGTERM: the server stops accepting connections, scores what is queued,
  answers it, and exits 0 (:meth:`RewardServer.close`).
* **A replica crash.** Ray replicas are actors with ``max_restarts=-1, max_task_retries=-1``:
  a killed one is restarted, rebuilds its reward and is sent the batches it held again, so the
  requests are answered, late. A crash of the server process itself (or of its local replica)
  drops the open connections; the client retries each unanswered request, with back-off, until
  ``request_timeout_s``, so a server restarted on the same address (by hand, systemd, Kubernetes)
  answers them. Scoring is a pure function of the inputs, so a retried request gets the rewards
  the first attempt would have given: no request is lost and none is scored into the run twice.
  ``benchmarks/bench_server.py`` kills the server mid-load and checks exactly that.
"""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from vlmreward.distributed.served import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_WAIT_S,
    DynamicBatcher,
    RewardEndpoint,
    decode,
    encode,
    make_request,
)
from vlmreward.distributed.spec import RewardFactory
from vlmreward.errors import InvalidParameterError, VLMRewardError

__all__ = ["RewardServer", "DEFAULT_PORT"]

DEFAULT_PORT = 8765
_log = logging.getLogger("vlmreward.distributed")
_MAX_BODY = 2**31


class _EndpointActor:
    """A Ray actor holding one :class:`RewardEndpoint` (built once; again after a restart)."""

    def __init__(self, factory: RewardFactory, kind: str | None, params: dict[str, Any] | None) -> None:
        self.endpoint = RewardEndpoint(factory(), kind, params)

    def interface(self) -> dict[str, Any]:
        return self.endpoint.interface

    def score(self, requests: list[tuple[str, dict, dict]]) -> list:
        items = [make_request(self.endpoint.interface, call, arrays, meta) for call, arrays, meta in requests]
        return self.endpoint.score(items)


class RewardServer:
    """A reward of any kind served over HTTP (module docstring).

    Args:
        factory: builds the reward (a :class:`~vlmreward.distributed.spec.RewardSpec`, or
            ``functools.partial(build_reward_model, config)``); called once per replica.
        host, port: where to listen (port 0: any free port; :attr:`url` says which).
        max_batch: items (frames, clips, queries) per batch.
        max_wait_s: the oldest request's longest wait for others to join its batch.
        backend: ``"local"`` (the reward in this process) or ``"ray"`` (``replicas`` Ray actors;
            Ray must be connected or startable: :func:`~vlmreward.distributed.cluster.init_ray`).
        replicas: Ray replicas (``backend="ray"`` only).
        cpus_per_replica, gpus_per_replica: what Ray reserves per replica.
        kind, params: the reward kind and parameters ``factory`` builds (told to clients, which
            check them against their own config).

    Raises:
        InvalidParameterError: bad numbers, or ``replicas > 1`` with the local backend.
        Whatever building the reward raises (ModelNotAvailableError, ...), from :meth:`start`.
    """

    def __init__(self, factory: RewardFactory, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 max_batch: int = DEFAULT_MAX_BATCH, max_wait_s: float = DEFAULT_MAX_WAIT_S,
                 backend: Literal["local", "ray"] = "local", replicas: int = 1, cpus_per_replica: float = 1.0,
                 gpus_per_replica: float = 0.0, kind: str | None = None, params: dict[str, Any] | None = None) -> None:
        if backend not in ("local", "ray"):
            raise InvalidParameterError(f"backend must be 'local' or 'ray'; got {backend!r}.")
        if replicas < 1 or (backend == "local" and replicas != 1):
            raise InvalidParameterError(f"replicas={replicas}: the local backend has one; use backend 'ray' for more.")
        self.factory, self.host, self.port = factory, host, int(port)
        self.max_batch, self.max_wait_s = int(max_batch), float(max_wait_s)
        self.backend, self.replicas = backend, int(replicas)
        self.cpus_per_replica, self.gpus_per_replica = float(cpus_per_replica), float(gpus_per_replica)
        self.kind, self.params = kind, params
        self.interface: dict[str, Any] | None = None
        self.actors: list[Any] = []
        self.batcher: DynamicBatcher | None = None
        self._http: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (the bound port, once started)."""
        port = self._http.server_address[1] if self._http is not None else self.port
        return f"http://{self.host}:{port}"

    def _build_replicas(self) -> list[Any]:
        if self.backend == "local":
            endpoint = RewardEndpoint(self.factory(), self.kind, self.params)
            self.interface = endpoint.interface
            return [endpoint.score]
        from vlmreward.distributed.cluster import require_ray

        ray = require_ray()
        actor = ray.remote(max_restarts=-1, max_task_retries=-1)(_EndpointActor)
        options = actor.options(num_cpus=self.cpus_per_replica, num_gpus=self.gpus_per_replica)
        self.actors = [options.remote(self.factory, self.kind, self.params) for _ in range(self.replicas)]
        interfaces = ray.get([a.interface.remote() for a in self.actors])
        self.interface = interfaces[0]

        def runner(handle: Any):  # noqa: ANN202
            def run(requests: list) -> list:
                return ray.get(handle.score.remote([(r.call, r.arrays, r.meta) for r in requests]))
            return run

        return [runner(a) for a in self.actors]

    def start(self) -> "RewardServer":
        """Build the replicas and start listening (in a background thread); returns ``self``.

        Raises:
            OSError: the address is taken (checked before the reward is built). Whatever building the reward raises.
        """
        self._http = ThreadingHTTPServer((self.host, self.port), _handler(self))  # bound first: a taken port fails fast
        self._http.daemon_threads = True
        try:
            runs = self._build_replicas()  # connections wait in the listen backlog meanwhile
        except BaseException:
            self._http.server_close()
            self._http = None
            raise
        self.batcher = DynamicBatcher(self.interface or {}, runs, self.max_batch, self.max_wait_s)
        self._thread = threading.Thread(target=self._http.serve_forever, name="vlmreward-http", daemon=True)
        self._thread.start()
        _log.info("serving %s at %s (%s, %d replica(s))", (self.interface or {}).get("kind"),
                  self.url, self.backend, len(runs))
        return self

    def close(self) -> None:
        """Stop accepting requests, answer the queued ones, stop the replicas."""
        if self._http is not None:
            if self._thread is not None:
                self._http.shutdown()
            self._http.server_close()
            self._http, self._thread = None, None
        if self.batcher is not None:
            self.batcher.close()
        if self.actors:
            import ray

            if ray.is_initialized():  # else the actors went with their Ray session (and ray.kill would start another)
                for actor in self.actors:
                    ray.kill(actor, no_restart=True)
        self.actors = []

    def __enter__(self) -> "RewardServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def stats(self) -> dict[str, Any]:
        b = self.batcher
        return {"requests": b.requests, "batches": b.batches, "items": b.items, "replicas": len(b._threads),
                "max_batch": self.max_batch, "max_wait_s": self.max_wait_s} if b else {}


def _handler(server: RewardServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are written apart: no 40 ms delayed-ACK stall

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            _log.debug("%s %s", self.address_string(), format % args)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, value: Any) -> None:
            self._send(status, json.dumps(value).encode("utf-8"), "application/json")

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path == "/healthz":
                self._send(HTTPStatus.OK, b"ok", "text/plain")
            elif self.path == "/v1/interface":
                self._json(HTTPStatus.OK, server.interface)
            elif self.path == "/v1/stats":
                self._json(HTTPStatus.OK, server.stats())
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": "InvalidParameterError", "message": f"no such path {self.path!r}"})

        def do_POST(self) -> None:  # noqa: N802
            prefix = "/v1/call/"
            if not self.path.startswith(prefix):
                self._json(HTTPStatus.NOT_FOUND, {"error": "InvalidParameterError", "message": f"no such path {self.path!r}"})
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
                if not 0 < length < _MAX_BODY:
                    raise InvalidParameterError(f"a request body of {length} bytes; send 1 byte to 2 GiB.")
                arrays, meta = decode(self.rfile.read(length))
                answer_arrays, answer_meta = server.batcher.submit(self.path[len(prefix):], arrays, meta).result()
            except VLMRewardError as err:
                self._json(HTTPStatus.BAD_REQUEST, {"error": type(err).__name__, "message": " ".join(str(err).split())})
                return
            except Exception as err:  # noqa: BLE001 (the client is told; the server keeps serving)
                _log.exception("scoring failed")
                self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": type(err).__name__, "message": " ".join(str(err).split())})
                return
            self._send(HTTPStatus.OK, encode(answer_arrays, answer_meta), "application/octet-stream")

    return Handler
