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
    traj, _ = recorded
    traj.save(tmp_path / "traj.npz")
    code, out = run(capsys, "--trajectory", tmp_path / "traj.npz", "--out", tmp_path / "episode.usdc")
    assert code == 0, out.err
    stage = Usd.Stage.Open(str(tmp_path / "episode.usdc"))
    attr = stage.GetPrimAtPath("/World/Objects/object_0").GetAttribute("xformOp:translate")
    assert attr.GetTimeSamples() == list(range(T))
    np.testing.assert_allclose(attr.Get(T - 1), traj.pose_y[T - 1, 0, :, 3], atol=1e-9)
