"""What the commands share at the terminal: progress bars on stderr, quiet model loading, devices."""

from __future__ import annotations

import os
import shutil
import sys
from contextlib import contextmanager
from typing import Callable, Iterator

import torch

from vlmreward.models.spec import resolve_device

__all__ = ["is_interactive", "quiet_model_loading", "progress_bar", "resolve_cli_device", "command_name"]


def command_name() -> str:
    """How to type the running ``vlmreward`` in a hint: ``vlmreward`` when that name on ``PATH`` is
    this installation's, else the path of this installation's entry point (``.venv/bin/vlmreward``,
    relative to the current directory where that is shorter), as the README types it.

    This installation's entry point is the running script when it is called ``vlmreward``, else
    (``python -m vlmreward.cli.main``, a test runner) the ``vlmreward`` beside the interpreter.
    """
    script = sys.argv[0] if sys.argv and os.path.basename(sys.argv[0]) == "vlmreward" else None
    if script is None:
        beside = os.path.join(os.path.dirname(sys.executable), "vlmreward")
        script = beside if os.path.isfile(beside) else None
    if script is None:
        return "vlmreward"
    on_path = shutil.which("vlmreward")
    try:
        if on_path is not None and os.path.samefile(on_path, script):
            return "vlmreward"
    except OSError:
        pass
    absolute = os.path.abspath(script)
    relative = os.path.relpath(absolute)
    return relative if not relative.startswith("..") and len(relative) < len(absolute) else absolute


def resolve_cli_device(device: str | None) -> torch.device:
    """``--device`` as a torch device (:func:`vlmreward.models.spec.resolve_device`); default: auto."""
    return resolve_device(device, "--device")


def is_interactive() -> bool:
    """Whether a progress bar is welcome: both stdout and stderr are terminals."""
    return all(getattr(stream, "isatty", lambda: False)() for stream in (sys.stdout, sys.stderr))


@contextmanager
def quiet_model_loading(enabled: bool) -> Iterator[None]:
    """Silence the loaders' own progress bars (transformers' "Loading weights", hub downloads),
    restoring their previous state afterwards."""
    if not enabled:
        yield
        return
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    hub_was_disabled = are_progress_bars_disabled()
    tf_logging = sys.modules.get("transformers.utils.logging")
    tf_was_enabled = tf_logging.is_progress_bar_enabled() if tf_logging is not None else not hub_was_disabled
    disable_progress_bars()  # transformers imported from now on starts with its bars off
    if tf_logging is not None:
        tf_logging.disable_progress_bar()
    try:
        yield
    finally:
        tf_logging = sys.modules.get("transformers.utils.logging")
        if tf_logging is not None and tf_was_enabled:
            tf_logging.enable_progress_bar()  # also turns the hub's back on
        if hub_was_disabled:
            disable_progress_bars()
        else:
            enable_progress_bars()


@contextmanager
def progress_bar(total: int | None, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr, yielding ``advance(n_frames)``; a no-op when not ``enabled``."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"), TimeElapsedColumn()]
    if total is not None:
        columns.append(TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("scoring", total=total)
        yield lambda n: progress.advance(task, n)
