"""Checkpoint integrity: a manifest of sizes and SHA-256 written last, checked before anything is
loaded, and the clean-up of what a process killed mid-write leaves behind."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from vlmreward._paths import atomic_write_text, file_sha256

__all__ = ["MANIFEST_FILE", "write_manifest", "verify_files", "clean_interrupted_writes"]

MANIFEST_FILE = "manifest.json"


def write_manifest(directory: Path, meta: dict[str, Any]) -> None:
    """``manifest.json``: ``meta`` and the size and SHA-256 of every other file, written last."""
    files = {p.name: {"size": p.stat().st_size, "sha256": file_sha256(p)}
             for p in sorted(directory.iterdir()) if p.is_file() and p.name != MANIFEST_FILE}
    atomic_write_text(directory / MANIFEST_FILE, json.dumps({**meta, "files": files}, indent=2) + "\n")


def verify_files(directory: str | os.PathLike, required: tuple[str, ...] = ()) -> str | None:
    """What is wrong with ``directory`` against its ``manifest.json``, or None when every listed
    file has the size and SHA-256 written and ``required`` files are listed."""
    path = Path(directory)
    manifest = path / MANIFEST_FILE
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        listed = {str(name): (int(entry["size"]), str(entry["sha256"])) for name, entry in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        return f"{MANIFEST_FILE} cannot be read ({type(err).__name__})"
    for name in required:
        if name not in listed:
            return f"{MANIFEST_FILE} lists no {name}"
    for name, (size, digest) in listed.items():
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != size:
            return f"{name} has {file.stat().st_size} bytes, not the {size} written"
        if file_sha256(file) != digest:
            return f"{name} does not have the SHA-256 written (its bytes changed)"
    return None


def clean_interrupted_writes(run_dir: str | os.PathLike) -> list[Path]:
    """Remove what a process killed mid-write left: ``checkpoints/.tmp-*`` directories and the
    temporary files of atomic writes (``.NAME.*.tmp``, ``.final_model.tmp.zip``) in the run
    directory and its ``checkpoints``/``logs``; returns what was removed."""
    run_dir = Path(run_dir)
    removed = []
    for folder in (run_dir, run_dir / "checkpoints", run_dir / "logs"):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.name.startswith(".tmp-") or (p.name.startswith(".") and (p.name.endswith(".tmp") or p.name.endswith(".tmp.zip"))):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
                removed.append(p)
    return removed
