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

from pam_engine.conventions import MANO_FINGERS
from pam_engine.hand.articulation import HandArticulation
from pam_engine.hand.model import NUM_JOINTS, HandModel
from pam_engine.sim.base import HandGains
from pam_engine.sim.rig import HAND_CONDIM, WRIST_JOINTS, HandRig, build_rig

#: Contact bitmasks: hand geoms touch the world/objects, never each other.
HAND_CONTYPE, HAND_CONAFFINITY = 2, 1
WORLD_CONTYPE, WORLD_CONAFFINITY = 1, 3
COLLISION_GROUP = 3

#: Which contact part (CONTACT_PARTS order: thumb, index, middle, ring, little, palm) a MANO
#: joint's geometry belongs to.
JOINT_PART = {0: 5, **{j: p for p, f in enumerate(("thumb", "index", "middle", "ring", "pinky")) for j in MANO_FINGERS[f]}}

__all__ = ["HandSpecInfo", "WRIST_JOINTS", "add_hand"]


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
    """Add the hand (mocap base, wrist joints, finger joints, actuators, collision, skin), as
    :func:`pam_engine.sim.rig.build_rig` describes it."""
    rig = build_rig(hand, articulation, betas, gains)
    vertices, joints = rig.rest_vertices, rig.rest_joints
    info = HandSpecInfo(finger_joints=tuple(articulation.names), rest_joints=joints, rest_vertices=vertices)

    base = spec.worldbody.add_body(name="hand_base", mocap=True)
    wrist = base.add_body(name=rig.body_names[0], gravcomp=1.0)
    for rj in rig.wrist_joints:
        jnt = wrist.add_joint(name=rj.name, axis=rj.axis.tolist())
        jnt.type = mujoco.mjtJoint.mjJNT_SLIDE if rj.kind == "slide" else mujoco.mjtJoint.mjJNT_HINGE
        jnt.armature = rj.armature
    bodies = {0: wrist}
    for j in range(1, NUM_JOINTS):
        bodies[j] = bodies[rig.parents[j]].add_body(name=rig.body_names[j], pos=rig.body_offsets[j].tolist(), gravcomp=1.0)
    info.joint_bodies = rig.body_names

    for rj in rig.finger_joints:
        jnt = bodies[rj.body].add_joint(name=rj.name, axis=rj.axis.tolist(), range=[rj.lower, rj.upper])
        jnt.type = mujoco.mjtJoint.mjJNT_HINGE
        jnt.limited = mujoco.mjtLimited.mjLIMITED_TRUE
        jnt.damping = [rj.damping, 0.0, 0.0]
        jnt.armature = rj.armature

    _add_collision(spec, bodies, rig, info)
    _add_actuators(spec, rig)
    _add_skin(spec, hand, vertices, joints, info, skin_rgba)
    return info


def _add_collision(spec, bodies, rig: HandRig, info) -> None:
    for cap in rig.capsules:
        geom = bodies[cap.body].add_geom(
            name=cap.name, type=mujoco.mjtGeom.mjGEOM_CAPSULE, size=[cap.radius, 0, 0],
            fromto=np.concatenate([cap.start, cap.end]).tolist(),
        )
        _collision_props(geom, rig)
        info.geom_parts[cap.name] = JOINT_PART[cap.body]
    mesh = spec.add_mesh(name="hand_palm_hull")
    mesh.uservert = rig.palm_hull.ravel().tolist()
    geom = bodies[0].add_geom(name=rig.palm_name, type=mujoco.mjtGeom.mjGEOM_MESH, meshname="hand_palm_hull")
    _collision_props(geom, rig)
    info.geom_parts[rig.palm_name] = JOINT_PART[0]


def _collision_props(geom, rig: HandRig) -> None:
    geom.group = COLLISION_GROUP
    geom.contype, geom.conaffinity = HAND_CONTYPE, HAND_CONAFFINITY
    geom.condim = HAND_CONDIM
    geom.friction = list(rig.friction)
    geom.density = rig.density
    geom.rgba = [0.5, 0.5, 0.5, 0.3]


def _add_actuators(spec, rig: HandRig) -> None:
    for rj in rig.joints:
        act = spec.add_actuator(name=rj.name, target=rj.name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        if rj.kv:
            act.set_to_position(kp=rj.kp, kv=rj.kv)
        else:
            act.set_to_position(kp=rj.kp)
        if rj.lower is not None:
            act.ctrlrange = [rj.lower, rj.upper]
            act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = [-rj.force_limit, rj.force_limit]
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
