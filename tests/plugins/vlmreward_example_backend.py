"""A model backend defined outside vlmreward, in one file: names ``example:DIR`` load through it.

A real backend builds its own :class:`~vlmreward.models.base.VisionLanguageModel` subclass (the
hooks ``_embed_pixels`` and ``_embed_text`` plus a ``PreprocessConfig``); this one shows the
registration with the least code: it serves ``save_pretrained`` CLIP directories under its own
prefix by delegating to the transformers backend, and records what it was asked. Registered by
the ``vlmreward.models`` entry point in ``vlmreward_example_plugin-0.1.dist-info``.
"""

from __future__ import annotations

from typing import Any

CALLS: list[dict[str, Any]] = []


def load(name: str, *, checkpoint: Any = None, **kwargs: Any) -> Any:
    """``example:DIR`` → the transformers CLIP saved in ``DIR``, with vlmreward's preprocessing options."""
    from vlmreward.models.hf import load_hf_model

    CALLS.append({"name": name, **kwargs})
    return load_hf_model(name.removeprefix("example:"), **kwargs)
