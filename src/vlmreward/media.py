"""Reading frames from files, one at a time: images, folders of images, videos and arrays.

:func:`iter_frames` streams ``(source, frame)`` pairs, each frame ``uint8 [H, W, 3]`` RGB, from

* one image file (``.png``, ``.jpg``, ...; see :data:`IMAGE_EXTENSIONS`), read with Pillow;
  grayscale, palette, RGBA and 16-bit images become RGB (alpha is dropped), the EXIF
  orientation is applied, and an animated image gives its first frame only;
* a folder of image files, sorted by file name (plain string order, so number frames with
  leading zeros: ``0001.png``); other files, sub-folders and hidden files are ignored;
* a video (:data:`VIDEO_EXTENSIONS`): ``.gif`` through imageio's Pillow plugin, the others
  through imageio's ffmpeg plugin (``imageio-ffmpeg``), decoded one frame at a time;
* a NumPy array of frames, ``uint8 [N, H, W, 3]`` (or one ``[H, W, 3]``): ``.npy`` memory-mapped,
  ``.npz`` (the array ``"frames"``, else the only one) decompressed one frame at a time.

Memory stays bounded by one frame (plus whatever the caller keeps), however long the input.
:func:`iter_batches` groups the frames into batches of one frame size each, as
:meth:`vlmreward.VisionLanguageModel.encode_images` needs.

Every problem with the input is an :class:`~vlmreward.errors.InputFileError` whose message is
one sentence naming the file.

Why one module: one concept, frames in: the readers of every input kind (images, folders, videos,
.npy/.npz) with their shared validation and one-line errors.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import IO, Iterable, Iterator

import numpy as np

from vlmreward.errors import InputFileError, InvalidParameterError

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "ARRAY_EXTENSIONS",
    "SUPPORTED_EXTENSIONS",
    "iter_frames",
    "count_frames",
    "iter_batches",
    "check_input",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
"""Single-image formats (lower case; matching ignores case)."""

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mov", ".webm", ".mkv", ".gif")
"""Video formats: ``.gif`` through Pillow, the others through ffmpeg."""

ARRAY_EXTENSIONS: tuple[str, ...] = (".npy", ".npz")
"""NumPy arrays of uint8 frames."""

SUPPORTED_EXTENSIONS: tuple[str, ...] = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS + ARRAY_EXTENSIONS

NPZ_FRAMES_KEY = "frames"
"""The array of an ``.npz`` file that holds the frames when the file holds several."""


# ---------------------------------------------------------------------------------------------
# public API


def check_input(path: str | os.PathLike) -> Path:
    """Check that ``path`` exists and is of a supported kind, without reading any frame.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        InputFileError: the path does not exist, or is a file with an unsupported extension.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"input {str(path)!r} does not exist.")
    if not path.is_dir() and path.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise InputFileError(
            f"cannot read {path.name!r}: unsupported file type {path.suffix or '(no extension)'!r}; "
            f"use a folder of images or a file ending in {', '.join(SUPPORTED_EXTENSIONS)}."
        )
    return path


def iter_frames(path: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Stream the frames of an image, a folder of images, a video or an array file.

    The path, its extension, an array's dtype and shape and a folder's image list are checked
    at once, when this function is called; decoding errors surface while iterating.

    Args:
        path: an image file, a folder of images, a video, or a ``.npy`` / ``.npz`` array.

    Yields:
        ``(source, frame)``: ``source`` a label for the frame (the image's file name, or
        ``"NAME#i"`` with ``i`` the 0-based frame index within a video or array file), and
        ``frame`` a ``uint8 [H, W, 3]`` RGB array. Frames of a folder may differ in size.
        Frames of a ``.npy`` file are read-only views of the memory-mapped file.

    Raises:
        InputFileError: a missing path, an unsupported extension, an unreadable or corrupt
            file, a folder without images, an array that is not ``uint8 [N, H, W, 3]`` or
            ``[H, W, 3]``, or an input with zero frames.
    """
    path = check_input(path)
    if path.is_dir():
        return _iter_folder(path, _list_images(path))
    ext = path.suffix.lower()
    if ext == ".npy":
        return _iter_array_rows(path, _open_npy(path))
    if ext == ".npz":
        return _iter_npz(path)
    if ext in IMAGE_EXTENSIONS:
        return _iter_single_image(path)
    return _iter_video(path)


def count_frames(path: str | os.PathLike) -> int | None:
    """The number of frames :func:`iter_frames` will yield, where that is cheap to know.

    Exact for images, folders, arrays and GIFs (no pixel is decoded, except GIF frame headers);
    for the other videos the container's estimate, ``round(duration × fps)``, which can be off
    by a frame or two. Meant for progress bars.

    Returns:
        The count, or None when it is unknown or the input cannot be read. Never raises on a bad
        input (:func:`iter_frames` reports what is wrong); a corrupt image file still counts 1.
    """
    try:
        path = check_input(path)
        if path.is_dir():
            return len(_list_images(path))
        ext = path.suffix.lower()
        if ext == ".npy":
            return _frame_count(_open_npy(path).shape)
        if ext == ".npz":
            with zipfile.ZipFile(path) as archive:
                member = _npz_member(path, archive)
                with archive.open(member) as stream:
                    shape, _, _ = _read_npy_header(stream)
            return _frame_count(shape)
        if ext in IMAGE_EXTENSIONS:
            return 1
        if ext == ".gif":
            from PIL import Image

            with Image.open(path) as image:
                return int(getattr(image, "n_frames", 1))
        import imageio.v3 as iio

        with iio.imopen(path, "r", plugin="FFMPEG") as reader:
            meta = reader.metadata()
        fps, duration = float(meta.get("fps") or 0), float(meta.get("duration") or 0)
        return round(fps * duration) if fps > 0 and duration > 0 else None
    except Exception:  # a count is a nicety; iter_frames reports what is wrong
        return None


def iter_batches(
    frames: Iterable[tuple[str, np.ndarray]], batch_size: int
) -> Iterator[tuple[list[str], np.ndarray]]:
    """Group ``(source, frame)`` pairs into batches of at most ``batch_size`` equally sized frames.

    A new batch starts whenever the frame size changes, so every batch can go to
    ``model.encode_images`` as one array.

    Args:
        frames: ``(source, uint8 [H, W, 3])`` pairs, as from :func:`iter_frames`.
        batch_size: the most frames per batch, at least 1.

    Yields:
        ``(sources, batch)``: ``B`` labels and a new ``uint8 [B, H, W, 3]`` array, ``1 ≤ B ≤ batch_size``.

    Raises:
        InvalidParameterError: ``batch_size < 1``.
    """
    if batch_size < 1:
        raise InvalidParameterError(f"batch_size must be at least 1; got {batch_size}.")
    sources: list[str] = []
    pending: list[np.ndarray] = []
    for source, frame in frames:
        if pending and (len(pending) == batch_size or frame.shape != pending[0].shape):
            yield sources, np.stack(pending)
            sources, pending = [], []
        sources.append(source)
        pending.append(frame)
    if pending:
        yield sources, np.stack(pending)


# ---------------------------------------------------------------------------------------------
# images


def _is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".") and path.is_file()


def _list_images(folder: Path) -> list[Path]:
    try:
        images = sorted((p for p in folder.iterdir() if _is_image_file(p)), key=lambda p: p.name)
    except OSError as err:
        raise InputFileError(f"cannot list folder {str(folder)!r}: {err.strerror or err}.") from err
    if not images:
        raise InputFileError(
            f"folder {str(folder)!r} holds no image files; put frames in it as {', '.join(IMAGE_EXTENSIONS)} files."
        )
    return images


def _read_image(path: Path) -> np.ndarray:
    """One image file as ``uint8 [H, W, 3]`` RGB (first frame of an animated image)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            if image.mode == "I" or image.mode.startswith("I;16"):  # 16/32-bit grayscale
                gray = np.asarray(image).astype(np.int64)
                if image.mode != "I" or gray.max(initial=0) > 255:  # 16-bit range: keep the top 8 bits
                    gray = gray >> 8
                gray = gray.clip(0, 255).astype(np.uint8)
                return np.repeat(gray[..., None], 3, axis=-1)
            if image.mode == "P":  # via RGBA, so a transparent palette entry converts quietly
                image = image.convert("RGBA")
            if image.mode != "RGB":
                image = image.convert("RGB")  # L, LA, RGBA (alpha dropped), CMYK, ...
            frame = np.asarray(image, dtype=np.uint8)
    except UnidentifiedImageError as err:
        raise InputFileError(
            f"cannot read image {str(path)!r}: it is not a valid image file (corrupt, empty, or another format)."
        ) from err
    except Exception as err:  # Pillow raises OSError, ValueError, SyntaxError, ... on bad files
        raise InputFileError(f"cannot read image {str(path)!r}: {_reason(err)}.") from err
    if frame.ndim != 3 or frame.shape[-1] != 3 or 0 in frame.shape:
        raise InputFileError(f"cannot read image {str(path)!r}: it decodes to shape {frame.shape}, not [H, W, 3].")
    return frame


def _iter_single_image(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    yield path.name, _read_image(path)


def _iter_folder(folder: Path, images: list[Path]) -> Iterator[tuple[str, np.ndarray]]:
    for image in images:
        yield image.name, _read_image(image)


# ---------------------------------------------------------------------------------------------
# videos


def _iter_video(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    count = 0
    try:
        for frame in _iter_gif(path) if path.suffix.lower() == ".gif" else _iter_ffmpeg(path):
            yield f"{path.name}#{count}", frame
            count += 1
    except InputFileError:
        raise
    except Exception as err:  # Pillow, imageio and ffmpeg raise OSError, RuntimeError, ValueError, ...
        where = f" at frame {count}" if count else ""
        raise InputFileError(f"cannot read video {str(path)!r}{where}: {_video_reason(err)}.") from err
    if count == 0:
        raise InputFileError(f"video {str(path)!r} holds zero frames.")
    declared = None if path.suffix.lower() == ".gif" else count_frames(path)
    if declared is not None and count < declared - max(2, 0.02 * declared):  # the estimate can be off by a frame or two
        raise InputFileError(
            f"video {str(path)!r} ends after {count} frames, but its container declares about {declared} "
            "(duration × fps): the file is truncated or damaged; copy or re-encode it again."
        )


def _iter_gif(path: Path) -> Iterator[np.ndarray]:
    """GIF frames through Pillow, composited to full frames (Pillow applies the disposal methods)."""
    from PIL import Image, ImageSequence

    with Image.open(path) as image:
        for frame in ImageSequence.Iterator(image):
            yield np.asarray(frame.convert("RGBA" if frame.mode == "P" else frame.mode).convert("RGB"), dtype=np.uint8)


def _iter_ffmpeg(path: Path) -> Iterator[np.ndarray]:
    """Video frames through imageio's ffmpeg plugin (a pipe from an ffmpeg subprocess), as RGB24."""
    import imageio.v3 as iio

    for frame in iio.imiter(path, plugin="FFMPEG"):
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
            raise InputFileError(
                f"cannot read video {str(path)!r}: a frame decodes to {frame.dtype} {frame.shape}, not uint8 [H, W, 3]."
            )
        yield frame


def _video_reason(err: BaseException) -> str:
    """A decoder error in a few words: ffmpeg's errors carry its whole log, keep its last line."""
    from PIL import UnidentifiedImageError

    if isinstance(err, UnidentifiedImageError):
        return "it is not a valid GIF file (corrupt, empty, or another format)"
    head, _, log = str(err).partition("=== stderr ===")
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    if lines:
        return f"{_reason(Exception(head))} (ffmpeg: {_reason(Exception(lines[-1]))})"
    return _reason(err)


# ---------------------------------------------------------------------------------------------
# arrays


def _frame_count(shape: tuple[int, ...]) -> int:
    return int(shape[0]) if len(shape) == 4 else 1


def _check_frames_array(path: Path, shape: tuple[int, ...], dtype: np.dtype, what: str = "") -> None:
    """Raise unless ``shape``/``dtype`` describe ``uint8 [N, H, W, 3]`` or ``[H, W, 3]`` with N ≥ 1."""
    name = f"{path.name}{what}"
    found = f"dtype {dtype} and shape {tuple(shape)}"
    expected = "expected uint8 RGB frames of shape [N, H, W, 3] or [H, W, 3]"
    if dtype != np.uint8:
        if np.issubdtype(dtype, np.floating):
            hint = (
                " Floats in [0, 1] convert with (frames * 255).round().astype(np.uint8), floats in [0, 255] "
                "with frames.round().astype(np.uint8); save that array instead."
            )
        elif np.issubdtype(dtype, np.integer) or dtype == np.bool_:
            hint = " Pixels in [0, 255] convert with frames.astype(np.uint8); save that array instead."
        else:
            hint = ""
        raise InputFileError(f"{name} holds an array of {found}; {expected}.{hint}")
    if len(shape) not in (3, 4) or shape[-1] != 3:
        hint = ""
        if len(shape) in (3, 4) and shape[-1] == 4:
            hint = " Drop the alpha channel with frames[..., :3]."
        elif len(shape) == 4 and shape[1] in (1, 3, 4):
            hint = " Channels first? Move them last with frames.transpose(0, 2, 3, 1)."
        elif len(shape) == 3:
            hint = " Grayscale frames [N, H, W] convert with np.repeat(frames[..., None], 3, axis=-1)."
        raise InputFileError(f"{name} holds an array of {found}; {expected}.{hint}")
    if len(shape) == 4 and shape[0] == 0:
        raise InputFileError(f"{name} holds zero frames (shape {tuple(shape)}); save at least one frame.")
    if 0 in shape:
        raise InputFileError(f"{name} holds frames with a zero-sized side (shape {tuple(shape)}).")


def _open_npy(path: Path) -> np.ndarray:
    """Memory-map a ``.npy`` file and check it holds uint8 frames."""
    try:
        with open(path, "rb") as f:
            magic = f.read(len(np.lib.format.MAGIC_PREFIX))
        if magic != np.lib.format.MAGIC_PREFIX:
            raise InputFileError(
                f"cannot read {str(path)!r}: it is not a .npy file (corrupt, empty, or another format)."
            )
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except InputFileError:
        raise
    except ValueError as err:
        if "Python objects" in str(err):
            raise InputFileError(
                f"{path.name} holds an array of Python objects; expected uint8 RGB frames of shape [N, H, W, 3] "
                "or [H, W, 3]; save np.stack(frames).astype(np.uint8) instead."
            ) from err
        raise InputFileError(f"cannot read {str(path)!r} as a .npy array: {_reason(err)}.") from err
    except Exception as err:  # OSError, EOFError, ...
        raise InputFileError(f"cannot read {str(path)!r} as a .npy array: {_reason(err)}.") from err
    if not isinstance(array, np.ndarray):
        raise InputFileError(f"cannot read {str(path)!r} as a .npy array: it holds no array.")
    _check_frames_array(path, array.shape, array.dtype)
    return array


def _iter_array_rows(path: Path, array: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    if array.ndim == 3:
        array = array[None]
    for i in range(array.shape[0]):
        yield f"{path.name}#{i}", array[i]


def _npz_member(path: Path, archive: zipfile.ZipFile) -> str:
    """The archive member holding the frames: ``frames.npy``, else the only ``.npy`` member."""
    members = [m for m in archive.namelist() if m.endswith(".npy")]
    if f"{NPZ_FRAMES_KEY}.npy" in members:
        return f"{NPZ_FRAMES_KEY}.npy"
    if len(members) == 1:
        return members[0]
    if not members:
        raise InputFileError(f"{path.name} holds no arrays; save the frames with np.savez(path, frames=frames).")
    keys = ", ".join(repr(m.removesuffix(".npy")) for m in members)
    raise InputFileError(
        f"{path.name} holds several arrays ({keys}) and none is named {NPZ_FRAMES_KEY!r}; "
        f"save the frames with np.savez(path, {NPZ_FRAMES_KEY}=frames)."
    )


def _read_npy_header(stream: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` from the header of a ``.npy`` stream, left at the data."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(stream)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(stream)
    raise ValueError(f"unsupported .npy format version {version}")


def _iter_npz(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """Frames of an ``.npz`` member, decompressed one frame at a time (checked before yielding)."""
    try:
        archive = zipfile.ZipFile(path)
    except Exception as err:  # BadZipFile, OSError
        raise InputFileError(f"cannot read {str(path)!r} as a .npz archive: {_reason(err)}.") from err
    try:
        member = _npz_member(path, archive)
        what = f" (array {member.removesuffix('.npy')!r})"
        stream = archive.open(member)
        try:
            shape, fortran_order, dtype = _read_npy_header(stream)
        except Exception as err:
            stream.close()
            raise InputFileError(f"cannot read {str(path)!r}{what}: {_reason(err)}.") from err
        _check_frames_array(path, shape, dtype, what)
    except BaseException:
        archive.close()
        raise
    return _iter_npz_rows(path, archive, stream, shape, fortran_order, what)


def _iter_npz_rows(
    path: Path,
    archive: zipfile.ZipFile,
    stream: IO[bytes],
    shape: tuple[int, ...],
    fortran_order: bool,
    what: str,
) -> Iterator[tuple[str, np.ndarray]]:
    with archive, stream:
        n = _frame_count(shape)
        frame_shape = tuple(shape[-3:])
        if fortran_order:  # rows are not contiguous on disk: read the whole array (rare)
            try:
                data = np.lib.format.read_array(archive.open(stream.name), allow_pickle=False)
            except Exception as err:
                raise InputFileError(f"cannot read {str(path)!r}{what}: {_reason(err)}.") from err
            yield from _iter_array_rows(path, data)
            return
        frame_bytes = int(np.prod(frame_shape))
        for i in range(n):
            try:
                buffer = stream.read(frame_bytes)
            except Exception as err:  # zlib.error, BadZipFile (CRC), OSError
                raise InputFileError(f"cannot read {str(path)!r}{what} at frame {i}: {_reason(err)}.") from err
            if len(buffer) != frame_bytes:
                raise InputFileError(f"{str(path)!r}{what} is truncated: it ends inside frame {i} of {n}.")
            yield f"{path.name}#{i}", np.frombuffer(buffer, dtype=np.uint8).reshape(frame_shape)


def _reason(err: BaseException) -> str:
    """An exception's message as one line without a trailing full stop, for embedding in a sentence."""
    text = " ".join(str(err).split()) or type(err).__name__
    if len(text) > 300:
        text = text[:297] + "..."
    return text.rstrip(".")
