"""Overlapped scoring: a deferred scoring batch scored on a background thread while the environments step.

With ``scoring: overlapped`` (:class:`~vlmreward.envs.vector.VLMRewardVecEnvWrapper` with
``overlap=True``), a deferred batch that is full is handed to one background thread
(:class:`ScoringWorker`) and the environments go on stepping; the batch's rewards are written back
in the stepping thread, in step order, before the next batch is handed over or before anything
reads the rewards (the deferred buffers' ``collect``, a checkpoint, the end of training). At most
one batch is in flight, so the frames held are bounded by two batches.

The batches are those of plain deferred scoring (the same steps, the same ``score_batch_size``
chunks), so the rewards are bit-identical to it (``tests/test_envs_wrappers.py``). PyTorch
releases the GIL inside its kernels, so the vision tower and a Python environment run at once;
whether that is faster depends on spare cores (``benchmarks/RESULTS.md``, overlap section).

Calls on one reward model are serialised by :func:`scoring_lock` (an evaluation environment
scoring per step in the stepping thread, sharing the training reward model, waits for the
batch in flight instead of running beside it).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

__all__ = ["ScoringWorker", "scoring_lock"]

_LOCKS: dict[int, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def scoring_lock(reward_model: Any) -> threading.RLock:
    """The (re-entrant) lock every wrapper's scoring call on ``reward_model`` holds (one per reward model object)."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(id(reward_model), threading.RLock())


class ScoringWorker:
    """One background thread that scores one batch at a time; results are applied by the caller's thread.

    :meth:`submit` hands over ``score`` (run on the worker thread) and ``apply`` (run later with its
    result, by :meth:`wait`, in the thread that calls it). :meth:`submit` waits for the batch in
    flight first, so batches are applied in the order they were submitted.
    """

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._future: Future | None = None
        self._apply: Callable[[Any], None] | None = None

    def submit(self, score: Callable[[], Any], apply: Callable[[Any], None]) -> None:
        """Wait for the batch in flight (:meth:`wait`), then start ``score()`` on the worker thread."""
        self.wait()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="vlmreward-scoring")
        self._future, self._apply = self._executor.submit(score), apply

    def wait(self) -> None:
        """Block until the batch in flight is scored and apply its result here; nothing when none is.

        Raises:
            Exception: what ``score`` raised (the batch is then dropped from the worker; the caller
                keeps its frames and may score them again). A ``KeyboardInterrupt`` while waiting
                (a preemption signal) leaves the batch in flight: the next :meth:`wait` waits again.
        """
        if self._future is None:
            return
        try:
            result = self._future.result()
        except Exception:
            self._future = self._apply = None
            raise
        apply, self._future, self._apply = self._apply, None, None
        assert apply is not None
        apply(result)

    def close(self) -> None:
        """Let the batch in flight finish (its result is dropped) and stop the thread."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._executor = self._future = self._apply = None
