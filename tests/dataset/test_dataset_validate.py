import json
import shutil

import numpy as np
import pytest

from pam_engine.cli import main
from pam_engine.dataset.format import save_npz
from pam_engine.dataset.validate import validate_dataset
from pam_engine.dataset.videoio import read_video, write_video
from pam_engine.dataset.writer import EpisodeWriter


@pytest.fixture
def dataset(tmp_path, synthetic_episode):
    root = tmp_path / "ds"
    w = EpisodeWriter(root)
    for i in range(3):
        w.write(synthetic_episode(seed=i))
    return root


def test_valid_dataset_passes(dataset, capsys):
    report = validate_dataset(dataset)
    assert report.ok, report
    assert main(["validate", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert "episode_000000: ok" in out and "3 episode(s), 0 with problems" in out


def test_rendered_dataset_passes(demo_dataset):
    report = validate_dataset(demo_dataset)
    assert report.ok, report


def _problems(root):
    return validate_dataset(root).episodes


def test_missing_file_is_reported(dataset, capsys):
    (dataset / "episode_000001" / "normal.mp4").unlink()
    problems = _problems(dataset)
    assert problems["episode_000001"] == ["missing normal.mp4"]
    assert problems["episode_000000"] == [] and problems["episode_000002"] == []
    assert main(["validate", str(dataset)]) == 1
    out = capsys.readouterr().out
    assert "episode_000001: 1 problem(s)" in out and "missing normal.mp4" in out


def test_frame_count_mismatch_is_reported(dataset):
    path = dataset / "episode_000000" / "depth.mp4"
    write_video(path, read_video(path)[:-1])
    assert _problems(dataset)["episode_000000"] == ["depth.mp4: 4 frames, expected 5"]


def test_wrong_video_size_is_reported(dataset):
    path = dataset / "episode_000002" / "seg.mp4"
    write_video(path, np.zeros((5, 32, 64, 3), np.uint8))
    assert _problems(dataset)["episode_000002"] == ["seg.mp4: 64x32 frames, expected 64x48"]


def test_nan_and_shape_problems_in_arrays_are_reported(dataset):
    folder = dataset / "episode_000001"
    with np.load(folder / "labels.npz") as data:
        labels = {k: data[k] for k in data.files}
    labels["joint_3d"][1, 2, 0] = np.nan
    labels["pose_m"] = labels["pose_m"][:4]
    save_npz(folder / "labels.npz", **labels)
    save_npz(folder / "depth_raw.npz", depth=np.zeros((5, 48, 60), np.float32))
    seg = np.zeros((5, 48, 64), np.uint8)
    seg[0, 0, 0] = 77
    save_npz(folder / "seg_raw.npz", seg=seg)
    problems = _problems(dataset)["episode_000001"]
    assert "labels.npz['pose_m']: shape (4, 51), expected (5, 51) (5 frames)" in problems
    assert "labels.npz['joint_3d']: holds 1 NaN/inf values" in problems
    assert "depth_raw.npz: float32 (5, 48, 60), expected float32 (5, 48, 64)" in problems
    assert "seg_raw.npz: unknown segmentation ids [77]" in problems


def test_corrupt_files_are_reported_not_raised(dataset):
    folder = dataset / "episode_000000"
    (folder / "labels.npz").write_bytes(b"not a zip")
    (folder / "sim_rgb.mp4").write_bytes(b"\x00" * 100)
    problems = _problems(dataset)["episode_000000"]
    assert any(p.startswith("labels.npz: unreadable") for p in problems)
    assert any(p.startswith("sim_rgb.mp4: unreadable video") for p in problems)


def test_bad_meta_is_reported(dataset):
    meta_path = dataset / "episode_000002" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["width"] = "wide"
    meta_path.write_text(json.dumps(meta))
    problems = _problems(dataset)["episode_000002"]
    assert len(problems) == 1 and "'width': expected int" in problems[0]


def test_dataset_level_problems_and_notes(dataset, capsys):
    (dataset / "stray.txt").write_text("?")
    (dataset / ".tmp-episode_000009-abcd").mkdir()
    report = validate_dataset(dataset)
    assert report.dataset == ["stray.txt: not an episode folder or a dataset file"]
    assert report.notes and "interrupted run" in report.notes[0]
    assert not report.ok
    empty = dataset.parent / "empty"
    empty.mkdir()
    assert validate_dataset(empty).dataset == ["no episodes (episode_NNNNNN folders) found"]
    assert main(["validate", str(dataset.parent / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_quick_mode_uses_headers(dataset):
    shutil.copy(dataset / "episode_000000" / "seg.mp4", dataset / "episode_000001" / "seg.mp4")
    assert validate_dataset(dataset, decode_videos=False).ok
