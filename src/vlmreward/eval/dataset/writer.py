"""Writing a dataset (:mod:`vlmreward.eval.dataset`): frames streamed into ``frames.npy``, rows into
``labels.csv``, then ``metadata.json``, into a temporary folder renamed into place at the end."""


from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import os
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from vlmreward._json import json_safe
from vlmreward.errors import InvalidParameterError

from vlmreward.eval.dataset.format import (
    COLUMN_TYPES, FORMAT, FORMAT_VERSION, FRAMES_FILE, LABELS_FILE, METADATA_FILE, REQUIRED_COLUMNS, listing,
)

__all__ = ["DatasetWriter", "save_dataset"]


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
            raise InvalidParameterError(f"row {self.count} lacks the column(s) {listing(missing)}.")
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
