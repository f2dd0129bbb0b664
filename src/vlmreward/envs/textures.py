"""The texture pictures of the VLM-RM environments: the reference's own, or ours.

``textures="reference"`` uses the five images of the VLM-RM reference code, downloaded on first
use from its repository at the commit the paper's results come from
(:data:`REFERENCE_COMMIT`), checked against their SHA-256 (:data:`REFERENCE_TEXTURES`) and
cached in ``$VLMREWARD_CACHE_DIR/vlmrm-textures/<commit>/`` (default
``~/.cache/vlmreward/...``), like model weights. ``textures_dir=PATH`` takes a local copy of
them instead (the same file names, the same checksums). ``textures="ours"`` (the default) uses
the look-alikes drawn by :mod:`vlmreward.envs.procedural`: no download, no licence question.

The images are the reference's (MIT licence, AlignmentResearch/vlmrm); vlmreward does not ship
them.
"""

from __future__ import annotations

import hashlib
import io
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Literal, get_args

from vlmreward._paths import atomic_write_bytes, cache_root
from vlmreward.errors import InvalidParameterError, VLMRewardError

__all__ = [
    "TextureSource",
    "TEXTURE_SOURCES",
    "REFERENCE_COMMIT",
    "REFERENCE_TEXTURES",
    "TexturesNotAvailableError",
    "texture_files",
    "reference_texture_files",
    "our_texture_files",
]

TextureSource = Literal["ours", "reference"]
TEXTURE_SOURCES: tuple[str, ...] = get_args(TextureSource)

REFERENCE_COMMIT = "811d8207abf5f67d1e0514a7acf01ee9b9e62702"
"""Commit of github.com/AlignmentResearch/vlmrm whose images are used."""
REFERENCE_BASE_URL = f"https://raw.githubusercontent.com/AlignmentResearch/vlmrm/{REFERENCE_COMMIT}/"
"""Where the images are downloaded from (a file's URL is this plus its path in the repository)."""
DOWNLOAD_TIMEOUT_S = 10.0

REFERENCE_TEXTURES: dict[str, tuple[str, str]] = {
    "sky.png": ("src/vlmrm/envs/mujoco/sky.png", "f31d70b2ad3c0b21a284f56038e35cf60c0214f8da1c28c369aaad371a7dd402"),
    "tiles.png": ("src/vlmrm/envs/mujoco/tiles.png", "b88f028edd3a931f75bdbd54c1fa9b8d7bfb4f2eade3f56c1fe1daa305180984"),
    "robot.png": ("src/vlmrm/envs/mujoco/robot.png", "7b603885b8f962b7908ecfd8abe36a5a727354e4ad007e510cf1555abd7acab1"),
    "mountain_car_background.png": (
        "src/vlmrm/envs/classic_control/mountain_car_background.png",
        "ac60e3ef1ba491a100456f7168ba68734092a42ee6baf8a9580dbd413d1532d1",
    ),
    "mountain_car.png": (
        "src/vlmrm/envs/classic_control/mountain_car.png",
        "73d8a8760ec1b03e383d77d298c47bc0d9f667a8e9c8d6eae49ca93340d9a543",
    ),
}
"""File name → (path in the reference repository, SHA-256 of its bytes)."""

_OURS_VERSION = "1"
"""Bumped whenever a drawing of :mod:`vlmreward.envs.procedural` changes (a new cache folder)."""


class TexturesNotAvailableError(VLMRewardError, OSError):
    """The reference textures are neither cached nor downloadable, or a local copy is wrong."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def reference_texture_files(names: tuple[str, ...] | None = None, textures_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """Paths of the reference's images, verified by SHA-256.

    Args:
        names: which images (default all of :data:`REFERENCE_TEXTURES`).
        textures_dir: a folder holding them under their file names; None: the cache, filled by
            downloading from :data:`REFERENCE_BASE_URL` what it lacks.

    Returns:
        file name → path of a file whose bytes have the listed SHA-256.

    Raises:
        TexturesNotAvailableError: a file missing from ``textures_dir`` or with another checksum;
            a download that fails (offline) or brings other bytes. The message names both ways
            out (a local copy, or ``textures="ours"``).
    """
    names = tuple(REFERENCE_TEXTURES) if names is None else names
    unknown = sorted(set(names) - set(REFERENCE_TEXTURES))
    if unknown:
        raise InvalidParameterError(f"no reference texture named {unknown}; the reference's are {sorted(REFERENCE_TEXTURES)}.")
    if textures_dir is not None:
        folder = Path(textures_dir).expanduser()
        out = {}
        for name in names:
            path = folder / name
            if not path.is_file():
                raise TexturesNotAvailableError(
                    f"textures_dir {os.fspath(folder)!r} has no {name!r}; it needs the VLM-RM reference images "
                    f"{', '.join(names)} (from github.com/AlignmentResearch/vlmrm at {REFERENCE_COMMIT[:7]})."
                )
            digest = _sha256(path.read_bytes())
            if digest != REFERENCE_TEXTURES[name][1]:
                raise TexturesNotAvailableError(
                    f"{os.fspath(path)!r} is not the reference's {name} (SHA-256 {digest[:12]}…, expected "
                    f"{REFERENCE_TEXTURES[name][1][:12]}…); copy it again from the reference repository at {REFERENCE_COMMIT[:7]}."
                )
            out[name] = path
        return out
    folder = cache_root() / "vlmrm-textures" / REFERENCE_COMMIT[:12]
    out = {}
    for name in names:
        path = folder / name
        if not (path.is_file() and _sha256(path.read_bytes()) == REFERENCE_TEXTURES[name][1]):
            atomic_write_bytes(path, _download(name))
        out[name] = path
    return out


def _download(name: str) -> bytes:
    repo_path, expected = REFERENCE_TEXTURES[name]
    url = REFERENCE_BASE_URL + repo_path
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:  # noqa: S310 (fixed https URL)
            data = response.read()
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise TexturesNotAvailableError(
            f"the VLM-RM reference texture {name!r} is not cached and could not be downloaded from {url} ({reason}); "
            "pass textures_dir=PATH to a local copy of the reference images (env.kwargs.textures_dir in a config), "
            "or textures='ours' for vlmreward's own look-alike textures."
        ) from None
    digest = _sha256(data)
    if digest != expected:
        raise TexturesNotAvailableError(
            f"the download of {name!r} from {url} has SHA-256 {digest[:12]}…, not the reference's {expected[:12]}…; "
            "nothing was cached. Pass textures_dir=PATH to a verified copy, or textures='ours'."
        )
    return data


def our_texture_files(names: tuple[str, ...] | None = None) -> dict[str, Path]:
    """Paths of our drawn stand-ins (:data:`vlmreward.envs.procedural.OUR_TEXTURES`) as PNG files,
    drawn once into ``$VLMREWARD_CACHE_DIR/vlmrm-textures/ours-<version>/``."""
    from PIL import Image

    from vlmreward.envs.procedural import OUR_TEXTURES

    names = tuple(OUR_TEXTURES) if names is None else names
    folder = cache_root() / "vlmrm-textures" / f"ours-{_OURS_VERSION}"
    out = {}
    for name in names:
        path = folder / name
        if not path.is_file():
            buffer = io.BytesIO()
            Image.fromarray(OUR_TEXTURES[name]()).save(buffer, format="PNG")
            atomic_write_bytes(path, buffer.getvalue())
        out[name] = path
    return out


def texture_files(
    textures: str, names: tuple[str, ...], textures_dir: str | os.PathLike | None = None
) -> dict[str, Path]:
    """File name → path of the pictures an environment draws with.

    Args:
        textures: ``"ours"`` (drawn by vlmreward) or ``"reference"`` (the VLM-RM code's images).
        names: the file names the environment needs (e.g. ``("sky.png", "tiles.png", "robot.png")``).
        textures_dir: with ``"reference"``, a local copy instead of the download cache.

    Raises:
        InvalidParameterError: an unknown ``textures`` value, or ``textures_dir`` with ``"ours"``.
        TexturesNotAvailableError: see :func:`reference_texture_files`.
    """
    if textures not in TEXTURE_SOURCES:
        raise InvalidParameterError(f"textures={textures!r}: use one of {', '.join(map(repr, TEXTURE_SOURCES))}.")
    if textures == "ours":
        if textures_dir is not None:
            raise InvalidParameterError("textures_dir= is a copy of the reference images; use it with textures='reference'.")
        return our_texture_files(names)
    return reference_texture_files(names, textures_dir)
