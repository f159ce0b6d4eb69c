"""Ground-truth labels of one captured episode in DexYCB's layout, camera frame (plus the world
frame copies), from the Stage I ``Trajectory`` and the captured depth/segmentation."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from pam_engine.capture.camera import Camera
from pam_engine.capture.maps import project_keypoints

#: Keys of ``labels.npz`` and their per-frame shapes (``n`` = objects); T frames lead each.
LABEL_SHAPES: dict[str, tuple] = {
    "pose_m": (51,),
    "joint_3d": (21, 3),
    "joint_2d": (21, 2),
    "joint_visible": (21,),
    "pose_y": ("n", 3, 4),
    "contacts": (6,),
    "pose_m_world": (51,),
    "joint_3d_world": (21, 3),
    "pose_y_world": ("n", 3, 4),
    "wrist_pose_world": (4, 4),
}
#: Stored dtype of each label.
LABEL_DTYPES: dict[str, str] = {key: "float32" for key in LABEL_SHAPES} | {"joint_visible": "bool", "contacts": "bool"}


def pose_m_to_camera(pose_m: np.ndarray, wrist_world: np.ndarray, world_to_cam: np.ndarray) -> np.ndarray:
    """MANO ``pose_m`` (T, 51) from the world frame to the camera frame, as DexYCB stores it.

    MANO places the posed hand as ``R (x - J0) + J0 + trans`` with J0 the root joint of the
    shaped template, so the posed wrist is ``J0 + trans``. In the camera frame the global
    rotation becomes ``R_wc R`` and the translation ``wrist_cam - J0``, with
    ``J0 = wrist_world - trans`` (no MANO model needed).
    """
    pose_m = np.asarray(pose_m, dtype=np.float64)
    out = pose_m.copy()
    rot_wc = world_to_cam[:3, :3]
    global_rot = Rotation.from_rotvec(pose_m[:, :3])
    out[:, :3] = (Rotation.from_matrix(rot_wc) * global_rot).as_rotvec()
    j0 = wrist_world - pose_m[:, 48:51]
    wrist_cam = wrist_world @ rot_wc.T + world_to_cam[:3, 3]
    out[:, 48:51] = wrist_cam - j0
    return out


def episode_labels(trajectory, camera: Camera, depth: np.ndarray, seg: np.ndarray,
                   tolerance: float = 0.01) -> dict[str, np.ndarray]:
    """Labels for ``labels.npz``: DexYCB keys in the camera frame (``pose_m``, ``joint_3d``,
    ``joint_2d``, ``joint_visible``, ``pose_y``) plus ``contacts`` and ``*_world`` copies."""
    joint_world = np.asarray(trajectory.joint_3d, dtype=np.float64)
    joint_2d, visible = project_keypoints(joint_world, camera, depth, seg, tolerance)
    return {
        "pose_m": pose_m_to_camera(trajectory.pose_m, joint_world[:, 0], camera.world_to_cam).astype(np.float32),
        "joint_3d": camera.world_to_camera(joint_world).astype(np.float32),
        "joint_2d": joint_2d.astype(np.float32),
        "joint_visible": visible,
        "pose_y": camera.pose_to_camera(trajectory.pose_y).astype(np.float32),
        "contacts": np.asarray(trajectory.contacts, dtype=bool),
        "pose_m_world": np.asarray(trajectory.pose_m, dtype=np.float32),
        "joint_3d_world": joint_world.astype(np.float32),
        "pose_y_world": np.asarray(trajectory.pose_y, dtype=np.float32),
        "wrist_pose_world": np.asarray(trajectory.wrist_pose, dtype=np.float32),
    }
