"""Errors a user can cause.

Every error that bad input, a missing model or a wrong parameter can raise derives from
:class:`VLMRewardError`. Its message is one sentence that says what was wrong and what to do;
the command-line interface prints it as one line and exits with code 2. Each class also derives
from the matching built-in exception (``ValueError``, ``LookupError``, ``OSError``) so that
generic ``except ValueError`` code keeps working.
"""

from __future__ import annotations

__all__ = [
    "VLMRewardError",
    "InvalidFramesError",
    "PromptError",
    "PromptTooLongError",
    "InvalidParameterError",
    "ModelNotFoundError",
    "ModelNotAvailableError",
    "InputFileError",
    "PromptFileError",
    "BackendNotAvailableError",
    "ExportError",
]


class VLMRewardError(Exception):
    """Base class of every error caused by user input; the message says what to do."""


class InvalidFramesError(VLMRewardError, ValueError):
    """Frames of the wrong dtype, rank, channel count, or an empty batch."""


class PromptError(VLMRewardError, ValueError):
    """An empty or otherwise unusable text prompt."""


class PromptTooLongError(PromptError):
    """A prompt with more tokens than the model's text context length."""


class InvalidParameterError(VLMRewardError, ValueError):
    """A reward or model parameter outside its allowed range (alpha, temperature, ...)."""


class ModelNotFoundError(VLMRewardError, LookupError):
    """A model name that no backend knows (unknown architecture, tag or repository)."""


class ModelNotAvailableError(VLMRewardError, OSError):
    """A known model whose weights are neither cached locally nor downloadable now.

    Attributes:
        model: the model name asked for (None when unknown).
        reason: why it could not be had, e.g. ``"it is not in the local cache (DIR) and the hub
            (URL) cannot be reached"`` (None when unknown); the command line turns ``model`` and
            ``reason`` into a message naming its own option (``--model DIR`` or ``--set model=DIR``).
    """

    def __init__(self, message: str, *, model: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.model = model
        self.reason = reason


class InputFileError(VLMRewardError, OSError):
    """An input file that does not exist, cannot be read, or holds no frames."""


class PromptFileError(InputFileError):
    """A prompts file (``vlmreward sweep --prompts``) that is missing, not YAML, or not a mapping of prompt sets."""


class BackendNotAvailableError(VLMRewardError, ImportError):
    """A runtime backend (``backend="onnx"``) whose optional packages are not installed."""


class ExportError(VLMRewardError, RuntimeError):
    """A model that could not be exported to another runtime (ONNX); the torch backend still works."""
