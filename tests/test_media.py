"""vlmreward.media: frames from images, folders, videos and arrays; batching; input errors."""

from __future__ import annotations

from pathlib import Path

import imageio
import numpy as np
import pytest
from PIL import Image

from vlmreward import media
from vlmreward.errors import InputFileError, InvalidParameterError


def write_mp4(path: Path, frames: np.ndarray, fps: int = 10) -> Path:
    """H.264 video of ``uint8 [N, H, W, 3]`` frames (sides multiples of 8, so nothing is resized)."""
    writer = imageio.v2.get_writer(path, format="FFMPEG", fps=fps, macro_block_size=8, ffmpeg_log_level="error")
    for frame in frames:
        writer.append_data(frame)
    writer.close()
    return path


def write_gif(path: Path, frames: np.ndarray) -> Path:
    """GIF of the frames, each marked in its top-left corner: Pillow's GIF writer merges identical
    consecutive frames (CartPole renders some: the first step after a reset), which would change
    the frame count."""
    marked = frames.copy()
    marked[:, :2, :16] = (np.arange(len(frames), dtype=np.uint8) * 16)[:, None, None, None]
    imageio.v3.imwrite(path, marked, plugin="pillow", duration=100, loop=0)
    return path


@pytest.fixture(scope="module")
def small_frames() -> np.ndarray:
    """``uint8 [5, 24, 32, 3]`` random frames."""
    return np.random.default_rng(0).integers(0, 256, (5, 24, 32, 3), dtype=np.uint8)


def collect(path) -> tuple[list[str], list[np.ndarray]]:
    pairs = list(media.iter_frames(path))
    return [s for s, _ in pairs], [f for _, f in pairs]


# ---------------------------------------------------------------------------------------------
# arrays


def test_npy_is_memory_mapped_and_exact(tmp_path, cartpole_frames):
    path = tmp_path / "cartpole.npy"
    np.save(path, cartpole_frames)
    sources, frames = collect(path)
    assert sources == [f"cartpole.npy#{i}" for i in range(12)]
    np.testing.assert_array_equal(np.stack(frames), cartpole_frames)
    assert all(isinstance(f.base, np.memmap) or isinstance(f, np.memmap) for f in frames)
    assert all(f.dtype == np.uint8 and f.shape == (400, 600, 3) for f in frames)
    assert media.count_frames(path) == 12


def test_npy_single_frame(tmp_path, small_frames):
    path = tmp_path / "one.npy"
    np.save(path, small_frames[0])
    sources, frames = collect(path)
    assert sources == ["one.npy#0"]
    np.testing.assert_array_equal(frames[0], small_frames[0])
    assert media.count_frames(path) == 1


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_prefers_frames_key_and_streams(tmp_path, small_frames, compressed):
    path = tmp_path / "run.npz"
    (np.savez_compressed if compressed else np.savez)(path, rewards=np.zeros(5), frames=small_frames)
    sources, frames = collect(path)
    assert sources == [f"run.npz#{i}" for i in range(5)]
    np.testing.assert_array_equal(np.stack(frames), small_frames)
    assert media.count_frames(path) == 5


def test_npz_single_array_of_any_name(tmp_path, small_frames):
    path = tmp_path / "x.npz"
    np.savez(path, observations=small_frames)
    np.testing.assert_array_equal(np.stack(collect(path)[1]), small_frames)


# ---------------------------------------------------------------------------------------------
# images and folders


def test_single_png(tmp_path, small_frames):
    path = tmp_path / "frame.png"
    Image.fromarray(small_frames[0]).save(path)
    sources, frames = collect(path)
    assert sources == ["frame.png"]
    np.testing.assert_array_equal(frames[0], small_frames[0])
    assert media.count_frames(path) == 1


def test_jpeg_and_case_insensitive_extension(tmp_path, small_frames):
    path = tmp_path / "frame.JPG"
    Image.fromarray(small_frames[0]).save(path, format="JPEG")
    (frame,) = collect(path)[1]
    assert frame.shape == (24, 32, 3) and frame.dtype == np.uint8


def test_image_modes_become_rgb(tmp_path, small_frames):
    rgb = small_frames[0]
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])).save(tmp_path / "rgba.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(tmp_path / "gray16.png")
    frames = dict(zip(*collect(tmp_path)))
    assert set(frames) == {"gray.png", "gray16.png", "palette.png", "rgba.png"}
    for frame in frames.values():
        assert frame.dtype == np.uint8 and frame.shape == (24, 32, 3)
    np.testing.assert_array_equal(frames["gray.png"], np.repeat(rgb[..., :1], 3, axis=-1))
    np.testing.assert_array_equal(frames["gray16.png"], np.repeat(rgb[..., :1], 3, axis=-1))
    np.testing.assert_array_equal(frames["rgba.png"], rgb)  # alpha dropped


def test_folder_sorted_by_name_ignores_other_files(tmp_path, small_frames):
    for i in (2, 0, 1):
        Image.fromarray(small_frames[i]).save(tmp_path / f"frame_{i:03d}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"editor junk")
    (tmp_path / "sub").mkdir()
    Image.fromarray(small_frames[4]).save(tmp_path / "sub" / "frame_999.png")
    sources, frames = collect(tmp_path)
    assert sources == ["frame_000.png", "frame_001.png", "frame_002.png"]
    np.testing.assert_array_equal(np.stack(frames), small_frames[:3])
    assert media.count_frames(tmp_path) == 3


# ---------------------------------------------------------------------------------------------
# videos


def test_mp4_streams_all_frames(tmp_path, cartpole_frames):
    path = write_mp4(tmp_path / "cartpole.mp4", cartpole_frames)
    sources, frames = collect(path)
    assert sources == [f"cartpole.mp4#{i}" for i in range(12)]
    video = np.stack(frames)
    assert video.shape == cartpole_frames.shape and video.dtype == np.uint8
    assert np.abs(video.astype(np.int16) - cartpole_frames).mean() < 8  # lossy, but the same pictures
    assert media.count_frames(path) == 12  # duration × fps


def test_gif_streams_all_frames(tmp_path, cartpole_frames):
    path = write_gif(tmp_path / "cartpole.gif", cartpole_frames)
    sources, frames = collect(path)
    assert sources == [f"cartpole.gif#{i}" for i in range(12)]
    assert np.stack(frames).shape == cartpole_frames.shape
    assert media.count_frames(path) == 12


# ---------------------------------------------------------------------------------------------
# batches


def test_iter_batches_sizes_and_order(small_frames):
    pairs = [(str(i), f) for i, f in enumerate(small_frames)]
    batches = list(media.iter_batches(pairs, 2))
    assert [s for s, _ in batches] == [["0", "1"], ["2", "3"], ["4"]]
    assert all(b.dtype == np.uint8 and b.shape[1:] == (24, 32, 3) for _, b in batches)
    np.testing.assert_array_equal(np.concatenate([b for _, b in batches]), small_frames)


def test_iter_batches_split_where_size_changes(small_frames):
    big, small = small_frames, small_frames[:, :10, :12]
    pairs = [("a", big[0]), ("b", big[1]), ("c", small[2]), ("d", big[3]), ("e", big[4])]
    batches = list(media.iter_batches(pairs, 8))
    assert [s for s, _ in batches] == [["a", "b"], ["c"], ["d", "e"]]
    assert [b.shape for _, b in batches] == [(2, 24, 32, 3), (1, 10, 12, 3), (2, 24, 32, 3)]


def test_iter_batches_rejects_batch_size_zero(small_frames):
    with pytest.raises(InvalidParameterError, match="batch_size"):
        list(media.iter_batches([("a", small_frames[0])], 0))


# ---------------------------------------------------------------------------------------------
# errors: one InputFileError with one clear sentence


def _bad_inputs(tmp: Path, frames: np.ndarray) -> dict[str, tuple[Path, str]]:
    """name → (path, a phrase the message must contain)."""
    cases: dict[str, tuple[Path, str]] = {}

    def add(name: str, path: Path, phrase: str) -> None:
        cases[name] = (path, phrase)

    add("missing", tmp / "nothere.npy", "does not exist")
    (tmp / "frames.txt").write_text("hello")
    add("unsupported", tmp / "frames.txt", ".png, .jpg")
    (tmp / "garbage.png").write_bytes(b"\x00garbage" * 10)
    add("corrupt_png", tmp / "garbage.png", "not a valid image")
    (tmp / "garbage.npy").write_bytes(b"garbage")
    add("corrupt_npy", tmp / "garbage.npy", "not a .npy file")
    (tmp / "garbage.npz").write_bytes(b"garbage")
    add("corrupt_npz", tmp / "garbage.npz", "not a zip file")
    (tmp / "garbage.mp4").write_bytes(b"garbage" * 100)
    add("corrupt_mp4", tmp / "garbage.mp4", "cannot read video")
    (tmp / "garbage.gif").write_bytes(b"garbage")
    add("corrupt_gif", tmp / "garbage.gif", "not a valid GIF")
    (tmp / "empty_dir").mkdir()
    (tmp / "empty_dir" / "readme.md").write_text("no frames here")
    add("folder_without_images", tmp / "empty_dir", "holds no image files")
    np.save(tmp / "float.npy", frames.astype(np.float32) / 255)
    add("float", tmp / "float.npy", "(frames * 255).round().astype(np.uint8)")
    np.save(tmp / "int64.npy", frames.astype(np.int64))
    add("int64", tmp / "int64.npy", "frames.astype(np.uint8)")
    np.save(tmp / "rank2.npy", frames[0, :, :, 0])
    add("rank2", tmp / "rank2.npy", "shape (24, 32)")
    np.save(tmp / "rank5.npy", frames[None])
    add("rank5", tmp / "rank5.npy", "shape (1, 5, 24, 32, 3)")
    np.save(tmp / "chw.npy", frames.transpose(0, 3, 1, 2))
    add("channels_first", tmp / "chw.npy", "Channels first")
    np.save(tmp / "rgba.npy", np.dstack([frames[0], frames[0, :, :, :1]]))
    add("rgba", tmp / "rgba.npy", "alpha")
    np.save(tmp / "empty.npy", frames[:0])
    add("zero_frames_npy", tmp / "empty.npy", "zero frames")
    np.savez(tmp / "empty.npz", frames=frames[:0])
    add("zero_frames_npz", tmp / "empty.npz", "zero frames")
    np.savez(tmp / "two.npz", a=frames, b=frames)
    add("ambiguous_npz", tmp / "two.npz", "none is named 'frames'")
    np.save(tmp / "objects.npy", np.array([frames[0], None], dtype=object), allow_pickle=True)
    add("object_array", tmp / "objects.npy", "Python objects")
    return cases


BAD_INPUTS = [
    "missing", "unsupported", "corrupt_png", "corrupt_npy", "corrupt_npz", "corrupt_mp4", "corrupt_gif",
    "folder_without_images", "float", "int64", "rank2", "rank5", "channels_first", "rgba", "zero_frames_npy",
    "zero_frames_npz", "ambiguous_npz", "object_array",
]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_raises_one_sentence(tmp_path, small_frames, case):
    path, phrase = _bad_inputs(tmp_path, small_frames)[case]
    with pytest.raises(InputFileError) as info:
        list(media.iter_frames(path))
    message = str(info.value)
    assert phrase in message
    assert "\n" not in message and message.endswith(".")
    media.count_frames(path)  # never raises: iter_frames is what reports the problem


def test_shape_and_path_errors_come_before_iteration(tmp_path, small_frames):
    np.save(tmp_path / "float.npy", small_frames.astype(np.float64))
    with pytest.raises(InputFileError, match="float64"):
        media.iter_frames(tmp_path / "float.npy")  # no next() needed
    with pytest.raises(InputFileError, match="does not exist"):
        media.iter_frames(tmp_path / "missing.png")


def test_truncated_npz_fails_at_the_frame(tmp_path, small_frames):
    path = tmp_path / "cut.npz"
    np.savez(path, frames=small_frames)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError):
        list(media.iter_frames(path))


def test_truncated_mp4_is_an_input_error(tmp_path, cartpole_frames):
    path = write_mp4(tmp_path / "cut.mp4", cartpole_frames[:4])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputFileError, match="cut.mp4"):
        list(media.iter_frames(path))
