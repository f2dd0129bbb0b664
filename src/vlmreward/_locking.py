"""One process at a time in a directory: ``train``, ``train --resume`` and ``relabel`` hold a lock.

Two processes writing one run directory interleave their logs and overwrite each other's
checkpoints. :func:`exclusive_directory` takes ``DIR/.lock`` with the ``filelock`` package
(``fcntl.flock`` on POSIX: the kernel releases it when its process ends, however it ends, so a
lock left by a process killed with SIGKILL is free again and taken over, and the takeover is
logged) and records the holder (PID, host, start time, command) in ``DIR/.lock-holder.json``, so
that a second process is refused in one line naming them.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from vlmreward.errors import VLMRewardError

__all__ = ["DirectoryInUseError", "exclusive_directory", "LOCK_FILE", "HOLDER_FILE"]

LOCK_FILE = ".lock"
HOLDER_FILE = ".lock-holder.json"

_log = logging.getLogger("vlmreward.rl")


class DirectoryInUseError(VLMRewardError, RuntimeError):
    """Another process holds the directory (``train``, ``--resume`` or ``relabel``)."""


def _read_holder(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


@contextmanager
def exclusive_directory(directory: str | os.PathLike, what: str = "run directory", name: str | None = None) -> Iterator[None]:
    """Hold ``directory`` for the ``with`` block; the directory must exist.

    ``name``: hold the path ``directory/name`` instead, which need not exist yet (a destination
    that is written later): the lock files are then ``directory/.NAME.lock`` and its holder record.

    Raises:
        DirectoryInUseError: another live process holds it; the message names its PID, host,
            start time and command.
    """
    from filelock import FileLock, Timeout

    directory = Path(directory)
    prefix = "" if name is None else f".{name}"
    holder_path = directory / (prefix + HOLDER_FILE)
    lock = FileLock(str(directory / (prefix + LOCK_FILE)), timeout=0)
    shown = directory if name is None else directory / name
    try:
        lock.acquire()
    except Timeout:
        holder = _read_holder(holder_path) or {}
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["time"])) if "time" in holder else "?"
        raise DirectoryInUseError(
            f"{what} {shown} is in use by PID {holder.get('pid', '?')} on {holder.get('host', '?')} "
            f"(since {since}: {holder.get('command', '?')}); wait for it to end or stop it, or use another directory."
        ) from None
    try:
        stale = _read_holder(holder_path)
        if stale is not None:  # its process ended without releasing (SIGKILL, a power cut): the kernel freed the lock
            _log.info("took over %s from PID %s on %s, which ended without releasing it", shown, stale.get("pid"),
                      stale.get("host"))
        record = {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time(), "command": " ".join(sys.argv)[:300]}
        holder_path.write_text(json.dumps(record) + "\n", encoding="utf-8")
        yield
    finally:
        holder_path.unlink(missing_ok=True)
        lock.release()
