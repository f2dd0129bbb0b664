"""A logger's handler and level changed for the duration of a block, then restored."""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator

__all__ = ["attached_handler"]


@contextlib.contextmanager
def attached_handler(logger: logging.Logger, handler: logging.Handler, level: int) -> Iterator[None]:
    """Add ``handler`` to ``logger`` and set its level to ``level`` inside the block; restore both after."""
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
