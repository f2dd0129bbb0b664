"""The client of a reward server (:mod:`vlmreward.distributed.server`): a stand-in for the served
reward, of any kind, that the environment wrappers, the deferred buffers, the checkpoints and the
relabelling use unchanged.

``ServedReward(url)`` reads the server's interface once and offers what the served kind offers:
``reward(frames[, goals])`` for a frame kind (with its ``goal_info_key``), ``clip_mode``,
``window``, ``clip_info_key``, ``clip_indices`` and ``score_clips`` for a clip kind (and
``episode_rewards`` where the kind scores recorded episodes its own way), ``ask`` for a learned
kind's VLM labeller. Goal objects travel as their sentence.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.parse
from typing import Any, Sequence

import numpy as np

from vlmreward import errors as _errors
from vlmreward._json import json_safe
from vlmreward.distributed.errors import RewardServerError
from vlmreward.distributed.served import decode, encode, goal_text
from vlmreward.errors import InvalidParameterError, VLMRewardError
from vlmreward.models.preprocess import Frames, as_frame_batch

__all__ = ["ServedReward", "DEFAULT_REQUEST_TIMEOUT_S"]

DEFAULT_REQUEST_TIMEOUT_S = 300.0
"""How long one request may take, retries after a server crash included (a restart reloads the model)."""
_RETRYABLE = (ConnectionError, http.client.HTTPException, TimeoutError, OSError)


class _Connection(http.client.HTTPConnection):
    """An HTTP connection with Nagle's algorithm off: http.client sends a request's headers and body
    apart, which with delayed ACKs stalls every request by about 40 ms."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _error(name: str, message: str) -> VLMRewardError:
    cls = getattr(_errors, name, None)
    if isinstance(cls, type) and issubclass(cls, VLMRewardError):
        return cls(message)
    return RewardServerError(f"the reward server failed: {name}: {message}")


class ServedReward:
    """A reward scored by a reward server at ``url`` (module docstring).

    Args:
        url: ``http://HOST:PORT`` of ``vlmreward serve``.
        request_timeout_s: how long one request may take, retries included: a request that meets
            a closed connection (the server crashed or restarts) is sent again, with back-off,
            until then.
        connect_timeout_s: how long the constructor waits for the server to answer its interface.

    Raises:
        InvalidParameterError: ``url`` is not ``http://HOST:PORT``.
        RewardServerError: nothing answers at ``url`` within ``connect_timeout_s``.
    """

    def __init__(self, url: str, request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S, connect_timeout_s: float = 60.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise InvalidParameterError(
                f"reward.server {url!r}: give http://HOST:PORT (the URL `vlmreward serve` prints) or 'ray'."
            )
        self.url = url.rstrip("/")
        self._host, self._port = parts.hostname, parts.port or 80
        self.request_timeout_s = float(request_timeout_s)
        self._local = threading.local()
        self.requests = 0
        self.retries = 0
        self.owned_server: Any = None  # a RewardServer started for this client, closed with it
        try:
            self.interface: dict[str, Any] = json.loads(self._send("GET", "/v1/interface", None, connect_timeout_s))
        except ValueError:  # an answer that is not JSON: another kind of server
            self.interface = {}
        if not isinstance(self.interface, dict) or "calls" not in self.interface:
            raise RewardServerError(f"{self.url} is not a vlmreward reward server (no interface at /v1/interface).")
        face = self.interface
        if face.get("goal_info_key"):
            self.goal_info_key = face["goal_info_key"]
        if face.get("clip_mode"):
            self.clip_mode, self.window, self.clip_info_key = face["clip_mode"], face.get("window"), face.get("clip_info_key")
            self._indices: dict[int, np.ndarray] = {}
        if face.get("episode_rewards"):
            self.episode_rewards = self._episode_rewards

    # ----------------------------------------------------------------------------- transport
    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _Connection(self._host, self._port, timeout=timeout)
        conn.timeout = timeout
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def _send(self, method: str, path: str, body: bytes | None, timeout_s: float) -> bytes:
        deadline = time.monotonic() + timeout_s
        delay = 0.05
        while True:
            try:
                conn = self._connection(max(1.0, deadline - time.monotonic()))
                headers = {"Content-Type": "application/octet-stream"} if body is not None else {}
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except _RETRYABLE as err:
                self._drop_connection()
                if time.monotonic() + delay > deadline:
                    raise RewardServerError(
                        f"the reward server at {self.url} did not answer within {timeout_s:g} s ({type(err).__name__}: {err}); "
                        "start it with `vlmreward serve CONFIG` (it prints its URL)."
                    ) from None
                self.retries += 1
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if response.status == 200:
                return data
            try:
                problem = json.loads(data)
                refused = _error(str(problem["error"]), str(problem["message"]))
            except (ValueError, KeyError, TypeError):
                refused = RewardServerError(f"{self.url}{path} answered HTTP {response.status} without a vlmreward error: "
                                            "it is not a vlmreward reward server (start one with `vlmreward serve CONFIG`).")
            raise refused

    def call(self, call: str, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
        """One request to the server: the answer's arrays.

        Raises:
            InvalidFramesError, InvalidParameterError, ...: the server refused the request (the same type).
            RewardServerError: unreachable within ``request_timeout_s``, or scoring failed there.
        """
        self.requests += 1
        data = self._send("POST", f"/v1/call/{call}", encode(arrays, json_safe(meta or {}, nonfinite_as_none=False)), self.request_timeout_s)
        return decode(data)[0]

    # ----------------------------------------------------------------------------- the reward
    def __call__(self, frames: Frames, goals: Sequence[Any] | None = None, batch_size: int | None = None) -> np.ndarray:
        """Rewards of uint8 RGB frames ``[N, H, W, 3]`` (or one ``[H, W, 3]``): ``float32 [N]``.
        A clip kind takes them as one episode (its offline per-frame rewards); ``batch_size`` is the server's."""
        batch = as_frame_batch(frames).numpy()
        if "frames" not in self.interface["calls"]:
            return self.call("episode", {"frames": batch})["rewards"]
        meta = None if goals is None else {"goals": [goal_text(g) for g in goals]}
        return self.call("frames", {"frames": batch}, meta)["rewards"]

    def score_clips(self, clips: Sequence[np.ndarray], infos: Sequence[Sequence[Any]] | None = None) -> np.ndarray:
        """``float32 [E]``: one reward per clip, scored on the server (a clip kind)."""
        arrays = {f"clip_{i}": np.asarray(c) for i, c in enumerate(clips)}
        meta = {"count": len(clips), "infos": None if infos is None else [list(i) for i in infos]}
        return self.call("clips", arrays, meta)["rewards"]

    def clip_indices(self, length: int) -> np.ndarray:
        """Which frames of a clip of ``length`` frames the served kind reads (asked once per length)."""
        if length not in self._indices:
            self._indices[length] = self.call("clip_indices", {}, {"length": int(length)})["indices"]
        return self._indices[length]

    def _episode_rewards(self, frames: Any, infos: Sequence[Any] | None = None) -> np.ndarray:
        meta = {"infos": None if infos is None else list(infos)}
        return self.call("episode", {"frames": as_frame_batch(frames).numpy()}, meta)["rewards"]

    def ask(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """``float32 [Q, 2]``: the served labeller's ``log p("1"), log p("2")`` with ``first[i]`` shown first."""
        return self.call("ask", {"first": np.asarray(first), "second": np.asarray(second)})["rewards"]

    def from_embeddings(self, image_embeddings: Any) -> np.ndarray:
        """Not available: the model and the prompts live on the server.

        Raises:
            NotImplementedError: always.
        """
        raise NotImplementedError("a served reward scores frames on its server; build the reward locally to score embeddings.")

    def describe(self) -> dict[str, Any]:
        """The served reward's description plus ``"server"`` (the URL)."""
        return {**self.interface["describe"], "server": self.url}

    def close(self) -> None:
        """Close this thread's connection, and stop the server this client started (``reward.server: ray``)."""
        self._drop_connection()
        if self.owned_server is not None:
            self.owned_server.close()
            self.owned_server = None
