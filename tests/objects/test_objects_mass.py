"""Mass properties from a density, the open-mesh rule, and user files of every kind."""

import numpy as np
import pytest
import trimesh

from pam_engine.conventions import SEG_OTHER_OBJECT
from pam_engine.errors import AssetError
from pam_engine.objects import DEFAULT_DENSITY, load_object
from pam_engine.objects.inertia import check_inertia, mass_properties


def _box_inertia(mass, size):
    x, y, z = size
    return mass / 12 * np.diag([y * y + z * z, x * x + z * z, x * x + y * y])


def test_closed_box_matches_the_analytic_solid(tmp_path, no_coacd, monkeypatch):
    # a box is convex: seed the cache-free path by giving CoACD nothing to do (one part)
    from pam_engine.objects import collision

    monkeypatch.setattr(collision, "run_coacd", lambda mesh, config: [np.asarray(mesh.vertices)])
    size = (0.04, 0.06, 0.1)
    box = trimesh.creation.box(size)
    box.apply_translation([0.01, 0.02, 0.05])  # base at z=0, off-centre: the frame must be kept
    path = tmp_path / "box.ply"
    box.export(path)
    asset = load_object(path, density=800.0)
    mass = 800.0 * np.prod(size)
    assert asset.mass == pytest.approx(mass, rel=1e-6)
    assert asset.com == pytest.approx([0.01, 0.02, 0.05], abs=1e-9)
    np.testing.assert_allclose(asset.inertia, _box_inertia(mass, size), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(asset.mesh.bounds, box.bounds, atol=1e-7)  # not recentred
    assert asset.name == "box" and asset.seg_id == SEG_OTHER_OBJECT and asset.source == str(path)
    assert asset.volume == pytest.approx(np.prod(size)) and asset.density == 800.0


def test_default_density_and_mass_override(u_path, u_mesh, shared_cache):
    default = load_object(u_path, cache_dir=shared_cache)
    assert default.density == DEFAULT_DENSITY
    assert default.mass == pytest.approx(DEFAULT_DENSITY * u_mesh.volume, rel=1e-5)
    heavy = load_object(u_path, mass=0.25, cache_dir=shared_cache)
    assert heavy.mass == pytest.approx(0.25)
    assert heavy.density == pytest.approx(0.25 / u_mesh.volume, rel=1e-5)
    np.testing.assert_allclose(heavy.inertia, default.inertia * 0.25 / default.mass, rtol=1e-9)
    np.testing.assert_allclose(heavy.com, default.com)


def test_scale_multiplies_the_mesh_and_mass(u_path, shared_cache):
    one = load_object(u_path, cache_dir=shared_cache)
    two = load_object(u_path, scale=2.0, cache_dir=shared_cache)
    np.testing.assert_allclose(two.mesh.vertices, 2 * one.mesh.vertices, atol=1e-9)
    assert two.mass == pytest.approx(8 * one.mass, rel=1e-6) and two.scale == 2.0
    np.testing.assert_allclose(two.inertia, 32 * one.inertia, rtol=1e-6)


def test_open_mesh_takes_its_volume_from_the_collision_parts(u_mesh):
    open_u = u_mesh.copy()
    open_u.update_faces(np.arange(len(open_u.faces)) != 0)  # punch a hole: no longer watertight
    assert not open_u.is_watertight
    parts = [trimesh.creation.box([0.06, 0.02, 0.02]), trimesh.creation.box([0.02, 0.04, 0.02])]
    parts[0].apply_translation([0.03, 0.01, 0.01])
    parts[1].apply_translation([0.01, 0.04, 0.01])
    props = mass_properties(open_u, parts, 1000.0, "u")
    assert props.volume_source == "collision"
    assert props.mass == pytest.approx(1000.0 * (0.06 * 0.02 * 0.02 + 0.02 * 0.04 * 0.02))
    # the combined tensor equals integrating the two boxes as one closed mesh
    union = trimesh.util.concatenate(parts)
    whole = trimesh.triangles.mass_properties(union.triangles, density=1000.0)
    np.testing.assert_allclose(props.com, whole.center_mass, atol=1e-12)
    np.testing.assert_allclose(props.inertia, whole.inertia, rtol=1e-9, atol=1e-15)
    assert mass_properties(u_mesh, parts, 1000.0, "u").volume_source == "mesh"


def test_inertia_checks_reject_what_mujoco_rejects():
    check_inertia(np.diag([1.0, 1.0, 1.5]), "ok")
    with pytest.raises(AssetError, match="positive definite"):
        check_inertia(np.diag([1.0, -1.0, 1.0]), "x")
    with pytest.raises(AssetError, match="A \\+ B >= C"):
        check_inertia(np.diag([1.0, 1.0, 3.0]), "x")
    with pytest.raises(AssetError, match="symmetric"):
        check_inertia(np.array([[1.0, 0.5, 0], [0, 1, 0], [0, 0, 1]]), "x")


def test_glb_scene_is_flattened_with_its_transforms(tmp_path, monkeypatch):
    from pam_engine.objects import collision

    monkeypatch.setattr(collision, "run_coacd", lambda mesh, config: [np.asarray(mesh.vertices)])
    scene = trimesh.Scene()
    shift = trimesh.transformations.translation_matrix([0.1, 0, 0])
    scene.add_geometry(trimesh.creation.box([0.02] * 3), transform=shift)
    scene.add_geometry(trimesh.creation.box([0.02] * 3))
    path = tmp_path / "pair.glb"
    scene.export(path)
    asset = load_object(path, scale=0.5)
    assert len(asset.mesh.faces) == 24  # both boxes
    np.testing.assert_allclose(asset.mesh.bounds, [[-0.005] * 3, [0.055, 0.005, 0.005]], atol=1e-7)
    assert asset.mass == pytest.approx(DEFAULT_DENSITY * 2 * 0.01**3, rel=1e-5)


def test_obj_and_stl_user_files_load_alike(tmp_path, u_mesh, u_path, shared_cache):
    u_mesh.export(tmp_path / "u.obj")
    a, b = load_object(tmp_path / "u.obj", cache_dir=shared_cache), load_object(str(u_path), cache_dir=shared_cache)
    assert a.mass == pytest.approx(b.mass, rel=1e-5)
    np.testing.assert_allclose(a.com, b.com, atol=1e-7)


def test_asset_arrays_are_read_only(u_path, shared_cache):
    asset = load_object(u_path, cache_dir=shared_cache)
    with pytest.raises(ValueError):
        asset.com[0] = 1.0
    with pytest.raises(ValueError):
        asset.inertia[0, 0] = 1.0
