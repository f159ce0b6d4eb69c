"""A MANO-style hand: template mesh, 16-joint kinematic tree and linear blend skinning.

Both the real MANO model (``mano.py``) and the engine's built-in open hand (``procedural.py``)
are instances of :class:`HandModel`, so everything downstream (the simulated hand, keypoints,
``pose_m``) has one code path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from pam_engine.conventions import KEYPOINT_FROM_MANO, MANO_PARENTS
from pam_engine.errors import PoseError

NUM_JOINTS = 16
NUM_BETAS = 10


@dataclass(frozen=True)
class HandOutput:
    """A posed hand: skin vertices, the 16 MANO joints and the 21 DexYCB keypoints (metres)."""

    vertices: np.ndarray  # (V, 3)
    joints: np.ndarray  # (16, 3)
    keypoints: np.ndarray  # (21, 3)
    transforms: np.ndarray  # (16, 4, 4) world transform of each joint's rest-aligned frame


@dataclass(frozen=True)
class HandModel:
    """The data of a MANO-like hand model.

    Rest frames of all joints are aligned with the model frame (as in MANO), so a joint's pose
    is the axis-angle rotation of its frame relative to its parent's.
    """

    name: str  # "builtin" or "mano"
    v_template: np.ndarray  # (V, 3) rest vertices, flat open hand
    faces: np.ndarray  # (F, 3) int
    weights: np.ndarray  # (V, 16) skinning weights, rows sum to 1
    j_template: np.ndarray  # (16, 3) rest joints in MANO order
    tip_vertex_ids: tuple[int, ...]  # (5,) thumb, index, middle, ring, pinky fingertip vertices
    shapedirs: np.ndarray | None = None  # (V, 3, 10) shape blend shapes
    joint_shapedirs: np.ndarray | None = None  # (16, 3, 10) = joint regressor applied to shapedirs
    posedirs: np.ndarray | None = None  # (V, 3, 135) pose-corrective blend shapes
    hands_mean: np.ndarray | None = None  # (45,) MANO's mean pose (for PCA / flat_hand_mean=False)
    hands_components: np.ndarray | None = None  # (45, 45) MANO's pose PCA basis

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    def shaped(self, betas: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rest vertices and rest joints for shape ``betas`` (zeros when the model has no shapes)."""
        vertices, joints = self.v_template, self.j_template
        if betas is not None and self.shapedirs is not None:
            betas = _finite(np.asarray(betas, dtype=np.float64).reshape(-1), "betas")
            n = min(betas.shape[0], self.shapedirs.shape[2])
            vertices = vertices + self.shapedirs[:, :, :n] @ betas[:n]
            joints = joints + self.joint_shapedirs[:, :, :n] @ betas[:n]
        return vertices, joints

    def forward(
        self,
        pose: np.ndarray,
        betas: np.ndarray | None = None,
        transl: np.ndarray | None = None,
    ) -> HandOutput:
        """Pose the hand. ``pose`` is (48,) or (16, 3) axis-angle: global rotation then the 15
        joints in MANO order, relative to the flat hand; ``transl`` is MANO's translation (the
        rotation is about the wrist joint, then ``transl`` is added, as in MANO/DexYCB)."""
        pose = _finite(np.asarray(pose, dtype=np.float64).reshape(NUM_JOINTS, 3), "pose")
        transl = np.zeros(3) if transl is None else _finite(np.asarray(transl, float).reshape(3), "transl")
        rest_vertices, rest_joints = self.shaped(betas)
        rotations = Rotation.from_rotvec(pose).as_matrix()
        if self.posedirs is not None:
            pose_feature = (rotations[1:] - np.eye(3)).reshape(-1)
            rest_vertices = rest_vertices + self.posedirs @ pose_feature
        transforms = chain_transforms(rotations, rest_joints)
        vertices = skin(rest_vertices, rest_joints, transforms, self.weights) + transl
        joints = transforms[:, :3, 3] + transl
        transforms[:, :3, 3] += transl
        return HandOutput(vertices, joints, self.keypoints(joints, vertices), transforms)

    def keypoints(self, joints: np.ndarray, vertices: np.ndarray) -> np.ndarray:
        """The 21 DexYCB keypoints from the 16 joints and the fingertip vertices."""
        tips = vertices[..., list(self.tip_vertex_ids), :]
        return np.concatenate([joints, tips], axis=-2)[..., list(KEYPOINT_FROM_MANO), :]


def chain_transforms(rotations: np.ndarray, rest_joints: np.ndarray) -> np.ndarray:
    """World transforms (16, 4, 4) of the joints' rest-aligned frames along the MANO tree."""
    transforms = np.zeros((NUM_JOINTS, 4, 4))
    transforms[:, 3, 3] = 1.0
    for j, parent in enumerate(MANO_PARENTS):
        if parent < 0:
            transforms[j, :3, :3] = rotations[j]
            transforms[j, :3, 3] = rest_joints[j]
        else:
            offset = rest_joints[j] - rest_joints[parent]
            transforms[j, :3, :3] = transforms[parent, :3, :3] @ rotations[j]
            transforms[j, :3, 3] = transforms[parent, :3, :3] @ offset + transforms[parent, :3, 3]
    return transforms


def skin(rest_vertices: np.ndarray, rest_joints: np.ndarray, transforms: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Linear blend skinning: each vertex follows the weighted joint transforms."""
    rot = transforms[:, :3, :3]
    trans = transforms[:, :3, 3] - np.einsum("jab,jb->ja", rot, rest_joints)
    blended_rot = np.einsum("vj,jab->vab", weights, rot)
    blended_trans = weights @ trans
    return np.einsum("vab,vb->va", blended_rot, rest_vertices) + blended_trans


def _finite(values: np.ndarray, name: str) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        raise PoseError(f"{name} contains NaN or inf: {values.tolist()}")
    return values
