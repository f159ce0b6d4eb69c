"""Object USD read back: the visual mesh, one convex collider per MuJoCo hull, the same mass
properties as the MuJoCo body, DexYCB labels; a hull set that is not the mesh's is refused."""

from dataclasses import replace

import mujoco
import numpy as np
import pytest
import trimesh
from pxr import Usd, UsdGeom, UsdPhysics
from scipy.spatial.transform import Rotation

from pam_engine.errors import AssetError
from pam_engine.objects import load_object
from pam_engine.sim.mujoco.objects import add_object_to_spec
from pam_engine.usd import export_object
from pam_engine.usd.stage import quat_to_matrix

from .conftest import parse_physics

TOL = 1e-6


@pytest.fixture(scope="module")
def mustard():
    return load_object("006_mustard_bottle")  # shipped hulls: no CoACD run


@pytest.fixture(scope="module")
def exported(mustard, tmp_path_factory):
    path = tmp_path_factory.mktemp("usd") / "mustard.usdc"
    export_object(path, mustard)
    spec = mujoco.MjSpec()
    add_object_to_spec(spec, mustard, "object_0", free=True)
    return Usd.Stage.Open(str(path)), spec.compile()


def tensor(axes, moments):
    return axes @ np.diag(moments) @ axes.T


def test_mass_properties_equal_the_mujoco_body(exported, mustard):
    stage, model = exported
    b = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "object_0")
    api = UsdPhysics.MassAPI(stage.GetPrimAtPath("/Object"))
    assert api.GetMassAttr().Get() == pytest.approx(model.body_mass[b], rel=TOL)
    assert api.GetMassAttr().Get() == pytest.approx(mustard.mass, rel=TOL)
    np.testing.assert_allclose(api.GetCenterOfMassAttr().Get(), model.body_ipos[b], atol=TOL)
    usd = tensor(quat_to_matrix(api.GetPrincipalAxesAttr().Get()), np.array(api.GetDiagonalInertiaAttr().Get()))
    w, x, y, z = model.body_iquat[b]
    mj = tensor(Rotation.from_quat([x, y, z, w]).as_matrix(), model.body_inertia[b])
    np.testing.assert_allclose(usd, mj, rtol=1e-5, atol=1e-6 * np.abs(mj).max())
    np.testing.assert_allclose(usd, mustard.inertia, rtol=1e-5, atol=1e-6 * np.abs(mj).max())


def test_one_convex_collider_per_mujoco_hull(exported, mustard):
    stage, model = exported
    hulls = [p for p in stage.GetPrimAtPath("/Object/collision").GetChildren()]
    assert len(hulls) == len(mustard.collision_parts) > 1
    for i, prim in enumerate(hulls):
        assert prim.HasAPI(UsdPhysics.CollisionAPI)
        assert UsdPhysics.MeshCollisionAPI(prim).GetApproximationAttr().Get() == "convexHull"
        g = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, f"object_0_hull{i}")
        mesh = model.geom_dataid[g]
        w, x, y, z = model.geom_quat[g]
        rot = Rotation.from_quat([x, y, z, w]).as_matrix()
        verts = model.mesh_vert[model.mesh_vertadr[mesh]:model.mesh_vertadr[mesh] + model.mesh_vertnum[mesh]]
        mj_points = verts @ rot.T + model.geom_pos[g]
        usd_points = np.array(UsdGeom.Mesh(prim).GetPointsAttr().Get(), dtype=np.float64)
        dist = np.linalg.norm(usd_points[:, None] - mj_points[None], axis=2)
        assert dist.min(axis=1).max() < TOL and dist.min(axis=0).max() < TOL
        # the USD faces close the hull: the same volume as the hull MuJoCo collides with
        faces = np.array(UsdGeom.Mesh(prim).GetFaceVertexIndicesAttr().Get()).reshape(-1, 3)
        assert trimesh.Trimesh(usd_points, faces).volume == pytest.approx(mustard.collision_parts[i].volume, rel=1e-5)
    visual = UsdGeom.Mesh(stage.GetPrimAtPath("/Object/visual"))
    assert not visual.GetPrim().HasAPI(UsdPhysics.CollisionAPI)
    np.testing.assert_allclose(np.array(visual.GetPointsAttr().Get()), mustard.mesh.vertices, atol=TOL)


def test_labels_and_physics_parse(exported, capfd):
    stage, _ = exported
    prim = stage.GetPrimAtPath("/Object")
    assert prim.GetAttribute("semantics:labels:class").Get() == ["006_mustard_bottle"]
    assert prim.GetAttribute("semantics:labels:dexycb_id").Get() == ["5"]
    capfd.readouterr()
    counts = parse_physics(stage)
    out, err = capfd.readouterr()
    assert "warning" not in (out + err).lower(), err
    assert counts["RigidBody"] == 1 and counts["MeshShape"] == len(stage.GetPrimAtPath("/Object/collision").GetChildren())


def test_a_hull_set_that_is_not_the_meshs_is_refused_before_writing(mustard, tmp_path):
    moved = tuple(h.copy().apply_translation([0.5, 0.0, 0.0]) for h in mustard.collision_parts)
    out = tmp_path / "bad.usda"
    with pytest.raises(AssetError, match="does not match its mesh"):
        export_object(out, replace(mustard, collision_parts=moved))
    assert list(tmp_path.iterdir()) == []


def test_a_users_mesh_keeps_its_name_and_the_other_object_id(tmp_path, monkeypatch):
    from pam_engine.conventions import SEG_OTHER_OBJECT

    monkeypatch.setenv("PAM_CACHE_DIR", str(tmp_path / "cache"))
    box = trimesh.creation.box([0.06, 0.04, 0.1])
    box.apply_translation([0.0, 0.0, 0.05])
    box.export(tmp_path / "my_box.stl")
    asset = load_object(tmp_path / "my_box.stl")
    export_object(tmp_path / "box.usda", tmp_path / "my_box.stl")  # a path is loaded as load_object does
    stage = Usd.Stage.Open(str(tmp_path / "box.usda"))
    prim = stage.GetPrimAtPath("/Object")
    assert prim.GetAttribute("semantics:labels:class").Get() == ["my_box"]
    assert prim.GetAttribute("semantics:labels:dexycb_id").Get() == [str(SEG_OTHER_OBJECT)]
    assert UsdPhysics.MassAPI(prim).GetMassAttr().Get() == pytest.approx(asset.mass, rel=1e-6)
    assert asset.mass == pytest.approx(0.06 * 0.04 * 0.1 * asset.density, rel=1e-6)
