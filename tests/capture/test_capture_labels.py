import numpy as np
from scipy.spatial.transform import Rotation

from pam_engine.capture.camera import Camera, look_at
from pam_engine.capture.labels import LABEL_SHAPES, episode_labels, pose_m_to_camera
from pam_engine.conventions import SEG_HAND
from pam_engine.trajectory import Trajectory


def _mano_place(rotvec, j0, trans, pts):
    """MANO's global placement of template-frame points: R (x - J0) + J0 + trans."""
    return Rotation.from_rotvec(rotvec).apply(pts - j0) + j0 + trans


def test_pose_m_to_camera_places_the_hand_like_the_world_pose():
    rng = np.random.default_rng(0)
    cam = Camera.default(look_at([0.5, -0.3, 0.6], [0.0, 0.0, 0.1]))
    j0 = np.array([0.09, 0.006, 0.006])  # MANO's shaped template root joint
    pts = rng.normal(scale=0.05, size=(30, 3)) + j0
    pose_m = np.zeros((4, 51))
    pose_m[:, :3] = rng.normal(size=(4, 3))
    pose_m[:, 3:48] = rng.normal(scale=0.2, size=(4, 45))
    pose_m[:, 48:] = rng.normal(scale=0.1, size=(4, 3))
    wrist_world = j0 + pose_m[:, 48:]  # the posed root joint
    cam_pose = pose_m_to_camera(pose_m, wrist_world, cam.world_to_cam)
    np.testing.assert_array_equal(cam_pose[:, 3:48], pose_m[:, 3:48])  # finger articulation untouched
    for t in range(4):
        world = _mano_place(pose_m[t, :3], j0, pose_m[t, 48:], pts)
        in_cam = _mano_place(cam_pose[t, :3], j0, cam_pose[t, 48:], pts)
        np.testing.assert_allclose(in_cam, cam.world_to_camera(world), atol=1e-9)


def test_episode_labels_have_dexycb_shapes_in_the_camera_frame():
    T, n = 3, 2
    cam = Camera.from_focal(300.0, 320, 240, look_at([0.0, -0.4, 0.4], [0, 0, 0]))
    rng = np.random.default_rng(1)
    joints = rng.normal(scale=0.03, size=(T, 21, 3))
    pose_y = np.tile(np.eye(4)[:3], (T, n, 1, 1))
    pose_y[:, 1, :, 3] = [0.05, 0.0, 0.02]
    traj = Trajectory(fps=15, pose_m=np.zeros((T, 51)), betas=np.zeros(10), wrist_pose=np.tile(np.eye(4), (T, 1, 1)),
                      joint_angles=np.zeros((T, 2)), joint_names=["a", "b"], joint_3d=joints, pose_y=pose_y,
                      object_names=["002_master_chef_can", "061_foam_brick"], object_ids=[1, 21],
                      contacts=np.zeros((T, 6), bool), success=True)
    depth = np.ones((T, 240, 320), np.float32)
    seg = np.full((T, 240, 320), SEG_HAND, np.uint8)
    labels = episode_labels(traj, cam, depth, seg)
    for key, per_frame in LABEL_SHAPES.items():
        assert labels[key].shape == (T,) + tuple(n if d == "n" else d for d in per_frame), key
    np.testing.assert_allclose(labels["joint_3d"], cam.world_to_camera(joints), atol=1e-6)
    np.testing.assert_allclose(labels["pose_y"][:, 1, :, 3], cam.world_to_camera(pose_y[:, 1, :, 3]), atol=1e-6)
    uv, _ = cam.project(joints)
    np.testing.assert_allclose(labels["joint_2d"], uv, atol=1e-3)
    assert labels["joint_visible"].all()
