"""A trajectory's time samples reproduce its poses at every frame: the wrist, the joints, the
objects, the bones (keypoints) and the skinned skin's skeleton."""

import numpy as np
import pytest
from pxr import Usd, UsdGeom, UsdSkel

from pam_engine.conventions import KEYPOINT_FROM_MANO
from pam_engine.usd import export_scene
from pam_engine.usd.scene import scene_from_trajectory
from pam_engine.usd.stage import DEG, world_pose

from .conftest import T

TOL = 1e-6


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
    stage, (_, bodies) = animated, recorded
    cache = UsdSkel.Cache()
    root = UsdSkel.Root(stage.GetPrimAtPath("/World/Hand/skin"))
    cache.Populate(root, Usd.TraverseInstanceProxies())
    query = cache.GetSkelQuery(UsdSkel.Skeleton(stage.GetPrimAtPath("/World/Hand/skin/skeleton")))
    assert query.GetAnimQuery()
    xf = UsdGeom.XformCache()
    for t in range(T):
        xf.SetTime(t)
        joints = np.array(query.ComputeJointWorldTransforms(xf), dtype=np.float64)  # row-vector matrices
        np.testing.assert_allclose(joints[:, 3, :3], bodies[t], atol=1e-5)  # float32 animation samples
