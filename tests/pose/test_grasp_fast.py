"""The fast paths of grasp synthesis: the signed-distance grid against trimesh's exact distance,
batched hand kinematics and contacts against MuJoCo's, batched evaluation against one candidate
at a time, and the force-closure pruning against scoring every grasp."""

import mujoco
import numpy as np
import pytest
import trimesh
from scipy.spatial import ConvexHull
from scipy.spatial.transform import Rotation

from pam_engine.pose import ObjectSpec
from pam_engine.pose.grasp import synthesis as S
from pam_engine.pose.grasp.batched import Obstacles, evaluate_batched, object_parts
from pam_engine.pose.grasp.hand_geometry import HandGeometry
from pam_engine.pose.grasp.sdf import SDFConfig, build_sdf, cached_sdf
from pam_engine.pose.request import Stage1Config
from pam_engine.pose.setup import build_scene, load_objects, place_objects, settle

OBJECT = "061_foam_brick"


def _parts():
    """Three overlapping convex pieces: a box, a tilted box and an octahedron."""
    box = trimesh.creation.box(extents=[0.06, 0.04, 0.03]).vertices
    tilted = trimesh.creation.box(extents=[0.02, 0.09, 0.02])
    tilted.apply_transform(trimesh.transformations.rotation_matrix(0.5, [1, 0, 0]))
    octa = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]]) * 0.025 + [0.04, 0.0, 0.02]
    return [np.asarray(box), np.asarray(tilted.vertices) + [0.0, 0.0, 0.02], octa]


def _exact(parts, points):
    """Signed distance to the union of the parts' hulls: trimesh's closest point outside, minus
    the depth in the deepest hull inside."""
    meshes = [trimesh.Trimesh(p, ConvexHull(p).simplices) for p in parts]
    _, dist, _ = trimesh.proximity.closest_point(trimesh.util.concatenate(meshes), points)
    depth = np.full(len(points), np.inf)
    for p in parts:
        eq = ConvexHull(p).equations
        depth = np.minimum(depth, (points @ eq[:, :3].T + eq[:, 3]).max(axis=1))
    return np.where(depth <= 0, depth, dist), depth <= 0



def _pose_hand(scene, d, angles, rot, pos) -> None:
    """Put MuJoCo's hand at one placement (finger angles, wrist rotation and position) and run
    its kinematics: the reference the batched hand geometry is compared with."""
    d.qpos[scene.finger_qpos] = angles
    d.mocap_pos[scene.base_mocap] = pos
    d.mocap_quat[scene.base_mocap] = Rotation.from_matrix(rot).as_quat(scalar_first=True)
    mujoco.mj_kinematics(scene.model, d)

def test_signed_distance_grid_agrees_with_trimesh_within_its_tolerance():
    parts = _parts()
    grid = build_sdf(parts, SDFConfig(spacing=0.002, sample=0.001, band=0.03))
    rng = np.random.default_rng(0)
    points = rng.uniform(-0.07, 0.09, size=(4000, 3))
    exact, inside = _exact(parts, points)
    got = grid(points)
    near = ~inside & (exact < grid.band - grid.tolerance)
    assert near.sum() > 500
    err = np.abs(got[near] - exact[near])
    assert err.max() <= grid.tolerance
    assert err.mean() < 0.2 * grid.tolerance  # the worst case is loose; typical errors are small
    assert np.all(got[inside] <= grid.tolerance)  # inside reads (about) negative
    deep = inside & (exact < -grid.tolerance)
    assert deep.any() and np.all(got[deep] < 0)
    far = rng.uniform(0.5, 1.0, size=(10, 3))  # outside the grid: the band
    assert np.all(grid(far) == grid.band)


def test_a_coarser_grid_states_a_larger_tolerance_and_still_meets_it():
    parts = _parts()
    fine, coarse = build_sdf(parts, SDFConfig(spacing=0.002)), build_sdf(parts, SDFConfig(spacing=0.006))
    assert coarse.tolerance > fine.tolerance
    points = np.random.default_rng(1).uniform(-0.07, 0.09, size=(2000, 3))
    exact, inside = _exact(parts, points)
    near = ~inside & (exact < coarse.band - coarse.tolerance)
    assert np.abs(coarse(points[near]) - exact[near]).max() <= coarse.tolerance


def test_the_grid_is_cached_on_disk_and_rebuilt_when_damaged(tmp_path):
    parts = _parts()
    a = cached_sdf(parts, cache_dir=tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    b = cached_sdf(parts, cache_dir=tmp_path)
    assert np.array_equal(a.values, b.values) and b.tolerance == a.tolerance
    files[0].write_bytes(b"damaged")
    c = cached_sdf(parts, cache_dir=tmp_path)
    assert np.array_equal(a.values, c.values)
    moved = [p + 0.001 for p in parts]  # other geometry, other key
    cached_sdf(moved, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_bad_grid_settings_and_parts_are_refused():
    with pytest.raises(ValueError, match="spacing"):
        SDFConfig(spacing=0.0)
    with pytest.raises(ValueError, match="band"):
        SDFConfig(spacing=0.01, band=0.015)
    with pytest.raises(ValueError, match="collision part 0"):
        build_sdf([np.zeros((3, 3))])


@pytest.fixture(scope="module")
def scene():
    cfg = Stage1Config()
    specs = [ObjectSpec(OBJECT)]
    assets = load_objects(specs)
    scene = build_scene(assets, place_objects(assets, specs, np.random.default_rng(0), 0.0), cfg)
    settle(scene, cfg)
    return scene


def _placements(scene, n, seed):
    """Random hand configurations around the object, some touching it, some the table."""
    rng = np.random.default_rng(seed)
    art = scene.articulation
    angles = rng.uniform(art.lower, art.upper, size=(n, art.size))
    rot = Rotation.random(n, random_state=seed).as_matrix()
    centre = scene.object_pose(0)[:3, 3]
    pos = centre + rng.normal(scale=0.06, size=(n, 3))
    return angles, rot, pos


def test_batched_kinematics_equal_mujoco(scene):
    hand = HandGeometry(scene)
    angles, rot, pos = _placements(scene, 6, 0)
    wpos, wmat = hand.world(hand.geom_frames(angles), rot, pos)
    m, d = scene.model, mujoco.MjData(scene.model)
    for i in range(len(angles)):
        _pose_hand(scene, d, angles[i], rot[i], pos[i])
        assert np.allclose(d.geom_xpos[hand.geoms], wpos[i], atol=1e-12)
        assert np.allclose(d.geom_xmat[hand.geoms].reshape(-1, 3, 3), wmat[i], atol=1e-12)


def test_grid_contacts_agree_with_mujoco_away_from_the_surface(scene):
    """Where MuJoCo's exact distance between a hand geom and the object is clearly positive or
    clearly negative, the grid-based contact test says the same."""
    synth = S.GraspSynthesizer(scene, 0)
    m = scene.model
    obstacles = Obstacles(synth, m.geom_contype.copy(), m.geom_conaffinity.copy())
    hand = obstacles.hand
    angles, rot, pos = _placements(scene, 60, 1)
    touch = hand.touch_object(hand.world(hand.geom_frames(angles), rot, pos), obstacles.grids[0], obstacles.poses[0])
    d = mujoco.MjData(m)
    object_geoms = [g for g in np.flatnonzero(scene.geom_object == 0) if m.geom_contype[g] or m.geom_conaffinity[g]]
    margin = 0.003  # the grid's error is a few tenths of a mm; capsule axes are sampled every 6 mm
    checked = agreed = touching = 0
    fromto = np.zeros(6)
    for i in range(len(angles)):
        _pose_hand(scene, d, angles[i], rot[i], pos[i])
        for j, g in enumerate(hand.geoms):
            dist = min(mujoco.mj_geomDistance(m, d, int(g), int(o), 0.05, fromto) for o in object_geoms)
            if abs(dist) < margin:
                continue
            checked += 1
            touching += dist < 0
            agreed += bool(touch[i, j]) == bool(dist < 0)
    assert checked > 300 and touching > 10
    assert agreed >= 0.995 * checked  # the palm's surface is sampled every 8 mm: a rare sliver slips through


def test_table_contact_agrees_with_mujoco(scene):
    hand = HandGeometry(scene)
    angles, rot, pos = _placements(scene, 80, 2)
    pos[:, 2] = np.random.default_rng(3).uniform(-0.02, 0.12, len(pos))  # near the table top
    world = hand.world(hand.geom_frames(angles), rot, pos)
    touch = hand.touch_table(world)
    m, d = scene.model, mujoco.MjData(scene.model)
    fromto = np.zeros(6)
    checked = touching = 0
    for i in range(len(angles)):
        _pose_hand(scene, d, angles[i], rot[i], pos[i])
        for j, g in enumerate(hand.geoms):
            if world[0][i, j, 2] < -0.02 + m.geom_rbound[g]:
                continue  # the table is a 4 cm slab: from below a geom is clear of it, but the plane says "under the top"
            dist = mujoco.mj_geomDistance(m, d, int(g), int(scene.table_geom), 0.05, fromto)
            if abs(dist) < 1e-6:
                continue
            checked += 1
            touching += dist < 0
            assert bool(touch[i, j]) == bool(dist < 0), (i, j, dist)
    assert checked > 300 and touching > 20


def _candidates(synth, scene):
    pose = scene.object_pose(0)
    geo = synth.geometry(pose)
    synth.families = tuple(S.fam.choose_families(geo, synth._span))
    return list(synth._candidates(pose, geo)), pose


def _with_planning_collisions(synth, scene):
    m = scene.model
    synth._saved_contype, synth._saved_conaffinity = m.geom_contype.copy(), m.geom_conaffinity.copy()
    objects = (scene.geom_part < 0) & (scene.geom_object >= 0)
    m.geom_contype[objects], m.geom_conaffinity[objects] = 0, 2
    scene.data.qpos[scene.wrist_qpos] = 0.0


def _restore(synth, scene):
    scene.model.geom_contype[:], scene.model.geom_conaffinity[:] = synth._saved_contype, synth._saved_conaffinity


def _same(a, b):
    if isinstance(a, tuple) or isinstance(b, tuple):
        return a == b
    return (a.family == b.family and np.array_equal(a.wrist, b.wrist) and np.array_equal(a.angles, b.angles)
            and np.array_equal(a.squeeze, b.squeeze) and np.array_equal(a.parts, b.parts)
            and np.array_equal(a.points, b.points))


def test_batched_evaluation_equals_one_candidate_at_a_time(scene):
    synth = S.GraspSynthesizer(scene, 0, S.GraspSynthesisConfig(seed=3))
    cands, pose = _candidates(synth, scene)
    picked = cands[::17][:24]  # a spread of directions, rolls and pre-shapes
    _with_planning_collisions(synth, scene)
    try:
        together = evaluate_batched(synth, picked, pose)
        alone = [evaluate_batched(synth, [c], pose)[0] for c in picked]
    finally:
        _restore(synth, scene)
    closed = sum(not isinstance(r, tuple) for r in together)
    assert closed >= 5 and closed < len(picked)  # some close, some are rejected
    for a, b in zip(together, alone):
        if not isinstance(a, tuple):
            b.index = a.index
        assert _same(a, b)


def test_quality_pruning_keeps_exactly_the_best_of_each_family(scene):
    synth = S.GraspSynthesizer(scene, 0, S.GraspSynthesisConfig(seed=4))
    cands, pose = _candidates(synth, scene)
    _with_planning_collisions(synth, scene)
    try:
        records = [r for r in synth.evaluate(cands[::2], pose) if not isinstance(r, tuple) and r.parts.sum() >= 2]
    finally:
        _restore(synth, scene)
    asset = scene.objects[0].asset
    com = pose[:3, :3] @ np.asarray(asset.com) + pose[:3, 3]
    extent = np.ptp(np.asarray(asset.mesh.vertices), axis=0).max() / 2
    count = 5
    chosen = S.select_by_quality(records, com, extent, 0.8, 6, count)
    full = {}
    for r in records:
        if len(r.points) < 2:
            full[r.index] = (0.0, 1.0)
            continue
        w = S.contact_wrenches(r.points, r.normals, com, extent, 0.8, 6)
        q = S.epsilon(w)
        assert max(S.epsilon_bound(w), 0.0) >= q - 1e-12 and max(S.epsilon_bound(w, refine=30), 0.0) >= q - 1e-12
        full[r.index] = (q, float(np.linalg.norm(r.points.mean(axis=0) - com)))
    assert len(chosen) < len(full)  # some were pruned

    def best(values):
        key = {i: (values[i][0] <= 0, -(10 * values[i][0] + 0.3 * r.parts.sum() + 0.5 * r.parts[0] - 10 * values[i][1]))
               for r in records for i in [r.index] if i in values}
        return sorted(key, key=lambda i: (key[i], i))[:count]

    assert best(chosen) == best(full)
    for i in best(full):
        assert chosen[i] == full[i]


def test_an_unknown_search_is_refused_naming_the_key():
    from dataclasses import replace

    from pam_engine.errors import ConfigError
    from pam_engine.pose.request import check_stage1

    cfg = Stage1Config()
    with pytest.raises(ConfigError, match="synthesis.search"):
        check_stage1(replace(cfg, synthesis=replace(cfg.synthesis, search="fastest")))
