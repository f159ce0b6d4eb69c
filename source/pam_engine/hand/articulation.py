"""The simulated hand's joints: anatomical hinge axes and limits on MANO's kinematic tree, and
conversions between simulated joint angles and MANO ``pose_m``.

Each MANO joint is a body whose rest frame is aligned with the model frame, moved by 1-3
hinges about orthonormal anatomical axes derived from the hand's own joint positions (so the
same code serves the built-in hand and any MANO shape):

- ``t`` along the bone, ``f`` the flexion axis (positive curls towards the palm) and
  ``b = f x t`` the abduction axis (positive moves away from the thumb, towards the pinky);
- finger MCPs: flexion then abduction (abduction stays far from gimbal lock: it never nears
  90 degrees, while MCP flexion does); PIPs and DIPs: flexion;
- thumb CMC (thumb1): abduction, flexion and axial rotation; thumb MCP and IP: flexion.

A joint's rotation is the product of its hinges in that order (MuJoCo's composition of the
joints of one body), so angles -> axis-angle is exact and axis-angle -> angles is an intrinsic
Euler decomposition in the joint's (b, f, t) basis, dropping components the joint lacks.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from pam_engine.conventions import MANO_FINGERS, MANO_JOINT_NAMES
from pam_engine.errors import PoseError
from pam_engine.hand.model import HandModel

#: Which axes each kind of joint has, in composition order.
_AXES_MCP = ("flex", "abd")
_AXES_HINGE = ("flex",)
_AXES_THUMB_CMC = ("abd", "flex", "twist")

#: Anatomical limits (radians) per finger: MCP flexion, MCP abduction, PIP flexion, DIP flexion.
_FINGER_LIMITS = {
    "index": ((-0.35, 1.60), (-0.35, 0.20), (-0.05, 1.85), (-0.05, 1.40)),
    "middle": ((-0.35, 1.60), (-0.25, 0.25), (-0.05, 1.85), (-0.05, 1.40)),
    "ring": ((-0.35, 1.60), (-0.20, 0.30), (-0.05, 1.85), (-0.05, 1.40)),
    "pinky": ((-0.35, 1.60), (-0.15, 0.50), (-0.05, 1.85), (-0.05, 1.40)),
}
#: Letter of each axis kind in a joint's (b, f, t) basis, for scipy's intrinsic Euler angles.
_EULER_LETTER = {"abd": "X", "flex": "Y", "twist": "Z"}
#: Thumb: CMC abduction, flexion, axial rotation; MCP flexion; IP flexion.
_THUMB_LIMITS = ((-0.60, 0.90), (-0.40, 1.30), (-0.50, 0.70), (-0.30, 1.00), (-0.30, 1.40))

#: Angle tolerance (radians) below which out-of-range values are silently clamped.
LIMIT_TOLERANCE = 1e-6


class JointLimitWarning(UserWarning):
    """Joint angles beyond the hand's limits were clamped."""


@dataclass(frozen=True)
class Dof:
    name: str  # e.g. "index1_flex"
    joint: int  # MANO joint moved (1..15)
    kind: str  # "abd", "flex" or "twist"
    axis: np.ndarray  # unit axis in the joint's rest frame (= model frame)
    lower: float
    upper: float


@dataclass(frozen=True)
class HandArticulation:
    """The finger joints of the simulated hand (the wrist's 6 DoF are the scene's business)."""

    dofs: tuple[Dof, ...]
    bases: np.ndarray  # (16, 3, 3) per joint, columns (b, f, t); identity for the wrist

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dofs]

    @property
    def lower(self) -> np.ndarray:
        return np.array([d.lower for d in self.dofs])

    @property
    def upper(self) -> np.ndarray:
        return np.array([d.upper for d in self.dofs])

    @property
    def size(self) -> int:
        return len(self.dofs)

    def dofs_of(self, joint: int) -> list[int]:
        return [i for i, d in enumerate(self.dofs) if d.joint == joint]

    def check_angles(self, angles: np.ndarray, name: str = "joint angles", clamp: bool = True) -> np.ndarray:
        """Reject NaN/inf and wrong sizes; clamp values beyond the limits with a warning.

        Clamping (rather than rejecting) is the rule because poses fitted to real hands, e.g.
        DexYCB's, often exceed anatomical limits by a little; the warning names each joint.
        """
        angles = np.array(angles, dtype=np.float64)
        if angles.shape[-1] != self.size:
            raise PoseError(f"{name} has {angles.shape[-1]} values, expected {self.size} ({', '.join(self.names)})")
        if not np.all(np.isfinite(angles)):
            raise PoseError(f"{name} contains NaN or inf")
        low, high = self.lower - LIMIT_TOLERANCE, self.upper + LIMIT_TOLERANCE
        bad = np.flatnonzero(np.any((angles < low) | (angles > high), axis=tuple(range(angles.ndim - 1))))
        if bad.size and clamp:
            worst = ", ".join(
                f"{self.names[i]}={angles[..., i].flat[np.argmax(np.abs(angles[..., i] - np.clip(angles[..., i], low[i], high[i])))]:.3f} "
                f"(range {self.lower[i]:.2f}..{self.upper[i]:.2f})"
                for i in bad
            )
            warnings.warn(f"{name} beyond the joint limits were clamped: {worst}", JointLimitWarning, stacklevel=2)
        elif bad.size:
            raise PoseError(f"{name}: {[self.names[i] for i in bad]} beyond the joint limits")
        return np.clip(angles, self.lower, self.upper)

    def joint_rotations(self, angles: np.ndarray) -> np.ndarray:
        """(..., n_dof) angles -> (..., 16, 3, 3) joint rotations relative to the parent (wrist = I)."""
        angles = np.asarray(angles, dtype=np.float64)
        batch = angles.shape[:-1]
        rot = np.broadcast_to(np.eye(3), batch + (16, 3, 3)).copy()
        for i, dof in enumerate(self.dofs):
            r = Rotation.from_rotvec(angles[..., i, None] * dof.axis).as_matrix().reshape(batch + (3, 3))
            rot[..., dof.joint, :, :] = rot[..., dof.joint, :, :] @ r
        return rot

    def angles_to_hand_pose(self, angles: np.ndarray) -> np.ndarray:
        """(..., n_dof) angles -> (..., 45) MANO axis-angles of joints 1..15 (flat-hand relative)."""
        rot = self.joint_rotations(angles)[..., 1:, :, :]
        return Rotation.from_matrix(rot.reshape(-1, 3, 3)).as_rotvec().reshape(rot.shape[:-2] + (3,)).reshape(
            rot.shape[:-3] + (45,)
        )

    def hand_pose_to_angles(self, hand_pose: np.ndarray, clamp: bool = True) -> np.ndarray:
        """(..., 45) MANO axis-angles -> the nearest joint angles (components the hand's joints
        cannot make, e.g. twist of a finger, are dropped); out-of-range results are clamped."""
        return self.check_angles(self.hand_pose_to_raw_angles(hand_pose), "joint angles from the MANO pose", clamp=clamp)

    def hand_pose_to_raw_angles(self, hand_pose: np.ndarray) -> np.ndarray:
        """:meth:`hand_pose_to_angles` without the limits: replaying a simulated pose, whose
        joints may sit a little past their (soft) limits, must not move them."""
        hand_pose = np.asarray(hand_pose, dtype=np.float64)
        if hand_pose.shape[-1] != 45:
            raise PoseError(f"MANO hand pose has {hand_pose.shape[-1]} values, expected 45")
        if not np.all(np.isfinite(hand_pose)):
            raise PoseError("MANO hand pose contains NaN or inf")
        batch = hand_pose.shape[:-1]
        rotvecs = hand_pose.reshape(-1, 15, 3)
        angles = np.zeros((rotvecs.shape[0], self.size))
        for joint in range(1, 16):
            idx = self.dofs_of(joint)
            basis = self.bases[joint]
            rot = Rotation.from_rotvec(rotvecs[:, joint - 1]).as_matrix()
            local = np.einsum("ji,njk,kl->nil", basis, rot, basis)  # B^T R B
            if len(idx) == 1:
                quat = Rotation.from_matrix(local).as_quat()  # (x, y, z, w) in the (b, f, t) basis
                angle = 2.0 * np.arctan2(quat[:, 1], quat[:, 3])  # twist about f
                angles[:, idx[0]] = (angle + np.pi) % (2 * np.pi) - np.pi
            else:
                order = "".join(_EULER_LETTER[self.dofs[i].kind] for i in idx)
                order += "".join(c for c in "XYZ" if c not in order)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # gimbal lock: third angle set to 0
                    euler = Rotation.from_matrix(local).as_euler(order)
                angles[:, idx] = euler[:, : len(idx)]
        return angles.reshape(batch + (self.size,))


def build_articulation(hand: HandModel) -> HandArticulation:
    """Anatomical axes from the hand's rest joints (works for the built-in hand and MANO)."""
    _, joints = hand.shaped()
    palm_normal = _unit(np.cross(joints[1] - joints[0], joints[7] - joints[0]))  # towards the palm side
    across = _unit(joints[7] - joints[1])  # from the index side to the pinky side
    bases = np.broadcast_to(np.eye(3), (16, 3, 3)).copy()
    dofs: list[Dof] = []
    for finger, chain in MANO_FINGERS.items():
        children = [chain[1], chain[2], None]
        for k, joint in enumerate(chain):
            if children[k] is not None:
                direction = joints[children[k]] - joints[joint]
            else:
                direction = joints[joint] - joints[chain[1]]  # distal: continue the middle segment
            t = _unit(direction)
            bend_towards = palm_normal if finger != "thumb" or k == 0 else _unit(palm_normal + across)
            f = _unit(np.cross(t, bend_towards))
            b = np.cross(f, t)
            bases[joint] = np.stack([b, f, t], axis=1)
            axes = {"abd": b, "flex": f, "twist": t}
            if finger == "thumb":
                kinds = _AXES_THUMB_CMC if k == 0 else _AXES_HINGE
                limits = _THUMB_LIMITS[:3] if k == 0 else (_THUMB_LIMITS[2 + k],)
            else:
                kinds = _AXES_MCP if k == 0 else _AXES_HINGE
                limits = _FINGER_LIMITS[finger][:2] if k == 0 else (_FINGER_LIMITS[finger][1 + k],)
            for kind, (lo, hi) in zip(kinds, limits):
                dofs.append(Dof(f"{MANO_JOINT_NAMES[joint]}_{kind}", joint, kind, axes[kind], lo, hi))
    return HandArticulation(tuple(dofs), bases)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)
