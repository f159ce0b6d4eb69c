"""A second physics engine: the hand and an object USD loaded into Newton (``ModelBuilder.add_usd``,
CPU) agree with MuJoCo: forward kinematics, joint targets held for 1 s (through Newton's MuJoCo-Warp
solver and through its own Featherstone solver), the 21 keypoints.

Runs in the Newton environment only (``tools/make_isaac_env.sh`` builds ``.venv-isaac``;
``.ci/run`` runs ``pytest -m newton`` there); elsewhere the module is skipped. Both engines run
in that environment (its MuJoCo is Newton's pinned 3.12), so nothing here is pinned to the main
environment's MuJoCo results.
"""

import warnings

import mujoco
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pam_engine.sim.rig import build_rig, keypoints_from_bones
from pam_engine.objects import load_object
from pam_engine.usd import export_hand, export_object

pytestmark = pytest.mark.newton
newton = pytest.importorskip("newton")
wp = pytest.importorskip("warp")

DT = 1.0 / 420.0  # the MuJoCo scene's physics step (SceneConfig defaults)
OBJECT_AT = (0.3, 0.0, 0.1)


@pytest.fixture(scope="module")
def engines(builtin_hand, tmp_path_factory):
    hand, art = builtin_hand
    folder = tmp_path_factory.mktemp("newton")
    export_hand(folder / "hand.usda", hand, art)
    asset = load_object("006_mustard_bottle")
    export_object(folder / "mustard.usda", asset)
    builder = newton.ModelBuilder(gravity=(0.0, 0.0, 0.0))  # the MuJoCo hand is gravity compensated
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # e.g. inertia corrections: the masses must arrive as written
        builder.add_usd(str(folder / "hand.usda"), enable_self_collisions=False, load_visual_shapes=False)
        builder.add_usd(str(folder / "mustard.usda"), xform=wp.transform(OBJECT_AT, wp.quat_identity()),
                        load_visual_shapes=False)
        model = builder.finalize(device="cpu")

    spec = mujoco.MjSpec()
    spec.compiler.degree = False
    from pam_engine.sim.mujoco.hand_builder import add_hand

    add_hand(spec, hand, art)
    spec.option.timestep = DT
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.gravity = [0.0, 0.0, 0.0]
    mj = spec.compile()
    return model, mj, asset, hand, art


def joint_slots(model):
    """Joint name -> Newton coordinate index, for the 1-DoF joints."""
    starts = model.joint_q_start.numpy()
    return {label.rsplit("/", 1)[-1]: int(starts[j]) for j, label in enumerate(model.joint_label)}


def bone_index(model, name):
    return [label.rsplit("/", 1)[-1] for label in model.body_label].index(name)


def newton_bone_poses(model, body_q, names):
    out = np.zeros((len(names), 4, 4))
    for k, name in enumerate(names):
        q = body_q[bone_index(model, name)]
        out[k, :3, :3] = Rotation.from_quat(q[3:7]).as_matrix()  # Newton: (x, y, z, w)
        out[k, :3, 3] = q[:3]
        out[k, 3, 3] = 1.0
    return out


def mujoco_bone_poses(mj, data, names):
    out = np.zeros((len(names), 4, 4))
    for k, name in enumerate(names):
        b = mujoco.mj_name2id(mj, mujoco.mjtObj.mjOBJ_BODY, name)
        out[k, :3, :3] = data.xmat[b].reshape(3, 3)
        out[k, :3, 3] = data.xpos[b]
        out[k, 3, 3] = 1.0
    return out


def joint_names(mj):
    return [mujoco.mj_id2name(mj, mujoco.mjtObj.mjOBJ_JOINT, j) for j in range(mj.njnt)]


def test_forward_kinematics_agree(engines):
    model, mj, _, hand, art = engines
    rig = build_rig(hand, art)
    slots, names = joint_slots(model), joint_names(mj)
    data = mujoco.MjData(mj)
    rng = np.random.default_rng(0)
    for trial in range(3):
        q = np.zeros(mj.njnt) if trial == 0 else np.concatenate(
            [rng.uniform(-0.1, 0.1, 3), rng.uniform(-0.6, 0.6, 3), rng.uniform(art.lower, art.upper)])
        joint_q = model.joint_q.numpy()
        for name, value in zip(names, q):
            joint_q[slots[name]] = value
        data.qpos[:] = q
        mujoco.mj_kinematics(mj, data)
        state = model.state()
        newton.eval_fk(model, wp.array(joint_q, dtype=float, device="cpu"), model.joint_qd, state)
        ours = newton_bone_poses(model, state.body_q.numpy(), rig.body_names)
        ref = mujoco_bone_poses(mj, data, rig.body_names)
        np.testing.assert_allclose(ours, ref, atol=1e-5)  # float32 state


def test_masses_arrive_in_newton(engines):
    model, mj, asset, hand, art = engines
    mass = model.body_mass.numpy()
    for name in build_rig(hand, art).body_names:
        b = mujoco.mj_name2id(mj, mujoco.mjtObj.mjOBJ_BODY, name)
        assert mass[bone_index(model, name)] == pytest.approx(mj.body_mass[b], rel=1e-6)
    # passive joint damping and armature, per DoF (Newton reads newton:damping per degree)
    starts, names = model.joint_qd_start.numpy(), [label.rsplit("/", 1)[-1] for label in model.joint_label]
    for name in joint_names(mj):
        dof_ours, dof_mj = starts[names.index(name)], mj.jnt_dofadr[mujoco.mj_name2id(mj, mujoco.mjtObj.mjOBJ_JOINT, name)]
        assert model.joint_armature.numpy()[dof_ours] == pytest.approx(mj.dof_armature[dof_mj], rel=1e-6)
        assert model.joint_damping.numpy()[dof_ours] == pytest.approx(mj.dof_damping[dof_mj], rel=1e-5, abs=1e-9)
    k = bone_index(model, "Object")
    assert mass[k] == pytest.approx(asset.mass, rel=1e-6)
    np.testing.assert_allclose(model.body_com.numpy()[k], asset.com, atol=1e-6)
    np.testing.assert_allclose(model.body_inertia.numpy()[k], asset.inertia, rtol=1e-5, atol=1e-6 * np.abs(asset.inertia).max())
    shapes = [s for s in range(model.shape_count) if model.shape_body.numpy()[s] == k]
    assert len(shapes) == len(asset.collision_parts)


@pytest.mark.parametrize("solver_name", ["mujoco_warp", "featherstone"])
def test_joint_targets_held_for_one_second_and_keypoints(engines, solver_name):
    """Newton's MuJoCo-Warp solver (Isaac Lab's Newton path) and its own Featherstone solver."""
    model, mj, _, hand, art = engines
    rig = build_rig(hand, art)
    rng = np.random.default_rng(1)
    targets = np.concatenate([[0.02, -0.01, 0.015, 0.1, -0.05, 0.08],
                              art.lower + rng.uniform(0.3, 0.7, art.size) * (art.upper - art.lower)])
    names, slots = joint_names(mj), joint_slots(model)
    steps = int(round(1.0 / DT))

    data = mujoco.MjData(mj)
    for name, value in zip(names, targets):
        data.ctrl[mujoco.mj_name2id(mj, mujoco.mjtObj.mjOBJ_ACTUATOR, name)] = value
    mujoco.mj_step(mj, data, nstep=steps)
    mujoco.mj_kinematics(mj, data)

    if solver_name == "mujoco_warp":
        solver = newton.solvers.SolverMuJoCo(model, integrator="implicitfast", disable_contacts=True)
    else:  # no contacts are passed: the hand alone, as the MuJoCo reference
        solver = newton.solvers.SolverFeatherstone(model)
    control = model.control()
    target_q = control.joint_target_q.numpy()
    for name, value in zip(names, targets):
        target_q[slots[name]] = value
    control.joint_target_q = wp.array(target_q, dtype=float, device="cpu")
    state_0, state_1 = model.state(), model.state()
    newton.eval_fk(model, model.joint_q, model.joint_qd, state_0)
    for _ in range(steps):
        state_0.clear_forces()
        solver.step(state_0, state_1, control, None, DT)
        state_0, state_1 = state_1, state_0
    reached = state_0.joint_q.numpy()
    ours = np.array([reached[slots[n]] for n in names])
    np.testing.assert_allclose(ours, data.qpos[: mj.njnt], atol=0.01)
    np.testing.assert_allclose(ours, targets, atol=0.01)  # and both held their targets

    newton.eval_fk(model, state_0.joint_q, state_0.joint_qd, state_0)
    keypoints = keypoints_from_bones(hand, rig, newton_bone_poses(model, state_0.body_q.numpy(), rig.body_names))
    reference = keypoints_from_bones(hand, rig, mujoco_bone_poses(mj, data, rig.body_names))
    assert np.abs(keypoints - reference).max() < 1e-3


def test_scene_hand_starts_at_h0_in_newton(builtin_hand, tmp_path):
    """A scene file's hand (anchored at h0's wrist, fingers at h0 through the joints' initial
    state) and object stand in Newton where the MuJoCo scene puts them."""
    from pam_engine.hand.pose import HandPose, make_transform
    from pam_engine.sim.base import PlacedObject, SceneSpec
    from pam_engine.sim.mujoco.scene import HandObjectScene
    from pam_engine.usd import export_scene
    from pam_engine.usd.scene import EpisodeScene

    hand, art = builtin_hand
    rig = build_rig(hand, art)
    rng = np.random.default_rng(2)
    mustard = load_object("006_mustard_bottle")
    o0 = make_transform(Rotation.from_euler("z", 0.4), [0.03, 0.0, 0.001])
    h0 = HandPose(make_transform(Rotation.from_rotvec([0.4, -1.1, 0.2]), [0.0, 0.15, 0.2]), rng.uniform(art.lower, art.upper))
    export_scene(tmp_path / "scene.usda", EpisodeScene(SceneSpec(hand, art, (PlacedObject(mustard, o0),)), h0))
    builder = newton.ModelBuilder()
    builder.add_usd(str(tmp_path / "scene.usda"), load_visual_shapes=False,
                    schema_resolvers=[newton.usd.SchemaResolverNewton(), newton.usd.SchemaResolverPhysx()])
    model = builder.finalize(device="cpu")
    state = model.state()
    newton.eval_fk(model, model.joint_q, model.joint_qd, state)

    sim = HandObjectScene(hand, art, [PlacedObject(mustard, o0)])
    sim.set_base_pose(h0.wrist)
    sim.set_hand_state(h0)
    mujoco.mj_kinematics(sim.model, sim.data)
    ours = newton_bone_poses(model, state.body_q.numpy(), rig.body_names)
    np.testing.assert_allclose(ours, mujoco_bone_poses(sim.model, sim.data, rig.body_names), atol=1e-5)
    obj = newton_bone_poses(model, state.body_q.numpy(), ["object_0"])[0]
    np.testing.assert_allclose(obj, sim.object_pose(0), atol=1e-5)


def test_a_mano_hand_loads_with_its_kinematics_and_masses(mano_hand, tmp_path):
    """A user's MANO (here the synthetic MANO_RIGHT.pkl of the hand tests): the same importer
    gives MuJoCo's forward kinematics and masses for its shape."""
    hand, art = mano_hand
    export_hand(tmp_path / "mano.usda", hand, art)
    builder = newton.ModelBuilder(gravity=(0.0, 0.0, 0.0))
    builder.add_usd(str(tmp_path / "mano.usda"), enable_self_collisions=False, load_visual_shapes=False)
    model = builder.finalize(device="cpu")
    spec = mujoco.MjSpec()
    spec.compiler.degree = False
    from pam_engine.sim.mujoco.hand_builder import add_hand

    add_hand(spec, hand, art)
    mj = spec.compile()
    data = mujoco.MjData(mj)
    rng = np.random.default_rng(4)
    q = np.concatenate([rng.uniform(-0.1, 0.1, 3), rng.uniform(-0.6, 0.6, 3), rng.uniform(art.lower, art.upper)])
    slots, joint_q = joint_slots(model), model.joint_q.numpy()
    for name, value in zip(joint_names(mj), q):
        joint_q[slots[name]] = value
    data.qpos[:] = q
    mujoco.mj_kinematics(mj, data)
    state = model.state()
    newton.eval_fk(model, wp.array(joint_q, dtype=float, device="cpu"), model.joint_qd, state)
    names = build_rig(hand, art).body_names
    np.testing.assert_allclose(newton_bone_poses(model, state.body_q.numpy(), names), mujoco_bone_poses(mj, data, names), atol=1e-5)
    mass = model.body_mass.numpy()
    for name in names:
        assert mass[bone_index(model, name)] == pytest.approx(mj.body_mass[mujoco.mj_name2id(mj, mujoco.mjtObj.mjOBJ_BODY, name)], rel=1e-6)
