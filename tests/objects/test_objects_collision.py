"""Convex decomposition (real CoACD on a small concave mesh) and its disk cache."""

import numpy as np
import pytest
import trimesh

from pam_engine.objects import CollisionConfig, load_object
from pam_engine.objects import hull_store
from pam_engine.objects.collision import clean_hulls, hull_of, reduce_points


def _cache_files(folder):
    return sorted(folder.glob("*.npz")) if folder.exists() else []


def test_u_shape_gap_stays_free_in_the_decomposition(u_path, u_gap_point, count_coacd):
    asset = load_object(u_path)
    assert count_coacd == [len(asset.mesh.vertices)]
    assert len(asset.collision_parts) >= 3  # two arms and a base at least
    for hull in asset.collision_parts:
        assert hull.is_convex and hull.is_watertight and hull.volume > 0
        assert 4 <= len(hull.vertices) <= CollisionConfig().max_hull_vertices
    assert asset.mesh.convex_hull.contains([u_gap_point])[0]
    assert not any(h.contains([u_gap_point])[0] for h in asset.collision_parts)
    # the parts cover the U: their total volume is close to the U's
    assert sum(h.volume for h in asset.collision_parts) == pytest.approx(asset.mesh.volume, rel=0.05)


def test_second_load_reads_the_cache_instead_of_running_coacd(u_path, isolated_cache, count_coacd):
    first = load_object(u_path)
    assert len(count_coacd) == 1 and len(_cache_files(isolated_cache)) == 1
    second = load_object(u_path)
    assert len(count_coacd) == 1  # no second CoACD run
    assert len(second.collision_parts) == len(first.collision_parts)
    for a, b in zip(first.collision_parts, second.collision_parts):
        np.testing.assert_allclose(a.vertices, b.vertices, atol=1e-6)  # float32 storage


def test_cache_dir_argument_overrides_the_environment(u_path, tmp_path, isolated_cache, count_coacd):
    folder = tmp_path / "explicit"
    load_object(u_path, cache_dir=folder)
    assert len(_cache_files(folder)) == 1 and not _cache_files(isolated_cache)
    load_object(u_path, cache_dir=folder)
    assert len(count_coacd) == 1


def test_default_cache_dir_follows_pam_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PAM_CACHE_DIR", str(tmp_path / "root"))
    assert hull_store.default_cache_dir() == tmp_path / "root" / "collision"
    monkeypatch.delenv("PAM_CACHE_DIR")
    assert hull_store.default_cache_dir().parts[-3:] == (".cache", "pam_engine", "collision")


def test_corrupt_cache_file_is_recomputed_and_replaced(u_path, isolated_cache, count_coacd):
    load_object(u_path)
    (path,) = _cache_files(isolated_cache)
    path.write_bytes(b"PK\x03\x04 truncated")
    asset = load_object(u_path)
    assert len(count_coacd) == 2 and len(asset.collision_parts) >= 3
    with np.load(path) as data:  # rewritten with valid hulls
        assert data["counts"].sum() == len(data["verts"])


def test_inconsistent_cache_arrays_are_recomputed(u_path, isolated_cache, count_coacd):
    load_object(u_path)
    (path,) = _cache_files(isolated_cache)
    np.savez(path, verts=np.zeros((5, 3), np.float32), counts=np.array([9], np.int32))
    load_object(u_path)
    assert len(count_coacd) == 2


def test_cache_key_depends_on_mesh_scale_and_config(u_mesh):
    base = hull_store.cache_key(u_mesh, 1.0, CollisionConfig())
    assert base == hull_store.cache_key(u_mesh.copy(), 1.0, CollisionConfig())
    assert base != hull_store.cache_key(u_mesh, 2.0, CollisionConfig())
    assert base != hull_store.cache_key(u_mesh, 1.0, CollisionConfig(threshold=0.1))
    moved = u_mesh.copy()
    moved.apply_translation([0.001, 0, 0])
    assert base != hull_store.cache_key(moved, 1.0, CollisionConfig())


def test_scaled_load_is_a_separate_cache_entry(u_path, isolated_cache, count_coacd):
    small = load_object(u_path)
    large = load_object(u_path, scale=2.0)
    assert len(count_coacd) == 2 and len(_cache_files(isolated_cache)) == 2
    assert large.mesh.extents == pytest.approx(2 * small.mesh.extents)
    def biggest(asset):
        return max(np.max(h.extents) for h in asset.collision_parts)

    assert biggest(large) > 1.5 * biggest(small)


def test_cache_write_is_atomic(tmp_path, monkeypatch):
    """A write that fails half-way leaves neither a partial file nor a temporary one."""
    path = tmp_path / "cache" / "entry.npz"
    box = trimesh.creation.box([0.02] * 3).vertices
    hulls = clean_hulls([box, box + 0.1], 64, "u")

    def broken_savez(file, **arrays):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        hull_store.write_cached(path, hulls)
    assert list(path.parent.iterdir()) == []
    monkeypatch.undo()
    hull_store.write_cached(path, hulls)
    assert [p.name for p in path.parent.iterdir()] == ["entry.npz"]
    assert len(hull_store.read_cached(path, CollisionConfig(), "u")) == 2


def test_unwritable_cache_warns_but_loads(u_path, tmp_path, count_coacd):
    blocker = tmp_path / "file_not_dir"
    blocker.write_text("x")
    with pytest.warns(UserWarning, match="could not write collision cache"):
        asset = load_object(u_path, cache_dir=blocker)
    assert len(asset.collision_parts) >= 3


def test_big_hulls_are_reduced_to_the_vertex_cap_and_keep_their_shape():
    # a scan-like rounded box (superellipsoid, exponent 8), 20 x 15 x 5 cm, 2562 hull vertices
    unit = trimesh.creation.icosphere(subdivisions=4).vertices
    q = np.sign(unit) * np.abs(unit) ** 0.25
    points = q / (np.sum(np.abs(q) ** 8, axis=1) ** 0.125)[:, None] * np.array([0.1, 0.075, 0.025])
    full = trimesh.convex.convex_hull(points)
    assert len(full.vertices) > 1000
    hull = hull_of(points, 64)
    assert hull is not None and len(hull.vertices) <= 64 and hull.is_convex
    # every original vertex stays within 3 mm of the reduced hull; evenly spread (farthest-point)
    # vertices would cut the rounded edges by ~12 mm here
    offsets = np.einsum("ij,ij->i", hull.face_normals, hull.triangles[:, 0])
    assert (full.vertices @ hull.face_normals.T - offsets).max(axis=1).max() < 3e-3
    assert len(reduce_points(points, 10)) == 10


def test_degenerate_parts_are_dropped():
    flat = np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0], [0.1, 0.1, 0]], float)
    assert hull_of(flat, 64) is None
    assert hull_of(flat[:3], 64) is None
    cube = trimesh.creation.box([0.02] * 3).vertices
    assert len(clean_hulls([flat, cube], 64, "x")) == 1
    with pytest.raises(Exception, match="no usable"):
        clean_hulls([flat], 64, "x")
