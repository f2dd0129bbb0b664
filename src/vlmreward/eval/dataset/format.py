"""The dataset format (:mod:`vlmreward.eval.dataset`): its files and required columns, its errors,
and a loaded :class:`Dataset`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vlmreward.errors import InputFileError, VLMRewardError

__all__ = [
    "FORMAT", "FORMAT_VERSION", "FRAMES_FILE", "LABELS_FILE", "METADATA_FILE", "REQUIRED_COLUMNS", "COLUMN_TYPES",
    "REQUIRED_METADATA", "DatasetError", "MissingLabelError", "Dataset", "listing",
]

FORMAT = "vlmreward-dataset"
FORMAT_VERSION = 1
"""The version of the on-disk format this module writes and reads."""

FRAMES_FILE = "frames.npy"
LABELS_FILE = "labels.csv"
METADATA_FILE = "metadata.json"

REQUIRED_COLUMNS: dict[str, str] = {"frame": "int", "episode": "int", "step": "int", "gt_reward": "float"}
"""Columns every ``labels.csv`` has, with their types."""

COLUMN_TYPES: tuple[str, ...] = ("int", "float", "bool", "str")

REQUIRED_METADATA = ("env_id", "num_frames", "render", "columns", "labels", "state_variables")


class DatasetError(InputFileError):
    """A dataset directory that is missing, incomplete, corrupt, of another format version, or
    whose files disagree (frame counts, render size, columns)."""


class MissingLabelError(VLMRewardError, LookupError):
    """A column (label, reference reward or state variable) that the dataset does not have."""


@dataclass
class Dataset:
    """A loaded dataset: memory-mapped frames, the per-frame table and the metadata.

    Attributes:
        path: the dataset directory.
        frames: ``uint8 [N, H, W, 3]``, read-only (memory-mapped from ``frames.npy``).
        table: ``{column: array [N]}``; ``int64``, ``float64``, ``bool`` or ``str`` (object)
            arrays, in the order of ``metadata["columns"]``.
        metadata: the parsed ``metadata.json``.
    """

    path: Path
    frames: np.ndarray
    table: dict[str, np.ndarray]
    metadata: dict[str, Any]

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def name(self) -> str:
        """The directory's name."""
        return self.path.name or self.path.resolve().name

    @property
    def env_id(self) -> str:
        return str(self.metadata["env_id"])

    @property
    def render_size(self) -> tuple[int, int]:
        """``(height, width)`` of every frame, in pixels."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])

    @property
    def label_names(self) -> list[str]:
        """The binary label columns (``metadata["labels"]``), in column order."""
        return [c for c in self.table if c in self.metadata.get("labels", {})]

    @property
    def state_variable_names(self) -> list[str]:
        """The state-variable columns (``metadata["state_variables"]``), in column order."""
        return [c for c in self.table if c in self.metadata.get("state_variables", {})]

    @property
    def numeric_columns(self) -> list[str]:
        """Columns that can serve as a reference reward: floats, ints and booleans."""
        return [c for c, v in self.table.items() if v.dtype.kind in "fiub"]

    def column(self, name: str, what: str = "column") -> np.ndarray:
        """One column, ``[N]``.

        Raises:
            MissingLabelError: the dataset has no such column; the message lists those it has.
        """
        if name not in self.table:
            raise MissingLabelError(
                f"dataset {str(self.path)!r} has no {what} {name!r}; it has {listing(self._candidates(what))}."
            )
        return self.table[name]

    def label(self, name: str = "is_success") -> np.ndarray:
        """A binary label column as ``bool [N]``.

        Raises:
            MissingLabelError: no such label; the message lists the labels the dataset has and
                how to get the one asked for.
        """
        if name not in self.label_names:
            has = self.label_names
            hint = (
                "collect the dataset again from an environment that reports it (info['is_success'] or a "
                "detector of vlmreward.envs.success), or choose one of those with --label"
                if has
                else "collect it from an environment with a success detector (vlmreward/CartPole-v1, "
                "vlmreward/MountainCarContinuousTextured-v0, vlmreward/HumanoidTextured-v0)"
            )
            raise MissingLabelError(
                f"dataset {str(self.path)!r} has no label {name!r} (it has {listing(has, 'no labels')}); {hint}."
            )
        return self.table[name].astype(bool)

    def numeric(self, name: str, what: str = "reference reward") -> np.ndarray:
        """A numeric column as ``float64 [N]`` (booleans as 0/1).

        Raises:
            MissingLabelError: no such column, or it holds text.
        """
        values = self.column(name, what)
        if values.dtype.kind not in "fiub":
            raise MissingLabelError(
                f"column {name!r} of dataset {str(self.path)!r} holds text, not numbers; choose one of "
                f"{listing(self.numeric_columns)}."
            )
        return values.astype(np.float64)

    def _candidates(self, what: str) -> list[str]:
        if what == "state variable":
            return self.state_variable_names
        if what == "reference reward":
            return self.numeric_columns
        return list(self.table)


def listing(names: Sequence[str], empty: str = "none") -> str:
    return ", ".join(repr(n) for n in names) if names else empty
