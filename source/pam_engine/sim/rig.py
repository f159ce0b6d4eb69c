"""The simulated hand as a backend-neutral rig: bodies, joints, servo gains and collision shapes.

Both the MuJoCo builder (``pam_engine.sim.mujoco.hand_builder``) and the USD writer
(``pam_engine.usd.hand``) read this one description, so the two models cannot drift apart.

Frames: one body per MANO joint, its frame the joint's rest-aligned frame (axes = model axes,
origin = the shaped rest joint), so a body's position in its parent is the difference of rest
joints. The wrist body (MANO joint 0) is moved relative to a world-anchored base by six joints
``wrist_x/y/z`` (slides along the base's axes) and ``wrist_rx/ry/rz`` (hinges, intrinsic X-Y-Z).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull

from pam_engine.conventions import MANO_FINGERS, MANO_JOINT_NAMES, MANO_PARENTS
from pam_engine.hand.articulation import HandArticulation
from pam_engine.hand.model import NUM_JOINTS, HandModel
from pam_engine.sim.base import HandGains

WRIST_JOINTS = ("wrist_x", "wrist_y", "wrist_z", "wrist_rx", "wrist_ry", "wrist_rz")
#: Armature (kg m^2, kg) of the six wrist joints.
WRIST_ARMATURE = 0.01
#: Density (kg/m^3) of the hand's collision shapes (~water: the hand is gravity compensated, so
#: its mass matters little).
HAND_DENSITY = 1000.0
#: Contact dimensionality of the hand's collision shapes (MuJoCo condim: sliding + torsional).
HAND_CONDIM = 4


@dataclass(frozen=True)
class RigJoint:
    """One joint of the rig, in SI units: ``axis`` in the moved body's frame (which, at rest, is
    also its parent's orientation); ``lower``/``upper`` None when unlimited."""

    name: str
    body: int  # MANO joint (body) it moves: 0 for the wrist joints
    kind: str  # "slide" or "hinge"
    axis: np.ndarray
    lower: float | None
    upper: float | None
    kp: float  # position servo stiffness, N/m or N m/rad
    kv: float  # servo damping (actuator), N s/m or N m s/rad
    force_limit: float  # N or N m
    damping: float  # passive joint damping
    armature: float


@dataclass(frozen=True)
class Capsule:
    """A collision capsule of body ``body`` from ``start`` to ``end`` (body frame, metres)."""

    name: str
    body: int
    radius: float
    start: np.ndarray
    end: np.ndarray


@dataclass(frozen=True)
class HandRig:
    """Everything a physics backend needs to build the simulated hand."""

    body_names: tuple[str, ...]  # 16, MANO order: "hand_<mano joint name>"
    parents: tuple[int, ...]  # MANO_PARENTS
    body_offsets: np.ndarray  # (16, 3) body origin in its parent's frame (wrist: zeros)
    rest_joints: np.ndarray  # (16, 3) shaped rest joints, model frame
    rest_vertices: np.ndarray  # (V, 3) shaped rest skin vertices, model frame
    wrist_joints: tuple[RigJoint, ...]
    finger_joints: tuple[RigJoint, ...]
    capsules: tuple[Capsule, ...]  # finger segments, MANO joint order within each finger
    palm_hull: np.ndarray  # (n, 3) palm convex-hull vertices, wrist body frame
    palm_name: str
    friction: tuple[float, float, float]
    density: float = HAND_DENSITY

    @property
    def joints(self) -> tuple[RigJoint, ...]:
        return self.wrist_joints + self.finger_joints


def build_rig(hand: HandModel, articulation: HandArticulation, betas: np.ndarray | None = None,
              gains: HandGains | None = None) -> HandRig:
    """The rig of ``hand`` (shaped by ``betas``) with the finger joints of ``articulation``."""
    gains = gains or HandGains()
    vertices, joints = hand.shaped(betas)
    offsets = np.zeros((NUM_JOINTS, 3))
    for j in range(1, NUM_JOINTS):
        offsets[j] = joints[j] - joints[MANO_PARENTS[j]]
    wrist = []
    for k, name in enumerate(WRIST_JOINTS):
        linear = k < 3
        wrist.append(RigJoint(
            name=name, body=0, kind="slide" if linear else "hinge", axis=np.eye(3)[k % 3], lower=None, upper=None,
            kp=gains.wrist_kp_linear if linear else gains.wrist_kp_angular,
            kv=gains.wrist_kv_linear if linear else gains.wrist_kv_angular,
            force_limit=gains.wrist_force if linear else gains.wrist_torque, damping=0.0, armature=WRIST_ARMATURE))
    fingers = []
    for dof in articulation.dofs:
        level = 0 if dof.joint in (1, 4, 7, 10, 13) else (1 if dof.joint in (2, 5, 8, 11, 14) else 2)
        fingers.append(RigJoint(
            name=dof.name, body=dof.joint, kind="hinge", axis=np.asarray(dof.axis, dtype=np.float64),
            lower=float(dof.lower), upper=float(dof.upper), kp=gains.finger_kp * gains.finger_kp_scale[level], kv=0.0,
            force_limit=gains.finger_torque, damping=gains.finger_damping, armature=gains.finger_armature))
    return HandRig(
        body_names=tuple(f"hand_{n}" for n in MANO_JOINT_NAMES), parents=MANO_PARENTS, body_offsets=offsets,
        rest_joints=joints, rest_vertices=vertices, wrist_joints=tuple(wrist), finger_joints=tuple(fingers),
        capsules=_capsules(hand, vertices, joints), palm_hull=_palm_hull(hand, vertices, joints),
        palm_name="hand_palm_col", friction=tuple(gains.friction))


def _segment_radius(vertices: np.ndarray, mask: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Median distance of the skin vertices of one segment from its axis."""
    ab = b - a
    pts = vertices[mask]
    t = np.clip((pts - a) @ ab / (ab @ ab), 0.0, 1.0)
    inside = (t > 0.05) & (t < 0.95)
    dist = np.linalg.norm(pts - (a + t[:, None] * ab), axis=1)
    return float(np.median(dist[inside] if inside.sum() > 8 else dist))


def _capsules(hand: HandModel, vertices: np.ndarray, joints: np.ndarray) -> tuple[Capsule, ...]:
    """A capsule per finger segment fitted to the skin; the distal one ends a radius short of the
    fingertip vertex, so its rounded end touches where the skin does."""
    weights = hand.weights
    tips = {f: vertices[hand.tip_vertex_ids[k]] for k, f in enumerate(("thumb", "index", "middle", "ring", "pinky"))}
    out = []
    for finger, chain in MANO_FINGERS.items():
        for k, j in enumerate(chain):
            a = joints[j]
            b = joints[chain[k + 1]] if k < 2 else tips[finger]
            radius = _segment_radius(vertices, weights[:, j] > 0.5, a, b)
            if k == 2:
                b = b - radius * (b - a) / np.linalg.norm(b - a)
            out.append(Capsule(f"hand_{MANO_JOINT_NAMES[j]}_col", j, radius, np.zeros(3), b - a))
    return tuple(out)


def _palm_hull(hand: HandModel, vertices: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """Vertices of the convex hull of the skin the wrist carries, in the wrist body frame."""
    palm = vertices[hand.weights[:, 0] > 0.5] - joints[0]
    return palm[ConvexHull(palm).vertices].astype(np.float64)


def wrist_joint_values(base: np.ndarray, wrist: np.ndarray) -> np.ndarray:
    """The six wrist joint values (x, y, z, rx, ry, rz) that put the wrist at ``wrist`` (world,
    (4, 4) or a batch (n, 4, 4)) when the base is at ``base``: slides along the base's axes, then
    intrinsic X-Y-Z hinges."""
    from scipy.spatial.transform import Rotation

    rel = np.linalg.inv(base) @ wrist
    euler = Rotation.from_matrix(rel[..., :3, :3]).as_euler("XYZ")
    return np.concatenate([rel[..., :3, 3], euler], axis=-1)


def keypoints_from_bones(hand: HandModel, rig: HandRig, bone_poses: np.ndarray) -> np.ndarray:
    """The 21 DexYCB keypoints from the 16 bones' world poses ((16, 4, 4), MANO order), as any
    engine's state gives them: the joints are the bone origins, the fingertips the skinned tip
    vertices (the linear blend of the bones that carry them)."""
    from pam_engine.conventions import KEYPOINT_FROM_MANO

    poses = np.asarray(bone_poses, dtype=np.float64)
    tips = np.empty((5, 3))
    for k, vid in enumerate(hand.tip_vertex_ids):
        bones = np.flatnonzero(hand.weights[vid] > 0)
        local = rig.rest_vertices[vid] - rig.rest_joints[bones]
        points = np.einsum("bij,bj->bi", poses[bones, :3, :3], local) + poses[bones, :3, 3]
        tips[k] = hand.weights[vid, bones] @ points
    return np.concatenate([poses[:, :3, 3], tips])[list(KEYPOINT_FROM_MANO)]
