"""Hand poses as the simulator sees them (wrist pose + joint angles) and as MANO/DexYCB do
(``pose_m``: 48 axis-angle values, global rotation first, then 3 translation values).

MANO rotates the hand about its (shaped) rest wrist joint and then adds the translation, so the
translation is not the wrist position: ``wrist_position = rest_wrist + transl``. The 45 joint
values are axis-angles relative to the flat hand (MANO's ``flat_hand_mean=True``); DexYCB
stores PCA coefficients relative to the mean hand instead: see :func:`pca_to_axis_angle`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from pam_engine.conventions import POSE_M_DIM
from pam_engine.errors import PoseError
from pam_engine.hand.articulation import HandArticulation
from pam_engine.hand.model import HandModel


@dataclass(frozen=True)
class HandPose:
    """A hand pose in simulator terms: wrist frame -> world (4x4) and finger joint angles."""

    wrist: np.ndarray  # (4, 4)
    angles: np.ndarray  # (n_dof,)

    def __post_init__(self):
        wrist = np.asarray(self.wrist, dtype=np.float64)
        if wrist.shape != (4, 4):
            raise PoseError(f"hand wrist pose has shape {wrist.shape}, expected (4, 4)")
        if not np.all(np.isfinite(wrist)) or not np.all(np.isfinite(self.angles)):
            raise PoseError("hand pose contains NaN or inf")
        if not np.allclose(wrist[:3, :3] @ wrist[:3, :3].T, np.eye(3), atol=1e-5) or np.linalg.det(wrist[:3, :3]) < 0:
            raise PoseError("hand wrist rotation is not a proper rotation matrix")


def make_transform(rotation: np.ndarray | None = None, translation=None) -> np.ndarray:
    """A 4x4 rigid transform from a 3x3 rotation (or a scipy Rotation) and a translation."""
    t = np.eye(4)
    if rotation is not None:
        t[:3, :3] = rotation.as_matrix() if isinstance(rotation, Rotation) else np.asarray(rotation)
    if translation is not None:
        t[:3, 3] = translation
    return t


def to_pose_m(pose: HandPose, articulation: HandArticulation, rest_wrist: np.ndarray) -> np.ndarray:
    """(51,) MANO ``pose_m`` of a simulator hand pose."""
    global_rot = Rotation.from_matrix(pose.wrist[:3, :3]).as_rotvec()
    hand_pose = articulation.angles_to_hand_pose(pose.angles)
    transl = pose.wrist[:3, 3] - rest_wrist
    return np.concatenate([global_rot, hand_pose, transl])


def pose_m_and_keypoints(hand: HandModel, articulation: HandArticulation, wrist: np.ndarray, angles: np.ndarray,
                         betas: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(T, 51) ``pose_m`` and (T, 21, 3) DexYCB keypoints of measured articulation states (wrist
    poses (T, 4, 4), finger joint angles (T, n_dof), never clamped) through the hand model: how a
    capture outside the embedded simulator (Replicator, Isaac Lab) labels its frames."""
    wrist = np.asarray(wrist, dtype=np.float64)
    rest_wrist = hand.shaped(betas)[1][0]
    pose_m = np.concatenate([Rotation.from_matrix(wrist[:, :3, :3]).as_rotvec(),
                             articulation.angles_to_hand_pose(np.asarray(angles, dtype=np.float64)),
                             wrist[:, :3, 3] - rest_wrist], axis=1)
    keypoints = np.stack([hand.forward(p[:48], betas, p[48:]).keypoints for p in pose_m])
    return pose_m, keypoints


def from_pose_m(pose_m: np.ndarray, articulation: HandArticulation, rest_wrist: np.ndarray,
                clamp: bool = True) -> HandPose:
    """The simulator hand pose nearest to a MANO ``pose_m`` (joint angles clamped to limits)."""
    pose_m = np.asarray(pose_m, dtype=np.float64).reshape(-1)
    if pose_m.shape[0] != POSE_M_DIM:
        raise PoseError(f"pose_m has {pose_m.shape[0]} values, expected {POSE_M_DIM} (48 axis-angle + 3 translation)")
    if not np.all(np.isfinite(pose_m)):
        raise PoseError("pose_m contains NaN or inf")
    wrist = make_transform(Rotation.from_rotvec(pose_m[:3]), rest_wrist + pose_m[48:51])
    return HandPose(wrist, articulation.hand_pose_to_angles(pose_m[3:48], clamp=clamp))


def pca_to_axis_angle(hand: HandModel, coefficients: np.ndarray) -> np.ndarray:
    """DexYCB's 45 PCA coefficients (``flat_hand_mean=False``) -> flat-hand axis-angles."""
    _require_pca(hand)
    return hand.hands_mean + np.asarray(coefficients, dtype=np.float64) @ hand.hands_components


def axis_angle_to_pca(hand: HandModel, hand_pose: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pca_to_axis_angle` (exact: MANO's 45-component basis is full rank)."""
    _require_pca(hand)
    return np.linalg.solve(hand.hands_components.T, (np.asarray(hand_pose, dtype=np.float64) - hand.hands_mean).T).T


def _require_pca(hand: HandModel) -> None:
    if hand.hands_components is None or hand.hands_mean is None:
        raise PoseError(f"the {hand.name} hand has no PCA pose basis: load MANO_RIGHT.pkl (PAM_MANO_DIR) for PCA poses")
