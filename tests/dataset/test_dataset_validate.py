import json
import shutil

import numpy as np
import pytest

from pam_engine.cli import main
from pam_engine.dataset.format import save_npz
from pam_engine.dataset.validate import validate_dataset
from pam_engine.dataset.videoio import read_video, write_depth, write_video
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
    write_depth(folder / "depth_raw.mkv", np.zeros((5, 48, 60), np.float32))
    seg = np.zeros((5, 48, 64), np.uint8)
    seg[0, 0, 0] = 77
    save_npz(folder / "seg_raw.npz", seg=seg)
    problems = _problems(dataset)["episode_000001"]
    assert "labels.npz['pose_m']: shape (4, 51), expected (5, 51) (5 frames)" in problems
    assert "labels.npz['joint_3d']: holds 1 NaN/inf values" in problems
    assert "depth_raw.mkv: shape (5, 48, 60), expected (5, 48, 64)" in problems
    assert any(p.startswith("seg_raw.npz: segmentation ids [77] are neither") for p in problems)


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
    assert report.notes and "interrupted" in report.notes[0]
    assert not report.ok
    empty = dataset.parent / "empty"
    empty.mkdir()
    assert validate_dataset(empty).dataset == ["no episodes (episode_NNNNNN folders) found"]
    assert main(["validate", str(dataset.parent / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_quick_mode_uses_headers(dataset):
    shutil.copy(dataset / "episode_000000" / "seg.mp4", dataset / "episode_000001" / "seg.mp4")
    assert validate_dataset(dataset, decode_videos=False).ok


def _labels(folder):
    with np.load(folder / "labels.npz") as data:
        return {k: data[k] for k in data.files}


def test_a_dozen_kinds_of_damage_are_each_reported(tmp_path, synthetic_episode, capsys):
    """Every episode carries one kind of damage (most with the right shapes); each is named, the
    check goes on past unreadable files, and the exit code is 1."""
    from pam_engine.dataset.format import dataset_description

    root = tmp_path / "damaged"
    writer = EpisodeWriter(root)
    for i in range(16):
        writer.write(synthetic_episode(seed=i), index=i)
    (root / "dataset.json").write_text(json.dumps(dataset_description({}, 17)))  # 16 is never written
    ep = [root / f"episode_{i:06d}" for i in range(16)]

    (ep[1] / "labels.npz").write_bytes(b"")  # 0-byte npz (np.load raises EOFError)
    labels = _labels(ep[2])
    labels["joint_2d"][3, 5] += 3.0  # right shape, wrong value
    save_npz(ep[2] / "labels.npz", **labels)
    (ep[3] / "depth_raw.mkv").unlink()  # format-1 depth with NaN
    bad_depth = np.full((5, 48, 64), 0.4, np.float32)
    bad_depth[2, 1, 1] = np.nan
    save_npz(ep[3] / "depth_raw.npz", depth=bad_depth)
    seg = np.load(ep[4] / "seg_raw.npz")["seg"]
    seg[0, 0, 0] = 9  # an object that is not in this episode
    save_npz(ep[4] / "seg_raw.npz", seg=seg)
    labels = _labels(ep[5])
    labels["pose_y"][:, 0, :3, :3] *= 1.1  # scaled "rotation"
    save_npz(ep[5] / "labels.npz", **labels)
    write_video(ep[6] / "normal.mp4", read_video(ep[6] / "normal.mp4")[:4])
    meta = json.loads((ep[7] / "meta.json").read_text())
    meta["num_frames"] = 6  # every file now disagrees with meta.json
    (ep[7] / "meta.json").write_text(json.dumps(meta))
    data = (ep[8] / "sim_rgb.mp4").read_bytes()
    (ep[8] / "sim_rgb.mp4").write_bytes(data[: len(data) // 3])  # truncated
    labels = _labels(ep[9])
    labels["joint_3d_world"] += 0.01  # world and camera labels disagree
    save_npz(ep[9] / "labels.npz", **labels)
    (ep[10] / "hand_mesh.mp4").unlink()
    (ep[11] / "meta.json").write_text("{not json")
    labels = _labels(ep[12])
    labels["pose_m"][0, 0] = np.nan
    save_npz(ep[12] / "labels.npz", **labels)
    write_depth(ep[13] / "depth_raw.mkv", np.zeros((5, 48, 64), np.float32))  # hand and object without depth
    (ep[14] / "seg_raw.npz").unlink()
    (ep[14] / "seg_raw.npz").symlink_to("/etc/hostname")  # points out of the dataset
    shutil.copy(ep[0] / "sim_rgb.mp4", ep[15] / "video.mp4")  # a video meta.json does not announce

    report = validate_dataset(root)
    problems = report.episodes
    assert problems["episode_000000"] == []
    expect = {
        1: "labels.npz: unreadable", 2: "joint_2d disagrees with the projection of joint_3d",
        3: "depth_raw.npz: holds 1 NaN/inf depths", 4: "segmentation ids [9] are neither",
        5: "rotation parts are not orthonormal", 6: "normal.mp4: 4 frames, expected 5",
        7: "expected (6,", 8: "sim_rgb.mp4: unreadable video", 9: "joint_3d is not joint_3d_world",
        10: "missing hand_mesh.mp4", 11: "meta.json", 12: "labels.npz['pose_m']: holds 1 NaN/inf",
        13: "show an object or the hand but have no depth", 14: "seg_raw.npz: a symbolic link",
        15: "video.mp4 present but meta.has_video is false",
    }
    for i, text in expect.items():
        found = problems[f"episode_{i:06d}"]
        assert any(text in p for p in found), (i, found)
    assert len(problems["episode_000007"]) >= 10  # labels, depth, seg and all six videos disagree
    assert any("1 of 17 episode(s) missing" in p and "episode_000016" in p for p in report.dataset), report.dataset
    assert main(["validate", str(root)]) == 1
    out = capsys.readouterr().out
    assert "16 episode(s), 15 with problems" in out
