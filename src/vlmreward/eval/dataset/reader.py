"""Reading and validating a dataset directory (:mod:`vlmreward.eval.dataset`)."""


from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np


from vlmreward.eval.dataset.format import (
    COLUMN_TYPES, FORMAT, FORMAT_VERSION, FRAMES_FILE, LABELS_FILE, METADATA_FILE, REQUIRED_COLUMNS, REQUIRED_METADATA,
    Dataset, DatasetError, listing,
)

__all__ = ["load_dataset"]


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
    missing = [k for k in REQUIRED_METADATA if k not in metadata]
    if missing:
        raise DatasetError(f"{METADATA_FILE} of {str(root)!r} lacks {listing(missing)}; collect the dataset again.")
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
                f"{METADATA_FILE} of {str(root)!r} describes {key} {listing(undeclared)} that are not columns."
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
            f"{LABELS_FILE} of {str(root)!r} lacks the column(s) {listing(missing)} that {METADATA_FILE} declares; "
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
