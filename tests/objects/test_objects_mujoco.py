"""Objects in a MuJoCo model: groups, explicit inertia, the object frame, and a drop test."""

import dataclasses

import mujoco
import numpy as np
import pytest

from pam_engine.objects import load_object
from pam_engine.sim.mujoco.objects import add_object_to_spec
from pam_engine.sim.mujoco.objects import COLLISION_GROUP, VISUAL_GROUP


@pytest.fixture(scope="module")
def mug():
    return load_object("025_mug")


def _scene(asset, pos, quat=(1.0, 0.0, 0.0, 0.0)):
    spec = mujoco.MjSpec()
    spec.option.timestep = 0.002
    floor = spec.worldbody.add_geom()
    floor.type = mujoco.mjtGeom.mjGEOM_PLANE
    floor.size = [1.0, 1.0, 0.1]
    add_object_to_spec(spec, asset, "obj", pos=pos, quat=quat)
    model = spec.compile()
    return model, mujoco.MjData(model)


def _geoms(model, body, group):
    return [g for g in range(model.ngeom) if model.geom_bodyid[g] == body and model.geom_group[g] == group]


def _world_vertices(model, data, geom):
    mesh = model.geom_dataid[geom]
    start, count = model.mesh_vertadr[mesh], model.mesh_vertnum[mesh]
    local = model.mesh_vert[start:start + count]
    return data.geom_xpos[geom] + local @ data.geom_xmat[geom].reshape(3, 3).T


def test_compiled_body_has_the_assets_mass_com_and_inertia(mug):
    model, data = _scene(mug, pos=(0.0, 0.0, 0.2))
    body = model.body("obj").id
    assert model.body_mass[body] == pytest.approx(mug.mass, rel=1e-6)
    np.testing.assert_allclose(model.body_ipos[body], mug.com, atol=1e-9)
    np.testing.assert_allclose(np.sort(model.body_inertia[body]), np.linalg.eigvalsh(mug.inertia), rtol=1e-6)
    joint = model.body("obj").jntadr[0]
    assert model.body("obj").jntnum[0] == 1 and model.jnt_type[joint] == mujoco.mjtJoint.mjJNT_FREE


def test_visual_geom_never_collides_and_hulls_do(mug):
    model, _ = _scene(mug, pos=(0.0, 0.0, 0.2))
    body = model.body("obj").id
    (visual,) = _geoms(model, body, VISUAL_GROUP)
    assert model.geom_contype[visual] == 0 and model.geom_conaffinity[visual] == 0
    hulls = _geoms(model, body, COLLISION_GROUP)
    assert len(hulls) == len(mug.collision_parts)
    assert all(model.geom_contype[g] == 1 and model.geom_conaffinity[g] == 1 for g in hulls)
    assert all(model.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH for g in hulls + [visual])


def test_body_frame_is_the_object_frame(mug):
    """MuJoCo recentres mesh data internally; the geoms must still sit where the file puts them."""
    pos = np.array([0.1, -0.2, 0.3])
    quat = np.array([np.cos(0.3), 0.0, 0.0, np.sin(0.3)])  # 0.6 rad about z
    model, data = _scene(mug, pos=pos, quat=quat)
    mujoco.mj_forward(model, data)
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, quat)
    expected = pos + mug.mesh.vertices @ rot.reshape(3, 3).T
    (visual,) = _geoms(model, model.body("obj").id, VISUAL_GROUP)
    got = _world_vertices(model, data, visual)
    np.testing.assert_allclose(np.sort(got, axis=0), np.sort(expected, axis=0), atol=1e-5)


def test_dropped_mug_comes_to_rest_on_the_plane(mug):
    model, data = _scene(mug, pos=(0.0, 0.0, 0.05))
    hulls = _geoms(model, model.body("obj").id, COLLISION_GROUP)
    for _ in range(1000):  # 2 s
        mujoco.mj_step(model, data)
        assert np.isfinite(data.qpos).all() and np.isfinite(data.qvel).all()
    assert np.linalg.norm(data.qvel) < 1e-2  # at rest
    lowest = min(_world_vertices(model, data, g)[:, 2].min() for g in hulls)
    assert -2e-3 < lowest < 2e-3  # on the plane: neither sunk into it nor hovering
    assert data.qpos[2] == pytest.approx(0.0, abs=3e-3)  # base at z~0 in the file frame, upright


def test_two_objects_in_one_spec_get_distinct_names(mug):
    spec = mujoco.MjSpec()
    add_object_to_spec(spec, mug, "a", pos=(0, 0, 0.1))
    add_object_to_spec(spec, mug, "b", pos=(0.2, 0, 0.1), free=False)
    model = spec.compile()
    assert model.nbody == 3 and model.njnt == 1
    assert model.body("b").mass[0] == pytest.approx(mug.mass)


def _contacts_with_probe(asset, probe_pos, fromto, radius):
    """Number of contacts between a static capsule (a finger stand-in) and the object."""
    spec = mujoco.MjSpec()
    add_object_to_spec(spec, asset, "obj")  # free: MuJoCo never collides two static bodies
    probe = spec.worldbody.add_geom()
    probe.name = "probe"
    probe.type = mujoco.mjtGeom.mjGEOM_CAPSULE
    probe.fromto = np.concatenate([np.asarray(probe_pos) + fromto[0], np.asarray(probe_pos) + fromto[1]])
    probe.size = [radius, 0.0, 0.0]
    model = spec.compile()
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    probe_id = model.geom("probe").id
    return sum(probe_id in (c.geom1, c.geom2) for c in data.contact[: data.ncon])


def test_a_finger_fits_through_the_mug_handle_but_not_through_one_convex_hull(mug):
    """The decomposition leaves the handle's hole open to a 5 mm-radius capsule threaded through
    it; a single convex hull fills the hole."""
    hole, through = (0.031, 0.0, 0.042), ([0.0, -0.01, 0.0], [0.0, 0.05, 0.0])
    assert _contacts_with_probe(mug, hole, through, 0.005) == 0
    single = dataclasses.replace(mug, collision_parts=(mug.mesh.convex_hull,))
    assert _contacts_with_probe(single, hole, through, 0.005) > 0


def test_a_finger_fits_into_the_bowl_but_not_into_one_convex_hull():
    bowl = load_object("024_bowl")
    centre, down = (-0.015, -0.044, 0.0), ([0.0, 0.0, 0.025], [0.0, 0.0, 0.07])
    assert _contacts_with_probe(bowl, centre, down, 0.01) == 0
    single = dataclasses.replace(bowl, collision_parts=(bowl.mesh.convex_hull,))
    assert _contacts_with_probe(single, centre, down, 0.01) > 0
