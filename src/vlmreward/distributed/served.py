"""What a reward server runs: one reward model of any registered kind behind a few calls, and the
dynamic batching of the requests of many callers.

Every kind is served through the same calls (:class:`RewardEndpoint`):

=================  ==================================================  ==================  ========
call               what it computes                                    kinds               batched
=================  ==================================================  ==================  ========
``frames``         ``reward(frames[, goals])`` → ``float32 [N]``       frame kinds         yes
``clips``          ``reward.score_clips(clips, infos)`` → ``[E]``      clip kinds          yes
``ask``            ``reward.ask(first, second)`` → ``float32 [Q, 2]``  learned kinds with  yes
                                                                       a VLM labeller
``episode``        one recorded episode's offline rewards ``[N]``      clip kinds          no
``clip_indices``   which frames of a clip of ``length`` are read       clip kinds          no
=================  ==================================================  ==================  ========

A learned kind (``preference``) is trained where the agent is: what the server holds is its VLM
labeller (the model calls of :meth:`~vlmreward.rewards.preference.PreferenceReward.ask`).

:class:`DynamicBatcher` queues the requests and scores those of one call (and one frame size) as
one batch when they hold ``max_batch`` items (frames, clips or queries) or when the oldest has
waited ``max_wait_s``, whichever comes first (the policy of Ray Serve's ``@serve.batch`` and of
:mod:`vlmreward.distributed.replica`); each request gets its own rows back, in order. Scoring is a
pure function of its inputs: a request scored alone gets exactly the in-process rewards, and
requests merged into one batch differ from their separate scoring by float rounding only (≤ 1e-6;
both tested in ``tests/test_reward_server.py``).

The wire format (:func:`encode` / :func:`decode`) is a JSON header followed by the arrays' raw
bytes (numbers only): nothing a client sends is unpickled or evaluated.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from vlmreward.envs.overlap import scoring_lock
from vlmreward.envs.wrappers import goal_info_key, score_frames
from vlmreward.errors import InvalidParameterError
from vlmreward.models.preprocess import as_frame_batch
from vlmreward.rewards.base import is_learned
from vlmreward.rewards.video import is_clip_reward, offline_episode_rewards

__all__ = [
    "RewardEndpoint", "DynamicBatcher", "make_request", "check_call", "goal_text", "encode", "decode", "BATCHED_CALLS", "CALLS",
    "DEFAULT_MAX_BATCH", "DEFAULT_MAX_WAIT_S", "MAGIC",
]

BATCHED_CALLS = ("frames", "clips", "ask")
CALLS = (*BATCHED_CALLS, "episode", "clip_indices")
DEFAULT_MAX_BATCH = 64
"""Items (frames, clips, queries) per batch: the contrastive models' default ``batch_size``."""
DEFAULT_MAX_WAIT_S = 0.005
"""How long the oldest request waits for others to join its batch (small next to a VLM forward pass)."""
MAGIC = b"VLMRWD1\n"
"""The first bytes of a reward-server message (:func:`encode`)."""
_KINDS = "biuf"  # bool, signed, unsigned, float: no objects, so nothing is unpickled


def encode(arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None) -> bytes:
    """``arrays`` and a JSON-serialisable ``meta`` as one message: ``MAGIC``, the header's length
    (8 bytes, little-endian), a JSON header (``meta`` and each array's name, dtype, shape and byte
    count), then the arrays' bytes in C order."""
    parts, described = [], []
    for name, value in arrays.items():
        value = np.ascontiguousarray(value)
        if value.dtype.kind not in _KINDS:
            raise InvalidParameterError(f"array {name!r} has dtype {value.dtype}; a reward-server message holds numbers only.")
        described.append({"name": name, "dtype": value.dtype.str, "shape": list(value.shape), "nbytes": value.nbytes})
        parts.append(value.data)
    header = json.dumps({"meta": meta or {}, "arrays": described}).encode("utf-8")
    return b"".join([MAGIC, len(header).to_bytes(8, "little"), header, *parts])


def decode(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays (read-only views of ``data``) and ``meta`` of :func:`encode`'s bytes.

    Raises:
        InvalidParameterError: not such a message (a wrong prefix, header, dtype or length).
    """
    view = memoryview(data)
    try:
        if bytes(view[: len(MAGIC)]) != MAGIC:
            raise ValueError("it does not start with the vlmreward prefix")
        size = int.from_bytes(view[len(MAGIC) : len(MAGIC) + 8], "little")
        offset = len(MAGIC) + 8 + size
        header = json.loads(bytes(view[len(MAGIC) + 8 : offset]).decode("utf-8"))
        arrays = {}
        for item in header["arrays"]:
            dtype = np.dtype(str(item["dtype"]))
            shape = tuple(int(n) for n in item["shape"])
            nbytes = int(item["nbytes"])
            if dtype.kind not in _KINDS or nbytes != dtype.itemsize * int(np.prod(shape)) or offset + nbytes > len(view):
                raise ValueError(f"array {item['name']!r} is malformed")
            arrays[str(item["name"])] = np.frombuffer(view[offset : offset + nbytes], dtype=dtype).reshape(shape)
            offset += nbytes
        meta = header["meta"]
        if offset != len(view) or not isinstance(meta, dict):
            raise ValueError("its length or header does not match")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise InvalidParameterError(f"a reward-server message is malformed ({err}).") from None
    return arrays, meta


def goal_text(goal: Any) -> Any:
    """What travels for a frame's goal: a goal object's sentence (the goal-aware kinds accept a sentence), else the value."""
    return getattr(goal, "sentence", goal)


def _clips_of(arrays: dict[str, np.ndarray], count: int) -> list[np.ndarray]:
    try:
        return [arrays[f"clip_{i}"] for i in range(count)]
    except KeyError as err:
        raise InvalidParameterError(f"a clips request lists {count} clips but {err.args[0]} is missing.") from None


@dataclass
class _Request:
    call: str
    key: tuple[Any, ...]
    size: int
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    future: Future = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)


class RewardEndpoint:
    """One reward model and the calls it is served through (the table of the module docstring).

    Args:
        reward: a built reward model of any kind.
        kind, params: the reward kind's name and parameters it was built from (JSON; clients
            check them against their config).

    Attributes:
        interface: what a client needs to stand in for the reward (JSON): ``kind``, ``params``, ``describe``,
            ``calls``, ``goal_info_key``, ``clip_mode``, ``window``, ``clip_info_key``,
            ``episode_rewards`` (the kind scores recorded episodes its own way), ``learned``.
    """

    def __init__(self, reward: Any, kind: str | None = None, params: dict[str, Any] | None = None) -> None:
        self.reward = reward
        clip = is_clip_reward(reward)
        calls = ["clips", "episode", "clip_indices"] if clip else ["frames"]
        if is_learned(reward):
            calls = ["ask"] if callable(getattr(reward, "ask", None)) else []
        describe = reward.describe()
        self.interface: dict[str, Any] = {
            "kind": kind or describe.get("kind"),
            "params": params,
            "describe": describe,
            "calls": calls,
            "goal_info_key": goal_info_key(reward),
            "clip_mode": getattr(reward, "clip_mode", None) if clip else None,
            "window": getattr(reward, "window", None) if clip else None,
            "clip_info_key": getattr(reward, "clip_info_key", None) if clip else None,
            "episode_rewards": clip and hasattr(reward, "episode_rewards"),
            "learned": is_learned(reward),
        }

    def score(self, requests: Sequence[_Request]) -> list[tuple[dict[str, np.ndarray], dict[str, Any]]]:
        """Score ``requests`` (one batch key) in one call of the reward; each request's answer."""
        call = requests[0].call
        with scoring_lock(self.reward):
            if call == "frames":
                frames = np.concatenate([r.arrays["frames"] for r in requests])
                goals = None if requests[0].meta.get("goals") is None else [g for r in requests for g in r.meta["goals"]]
                out = score_frames(self.reward, frames, goals)
            elif call == "clips":
                clips = [c for r in requests for c in _clips_of(r.arrays, r.size)]
                infos = None if requests[0].meta.get("infos") is None else [i for r in requests for i in r.meta["infos"]]
                out = np.asarray(self.reward.score_clips(clips, infos), dtype=np.float32).reshape(-1)
            elif call == "ask":
                first = np.concatenate([r.arrays["first"] for r in requests])
                second = np.concatenate([r.arrays["second"] for r in requests])
                out = np.asarray(self.reward.ask(first, second), dtype=np.float32)
            elif call == "episode":
                (request,) = requests
                frames = as_frame_batch(request.arrays["frames"]).numpy()
                return [({"rewards": offline_episode_rewards(self.reward, frames, request.meta.get("infos"))}, {})]
            else:
                (request,) = requests
                length = int(request.meta.get("length", 0))
                if length < 1:
                    raise InvalidParameterError(f"clip_indices needs a length ≥ 1; got {length}.")
                return [({"indices": np.asarray(self.reward.clip_indices(length), dtype=np.int64)}, {})]
        answers, start = [], 0
        for r in requests:
            answers.append(({"rewards": out[start : start + r.size]}, {}))
            start += r.size
        return answers


def check_call(interface: dict[str, Any], call: str) -> None:
    """Raises InvalidParameterError: ``call`` is not one this reward is served through."""
    if call not in interface["calls"]:
        kind = interface["describe"].get("kind")
        raise InvalidParameterError(
            f"the served reward ({kind}) answers {', '.join(interface['calls']) or 'no call'}; not {call!r}."
        )


def make_request(interface: dict[str, Any], call: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> _Request:
    """A validated request: its batch key (requests with one key are scored together) and size.

    Raises:
        InvalidParameterError, InvalidFramesError: an unknown call or malformed inputs.
    """
    check_call(interface, call)
    if call == "frames":
        frames = as_frame_batch(arrays.get("frames", np.zeros((0,), np.uint8))).numpy()
        goals = meta.get("goals")
        if goals is not None and len(goals) != len(frames):
            raise InvalidParameterError(f"{len(goals)} goals for {len(frames)} frames; give one goal per frame.")
        return _Request(call, (call, frames.shape[1:], goals is not None), len(frames), {"frames": frames}, meta)
    if call == "clips":
        count = int(meta.get("count", 0))
        clips = [as_frame_batch(c).numpy() for c in _clips_of(arrays, count)]
        infos = meta.get("infos")
        if infos is not None and len(infos) != count:
            raise InvalidParameterError(f"{len(infos)} info lists for {count} clips; give one per clip.")
        return _Request(call, (call, infos is not None), count, {f"clip_{i}": c for i, c in enumerate(clips)}, meta)
    if call == "ask":
        first, second = as_frame_batch(arrays["first"]).numpy(), as_frame_batch(arrays["second"]).numpy()
        if first.shape != second.shape:
            raise InvalidParameterError(f"first {first.shape} and second {second.shape} frames differ in shape.")
        return _Request(call, (call, first.shape[1:]), len(first), {"first": first, "second": second}, meta)
    return _Request(call, (call, id(arrays)), 1, arrays, meta)


class DynamicBatcher:
    """Queues requests and scores those with one batch key together (module docstring).

    Args:
        interface: the served reward's :attr:`RewardEndpoint.interface` (requests are validated
            against it in the caller's thread, :func:`make_request`).
        run: scores one batch of requests: ``run(requests) -> [(arrays, meta), ...]``
            (:meth:`RewardEndpoint.score`); a server with several replicas passes one per replica.
        max_batch: items (frames, clips, queries) per batch; a larger request is scored alone.
        max_wait_s: the oldest request's longest wait for others to join its batch.

    One worker thread per ``run``: with several replicas, as many batches are scored at once.

    Attributes:
        requests, batches, items: counts so far (for ``/v1/stats``).
    """

    def __init__(self, interface: dict[str, Any], run: Callable[[list[_Request]], list] | Sequence[Callable],
                 max_batch: int = DEFAULT_MAX_BATCH, max_wait_s: float = DEFAULT_MAX_WAIT_S) -> None:
        if max_batch < 1 or max_wait_s < 0:
            raise InvalidParameterError(f"max_batch must be ≥ 1 and max_wait_s ≥ 0; got {max_batch}, {max_wait_s}.")
        self.interface = interface
        runs = list(run) if isinstance(run, (list, tuple)) else [run]
        self.max_batch, self.max_wait_s = int(max_batch), float(max_wait_s)
        self._queue: deque[_Request] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.requests = self.batches = self.items = 0
        self._threads = [threading.Thread(target=self._work, args=(r,), name=f"vlmreward-batch-{i}", daemon=True)
                         for i, r in enumerate(runs)]
        for thread in self._threads:
            thread.start()

    def submit(self, call: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Future:
        """Queue one request; its future gives ``(arrays, meta)`` or raises what scoring raised.

        Raises:
            InvalidParameterError, InvalidFramesError: the request is malformed (nothing is queued).
            RuntimeError: the batcher is closed.
        """
        request = make_request(self.interface, call, arrays, meta)
        with self._cond:
            if self._closed:
                raise RuntimeError("the reward server is shutting down")
            self._queue.append(request)
            self.requests += 1
            self._cond.notify_all()
        return request.future

    def _next_batch(self) -> list[_Request] | None:
        with self._cond:
            while True:
                if self._closed and not self._queue:
                    return None
                if not self._queue:
                    self._cond.wait()
                    continue
                first = self._queue[0]
                same = [r for r in self._queue if r.key == first.key] if first.call in BATCHED_CALLS else [first]
                size = sum(r.size for r in same)
                waited = time.monotonic() - first.arrived
                if first.call in BATCHED_CALLS and size < self.max_batch and waited < self.max_wait_s and not self._closed:
                    self._cond.wait(self.max_wait_s - waited)
                    continue
                batch, total = [], 0
                for r in same:
                    if batch and total + r.size > self.max_batch:
                        break
                    batch.append(r)
                    total += r.size
                for r in batch:
                    self._queue.remove(r)
                self.batches += 1
                self.items += total
                return batch

    def _work(self, run: Callable[[list[_Request]], list]) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                answers = run(batch)
            except BaseException as err:  # noqa: BLE001 (every request of the batch gets the error)
                for r in batch:
                    r.future.set_exception(err)
                continue
            for r, answer in zip(batch, answers):
                r.future.set_result(answer)

    def close(self) -> None:
        """Score what is queued, then stop the worker threads."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()
