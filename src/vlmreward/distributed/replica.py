"""The reward replica: one reward model in one Ray actor, batching the requests it is sent
(:mod:`vlmreward.distributed.service` describes the protocol and the failure semantics)."""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray

from vlmreward.distributed.errors import ClusterError
from vlmreward.distributed.spec import RewardFactory
from vlmreward.models.preprocess import Frames, as_frame_batch

__all__ = ["RewardReplica", "DEFAULT_MAX_BATCH_SIZE", "DEFAULT_MAX_WAIT_S", "as_frames", "first_line"]

DEFAULT_MAX_BATCH_SIZE = 256
"""Frames per replica batch (VLM-RM's reference code scores 1600-frame episodes in one go on big GPUs)."""
DEFAULT_MAX_WAIT_S = 0.005
"""How long a replica holds the first request of a batch for others to join: small next to a
VLM forward pass (tens of ms on a GPU), large next to Ray's per-call overhead (about 1 ms)."""
STATS_WINDOW = 10_000


def as_frames(frames: Frames) -> np.ndarray:
    """Validated ``uint8 [N, H, W, 3]`` NumPy frames (raises :class:`InvalidFramesError`)."""
    batch = as_frame_batch(frames)
    return batch.cpu().numpy() if batch.device.type != "cpu" else batch.numpy()


@dataclass
class _Request:
    frames: np.ndarray
    future: asyncio.Future
    arrived: float


class _Replica:
    """One reward model in one Ray actor; see the module docstring. Use :class:`RewardService`.

    Args:
        factory: builds the reward (called once, here).
        max_batch_size: most frames per batch (a larger request is scored alone, in pieces of
            the model's ``batch_size``).
        max_wait_s: longest wait after the oldest queued request before its batch is scored.
        index: the replica's number in its service (for messages).
    """

    def __init__(
        self, factory: RewardFactory, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE, max_wait_s: float = DEFAULT_MAX_WAIT_S, index: int = 0
    ) -> None:
        self.index = index
        self.max_batch_size = int(max_batch_size)
        self.max_wait_s = float(max_wait_s)
        self.pid = os.getpid()
        self.started = time.time()
        self._error: str | None = None
        self._reward: Any = None
        self._describe: dict[str, Any] = {}
        start = time.perf_counter()
        try:
            self._reward = factory()  # the model loads and the prompts are embedded here, once
            self._describe = self._reward.describe()
        except Exception as err:  # noqa: BLE001 (reported by ready(), so the driver can say what failed)
            self._error = f"{type(err).__name__}: {' '.join(str(err).split())}"
        self.build_s = time.perf_counter() - start
        self._queue: deque[_Request] = deque()
        self._queued_frames = 0
        self._arrived: asyncio.Event | None = None
        self._batcher: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vlmreward-score")
        self._batch_frames: deque[int] = deque(maxlen=STATS_WINDOW)
        self._batch_requests: deque[int] = deque(maxlen=STATS_WINDOW)
        self._requests = 0
        self._frames = 0
        self._busy_s = 0.0
        self._scoring = 0  # requests in the batch being scored now

    # ------------------------------------------------------------------ calls
    async def ready(self) -> dict[str, Any]:
        """``{"index", "pid", "node_id", "gpu_ids", "device", "describe", "build_s", "error"}``;
        ``error`` is None when the reward was built, else ``"ErrorType: message"``."""
        model = getattr(self._reward, "model", None)
        return {
            "index": self.index,
            "pid": self.pid,
            "node_id": ray.get_runtime_context().get_node_id(),
            "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
            "device": str(getattr(model, "device", "cpu")),
            "describe": self._describe,
            "build_s": self.build_s,
            "error": self._error,
        }

    async def ping(self) -> None:
        """Nothing: the round trip of an empty request (for overhead measurements)."""
        return None

    async def score(self, frames: np.ndarray) -> np.ndarray:
        """Rewards of ``uint8 [N, H, W, 3]`` frames, ``float32 [N]``, scored in a shared batch.

        Raises:
            InvalidFramesError: frames that are not uint8 RGB (this request only).
            ClusterError: the replica could not build its reward.
        """
        if self._error is not None:
            raise ClusterError(f"reward replica {self.index} could not build its reward: {self._error}")
        batch = as_frames(frames)
        loop = asyncio.get_running_loop()
        if self._batcher is None or self._batcher.done():
            self._arrived = asyncio.Event()
            self._batcher = loop.create_task(self._run())
        future = loop.create_future()
        self._queue.append(_Request(batch, future, time.monotonic()))
        self._queued_frames += len(batch)
        self._requests += 1
        assert self._arrived is not None
        self._arrived.set()
        return await future

    async def stats(self) -> dict[str, Any]:
        """Counters since start (or the last restart): requests, frames, batches, batch sizes.

        Keys: ``pid``, ``requests``, ``frames``, ``batches``, ``mean_batch_frames``,
        ``mean_batch_requests``, ``max_batch_frames``, ``batch_frames`` (the last 10 000 batch
        sizes), ``queued_requests``, ``queued_frames``, ``held_requests`` (queued plus being
        scored: what a crash now would interrupt), ``busy_s`` (time spent scoring).
        """
        sizes = list(self._batch_frames)
        return {
            "index": self.index,
            "pid": self.pid,
            "requests": self._requests,
            "frames": self._frames,
            "batches": len(sizes),
            "mean_batch_frames": float(np.mean(sizes)) if sizes else 0.0,
            "mean_batch_requests": float(np.mean(self._batch_requests)) if sizes else 0.0,
            "max_batch_frames": max(sizes, default=0),
            "batch_frames": sizes,
            "queued_requests": len(self._queue),
            "queued_frames": self._queued_frames,
            "held_requests": len(self._queue) + self._scoring,
            "busy_s": self._busy_s,
        }

    async def reset_stats(self) -> None:
        """Zero the counters (benchmarks)."""
        self._batch_frames.clear()
        self._batch_requests.clear()
        self._requests = self._frames = 0
        self._busy_s = 0.0

    # ------------------------------------------------------------------ batching
    async def _run(self) -> None:
        """Batching loop: wait for a request, then until the batch is full or the oldest waited long enough."""
        assert self._arrived is not None
        while True:
            if not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            deadline = self._queue[0].arrived + self.max_wait_s
            while self._queued_frames < self.max_batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except asyncio.TimeoutError:
                    break
            await self._score_batch(self._take_batch())

    def _take_batch(self) -> list[_Request]:
        """The oldest requests, in order, up to ``max_batch_size`` frames (at least one), all of one frame size."""
        first = self._queue.popleft()
        batch, frames = [first], len(first.frames)
        while self._queue:
            nxt = self._queue[0]
            if frames + len(nxt.frames) > self.max_batch_size or nxt.frames.shape[1:] != first.frames.shape[1:]:
                break
            batch.append(self._queue.popleft())
            frames += len(nxt.frames)
        self._queued_frames -= frames
        return batch

    async def _score_batch(self, batch: list[_Request]) -> None:
        frames = batch[0].frames if len(batch) == 1 else np.concatenate([r.frames for r in batch])
        start = time.perf_counter()
        self._scoring = len(batch)
        try:
            # in a thread: the event loop keeps queueing requests for the next batch meanwhile
            rewards = await asyncio.get_running_loop().run_in_executor(self._executor, self._reward, frames)
            rewards = np.asarray(rewards, dtype=np.float32).reshape(-1)
            if len(rewards) != len(frames):
                raise ClusterError(f"the reward returned {len(rewards)} values for {len(frames)} frames.")
        except Exception as err:  # noqa: BLE001 (each caller gets the error)
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(err)
            return
        finally:
            self._busy_s += time.perf_counter() - start
            self._scoring = 0
        self._batch_frames.append(len(frames))
        self._batch_requests.append(len(batch))
        self._frames += len(frames)
        offset = 0
        for request in batch:
            n = len(request.frames)
            if not request.future.done():  # a cancelled caller
                request.future.set_result(rewards[offset : offset + n].copy())
            offset += n


RewardReplica = ray.remote(max_restarts=-1, max_task_retries=-1)(_Replica)
"""The replica as a Ray actor class: restarted without limit when it dies, its calls retried."""



def first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
