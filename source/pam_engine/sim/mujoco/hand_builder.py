"""Build the simulated hand into a MuJoCo ``MjSpec``.

Layout (names are the contract the scene, the renderer and the policies rely on):

- ``hand_base``: a mocap body that anchors the hand for an episode (placed at reset);
- ``hand_wrist``: the wrist body (MANO joint 0, rest-aligned frame), moved relative to the base
  by six joints ``wrist_x/y/z`` (slides) and ``wrist_rx/ry/rz`` (hinges, intrinsic X-Y-Z);
- one body per MANO joint, ``hand_<mano joint name>``, moved by the hinges of
  :mod:`pam_engine.hand.articulation` (named ``<mano joint>_<abd|flex|twist>``);
- a position actuator per joint (same names), gravity compensated bodies (a hand held by an
  arm does not sag);
- collision: a tapered capsule per finger segment and the convex hull of the palm, fitted to
  the skin, in geom group 3 (never drawn), colliding with objects and the table, not itself;
- the visible surface: a skin ``hand_skin`` bound to the joint bodies with the model's
  skinning weights, so renders show the deforming hand surface, not the collision shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np
from scipy.spatial import ConvexHull

from pam_engine.conventions import MANO_FINGERS, MANO_JOINT_NAMES, MANO_PARENTS
from pam_engine.hand.articulation import HandArticulation
from pam_engine.hand.model import NUM_JOINTS, HandModel
from pam_engine.sim.base import HandGains

#: Contact bitmasks: hand geoms touch the world/objects, never each other.
HAND_CONTYPE, HAND_CONAFFINITY = 2, 1
WORLD_CONTYPE, WORLD_CONAFFINITY = 1, 3
COLLISION_GROUP = 3
WRIST_JOINTS = ("wrist_x", "wrist_y", "wrist_z", "wrist_rx", "wrist_ry", "wrist_rz")

#: Which contact part (CONTACT_PARTS order: thumb, index, middle, ring, little, palm) a MANO
#: joint's geometry belongs to.
JOINT_PART = {0: 5, **{j: p for p, f in enumerate(("thumb", "index", "middle", "ring", "pinky")) for j in MANO_FINGERS[f]}}


@dataclass
class HandSpecInfo:
    """What the builder put in the spec, by name (turned into ids once the spec compiles)."""

    wrist_joints: tuple[str, ...] = WRIST_JOINTS
    finger_joints: tuple[str, ...] = ()
    joint_bodies: tuple[str, ...] = ()  # 16 bodies in MANO order
    geom_parts: dict[str, int] = field(default_factory=dict)  # collision geom -> contact part
    skin: str = "hand_skin"
    rest_joints: np.ndarray | None = None  # (16, 3) shaped rest joints, model frame
    rest_vertices: np.ndarray | None = None  # (V, 3) shaped rest skin vertices, model frame


def add_hand(spec: mujoco.MjSpec, hand: HandModel, articulation: HandArticulation,
             betas: np.ndarray | None = None, gains: HandGains | None = None,
             skin_rgba: tuple[float, float, float, float] = (0.87, 0.70, 0.60, 1.0)) -> HandSpecInfo:
    """Add the hand (mocap base, wrist joints, finger joints, actuators, collision, skin)."""
    gains = gains or HandGains()
    vertices, joints = hand.shaped(betas)
    info = HandSpecInfo(finger_joints=tuple(articulation.names), rest_joints=joints, rest_vertices=vertices)

    base = spec.worldbody.add_body(name="hand_base", mocap=True)
    wrist = base.add_body(name="hand_wrist", gravcomp=1.0)
    for name, axis, kind in zip(WRIST_JOINTS, np.eye(3).tolist() * 2, ["slide"] * 3 + ["hinge"] * 3):
        jnt = wrist.add_joint(name=name, axis=axis)
        jnt.type = mujoco.mjtJoint.mjJNT_SLIDE if kind == "slide" else mujoco.mjtJoint.mjJNT_HINGE
        jnt.armature = 0.01
    bodies = {0: wrist}
    for j in range(1, NUM_JOINTS):
        parent = MANO_PARENTS[j]
        bodies[j] = bodies[parent].add_body(
            name=f"hand_{MANO_JOINT_NAMES[j]}", pos=(joints[j] - joints[parent]).tolist(), gravcomp=1.0
        )
    info.joint_bodies = tuple(f"hand_{n}" for n in MANO_JOINT_NAMES)

    for i, dof in enumerate(articulation.dofs):
        jnt = bodies[dof.joint].add_joint(name=dof.name, axis=dof.axis.tolist(), range=[dof.lower, dof.upper])
        jnt.type = mujoco.mjtJoint.mjJNT_HINGE
        jnt.limited = mujoco.mjtLimited.mjLIMITED_TRUE
        jnt.damping = [gains.finger_damping, 0.0, 0.0]
        jnt.armature = gains.finger_armature

    _add_collision(spec, bodies, hand, vertices, joints, gains, info)
    _add_actuators(spec, articulation, gains)
    _add_skin(spec, hand, vertices, joints, info, skin_rgba)
    return info


def _segment_radius(vertices: np.ndarray, mask: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Median distance of the skin vertices of one segment from its axis."""
    ab = b - a
    pts = vertices[mask]
    t = np.clip((pts - a) @ ab / (ab @ ab), 0.0, 1.0)
    inside = (t > 0.05) & (t < 0.95)
    dist = np.linalg.norm(pts - (a + t[:, None] * ab), axis=1)
    return float(np.median(dist[inside] if inside.sum() > 8 else dist))


def _add_collision(spec, bodies, hand, vertices, joints, gains, info) -> None:
    weights = hand.weights
    tips = {f: vertices[hand.tip_vertex_ids[k]] for k, f in enumerate(("thumb", "index", "middle", "ring", "pinky"))}
    for finger, chain in MANO_FINGERS.items():
        for k, j in enumerate(chain):
            a = joints[j]
            mask = weights[:, j] > 0.5
            if k < 2:
                b = joints[chain[k + 1]]
            else:  # distal segment: to the tip, less the tip's own rounding
                b = tips[finger]
            radius = _segment_radius(vertices, mask, a, b)
            if k == 2:
                b = b - radius * (b - a) / np.linalg.norm(b - a)
            name = f"hand_{MANO_JOINT_NAMES[j]}_col"
            geom = bodies[j].add_geom(
                name=name, type=mujoco.mjtGeom.mjGEOM_CAPSULE, size=[radius, 0, 0],
                fromto=np.concatenate([np.zeros(3), b - a]).tolist(),
            )
            _collision_props(geom, gains)
            info.geom_parts[name] = JOINT_PART[j]
    palm = vertices[weights[:, 0] > 0.5] - joints[0]
    hull = ConvexHull(palm)
    mesh = spec.add_mesh(name="hand_palm_hull")
    mesh.uservert = palm[hull.vertices].astype(np.float64).ravel().tolist()
    geom = bodies[0].add_geom(name="hand_palm_col", type=mujoco.mjtGeom.mjGEOM_MESH, meshname="hand_palm_hull")
    _collision_props(geom, gains)
    info.geom_parts["hand_palm_col"] = JOINT_PART[0]


def _collision_props(geom, gains: HandGains) -> None:
    geom.group = COLLISION_GROUP
    geom.contype, geom.conaffinity = HAND_CONTYPE, HAND_CONAFFINITY
    geom.condim = 4
    geom.friction = list(gains.friction)
    geom.density = 1000.0  # ~water: the hand's mass matters little, it is gravity compensated
    geom.rgba = [0.5, 0.5, 0.5, 0.3]


def _add_actuators(spec, articulation: HandArticulation, gains: HandGains) -> None:
    for name in WRIST_JOINTS:
        act = spec.add_actuator(name=name, target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        if name in ("wrist_x", "wrist_y", "wrist_z"):
            act.set_to_position(kp=gains.wrist_kp_linear, kv=gains.wrist_kv_linear)
            act.forcerange = [-gains.wrist_force, gains.wrist_force]
        else:
            act.set_to_position(kp=gains.wrist_kp_angular, kv=gains.wrist_kv_angular)
            act.forcerange = [-gains.wrist_torque, gains.wrist_torque]
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
    for dof in articulation.dofs:
        level = 0 if dof.joint in (1, 4, 7, 10, 13) else (1 if dof.joint in (2, 5, 8, 11, 14) else 2)
        act = spec.add_actuator(name=dof.name, target=dof.name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=gains.finger_kp * gains.finger_kp_scale[level])
        act.ctrlrange = [dof.lower, dof.upper]
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = [-gains.finger_torque, gains.finger_torque]
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE


def _add_skin(spec, hand: HandModel, vertices, joints, info: HandSpecInfo, rgba) -> None:
    skin = spec.add_skin(name=info.skin)
    skin.vert = vertices.astype(np.float64).ravel().tolist()
    skin.face = hand.faces.astype(np.int32).ravel().tolist()
    skin.rgba = list(rgba)
    names, bindpos, bindquat, vertid, vertweight = [], [], [], [], []
    for j in range(NUM_JOINTS):
        ids = np.flatnonzero(hand.weights[:, j] > 0)
        if ids.size == 0:
            continue
        names.append(info.joint_bodies[j])
        bindpos.extend(joints[j].tolist())
        bindquat.extend([1.0, 0.0, 0.0, 0.0])
        vertid.append(ids.astype(np.int32).tolist())
        vertweight.append(hand.weights[ids, j].astype(np.float64).tolist())
    skin.bodyname = names
    skin.bindpos = bindpos
    skin.bindquat = bindquat
    skin.vertid = vertid
    skin.vertweight = vertweight
