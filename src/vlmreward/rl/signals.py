"""Preemption: SIGTERM and SIGUSR1 stop a training run the way Ctrl-C does, with a checkpoint.

Cluster schedulers end jobs with a signal and a grace period: SLURM and Kubernetes send SIGTERM
(SLURM's ``--signal=USR1@60`` sends SIGUSR1 a minute before the end). Python turns only SIGINT
into an exception; SIGTERM kills the process with nothing saved, and libraries that render
frames install handlers of their own (SDL, under pygame, turns SIGINT and SIGTERM into a quit
event that nobody reads, so the run goes on past its slot).

:func:`preemption_signals` makes SIGTERM and SIGUSR1 raise :class:`Preempted`, a
``KeyboardInterrupt``, wherever the run is (stepping, scoring, evaluating, writing a checkpoint),
so the same path as Ctrl-C writes a consistent checkpoint and the command exits with
``128 + signal number`` (143 for SIGTERM, 138 for SIGUSR1, 130 for SIGINT). It asks SDL not to
install its handlers (``SDL_NO_SIGNAL_HANDLERS=1``, read when pygame initialises), and
:class:`KeepSignalHandlers` puts ours back at every step should a library have replaced them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any, Iterator

from stable_baselines3.common.callbacks import BaseCallback

__all__ = [
    "Preempted", "PREEMPTION_SIGNALS", "preemption_signals", "shielded", "restore_handlers", "KeepSignalHandlers", "exit_code",
]

PREEMPTION_SIGNALS: tuple[str, ...] = ("SIGTERM", "SIGUSR1")
"""Signals that stop a run with a checkpoint (besides SIGINT, which Python already raises)."""


class Preempted(KeyboardInterrupt):
    """A preemption signal arrived; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"received {signal.Signals(signum).name}")
        self.signum = int(signum)


def exit_code(interrupt: BaseException) -> int:
    """The conventional exit status after ``interrupt``: ``128 + signal number`` (130 for Ctrl-C)."""
    return 128 + int(getattr(interrupt, "signum", signal.SIGINT))


def _raise_preempted(signum: int, frame: Any) -> None:  # noqa: ARG001 - a signal handler's signature
    raise Preempted(signum)


def _ours() -> dict[int, Any]:
    handlers: dict[int, Any] = {getattr(signal, name): _raise_preempted for name in PREEMPTION_SIGNALS if hasattr(signal, name)}
    handlers[signal.SIGINT] = signal.default_int_handler
    return handlers


@contextlib.contextmanager
def preemption_signals() -> Iterator[None]:
    """Within the block, SIGTERM/SIGUSR1 raise :class:`Preempted` and SIGINT ``KeyboardInterrupt``;
    the previous handlers come back afterwards. A no-op off the main thread (Python delivers
    signals to the main thread only)."""
    os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in _ours()}
    for signum, handler in _ours().items():
        signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Within the block, SIGTERM and SIGUSR1 are ignored (a repeated preemption signal must not cut
    the checkpoint written after the first one short); Ctrl-C still interrupts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signums = [getattr(signal, name) for name in PREEMPTION_SIGNALS if hasattr(signal, name)]
    previous = {signum: signal.getsignal(signum) for signum in signums}
    for signum in signums:
        signal.signal(signum, signal.SIG_IGN)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def restore_handlers() -> None:
    """Put our handlers back where a library replaced them (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum, handler in _ours().items():
        if signal.getsignal(signum) is not handler:
            signal.signal(signum, handler)


class KeepSignalHandlers(BaseCallback):
    """At every step, restore the preemption handlers if the environment's libraries replaced them
    (pygame/SDL on its first render, MuJoCo's viewer, Ray's workers)."""

    def _on_step(self) -> bool:
        restore_handlers()
        return True
