"""The hand USD read back with pxr equals the compiled MuJoCo hand, in SI units, to 1e-6."""

import mujoco
import numpy as np
import pytest
from pxr import Usd, UsdGeom, UsdPhysics, UsdSkel
from scipy.spatial.transform import Rotation

from pam_engine.usd import export_hand
from pam_engine.usd.stage import DEG, quat_to_matrix, world_pose

from .conftest import mujoco_hand, parse_physics

TOL = 1e-6


def name(model, kind, i):
    return mujoco.mj_id2name(model, kind, i)


def joint_prims(stage, root="/Hand"):
    scope = stage.GetPrimAtPath(f"{root}/joints")
    return [p for p in scope.GetChildren() if p.GetName() != "hand_root_joint"]


def joint_world_frame(stage, prim):
    """Anchor (3,) and X axis (3,) of a joint in the world, from body0's pose and localPos0/Rot0."""
    joint = UsdPhysics.Joint(prim)
    body0 = stage.GetPrimAtPath(joint.GetBody0Rel().GetTargets()[0])
    pose = world_pose(body0)
    rot0 = quat_to_matrix(joint.GetLocalRot0Attr().Get())
    anchor = pose[:3, :3] @ np.array(joint.GetLocalPos0Attr().Get()) + pose[:3, 3]
    return anchor, pose[:3, :3] @ rot0[:, 0]


@pytest.fixture(scope="module", params=["builtin", "mano"])
def hand_pair(request, tmp_path_factory):
    hand, art = request.getfixturevalue(f"{request.param}_hand")
    path = tmp_path_factory.mktemp("usd") / f"{request.param}.usda"
    export_hand(path, hand, art)
    return Usd.Stage.Open(str(path)), mujoco_hand(hand, art)


def test_joints_match_mujoco(hand_pair):
    stage, (model, data) = hand_pair
    prims = joint_prims(stage)
    assert [p.GetName() for p in prims] == [name(model, mujoco.mjtObj.mjOBJ_JOINT, j) for j in range(model.njnt)]
    for j, prim in enumerate(prims):
        linear = model.jnt_type[j] == mujoco.mjtJoint.mjJNT_SLIDE
        assert prim.IsA(UsdPhysics.PrismaticJoint if linear else UsdPhysics.RevoluteJoint)
        anchor, axis = joint_world_frame(stage, prim)
        np.testing.assert_allclose(anchor, data.xanchor[j], atol=TOL)
        np.testing.assert_allclose(axis, data.xaxis[j], atol=TOL)
        # body1's frame gives the same joint frame
        joint = UsdPhysics.Joint(prim)
        body1 = stage.GetPrimAtPath(joint.GetBody1Rel().GetTargets()[0])
        pose1 = world_pose(body1)
        np.testing.assert_allclose(pose1[:3, :3] @ quat_to_matrix(joint.GetLocalRot1Attr().Get())[:, 0], axis, atol=TOL)
        np.testing.assert_allclose(pose1[:3, :3] @ np.array(joint.GetLocalPos1Attr().Get()) + pose1[:3, 3], anchor, atol=TOL)
        scale = 1.0 if linear else DEG
        typed = (UsdPhysics.PrismaticJoint if linear else UsdPhysics.RevoluteJoint)(prim)
        if model.jnt_limited[j]:
            lo, hi = typed.GetLowerLimitAttr().Get() / scale, typed.GetUpperLimitAttr().Get() / scale
            np.testing.assert_allclose([lo, hi], model.jnt_range[j], atol=TOL)
        else:
            assert typed.GetLowerLimitAttr().Get() is None or np.isinf(typed.GetLowerLimitAttr().Get())
        dof = model.jnt_dofadr[j]
        assert prim.GetAttribute("newton:damping").Get() * scale == pytest.approx(model.dof_damping[dof], abs=TOL)
        assert prim.GetAttribute("physxJoint:armature").Get() == pytest.approx(model.dof_armature[dof], abs=TOL)


def test_drives_match_the_position_servos(hand_pair):
    stage, (model, _) = hand_pair
    for prim in joint_prims(stage):
        linear = prim.IsA(UsdPhysics.PrismaticJoint)
        drive = UsdPhysics.DriveAPI(prim, "linear" if linear else "angular")
        assert drive, prim.GetPath()
        a = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, prim.GetName())
        assert model.actuator_trnid[a, 0] == mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, prim.GetName())
        scale = 1.0 if linear else DEG  # USD angular gains are per degree
        kp, kv = model.actuator_gainprm[a, 0], -model.actuator_biasprm[a, 2]
        assert model.actuator_biasprm[a, 1] == -kp  # a position servo
        assert drive.GetStiffnessAttr().Get() * scale == pytest.approx(kp, rel=TOL)
        assert drive.GetDampingAttr().Get() * scale == pytest.approx(kv, abs=TOL)
        assert drive.GetMaxForceAttr().Get() == pytest.approx(model.actuator_forcerange[a, 1], rel=TOL)


def test_links_carry_mujoco_mass_properties(hand_pair):
    stage, (model, data) = hand_pair
    for b in range(1, model.nbody):
        body = name(model, mujoco.mjtObj.mjOBJ_BODY, b)
        if body == "hand_base":  # MuJoCo's mocap base; in USD the fixed-joint-anchored base link
            continue
        prim = stage.GetPrimAtPath(f"/Hand/{body}")
        assert prim.HasAPI(UsdPhysics.RigidBodyAPI) and prim.HasAPI(UsdPhysics.MassAPI), body
        np.testing.assert_allclose(world_pose(prim)[:3, 3], data.xpos[b], atol=TOL)
        api = UsdPhysics.MassAPI(prim)
        assert api.GetMassAttr().Get() == pytest.approx(model.body_mass[b], rel=TOL)
        np.testing.assert_allclose(api.GetCenterOfMassAttr().Get(), model.body_ipos[b], atol=TOL)
        usd_axes = quat_to_matrix(api.GetPrincipalAxesAttr().Get())
        usd_tensor = usd_axes @ np.diag(api.GetDiagonalInertiaAttr().Get()) @ usd_axes.T
        w, x, y, z = model.body_iquat[b]
        mj_axes = Rotation.from_quat([x, y, z, w]).as_matrix()
        mj_tensor = mj_axes @ np.diag(model.body_inertia[b]) @ mj_axes.T
        np.testing.assert_allclose(usd_tensor, mj_tensor, rtol=1e-5, atol=TOL * model.body_inertia[b].max())
        np.testing.assert_allclose(api.GetDiagonalInertiaAttr().Get(), model.body_inertia[b], rtol=1e-6)


def test_colliders_match_mujoco_geometry(hand_pair):
    stage, (model, _) = hand_pair
    seen = 0
    for g in range(model.ngeom):
        geom = name(model, mujoco.mjtObj.mjOBJ_GEOM, g)
        body = name(model, mujoco.mjtObj.mjOBJ_BODY, model.geom_bodyid[g])
        prim = stage.GetPrimAtPath(f"/Hand/{body}/{geom}")
        assert prim.HasAPI(UsdPhysics.CollisionAPI), geom
        local = np.array(UsdGeom.Xformable(prim).GetLocalTransformation(), dtype=np.float64).T
        w, x, y, z = model.geom_quat[g]
        mj_rot = Rotation.from_quat([x, y, z, w]).as_matrix()
        if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_CAPSULE:
            cap = UsdGeom.Capsule(prim)
            assert cap.GetAxisAttr().Get() == "Z"
            assert cap.GetRadiusAttr().Get() == pytest.approx(model.geom_size[g, 0], abs=TOL)
            assert cap.GetHeightAttr().Get() / 2 == pytest.approx(model.geom_size[g, 1], abs=TOL)
            np.testing.assert_allclose(local[:3, 3], model.geom_pos[g], atol=TOL)
            sign = np.sign(local[:3, 2] @ mj_rot[:, 2])  # a capsule is symmetric: its axis is up to sign
            np.testing.assert_allclose(sign * local[:3, 2], mj_rot[:, 2], atol=TOL)
        else:
            assert model.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH
            assert UsdPhysics.MeshCollisionAPI(prim).GetApproximationAttr().Get() == "convexHull"
            mesh = model.geom_dataid[g]
            start, count = model.mesh_vertadr[mesh], model.mesh_vertnum[mesh]
            mj_points = model.mesh_vert[start:start + count] @ mj_rot.T + model.geom_pos[g]
            usd_points = np.array(UsdGeom.Mesh(prim).GetPointsAttr().Get(), dtype=np.float64) @ local[:3, :3].T + local[:3, 3]
            dist = np.linalg.norm(usd_points[:, None] - mj_points[None], axis=2)
            assert dist.min(axis=1).max() < TOL and dist.min(axis=0).max() < TOL
        seen += 1
    assert seen == 16


def test_usd_physics_parser_reads_the_hand_without_warnings(hand_pair, capfd):
    """USD's own parser: no warnings, one fixed-base articulation over every joint, and the
    joints' limits and drives as it reads them equal MuJoCo's."""
    stage, (model, _) = hand_pair
    capfd.readouterr()
    counts, parsed = parse_physics(stage, descriptors=True)
    out, err = capfd.readouterr()
    assert "warning" not in (out + err).lower(), err
    assert counts["Articulation"] == 1
    assert counts["RevoluteJoint"] + counts["PrismaticJoint"] == model.njnt
    assert counts["CapsuleShape"] == 15 and counts["MeshShape"] == 1
    articulation = parsed["Articulation"][1][0]
    assert [str(p) for p in articulation.rootPrims] == ["/Hand/joints/hand_root_joint"]  # anchored to the world
    assert len(articulation.articulatedJoints) == model.njnt + 1
    bodies = {str(p) for p in parsed["RigidBody"][0]}
    for kind in ("RevoluteJoint", "PrismaticJoint"):
        for path, desc in zip(*parsed[kind]):
            name = str(path).rsplit("/", 1)[-1]
            j = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
            assert desc.isValid and desc.jointEnabled and str(desc.body0) in bodies and str(desc.body1) in bodies
            assert desc.body0 != desc.body1
            scale = DEG if kind == "RevoluteJoint" else 1.0
            if model.jnt_limited[j]:
                np.testing.assert_allclose([desc.limit.lower / scale, desc.limit.upper / scale], model.jnt_range[j], atol=TOL)
            else:
                assert not desc.limit.enabled
            a = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, name)
            assert desc.drive.stiffness * scale == pytest.approx(model.actuator_gainprm[a, 0], rel=TOL)
    # each bone's colliders belong to it
    for path, desc in zip(*parsed["RigidBody"]):
        colliders = [str(c) for c in desc.collisions]
        assert all(c.startswith(str(path) + "/") for c in colliders)
        if str(path).endswith(("1", "2", "3")):
            assert len(colliders) == 1, path


def test_every_hand_prim_is_labelled_and_the_skin_is_skinned(hand_pair, builtin_hand):
    stage, _ = hand_pair
    root = stage.GetPrimAtPath("/Hand")
    for prim in Usd.PrimRange(root):
        if prim.IsA(UsdGeom.Gprim) or prim.HasAPI(UsdPhysics.RigidBodyAPI):
            assert prim.GetAttribute("semantics:labels:class").Get() == ["hand"], prim.GetPath()
    binding = UsdSkel.BindingAPI(stage.GetPrimAtPath("/Hand/skin/mesh"))
    skel = UsdSkel.Skeleton(stage.GetPrimAtPath("/Hand/skin/skeleton"))
    assert len(skel.GetJointsAttr().Get()) == 16
    weights = np.array(binding.GetJointWeightsPrimvar().Get()).reshape(-1, binding.GetJointWeightsPrimvar().GetElementSize())
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    # rigid visual pieces cover every skin triangle once
    pieces = [UsdGeom.Mesh(p) for p in Usd.PrimRange(root) if p.GetName() == "visual"]
    n_faces = sum(len(m.GetFaceVertexCountsAttr().Get()) for m in pieces)
    assert n_faces == len(UsdGeom.Mesh(stage.GetPrimAtPath("/Hand/skin/mesh")).GetFaceVertexCountsAttr().Get())


def test_keypoints_from_bone_poses_are_the_scenes(builtin_hand):
    """The backend-neutral keypoints (any engine's bone poses in) equal the MuJoCo scene's."""
    from pam_engine.hand.pose import HandPose, make_transform
    from pam_engine.sim.mujoco.scene import HandObjectScene
    from pam_engine.sim.rig import build_rig, keypoints_from_bones

    hand, art = builtin_hand
    scene = HandObjectScene(hand, art, [])
    rng = np.random.default_rng(5)
    scene.set_hand_state(HandPose(make_transform(Rotation.from_rotvec(rng.normal(size=3)), [0.1, 0.0, 0.3]),
                                  rng.uniform(art.lower, art.upper)))
    scene.forward()
    poses = np.zeros((16, 4, 4))
    poses[:, 3, 3] = 1.0
    poses[:, :3, :3] = scene.data.xmat[scene.joint_bodies].reshape(-1, 3, 3)
    poses[:, :3, 3] = scene.data.xpos[scene.joint_bodies]
    np.testing.assert_allclose(keypoints_from_bones(hand, build_rig(hand, art), poses), scene.keypoints(), atol=1e-12)
