"""``pam import-dexycb`` round trip: an engine episode (rendered with a fake MANO model) written out in
DexYCB's layout (color_*.jpg, labels_*.npz with PCA pose_m, meta.yml, calibration files), imported
back, must give the same keypoints (< 0.5 px) and segmentation (IoU >= 0.98) as the original."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from hand.mano_fixture import make_mano_arrays, write_mano_pkl
from pam_engine.cli import main
from pam_engine.dataset.reader import list_episodes, load_episode

SUBJECT, SEQUENCE, SERIAL = "20200709-subject-01", "20200709_141754", "836212060125"
BETAS = [0.8, -0.5, 0.3, 0.0, 0.2, -0.1, 0.0, 0.1, 0.0, -0.2]


@pytest.fixture(scope="module")
def mano_pkl(tmp_path_factory) -> Path:
    # No pose correctives: the simulated hand (a MuJoCo skin, linear blend skinning only) then is the
    # MANO mesh exactly, so the import, which applies MANO's correctives, must reproduce it.
    arrays = make_mano_arrays()
    arrays["posedirs"] = np.zeros_like(arrays["posedirs"])
    path = tmp_path_factory.mktemp("mano") / "MANO_RIGHT.pkl"
    write_mano_pkl(path, arrays)
    return path


@pytest.fixture(scope="module")
def original(mano_pkl, tmp_path_factory):
    from pam_engine.config import load_config
    from pam_engine.pipeline import GenerateConfig, Generator

    out = tmp_path_factory.mktemp("engine") / "data"
    sets = ["width=320", "height=240", "randomization.objects=[061_foam_brick]", "randomization.preview=false",
            "randomization.camera.distance=[0.4,0.5]", "randomization.camera.elevation_deg=[35,55]", "episodes=1",
            "seed=3", "keep_failed=true", f"stage1.mano={mano_pkl}", "stage1.num_frames=9",
            "stage1.betas=[" + ",".join(map(str, BETAS)) + "]"]
    assert Generator(load_config(GenerateConfig, None, sets), out).run(progress=False).written == 1
    return load_episode(list_episodes(out)[0])


def write_dexycb(episode, hand, root: Path) -> Path:
    """The episode in DexYCB's layout (camera frame labels, PCA pose_m, calibration files)."""
    from pam_engine.hand.pose import axis_angle_to_pca

    labels, meta = episode.labels, episode.meta
    cam_dir = root / SUBJECT / SEQUENCE / SERIAL
    cam_dir.mkdir(parents=True)
    frames = episode.video("sim_rgb")
    pose_m = np.asarray(labels["pose_m"], np.float64)
    pca = np.concatenate([pose_m[:, :3], axis_angle_to_pca(hand, pose_m[:, 3:48]), pose_m[:, 48:]], axis=1)
    for t in range(meta.num_frames):
        cv2.imwrite(str(cam_dir / f"color_{t:06d}.jpg"), frames[t][..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        np.savez_compressed(cam_dir / f"labels_{t:06d}.npz", seg=episode.seg[t], pose_y=labels["pose_y"][t],
                            pose_m=pca[t][None].astype(np.float32), joint_3d=labels["joint_3d"][t][None],
                            joint_2d=labels["joint_2d"][t][None])
    (root / SUBJECT / SEQUENCE / "meta.yml").write_text(yaml.safe_dump({
        "serials": [SERIAL], "num_frames": meta.num_frames, "ycb_ids": list(meta.object_ids),
        "ycb_grasp_ind": meta.target_object, "mano_sides": ["right"], "mano_calib": "test", "extrinsics": "test"}))
    K = np.asarray(meta.K)
    intr = root / "calibration" / "intrinsics"
    intr.mkdir(parents=True)
    (intr / f"{SERIAL}_{meta.width}x{meta.height}.yml").write_text(yaml.safe_dump({"color": {
        "fx": float(K[0, 0]), "fy": float(K[1, 1]), "ppx": float(K[0, 2]), "ppy": float(K[1, 2])}}))
    (root / "calibration" / "mano_test").mkdir()
    (root / "calibration" / "mano_test" / "mano.yml").write_text(yaml.safe_dump({"betas": BETAS}))
    return root


@pytest.fixture(scope="module")
def roundtrip(original, mano_pkl, tmp_path_factory):
    from pam_engine.hand.mano import load_mano

    hand = load_mano(mano_pkl)
    root = write_dexycb(original, hand, tmp_path_factory.mktemp("dexycb") / "DexYCB")
    out = tmp_path_factory.mktemp("imported") / "data"
    assert main(["import-dexycb", str(root), "--out", str(out), "--mano", str(mano_pkl), "--no-progress"]) == 0
    return root, out, load_episode(list_episodes(out)[0]), hand


def iou(a, b):
    return np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1)


def test_keypoints_agree_below_half_a_pixel(original, roundtrip):
    from pam_engine.dataset.dexycb import mano_pose, posed_hands

    _, _, imported, hand = roundtrip
    a, b = original.labels["joint_2d"], imported.labels["joint_2d"]
    assert np.abs(a - b).max() < 0.5
    # the keypoints of the MANO hand the importer rendered (PCA -> axis-angle, betas, translation)
    _, keypoints, _ = posed_hands(hand, mano_pose(hand, imported.labels["pose_m_pca"]), np.asarray(BETAS))
    K = np.asarray(imported.meta.K)
    uv = keypoints @ K.T
    uv = uv[..., :2] / uv[..., 2:]
    print(f"joint_2d: labels {np.abs(a - b).max():.4f} px, MANO-rendered hand {np.abs(uv - a).max():.4f} px")
    assert np.abs(uv - a).max() < 0.5, np.abs(uv - a).max()


def test_segmentation_agrees(original, roundtrip):
    _, _, imported, _ = roundtrip
    hand = iou(original.seg == 255, imported.seg == 255)
    obj = iou(original.seg == 21, imported.seg == 21)
    print(f"seg IoU: hand {hand:.4f}, object {obj:.4f}")
    assert hand >= 0.98 and obj >= 0.98, (hand, obj)
    both = (original.seg == 255) & (imported.seg == 255)
    assert np.median(np.abs(original.depth[both] - imported.depth[both])) < 1e-3  # metres


def test_episode_keeps_dexycb_labels_video_and_split(original, roundtrip, mano_pkl, capsys):
    root, out, imported, _ = roundtrip
    assert imported.meta.extra["subject"] == SUBJECT and imported.meta.extra["serial"] == SERIAL
    assert np.allclose(imported.labels["pose_y"], original.labels["pose_y"], atol=1e-6)
    assert np.allclose(imported.labels["pose_m"], original.labels["pose_m"], atol=1e-4)
    video = imported.video("video")
    assert video.shape == original.video("sim_rgb").shape
    assert np.abs(video.astype(int) - original.video("sim_rgb").astype(int)).mean() < 6  # jpeg + h264
    assert (out / "s0_train.txt").read_text().split() == [imported.name]  # sequence 0: train
    assert (out / "s0_val.txt").read_text() == ""
    assert main(["validate", str(out)]) == 0  # a valid engine dataset
    # a second run skips what is there
    assert main(["import-dexycb", str(root), "--out", str(out), "--mano", str(mano_pkl), "--no-progress"]) == 0
    assert "skipped 1 already present" in capsys.readouterr().out and len(list_episodes(out)) == 1


def test_bad_roots_name_the_file(roundtrip, mano_pkl, tmp_path, capsys):
    root = roundtrip[0]
    assert main(["import-dexycb", str(root), "--out", str(tmp_path / "o1"), "--mano", str(tmp_path / "none.pkl")]) == 2
    assert "none.pkl, which does not exist; expected MANO_RIGHT.pkl" in capsys.readouterr().err
    bad = tmp_path / "bad"
    shutil.copytree(root, bad)
    meta = bad / SUBJECT / SEQUENCE / "meta.yml"
    data = yaml.safe_load(meta.read_text())
    meta.write_text(yaml.safe_dump({**data, "ycb_ids": [42]}))
    assert main(["import-dexycb", str(bad), "--out", str(tmp_path / "o2"), "--mano", str(mano_pkl)]) == 2
    assert "meta.yml: unknown object id(s) [42]" in capsys.readouterr().err
    meta.write_text(yaml.safe_dump(data))
    (bad / "calibration" / "intrinsics" / f"{SERIAL}_320x240.yml").unlink()
    assert main(["import-dexycb", str(bad), "--out", str(tmp_path / "o3"), "--mano", str(mano_pkl)]) == 2
    assert f"camera intrinsics {bad / 'calibration' / 'intrinsics' / f'{SERIAL}_320x240.yml'} is missing" in \
        capsys.readouterr().err


def test_s0_split_is_pams():
    from pam_engine.dataset.dexycb import s0_split

    assert [s0_split(i) for i in range(10)] == ["train"] * 4 + ["val"] + ["train"] * 4 + ["val"]


def test_wrong_shape_breaks_the_agreement(original, roundtrip, mano_pkl, tmp_path):
    """The check can fail: the same sequence imported with another subject's betas disagrees."""
    root = tmp_path / "DexYCB"
    shutil.copytree(roundtrip[0], root)
    (root / "calibration" / "mano_test" / "mano.yml").write_text(yaml.safe_dump({"betas": [0.0] * 10}))
    out = tmp_path / "data"
    assert main(["import-dexycb", str(root), "--out", str(out), "--mano", str(mano_pkl), "--no-progress"]) == 0
    other = load_episode(list_episodes(out)[0])
    value = iou(original.seg == 255, other.seg == 255)
    print(f"hand IoU with wrong betas: {value:.4f}")
    assert value < 0.98


def test_left_hands_are_left_out_and_dataset_models_are_required(roundtrip, mano_pkl, tmp_path, capsys):
    root = tmp_path / "DexYCB"
    shutil.copytree(roundtrip[0], root)
    meta = root / SUBJECT / SEQUENCE / "meta.yml"
    data = yaml.safe_load(meta.read_text())
    meta.write_text(yaml.safe_dump({**data, "mano_sides": ["left"]}))
    assert main(["import-dexycb", str(root), "--out", str(tmp_path / "o1"), "--mano", str(mano_pkl), "--no-progress"]) == 0
    assert "1 left-hand view(s) not imported" in capsys.readouterr().out
    assert not list_episodes(tmp_path / "o1")
    meta.write_text(yaml.safe_dump(data))
    (root / "models").mkdir()  # a DexYCB download: its own models define pose_y's frame
    assert main(["import-dexycb", str(root), "--out", str(tmp_path / "o2"), "--mano", str(mano_pkl), "--no-progress"]) == 1
    assert "061_foam_brick/textured_simple.obj is missing" in capsys.readouterr().out
