"""Where vlmreward keeps files it downloads or derives (ONNX exports, reference textures)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

__all__ = ["cache_root", "atomic_write_bytes", "atomic_write_text", "write_output_text", "refuse_to_overwrite", "files_sha256"]


def refuse_to_overwrite(
    directory: str | os.PathLike, names: Iterable[str], overwrite: bool, alternative: str = "choose another --out"
) -> None:
    """Refuse to replace the results of an earlier run: no output is ever overwritten silently.

    Args:
        directory: the output directory a command is about to write into.
        names: the files it writes there.
        overwrite: the user asked to replace them (``--overwrite``).
        alternative: what else the user can do, for the message.

    Raises:
        InvalidParameterError: some of ``names`` exist in ``directory`` and ``overwrite`` is False.
    """
    from vlmreward.errors import InvalidParameterError

    found = [name for name in names if (Path(directory) / name).exists()]
    if found and not overwrite:
        raise InvalidParameterError(
            f"{str(directory)!r} already holds {', '.join(found)} from an earlier run; pass --overwrite to replace "
            f"them, or {alternative}."
        )


def cache_root() -> Path:
    """``$VLMREWARD_CACHE_DIR``, else ``$XDG_CACHE_HOME/vlmreward`` (``~/.cache/vlmreward``)."""
    root = os.environ.get("VLMREWARD_CACHE_DIR")
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "vlmreward"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename it into
    place: readers (other processes too) see the old file or the whole new one, never a part.
    Creates the folder; a failed write leaves no temporary file behind."""
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_output_text(path: str | os.PathLike, text: str) -> None:
    """Write a command's output file atomically; a failure is one line a user can act on.

    Raises:
        InvalidParameterError: the file cannot be written (the message says to choose another ``--out``).
    """
    from vlmreward.errors import InvalidParameterError

    try:
        atomic_write_text(path, text)
    except OSError as err:
        raise InvalidParameterError(f"cannot write {str(path)!r}: {err.strerror or err}; choose another --out.") from err


def files_sha256(files: Iterable[tuple[str, Path]]) -> str:
    """SHA-256 over ``(name, path)`` pairs in the order given: each name, a NUL byte, then the
    file's bytes (read in 1 MiB blocks). Model weights' fingerprints (:mod:`vlmreward.rl.run_dir`)
    and relabelled datasets' source checksums (:mod:`vlmreward.relabel.core`) use it."""
    import hashlib

    digest = hashlib.sha256()
    for name, path in files:
        digest.update(name.encode() + b"\0")
        _hash_into(digest, path)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of one file's bytes (read in 1 MiB blocks): checkpoint manifests (:mod:`vlmreward.rl.manifest`)."""
    import hashlib

    return _hash_into(hashlib.sha256(), path).hexdigest()


def _hash_into(digest: Any, path: str | os.PathLike) -> Any:
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest
