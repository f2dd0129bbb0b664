"""Labelled frame datasets on disk: one documented format, written by ``vlmreward collect``.

A dataset is a directory of three files::

    DATASET/
      frames.npy      uint8 [N, H, W, 3] RGB frames at the environment's render size (a plain
                      NumPy .npy file, memory-mapped on load, so N is bounded by disk, not RAM)
      labels.csv      one row per frame, in frame order; the columns are listed in metadata.json
      metadata.json   what the frames and columns are (below)

``labels.csv`` always has the columns

* ``frame`` (int): the row's index into ``frames.npy``, ``0 … N-1`` in order;
* ``episode`` (int), ``step`` (int): the episode and the step within it that reached the frame's
  state (1 for the first step; frames are the states *reached* by a step, as VLM-RM scores
  ``s'``); for a scripted sweep the sweep line (e.g. one cart position) and the index along it;
* ``gt_reward`` (float): the ground-truth reward of that state (``metadata["gt_reward"]`` says
  what it is for this dataset);

then the binary labels (``is_success`` and, e.g. for Humanoid, ``success_kneeling``, …; written
as ``0``/``1``) and the state variables by name (``pole_angle``, ``cart_position``,
``car_position``, ``pose``, …). Floats are written with ``repr`` precision (they round-trip).

``metadata.json`` is an object with

* ``format`` = ``"vlmreward-dataset"`` and ``format_version`` = :data:`FORMAT_VERSION`;
* ``env_id``, ``env_kwargs`` (the ``gymnasium.make`` keyword arguments), ``render``
  (``{"width", "height", "render_mode"}``, the size of every frame);
* ``policy`` (``{"kind": "random" | "scripted" | "run", …}``), ``num_frames``;
* ``columns``: ``{name: {"type": "int" | "float" | "bool" | "str", "description": …}}`` for every
  column of ``labels.csv``, in order;
* ``labels``: ``{name: {"definition": …, "detector": …, "thresholds": {…}}}`` for the binary
  label columns (the detectors and thresholds of :mod:`vlmreward.envs.success`);
* ``state_variables``: ``{name: {"unit": …, "description": …}}``;
* ``gt_reward``: ``{"definition": …}``;
* ``landscape``: ``{"x": STATE_VARIABLE, "facet": STATE_VARIABLE | null}``, the variable a
  reward landscape is drawn against (and, optionally, one panel per value of another);
* ``created``, ``vlmreward_version`` and anything else the writer wants to keep.

:func:`load_dataset` validates all of it and raises a :class:`DatasetError` (an
:class:`~vlmreward.errors.InputFileError`) with a one-sentence message for a missing file, a
corrupt or truncated file, a format version it does not read, or counts that do not match;
asking for a column the dataset lacks raises :class:`MissingLabelError`.

Why one module: the on-disk format's specification (this docstring), its reader and its writer
change together, and keeping them in one module keeps them from drifting apart; half of the code is
validation that gives a one-sentence error for every way a file can be wrong.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from vlmreward._json import json_safe
from vlmreward.errors import InputFileError, InvalidParameterError, VLMRewardError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "FRAMES_FILE",
    "LABELS_FILE",
    "METADATA_FILE",
    "REQUIRED_COLUMNS",
    "COLUMN_TYPES",
    "DatasetError",
    "MissingLabelError",
    "Dataset",
    "DatasetWriter",
    "load_dataset",
    "save_dataset",
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

_REQUIRED_METADATA = ("env_id", "num_frames", "render", "columns", "labels", "state_variables")


class DatasetError(InputFileError):
    """A dataset directory that is missing, incomplete, corrupt, of another format version, or
    whose files disagree (frame counts, render size, columns)."""


class MissingLabelError(VLMRewardError, LookupError):
    """A column (label, reference reward or state variable) that the dataset does not have."""


# ---------------------------------------------------------------------------------------------
# the in-memory dataset


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
                f"dataset {str(self.path)!r} has no {what} {name!r}; it has {_listing(self._candidates(what))}."
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
                f"dataset {str(self.path)!r} has no label {name!r} (it has {_listing(has, 'no labels')}); {hint}."
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
                f"{_listing(self.numeric_columns)}."
            )
        return values.astype(np.float64)

    def _candidates(self, what: str) -> list[str]:
        if what == "state variable":
            return self.state_variable_names
        if what == "reference reward":
            return self.numeric_columns
        return list(self.table)


def _listing(names: Sequence[str], empty: str = "none") -> str:
    return ", ".join(repr(n) for n in names) if names else empty


# ---------------------------------------------------------------------------------------------
# writing


class _NpyFrameWriter:
    """Stream ``uint8 [H, W, 3]`` frames into a ``.npy`` file whose length is known only at the end.

    The header is written first with room for a frame count of up to 12 digits and rewritten in
    place, padded to the same length, when the file is closed (the ``.npy`` format allows any
    space padding before the header's newline), so memory stays bounded by one frame.
    """

    _MAX_COUNT = 10**12 - 1

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = open(path, "wb")
        self.shape: tuple[int, int, int] | None = None
        self.count = 0
        self.header_length = 0

    def _header(self, n: int, total: int | None = None) -> bytes:
        assert self.shape is not None
        body = "{'descr': '|u1', 'fortran_order': False, 'shape': (%d, %d, %d, %d), }" % (n, *self.shape)
        prefix = 6 + 2 + 2  # magic string, version, uint16 header length
        if total is None:  # pad to a multiple of 64 bytes, as NumPy does
            total = -(-(prefix + len(body) + 1) // 64) * 64
        text = body.ljust(total - prefix - 1) + "\n"
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")

    def add(self, frame: np.ndarray) -> None:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
            raise InvalidParameterError(
                f"dataset frames must be uint8 RGB [H, W, 3]; got {frame.dtype} {tuple(frame.shape)}."
            )
        if self.shape is None:
            self.shape = tuple(int(s) for s in frame.shape)  # type: ignore[assignment]
            header = self._header(self._MAX_COUNT)
            self.header_length = len(header)
            self.file.write(header)
        elif frame.shape != self.shape:
            raise InvalidParameterError(
                f"all frames of a dataset must have one size; frame {self.count} is {tuple(frame.shape)}, "
                f"the first was {self.shape}."
            )
        self.file.write(np.ascontiguousarray(frame).tobytes())
        self.count += 1

    def close(self) -> None:
        if self.shape is not None:
            self.file.seek(0)
            self.file.write(self._header(self.count, self.header_length))
        self.file.close()


def _format_value(value: Any, kind: str) -> str:
    if kind == "bool":
        return "1" if bool(value) else "0"
    if kind == "int":
        return str(int(value))
    if kind == "float":
        value = float(value)
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else repr(value))
    return str(value)


def _check_metadata_for_writing(metadata: Mapping[str, Any]) -> dict[str, Any]:
    meta = dict(metadata)
    columns = meta.get("columns")
    if not isinstance(columns, Mapping) or not columns:
        raise InvalidParameterError("metadata['columns'] must map each column name to {'type': ..., 'description': ...}.")
    for name, kind in REQUIRED_COLUMNS.items():
        if name not in columns:
            raise InvalidParameterError(f"metadata['columns'] lacks the required column {name!r} ({kind}).")
    for name, spec in columns.items():
        if not isinstance(spec, Mapping) or spec.get("type") not in COLUMN_TYPES:
            raise InvalidParameterError(f"column {name!r} needs a 'type' in {COLUMN_TYPES}; got {spec!r}.")
    for key in ("env_id",):
        if key not in meta:
            raise InvalidParameterError(f"metadata lacks {key!r}.")
    meta.setdefault("labels", {})
    meta.setdefault("state_variables", {})
    meta.setdefault("env_kwargs", {})
    meta.setdefault("policy", {"kind": "unknown"})
    meta.setdefault("gt_reward", {"definition": "not documented"})
    for name in list(meta["labels"]) + list(meta["state_variables"]):
        if name not in columns:
            raise InvalidParameterError(f"metadata describes {name!r}, which is not in metadata['columns'].")
    return meta


class DatasetWriter:
    """Write a dataset one frame at a time; the directory appears complete or not at all.

    Use as a context manager::

        with DatasetWriter(out, metadata) as writer:
            for frame, row in ...:
                writer.add(frame, row)      # uint8 [H, W, 3], {column: value}

    Files go to a temporary sibling directory that replaces ``path`` when the block ends
    without an exception; ``frame`` values are filled in by the writer. ``metadata`` must
    describe the columns (see the module docstring); ``num_frames``, ``render``, ``format`` and
    ``format_version`` are filled in.

    Args:
        path: the dataset directory to create.
        metadata: the metadata, at least ``env_id`` and ``columns``.
        overwrite: replace an existing dataset at ``path`` (only a directory that holds
            ``metadata.json`` or is empty is replaced).

    Raises:
        InvalidParameterError: ``path`` exists and is not replaceable; a frame of another size or
            dtype; a row missing a column; metadata without column types.
    """

    def __init__(self, path: str | os.PathLike, metadata: Mapping[str, Any], overwrite: bool = False) -> None:
        self.path = Path(path)
        self.metadata = _check_metadata_for_writing(metadata)
        self.columns: dict[str, str] = {k: v["type"] for k, v in self.metadata["columns"].items()}
        _check_writable_target(self.path, overwrite)
        self.overwrite = overwrite
        parent = self.path.resolve().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.partial-", dir=parent))
        except OSError as err:
            raise InvalidParameterError(f"cannot create dataset {str(self.path)!r}: {err.strerror or err}.") from err
        self._frames = _NpyFrameWriter(self.tmp / FRAMES_FILE)
        self._csv_file = open(self.tmp / LABELS_FILE, "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._csv_file)
        self._csv.writerow(list(self.columns))
        self.count = 0

    def add(self, frame: np.ndarray, row: Mapping[str, Any]) -> None:
        """Append one frame (``uint8 [H, W, 3]``) and its table row (``frame`` is set here)."""
        values = dict(row)
        values["frame"] = self.count
        missing = [c for c in self.columns if c not in values]
        if missing:
            raise InvalidParameterError(f"row {self.count} lacks the column(s) {_listing(missing)}.")
        self._frames.add(frame)
        self._csv.writerow([_format_value(values[c], kind) for c, kind in self.columns.items()])
        self.count += 1

    def close(self) -> Path:
        """Finish the files, write ``metadata.json`` and move the dataset into place; returns ``path``."""
        self._frames.close()
        self._csv_file.close()
        if self.count == 0:
            self.abort()
            raise InvalidParameterError("no frames were collected, so no dataset was written; ask for at least one frame.")
        h, w, _ = self._frames.shape  # type: ignore[misc]
        meta = dict(self.metadata)
        render = dict(meta.get("render") or {})
        render.update(height=int(h), width=int(w))
        render.setdefault("render_mode", "rgb_array")
        from vlmreward import __version__

        meta.update(
            format=FORMAT,
            format_version=FORMAT_VERSION,
            num_frames=self.count,
            render=render,
        )
        meta.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
        meta.setdefault("vlmreward_version", __version__)
        ordered = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}
        (self.tmp / METADATA_FILE).write_text(json.dumps(json_safe(ordered), indent=2) + "\n", encoding="utf-8")
        if self.path.exists():
            _check_writable_target(self.path, self.overwrite)
            shutil.rmtree(self.path)
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop everything written so far."""
        for closable in (self._frames.file, self._csv_file):
            try:
                closable.close()
            except Exception:  # noqa: BLE001 - best effort cleanup
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _check_writable_target(path: Path, overwrite: bool) -> None:
    if not path.exists():
        return
    if not path.is_dir():
        raise InvalidParameterError(f"{str(path)!r} exists and is a file; choose another --out for the dataset.")
    if not any(path.iterdir()):
        return
    if not overwrite:
        raise InvalidParameterError(
            f"{str(path)!r} already exists and is not empty; choose another --out or pass --overwrite to replace it."
        )
    if not (path / METADATA_FILE).is_file():
        raise InvalidParameterError(
            f"{str(path)!r} is not a vlmreward dataset (no {METADATA_FILE}), so --overwrite will not delete it; "
            "choose another --out."
        )


def save_dataset(
    path: str | os.PathLike,
    frames: np.ndarray | Iterable[np.ndarray],
    table: Mapping[str, Sequence[Any] | np.ndarray],
    metadata: Mapping[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write a dataset directory from frames, columns and metadata.

    Args:
        path: the directory to create.
        frames: ``uint8 [N, H, W, 3]`` (or an iterable of ``[H, W, 3]`` frames).
        table: ``{column: [N] values}`` for every column of ``metadata["columns"]`` except
            ``frame`` (filled in).
        metadata: see the module docstring; at least ``env_id`` and ``columns``.
        overwrite: replace an existing dataset.

    Returns:
        ``path``.

    Raises:
        InvalidParameterError: columns of another length than the frames, a missing column,
            frames that are not uint8 RGB of one size, an existing non-empty ``path``.
    """
    columns = {k: list(v) if not isinstance(v, np.ndarray) else v for k, v in table.items()}
    writer = DatasetWriter(path, metadata, overwrite=overwrite)
    try:
        n = 0
        for i, frame in enumerate(frames):
            row = {}
            for name, values in columns.items():
                if i >= len(values):
                    raise InvalidParameterError(f"column {name!r} has {len(values)} values but there are more frames.")
                row[name] = values[i]
            writer.add(frame, row)
            n += 1
        for name, values in columns.items():
            if len(values) != n:
                raise InvalidParameterError(f"column {name!r} has {len(values)} values for {n} frames.")
    except BaseException:
        writer.abort()
        raise
    return writer.close()


# ---------------------------------------------------------------------------------------------
# reading


def load_dataset(path: str | os.PathLike) -> Dataset:
    """Read and validate a dataset directory.

    Args:
        path: a directory written by ``vlmreward collect`` / :func:`save_dataset`.

    Returns:
        A :class:`Dataset` with memory-mapped frames.

    Raises:
        DatasetError: the directory or one of its files is missing; ``metadata.json`` is not
            valid JSON or lacks a key; the format version is not :data:`FORMAT_VERSION`;
            ``frames.npy`` is corrupt, truncated or not ``uint8 [N, H, W, 3]``; ``labels.csv``
            is malformed (header, a value of the wrong type, a missing column); the frame
            counts of the three files disagree; the frames are not of the recorded render size.
    """
    root = Path(path)
    if not root.exists():
        raise DatasetError(f"dataset {str(root)!r} does not exist; create one with `vlmreward collect ENV_ID --out {root}`.")
    if not root.is_dir():
        raise DatasetError(
            f"{str(root)!r} is a file, not a dataset; a dataset is a directory written by `vlmreward collect` "
            f"({FRAMES_FILE}, {LABELS_FILE}, {METADATA_FILE})."
        )
    metadata = _read_metadata(root)
    frames = _read_frames(root)
    columns: dict[str, str] = {name: spec["type"] for name, spec in metadata["columns"].items()}
    table = _read_table(root, columns)
    n_frames, n_rows, n_meta = frames.shape[0], len(table["frame"]), int(metadata["num_frames"])
    if n_frames != n_rows:
        raise DatasetError(
            f"dataset {str(root)!r} is inconsistent: {FRAMES_FILE} holds {n_frames} frames but {LABELS_FILE} has "
            f"{n_rows} rows; collect it again (or restore the missing rows/frames)."
        )
    if n_meta != n_frames:
        raise DatasetError(
            f"dataset {str(root)!r} is inconsistent: {METADATA_FILE} says num_frames={n_meta} but {FRAMES_FILE} "
            f"holds {n_frames} frames; collect it again."
        )
    if not np.array_equal(table["frame"], np.arange(n_rows)):
        bad = int(np.argmax(table["frame"] != np.arange(n_rows)))
        raise DatasetError(
            f"{LABELS_FILE} of {str(root)!r} is out of order: row {bad} has frame {int(table['frame'][bad])}; the "
            "column 'frame' must count 0, 1, 2, … in row order."
        )
    render = metadata["render"]
    if isinstance(render, Mapping) and "height" in render and "width" in render:
        expected = (int(render["height"]), int(render["width"]))
        if tuple(frames.shape[1:3]) != expected:
            raise DatasetError(
                f"dataset {str(root)!r} is inconsistent: {METADATA_FILE} records a {expected[1]}x{expected[0]} "
                f"render size but the frames are {frames.shape[2]}x{frames.shape[1]}; collect it again."
            )
    return Dataset(path=root, frames=frames, table=table, metadata=metadata)


def _need(path: Path, name: str) -> Path:
    file = path / name
    if not file.is_file():
        raise DatasetError(
            f"dataset {str(path)!r} lacks {name}; a dataset written by `vlmreward collect` has {FRAMES_FILE}, "
            f"{LABELS_FILE} and {METADATA_FILE} (an interrupted copy or collect leaves it incomplete)."
        )
    return file


def _read_metadata(root: Path) -> dict[str, Any]:
    file = _need(root, METADATA_FILE)
    try:
        metadata = json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise DatasetError(f"{METADATA_FILE} of {str(root)!r} is corrupt: it is not UTF-8 text.") from err
    except json.JSONDecodeError as err:
        raise DatasetError(
            f"{METADATA_FILE} of {str(root)!r} is corrupt: invalid JSON at line {err.lineno}, column {err.colno} "
            f"({err.msg})."
        ) from err
    except OSError as err:
        raise DatasetError(f"cannot read {file}: {err.strerror or err}.") from err
    if not isinstance(metadata, dict):
        raise DatasetError(f"{METADATA_FILE} of {str(root)!r} is corrupt: it holds a JSON {type(metadata).__name__}, not an object.")
    if metadata.get("format") != FORMAT:
        raise DatasetError(
            f"{str(root)!r} is not a vlmreward dataset: {METADATA_FILE} has format {metadata.get('format')!r}, "
            f"expected {FORMAT!r}."
        )
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise DatasetError(
                f"dataset {str(root)!r} has format version {version}, newer than the {FORMAT_VERSION} this vlmreward "
                "reads; upgrade vlmreward."
            )
        raise DatasetError(
            f"dataset {str(root)!r} has format version {version!r}, which this vlmreward cannot read (it reads "
            f"version {FORMAT_VERSION}); collect the dataset again."
        )
    missing = [k for k in _REQUIRED_METADATA if k not in metadata]
    if missing:
        raise DatasetError(f"{METADATA_FILE} of {str(root)!r} lacks {_listing(missing)}; collect the dataset again.")
    columns = metadata["columns"]
    if not isinstance(columns, dict) or not all(
        isinstance(spec, dict) and spec.get("type") in COLUMN_TYPES for spec in columns.values()
    ):
        raise DatasetError(
            f"{METADATA_FILE} of {str(root)!r} has malformed 'columns': each must be "
            f"{{'type': one of {', '.join(COLUMN_TYPES)}, 'description': ...}}."
        )
    for name, kind in REQUIRED_COLUMNS.items():
        if columns.get(name, {}).get("type") != kind:
            raise DatasetError(f"{METADATA_FILE} of {str(root)!r} must declare the column {name!r} of type {kind}.")
    for key in ("labels", "state_variables"):
        if not isinstance(metadata[key], dict):
            raise DatasetError(f"{METADATA_FILE} of {str(root)!r}: {key!r} must be an object.")
        undeclared = [name for name in metadata[key] if name not in columns]
        if undeclared:
            raise DatasetError(
                f"{METADATA_FILE} of {str(root)!r} describes {key} {_listing(undeclared)} that are not columns."
            )
    for name in metadata["labels"]:
        if columns[name]["type"] not in ("bool", "int"):
            raise DatasetError(f"{METADATA_FILE} of {str(root)!r}: label {name!r} must be a bool column.")
    return metadata


def _read_frames(root: Path) -> np.ndarray:
    file = _need(root, FRAMES_FILE)
    try:
        with open(file, "rb") as f:
            magic = f.read(6)
        if magic != b"\x93NUMPY":
            raise DatasetError(
                f"{FRAMES_FILE} of {str(root)!r} is corrupt: it is not a NumPy .npy file; collect the dataset again."
            )
        frames = np.load(file, mmap_mode="r", allow_pickle=False)
    except DatasetError:
        raise
    except (ValueError, OSError, EOFError) as err:
        reason = " ".join(str(err).split()).rstrip(".") or type(err).__name__
        raise DatasetError(
            f"{FRAMES_FILE} of {str(root)!r} is corrupt or truncated ({reason}); collect the dataset again."
        ) from err
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise DatasetError(
            f"{FRAMES_FILE} of {str(root)!r} holds {getattr(frames, 'dtype', '?')} {tuple(getattr(frames, 'shape', ()))}; "
            "a dataset's frames are uint8 RGB [N, H, W, 3]."
        )
    if frames.shape[0] == 0 or 0 in frames.shape:
        raise DatasetError(f"{FRAMES_FILE} of {str(root)!r} holds no frames (shape {tuple(frames.shape)}).")
    return frames


def _parse(kind: str, text: str) -> Any:
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "bool":
        lowered = text.strip().lower()
        if lowered in ("1", "true"):
            return True
        if lowered in ("0", "false"):
            return False
        raise ValueError(text)
    return text


_DTYPES = {"int": np.int64, "float": np.float64, "bool": bool, "str": object}


def _read_table(root: Path, columns: dict[str, str]) -> dict[str, np.ndarray]:
    file = _need(root, LABELS_FILE)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DatasetError(f"{LABELS_FILE} of {str(root)!r} is corrupt: it is not UTF-8 text.") from err
    except OSError as err:
        raise DatasetError(f"cannot read {file}: {err.strerror or err}.") from err
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise DatasetError(f"{LABELS_FILE} of {str(root)!r} is empty; it needs a header row and one row per frame.") from None
    except csv.Error as err:
        raise DatasetError(f"{LABELS_FILE} of {str(root)!r} is corrupt: {err}.") from err
    missing = [c for c in columns if c not in header]
    if missing:
        raise DatasetError(
            f"{LABELS_FILE} of {str(root)!r} lacks the column(s) {_listing(missing)} that {METADATA_FILE} declares; "
            "collect the dataset again."
        )
    index = {name: header.index(name) for name in columns}
    values: dict[str, list[Any]] = {name: [] for name in columns}
    try:
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise DatasetError(
                    f"{LABELS_FILE} of {str(root)!r} is corrupt: line {line} has {len(row)} fields, the header {len(header)}."
                )
            for name, kind in columns.items():
                cell = row[index[name]]
                try:
                    values[name].append(_parse(kind, cell))
                except ValueError:
                    raise DatasetError(
                        f"{LABELS_FILE} of {str(root)!r} is corrupt: line {line}, column {name!r} holds {cell!r}, "
                        f"not a {kind}."
                    ) from None
    except csv.Error as err:
        raise DatasetError(f"{LABELS_FILE} of {str(root)!r} is corrupt: {err}.") from err
    return {name: np.asarray(v, dtype=_DTYPES[columns[name]]) for name, v in values.items()}
