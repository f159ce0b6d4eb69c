"""``pam export-usd``: bad input is named before anything is written; the quick-start scene and
a trajectory export open as USD."""

import numpy as np
import pytest
import trimesh
from pxr import Usd, UsdGeom

from pam_engine.cli import main

from .conftest import T


def run(capsys, *args):
    code = main(["export-usd", *map(str, args)])
    return code, capsys.readouterr()


@pytest.mark.parametrize("name", ["scene.obj", "scene.usdz", "scene"])
def test_output_that_is_not_usd_is_named(tmp_path, capsys, name):
    code, out = run(capsys, "--object", "006_mustard_bottle", "--out", tmp_path / name)
    assert code == 2 and name in out.err and ".usda" in out.err
    assert list(tmp_path.iterdir()) == []


def test_missing_output_folder_is_named(tmp_path, capsys):
    code, out = run(capsys, "--object", "006_mustard_bottle", "--out", tmp_path / "nope" / "scene.usda")
    assert code == 2 and "does not exist" in out.err


@pytest.mark.parametrize("asset", [[], ["--asset", "object"]])
def test_a_mesh_without_volume_fails_before_writing(tmp_path, capsys, asset):
    plane = tmp_path / "plane.obj"
    trimesh.Trimesh([[0, 0, 0], [0.1, 0, 0], [0.1, 0.1, 0], [0, 0.1, 0]], [[0, 1, 2], [0, 2, 3]]).export(plane)
    code, out = run(capsys, "--object", plane, "--out", tmp_path / "scene.usda", *asset)
    assert code == 2 and "zero volume" in out.err and "plane" in out.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plane.obj"]


def test_a_refused_mano_file_fails_before_writing(tmp_path, capsys):
    bad = tmp_path / "MANO_RIGHT.pkl"
    bad.write_bytes(b"not a pickle")
    code, out = run(capsys, "--asset", "hand", "--mano", bad, "--out", tmp_path / "hand.usda")
    assert code == 2 and "MANO_RIGHT.pkl" in out.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MANO_RIGHT.pkl"]


def test_quickstart_scene(tmp_path, capsys):
    out_path = tmp_path / "scene.usda"
    code, out = run(capsys, "--object", "006_mustard_bottle", "--seed", 0, "--out", out_path)
    assert code == 0, out.err
    stage = Usd.Stage.Open(str(out_path))
    for path in ("/World/Hand", "/World/Objects/object_0", "/World/Table", "/World/Camera", "/World/physicsScene"):
        assert stage.GetPrimAtPath(path).IsValid(), path
    assert UsdGeom.GetStageUpAxis(stage) == "Z" and UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["scene.usda"]  # no temporary file left


def test_trajectory_export(tmp_path, capsys, recorded):
    import json

    traj, _ = recorded
    traj.save(tmp_path / "traj.npz")
    K = [[610.0, 0.0, 300.0], [0.0, 605.0, 250.0], [0.0, 0.0, 1.0]]
    w2c = [[1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.8], [0.0, 0.0, 0.0, 1.0]]
    (tmp_path / "camera.json").write_text(json.dumps({"K": K, "world_to_cam": w2c, "width": 640, "height": 480}))
    code, out = run(capsys, "--trajectory", tmp_path / "traj.npz", "--camera", tmp_path / "camera.json",
                    "--out", tmp_path / "episode.usdc")
    assert code == 0, out.err
    stage = Usd.Stage.Open(str(tmp_path / "episode.usdc"))
    np.testing.assert_allclose(np.array(stage.GetPrimAtPath("/World/Camera").GetAttribute("pam:K").Get()), K)
    attr = stage.GetPrimAtPath("/World/Objects/object_0").GetAttribute("xformOp:translate")
    assert attr.GetTimeSamples() == list(range(T))
    np.testing.assert_allclose(attr.Get(T - 1), traj.pose_y[T - 1, 0, :, 3], atol=1e-9)


def test_episode_export_has_the_episodes_camera_and_frames(tmp_path, capsys, recorded, builtin_hand):
    """An episode folder (meta.json + world-frame labels, float32 as the writer stores them)."""
    import json

    from pam_engine.capture.camera import Camera
    from pam_engine.config import to_dict
    from pam_engine.dataset.format import EpisodeMeta
    from pam_engine.hand.pose import HandPose, to_pose_m
    from pam_engine.usd.stage import DEG, world_pose

    traj, _ = recorded
    hand, art = builtin_hand
    rest_wrist = hand.shaped()[1][0]
    angles = traj.joint_angles.copy()
    angles[-1, 0] = art.upper[0] + 0.015  # simulated joints may press a little past their soft limits
    pose_m = np.array([to_pose_m(HandPose(w, a), art, rest_wrist) for w, a in zip(traj.wrist_pose, angles)])
    folder = tmp_path / "episode_000000"
    folder.mkdir()
    np.savez(folder / "labels.npz", pose_m_world=pose_m.astype(np.float32), wrist_pose_world=traj.wrist_pose.astype(np.float32),
             pose_y_world=traj.pose_y.astype(np.float32), joint_3d_world=traj.joint_3d.astype(np.float32),
             contacts=traj.contacts)
    camera = Camera.from_focal(600.0, principal=(350.0, 250.0)).looking_at([0.5, -0.4, 0.5], [0.0, 0.0, 0.1])
    meta = EpisodeMeta(K=camera.K.tolist(), world_to_cam=camera.world_to_cam.tolist(), width=720, height=480,
                       fps=15.0, num_frames=T, object_ids=[5], object_names=["006_mustard_bottle"], seed=0)
    (folder / "meta.json").write_text(json.dumps(to_dict(meta)))
    out_path = tmp_path / "episode.usda"
    code, out = run(capsys, "--episode", folder, "--out", out_path)
    assert code == 0, out.err
    stage = Usd.Stage.Open(str(out_path))
    np.testing.assert_allclose(np.array(stage.GetPrimAtPath("/World/Camera").GetAttribute("pam:K").Get()), camera.K)
    for t in range(T):
        np.testing.assert_allclose(world_pose(stage.GetPrimAtPath("/World/Hand/hand_wrist"), t), traj.wrist_pose[t], atol=1e-5)
        usd_angles = [stage.GetPrimAtPath(f"/World/Hand/joints/{n}").GetAttribute("state:angular:physics:position").Get(t) / DEG
                      for n in art.names]
        np.testing.assert_allclose(usd_angles, angles[t], atol=1e-5)  # back from float32 pose_m, unclamped


def test_a_bad_camera_file_is_named(tmp_path, capsys):
    (tmp_path / "camera.json").write_text('{"K": [[1, 0, 0]]}')
    code, out = run(capsys, "--object", "006_mustard_bottle", "--camera", tmp_path / "camera.json", "--out", tmp_path / "a.usda")
    assert code == 2 and "camera.json" in out.err and "world_to_cam" in out.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["camera.json"]


def test_one_source_at_a_time(tmp_path, capsys):
    code, out = run(capsys, "--object", "006_mustard_bottle", "--episode", tmp_path, "--out", tmp_path / "a.usda")
    assert code == 2 and "--object and --episode" in out.err
