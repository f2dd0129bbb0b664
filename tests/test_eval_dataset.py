"""The dataset format of `vlmreward collect`: round trip, atomic writing, and one clear message per bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from vlmreward.errors import InputFileError, InvalidParameterError, VLMRewardError
from vlmreward.eval.dataset import (
    FORMAT_VERSION,
    DatasetError,
    DatasetWriter,
    MissingLabelError,
    load_dataset,
    save_dataset,
)

N, H, W = 7, 12, 20


def make_metadata() -> dict:
    return {
        "env_id": "vlmreward/CartPole-v1",
        "env_kwargs": {"render_width": W},
        "policy": {"kind": "scripted"},
        "columns": {
            "frame": {"type": "int", "description": "index"},
            "episode": {"type": "int", "description": "episode"},
            "step": {"type": "int", "description": "step"},
            "gt_reward": {"type": "float", "description": "reward"},
            "is_success": {"type": "bool", "description": "upright"},
            "pole_angle": {"type": "float", "description": "angle"},
            "pose": {"type": "str", "description": "a name"},
        },
        "labels": {"is_success": {"definition": "upright", "detector": "x", "thresholds": {"max": 0.1}}},
        "state_variables": {"pole_angle": {"unit": "rad", "description": "angle"}, "pose": {"unit": "", "description": "name"}},
        "gt_reward": {"definition": "1 while alive"},
        "landscape": {"x": "pole_angle", "facet": None},
    }


def make_table() -> dict:
    return {
        "episode": [0, 0, 0, 1, 1, 1, 1],
        "step": [1, 2, 3, 1, 2, 3, 4],
        "gt_reward": [1.0, 0.5, -2.25, math.nan, 1e-12, 3.0, 0.1 + 0.2],
        "is_success": [True, False, True, False, False, True, False],
        "pole_angle": np.linspace(-0.4, 0.4, N),
        "pose": ["a", "b, with a comma", 'c "quoted"', "", "é", "f", "g"],
    }


def make_frames() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(N, H, W, 3), dtype=np.uint8)


@pytest.fixture()
def dataset_dir(tmp_path) -> Path:
    return save_dataset(tmp_path / "ds", make_frames(), make_table(), make_metadata())


def test_round_trip(dataset_dir):
    ds = load_dataset(dataset_dir)
    np.testing.assert_array_equal(np.asarray(ds.frames), make_frames())
    assert isinstance(ds.frames, np.memmap) and not ds.frames.flags.writeable
    assert len(ds) == N and ds.render_size == (H, W)
    table = make_table()
    np.testing.assert_array_equal(ds.table["frame"], np.arange(N))
    np.testing.assert_array_equal(ds.table["episode"], table["episode"])
    np.testing.assert_array_equal(ds.table["gt_reward"], np.array(table["gt_reward"]))  # exact, NaN included
    assert ds.table["gt_reward"][-1] == 0.1 + 0.2  # repr precision round-trips
    np.testing.assert_array_equal(ds.label("is_success"), table["is_success"])
    assert list(ds.table["pose"]) == table["pose"]
    assert ds.table["is_success"].dtype == bool and ds.table["episode"].dtype == np.int64
    assert ds.metadata["format_version"] == FORMAT_VERSION and ds.metadata["num_frames"] == N
    assert ds.metadata["render"] == {"render_mode": "rgb_array", "height": H, "width": W}
    assert ds.metadata["labels"]["is_success"]["thresholds"] == {"max": 0.1}
    assert ds.label_names == ["is_success"] and ds.state_variable_names == ["pole_angle", "pose"]
    assert ds.env_id == "vlmreward/CartPole-v1"


def test_writer_is_atomic_and_refuses_to_clobber(tmp_path):
    target = tmp_path / "ds"
    with pytest.raises(RuntimeError):
        with DatasetWriter(target, make_metadata()) as writer:
            writer.add(make_frames()[0], {k: v[0] for k, v in make_table().items()})
            raise RuntimeError("interrupted")
    assert not target.exists() and not list(tmp_path.iterdir())  # no partial directory left behind

    save_dataset(target, make_frames(), make_table(), make_metadata())
    with pytest.raises(InvalidParameterError, match="already exists.*--overwrite"):
        save_dataset(target, make_frames(), make_table(), make_metadata())
    smaller = {k: v[:3] for k, v in make_table().items()}
    save_dataset(target, make_frames()[:3], smaller, make_metadata(), overwrite=True)
    assert len(load_dataset(target)) == 3
    other = tmp_path / "not-a-dataset"
    other.mkdir()
    (other / "precious.txt").write_text("keep me")
    with pytest.raises(InvalidParameterError, match="not a vlmreward dataset"):
        save_dataset(other, make_frames(), make_table(), make_metadata(), overwrite=True)
    assert (other / "precious.txt").exists()


def test_writer_rejects_bad_frames_and_rows(tmp_path):
    with pytest.raises(InvalidParameterError, match="one size"):
        save_dataset(tmp_path / "a", [np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)],
                     {k: v[:2] for k, v in make_table().items()}, make_metadata())
    with pytest.raises(InvalidParameterError, match="uint8 RGB"):
        save_dataset(tmp_path / "b", np.zeros((N, 4, 4, 3), np.float32), make_table(), make_metadata())
    table = make_table()
    del table["pose"]
    with pytest.raises(InvalidParameterError, match="lacks the column"):
        save_dataset(tmp_path / "c", make_frames(), table, make_metadata())
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def assert_one_sentence(err: BaseException, *phrases: str) -> None:
    message = str(err)
    assert "\n" not in message and message.endswith("."), message
    for phrase in phrases:
        assert phrase in message, message


def expect_error(path, *phrases: str, kind=DatasetError) -> None:
    with pytest.raises(kind) as info:
        load_dataset(path)
    assert isinstance(info.value, VLMRewardError)
    assert_one_sentence(info.value, *phrases)


def test_missing_dataset_and_files(tmp_path, dataset_dir):
    expect_error(tmp_path / "nowhere", "does not exist", "vlmreward collect")
    (tmp_path / "file.npy").write_bytes(b"x")
    expect_error(tmp_path / "file.npy", "is a file, not a dataset")
    for name in ("metadata.json", "frames.npy", "labels.csv"):
        moved = dataset_dir / name
        backup = moved.read_bytes()
        moved.unlink()
        expect_error(dataset_dir, f"lacks {name}")
        moved.write_bytes(backup)
    load_dataset(dataset_dir)
    assert issubclass(DatasetError, InputFileError)


def test_corrupt_frames(dataset_dir):
    frames = dataset_dir / "frames.npy"
    good = frames.read_bytes()
    frames.write_bytes(b"this is not numpy")
    expect_error(dataset_dir, "frames.npy", "corrupt", "not a NumPy .npy file")
    frames.write_bytes(good[: len(good) - 100])  # truncated
    expect_error(dataset_dir, "frames.npy", "corrupt or truncated")
    np.save(frames, np.zeros((N, H, W, 3), np.float32))
    expect_error(dataset_dir, "frames.npy", "float32", "uint8 RGB [N, H, W, 3]")


def test_mismatched_counts(dataset_dir):
    labels = dataset_dir / "labels.csv"
    lines = labels.read_text().splitlines()
    labels.write_text("\n".join(lines[:-1]) + "\n")  # one row fewer than frames
    expect_error(dataset_dir, f"frames.npy holds {N} frames but labels.csv has {N - 1} rows")
    labels.write_text("\n".join(lines) + "\n")
    meta_file = dataset_dir / "metadata.json"
    meta = json.loads(meta_file.read_text())
    meta["num_frames"] = N + 5
    meta_file.write_text(json.dumps(meta))
    expect_error(dataset_dir, f"num_frames={N + 5}", f"holds {N} frames")
    meta["num_frames"] = N
    meta["render"]["width"] = W + 1
    meta_file.write_text(json.dumps(meta))
    expect_error(dataset_dir, "render size", "collect it again")


def test_corrupt_labels(dataset_dir):
    labels = dataset_dir / "labels.csv"
    lines = labels.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[3].split(",")
    row[header.index("gt_reward")] = "lots"
    labels.write_text("\n".join(lines[:3] + [",".join(row)] + lines[4:]) + "\n")
    expect_error(dataset_dir, "line 4", "'gt_reward'", "'lots'", "not a float")
    labels.write_text("\n".join([",".join(h for h in header if h != "pole_angle")] + lines[1:]) + "\n")
    expect_error(dataset_dir, "lacks the column(s) 'pole_angle'")
    labels.write_text("\n".join(lines[:2] + ["1,2"] + lines[3:]) + "\n")
    expect_error(dataset_dir, "line 3 has 2 fields")
    swapped = lines[:1] + [lines[2], lines[1]] + lines[3:]
    labels.write_text("\n".join(swapped) + "\n")
    expect_error(dataset_dir, "out of order")
    labels.write_bytes(b"\xff\xfe\x00garbage")
    expect_error(dataset_dir, "labels.csv", "not UTF-8")


def test_corrupt_metadata_and_versions(dataset_dir):
    meta_file = dataset_dir / "metadata.json"
    good = json.loads(meta_file.read_text())
    meta_file.write_text('{"format": "vlmreward-dataset", ')
    expect_error(dataset_dir, "metadata.json", "invalid JSON", "line 1")
    meta_file.write_text("[1, 2]")
    expect_error(dataset_dir, "JSON list, not an object")
    for version, phrase in ((FORMAT_VERSION + 1, "newer than"), (0, "cannot read"), (None, "cannot read")):
        meta_file.write_text(json.dumps({**good, "format_version": version}))
        expect_error(dataset_dir, f"format version {version if version is not None else 'None'}", phrase)
    meta_file.write_text(json.dumps({k: v for k, v in good.items() if k != "format"}))
    expect_error(dataset_dir, "is not a vlmreward dataset")
    meta_file.write_text(json.dumps({k: v for k, v in good.items() if k != "labels"}))
    expect_error(dataset_dir, "lacks 'labels'")
    meta_file.write_text(json.dumps({**good, "labels": {"ghost": {}}}))
    expect_error(dataset_dir, "'ghost'", "not columns")


def test_missing_label_and_text_columns(dataset_dir):
    ds = load_dataset(dataset_dir)
    with pytest.raises(MissingLabelError) as info:
        ds.label("success_kneeling")
    assert_one_sentence(info.value, "no label 'success_kneeling'", "'is_success'", "--label")
    with pytest.raises(MissingLabelError) as info:
        ds.numeric("pose")
    assert_one_sentence(info.value, "holds text", "'gt_reward'")
    with pytest.raises(MissingLabelError) as info:
        ds.numeric("torso_height", "state variable")
    assert_one_sentence(info.value, "no state variable 'torso_height'", "'pole_angle'")
    assert isinstance(info.value, VLMRewardError) and isinstance(info.value, LookupError)
