"""A trajectory's time samples reproduce its poses at every frame: the wrist, the joints, the
objects, the bones (keypoints) and the skinned skin's skeleton."""

import mujoco
import numpy as np
import pytest
from pxr import Usd, UsdSkel
from scipy.spatial.transform import Rotation

from pam_engine.conventions import KEYPOINT_FROM_MANO
from pam_engine.hand.pose import HandPose, make_transform
from pam_engine.objects import load_object
from pam_engine.sim.scene import HandObjectScene, PlacedObject
from pam_engine.trajectory import Trajectory
from pam_engine.usd import export_scene
from pam_engine.usd.scene import scene_from_trajectory
from pam_engine.usd.stage import DEG, world_pose

TOL = 1e-6
T = 6


@pytest.fixture(scope="module")
def recorded(builtin_hand):
    """A trajectory recorded from the MuJoCo scene, base fixed at frame 0's wrist (as capture
    replays one), with the MuJoCo joint-body positions of every frame."""
    hand, art = builtin_hand
    rng = np.random.default_rng(7)
    sim = HandObjectScene(hand, art, [PlacedObject(load_object("006_mustard_bottle"), np.eye(4))])
    wrist, angles, objects, bodies, keypoints = [], [], [], [], []
    anchor = make_transform(Rotation.from_rotvec([0.2, -1.0, 0.3]), [0.0, 0.1, 0.2])
    sim.set_base_pose(anchor)
    for t in range(T):
        pose = HandPose(make_transform(Rotation.from_rotvec([0.2, -1.0, 0.3]) * Rotation.from_rotvec(rng.normal(scale=0.3, size=3)),
                                       [0.0, 0.1, 0.2] + rng.normal(scale=0.03, size=3)),
                        rng.uniform(art.lower, art.upper))
        if t == 0:
            pose = HandPose(anchor, pose.angles)
        sim.set_hand_state(pose)
        sim.set_object_pose(0, make_transform(Rotation.from_rotvec(rng.normal(size=3)), rng.normal(scale=0.1, size=3)))
        mujoco.mj_kinematics(sim.model, sim.data)
        wrist.append(sim.wrist_pose())
        angles.append(sim.finger_angles())
        objects.append(sim.object_poses())
        bodies.append(sim.data.xpos[sim.joint_bodies].copy())
        keypoints.append(sim.keypoints())
    traj = Trajectory(
        fps=15.0, pose_m=np.zeros((T, 51)), betas=np.zeros(10), wrist_pose=np.array(wrist), joint_angles=np.array(angles),
        joint_names=list(art.names), joint_3d=np.array(keypoints), pose_y=np.array(objects),
        object_names=["006_mustard_bottle"], object_ids=[5], contacts=np.zeros((T, 6), bool), success=True)
    return traj, np.array(bodies)


@pytest.fixture(scope="module")
def animated(recorded, builtin_hand, tmp_path_factory):
    traj, _ = recorded
    hand, art = builtin_hand
    path = tmp_path_factory.mktemp("usd") / "episode.usdc"
    export_scene(path, scene_from_trajectory(traj, hand, art), traj)
    return Usd.Stage.Open(str(path))


def test_time_samples_reproduce_every_frame(animated, recorded, builtin_hand):
    stage, (traj, bodies) = animated, recorded
    _, art = builtin_hand
    assert (stage.GetStartTimeCode(), stage.GetEndTimeCode(), stage.GetTimeCodesPerSecond()) == (0, T - 1, 15.0)
    names = [f"hand_{n}" for n in ("wrist", "index1", "index2", "index3", "middle1", "middle2", "middle3", "pinky1",
                                   "pinky2", "pinky3", "ring1", "ring2", "ring3", "thumb1", "thumb2", "thumb3")]
    for t in range(T):
        np.testing.assert_allclose(world_pose(stage.GetPrimAtPath("/World/Hand/hand_wrist"), t), traj.wrist_pose[t], atol=TOL)
        positions = np.array([world_pose(stage.GetPrimAtPath(f"/World/Hand/{n}"), t)[:3, 3] for n in names])
        np.testing.assert_allclose(positions, bodies[t], atol=TOL)
        np.testing.assert_allclose(positions, traj.joint_3d[t][[KEYPOINT_FROM_MANO.index(j) for j in range(16)]], atol=TOL)
        pose = world_pose(stage.GetPrimAtPath("/World/Objects/object_0"), t)
        np.testing.assert_allclose(pose[:3], traj.pose_y[t, 0], atol=TOL)
        angles = [stage.GetPrimAtPath(f"/World/Hand/joints/{n}").GetAttribute("state:angular:physics:position").Get(t) / DEG
                  for n in art.names]
        np.testing.assert_allclose(angles, traj.joint_angles[t], atol=TOL)


def test_the_skeleton_animation_follows_the_bones(animated, recorded):
    stage, (traj, bodies) = animated, recorded
    cache = UsdSkel.Cache()
    root = UsdSkel.Root(stage.GetPrimAtPath("/World/Hand/skin"))
    cache.Populate(root, Usd.TraverseInstanceProxies())
    query = cache.GetSkelQuery(UsdSkel.Skeleton(stage.GetPrimAtPath("/World/Hand/skin/skeleton")))
    assert query.GetAnimQuery()
    from pxr import UsdGeom

    xf = UsdGeom.XformCache()
    for t in range(T):
        xf.SetTime(t)
        joints = np.array(query.ComputeJointWorldTransforms(xf), dtype=np.float64)  # row-vector matrices
        np.testing.assert_allclose(joints[:, 3, :3], bodies[t], atol=1e-5)  # float32 animation samples
