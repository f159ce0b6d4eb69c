"""The simulated hand as a UsdPhysics articulation, from the same rig the MuJoCo builder reads.

Layout under the hand's root prim (``PhysicsArticulationRootAPI``; its frame is the base's):

- ``hand_base``: the world-anchored base (``hand_root_joint``, a fixed joint to the world),
  standing in for MuJoCo's mocap base;
- the six wrist joints ``wrist_x/y/z`` (prismatic) and ``wrist_rx/ry/rz`` (revolute) through five
  light virtual links ``hand_wrist_x`` ... ``hand_wrist_ry`` to ``hand_wrist``: a USD joint joins
  two bodies, where MuJoCo stacks several joints on one body;
- one rigid link per bone, ``hand_<mano joint>``, with MuJoCo's mass, centre of mass and
  principal inertia; bones with several hinges (MCPs, thumb CMC) reach them through virtual
  links named after the hinge, e.g. ``hand_index1_flex``;
- revolute joints named as in MuJoCo, limits in degrees, an angular ``DriveAPI`` whose gains
  are the MuJoCo position servo's per degree;
- colliders: MuJoCo's capsules (``UsdGeom.Capsule``) and the palm hull (a convex-hull mesh);
- visuals: the skin split into rigid pieces by dominant skinning weight (for renderers that
  do not skin) and a ``UsdSkel`` skinned mesh under ``skin`` (hidden by default);
- every prim labelled ``class=hand`` for instance and semantic segmentation.

Masses come from MuJoCo's compiler integrating the rig's shapes at the rig's density, so the two
engines see the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
from pxr import Gf, Sdf, Usd, UsdGeom, UsdPhysics, UsdSkel
from scipy.spatial import ConvexHull
from scipy.spatial.transform import Rotation

from pam_engine.conventions import MANO_JOINT_NAMES, MANO_PARENTS, SEG_HAND
from pam_engine.hand.articulation import HandArticulation
from pam_engine.hand.model import NUM_JOINTS, HandModel
from pam_engine.sim.base import HandGains
from pam_engine.sim.rig import HAND_CONDIM, HandRig, RigJoint, build_rig
from pam_engine.usd.stage import DEG, add_labels, bind_physics_material, define_mesh, physics_material, quatf, set_pose

#: Mass (kg) and principal inertia (kg m^2) of each virtual link: small against a phalanx
#: (~5 g, ~1e-7 kg m^2), above the floors engines clamp to (Newton lifts moments under 1e-10
#: by 1e-6, which would outweigh a phalanx).
VIRTUAL_MASS = 1e-4
VIRTUAL_INERTIA = 1e-9
SKIN_COLOR = (0.87, 0.70, 0.60)
HAND_LABELS = {"class": "hand", "segmentation_id": str(SEG_HAND)}


@dataclass(frozen=True)
class Link:
    """A rigid link of the USD articulation and the joint that moves it (None for the base)."""

    name: str
    parent: str | None
    joint: RigJoint | None
    bone: int  # MANO joint whose bone this is, -1 for the base and virtual links
    offset: np.ndarray  # (3,) origin in the parent link's frame at rest (all links: the base's axes)


@dataclass(frozen=True)
class BodyMass:
    mass: float
    com: np.ndarray  # (3,) body frame
    inertia: np.ndarray  # (3,) principal moments
    axes: np.ndarray  # (3, 3) principal axes (columns) in the body frame


@dataclass(frozen=True)
class HandLayout:
    """What :func:`add_hand` wrote, by path."""

    root: str
    links: tuple[Link, ...]
    rig: HandRig

    def link_path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def joint_path(self, name: str) -> str:
        return f"{self.root}/joints/{name}"

    @property
    def joint_names(self) -> list[str]:
        return [rj.name for rj in self.rig.joints]


def hand_links(rig: HandRig) -> tuple[Link, ...]:
    """The articulation's links in parent-first order: base, wrist chain, then each bone's chain."""
    zero = np.zeros(3)
    links = [Link("hand_base", None, None, -1, zero)]
    parent = "hand_base"
    for k, rj in enumerate(rig.wrist_joints):
        last = k == len(rig.wrist_joints) - 1
        name = rig.body_names[0] if last else f"hand_{rj.name}"
        links.append(Link(name, parent, rj, 0 if last else -1, zero))
        parent = name
    for j in range(1, NUM_JOINTS):
        dofs = [rj for rj in rig.finger_joints if rj.body == j]
        parent = rig.body_names[rig.parents[j]]
        for k, rj in enumerate(dofs):
            last = k == len(dofs) - 1
            name = rig.body_names[j] if last else f"hand_{rj.name}"
            links.append(Link(name, parent, rj, j if last else -1, rig.body_offsets[j] if k == 0 else zero))
            parent = name
    return tuple(links)


def hand_masses(hand: HandModel, articulation: HandArticulation, betas: np.ndarray | None = None,
                gains: HandGains | None = None) -> list[BodyMass]:
    """Mass properties of the 16 bones as MuJoCo compiles them from the rig."""
    from pam_engine.sim.mujoco.hand_builder import add_hand as add_mujoco_hand

    spec = mujoco.MjSpec()
    spec.compiler.degree = False
    info = add_mujoco_hand(spec, hand, articulation, betas=betas, gains=gains)
    model = spec.compile()
    out = []
    for name in info.joint_bodies:
        b = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
        w, x, y, z = model.body_iquat[b]
        out.append(BodyMass(float(model.body_mass[b]), model.body_ipos[b].copy(), model.body_inertia[b].copy(),
                            Rotation.from_quat([x, y, z, w]).as_matrix()))
    return out


def link_poses(links: tuple[Link, ...], rig: HandRig, wrist_q: np.ndarray, angles: np.ndarray) -> dict[str, np.ndarray]:
    """4x4 pose of every link in the base frame for wrist joint values (x, y, z, rx, ry, rz) and
    finger joint angles (the rig's order): the kinematics MuJoCo computes for its bodies."""
    values = dict(zip([rj.name for rj in rig.joints], np.concatenate([wrist_q, angles]).tolist()))
    poses: dict[str, np.ndarray] = {}
    for link in links:
        if link.parent is None:
            poses[link.name] = np.eye(4)
            continue
        rj, q = link.joint, values[link.joint.name]
        motion = np.eye(4)
        if rj.kind == "slide":
            motion[:3, 3] = q * rj.axis
        else:
            motion[:3, :3] = Rotation.from_rotvec(q * rj.axis).as_matrix()
        offset = np.eye(4)
        offset[:3, 3] = link.offset
        poses[link.name] = poses[link.parent] @ offset @ motion
    return poses


def add_hand(stage: Usd.Stage, path: str, hand: HandModel, articulation: HandArticulation, *,
             betas: np.ndarray | None = None, gains: HandGains | None = None, world_anchor: np.ndarray | None = None,
             wrist_q: np.ndarray | None = None, angles: np.ndarray | None = None, skin: bool = True) -> HandLayout:
    """Author the hand articulation at prim ``path``.

    ``world_anchor`` (4x4, default identity) is the base's world pose: the root prim's transform
    and the fixed joint's world frame. ``wrist_q`` (6) and ``angles`` (finger joints) pose the
    links and set the joints' initial state (default: rest, all zero). The root prim's parent
    is assumed to sit at the world origin.
    """
    rig = build_rig(hand, articulation, betas, gains)
    links = hand_links(rig)
    masses = hand_masses(hand, articulation, betas, gains)
    anchor = np.eye(4) if world_anchor is None else np.asarray(world_anchor, dtype=np.float64)
    wrist_q = np.zeros(6) if wrist_q is None else np.asarray(wrist_q, dtype=np.float64)
    angles = np.zeros(len(rig.finger_joints)) if angles is None else articulation.check_angles(angles, "hand angles")
    poses = link_poses(links, rig, wrist_q, angles)
    layout = HandLayout(path, links, rig)

    root = UsdGeom.Xform.Define(stage, path)
    set_pose(root, anchor)
    UsdPhysics.ArticulationRootAPI.Apply(root.GetPrim())
    # MuJoCo's hand never collides with itself (contype/conaffinity): say so to PhysX and Newton.
    # PhysX's attributes count only under their applied schemas (metadata here: no PhysX needed)
    root.GetPrim().AddAppliedSchema("PhysxArticulationAPI")
    root.GetPrim().CreateAttribute("physxArticulation:enabledSelfCollisions", Sdf.ValueTypeNames.Bool).Set(False)
    root.GetPrim().CreateAttribute("newton:selfCollisionEnabled", Sdf.ValueTypeNames.Bool).Set(False)
    add_labels(root.GetPrim(), **HAND_LABELS)
    material = f"{path}/physics_material"
    # MuJoCo's hand geoms: condim 4 (sliding + torsional friction) at the rig's torsional friction
    physics_material(stage, material, rig.friction[0], torsional=rig.friction[1], rolling=rig.friction[2])

    pieces = _skin_pieces(hand, rig)
    for link in links:
        prim = UsdGeom.Xform.Define(stage, layout.link_path(link.name))
        set_pose(prim, poses[link.name])
        p = prim.GetPrim()
        UsdPhysics.RigidBodyAPI.Apply(p)
        p.AddAppliedSchema("PhysxRigidBodyAPI")
        p.CreateAttribute("physxRigidBody:disableGravity", Sdf.ValueTypeNames.Bool).Set(True)  # MuJoCo's gravcomp
        mass_api = UsdPhysics.MassAPI.Apply(p)
        if link.bone >= 0:
            m = masses[link.bone]
            mass_api.CreateMassAttr(m.mass)
            mass_api.CreateCenterOfMassAttr(Gf.Vec3f(*m.com.tolist()))
            mass_api.CreateDiagonalInertiaAttr(Gf.Vec3f(*m.inertia.tolist()))
            mass_api.CreatePrincipalAxesAttr(quatf(m.axes))
            _add_colliders(stage, layout, link, rig, material)
            vertices, faces = pieces[link.bone]
            if len(faces):
                visual = define_mesh(stage, f"{layout.link_path(link.name)}/visual", vertices, faces, SKIN_COLOR)
                add_labels(visual.GetPrim(), **HAND_LABELS)
        else:
            mass_api.CreateMassAttr(VIRTUAL_MASS)
            mass_api.CreateCenterOfMassAttr(Gf.Vec3f(0.0, 0.0, 0.0))
            mass_api.CreateDiagonalInertiaAttr(Gf.Vec3f(VIRTUAL_INERTIA, VIRTUAL_INERTIA, VIRTUAL_INERTIA))
            mass_api.CreatePrincipalAxesAttr(Gf.Quatf(1.0))
        add_labels(p, **HAND_LABELS)

    UsdGeom.Scope.Define(stage, f"{path}/joints")
    fixed = UsdPhysics.FixedJoint.Define(stage, layout.joint_path("hand_root_joint"))
    fixed.CreateBody1Rel().SetTargets([Sdf.Path(layout.link_path("hand_base"))])
    fixed.CreateLocalPos0Attr(Gf.Vec3f(*anchor[:3, 3].tolist()))
    fixed.CreateLocalRot0Attr(quatf(anchor[:3, :3]))
    fixed.CreateLocalPos1Attr(Gf.Vec3f(0.0, 0.0, 0.0))
    fixed.CreateLocalRot1Attr(Gf.Quatf(1.0))
    values = np.concatenate([wrist_q, angles])
    for link, value in zip(links[1:], values):
        _add_joint(stage, layout, link, value)
    if skin:
        add_skin(stage, f"{path}/skin", hand, rig)
        pose_skin(stage, layout, poses)
    return layout


def _axis_frame(axis: np.ndarray) -> Gf.Quatf:
    """The rotation taking the joint frame's X axis onto ``axis`` (the joint's USD axis is X)."""
    x = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    helper = np.array([0.0, 0.0, 1.0]) if abs(x[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
    y = np.cross(helper, x)
    y /= np.linalg.norm(y)
    return quatf(np.stack([x, y, np.cross(x, y)], axis=1))


def _add_joint(stage: Usd.Stage, layout: HandLayout, link: Link, value: float) -> None:
    rj = link.joint
    path = layout.joint_path(rj.name)
    linear = rj.kind == "slide"
    joint = (UsdPhysics.PrismaticJoint if linear else UsdPhysics.RevoluteJoint).Define(stage, path)
    joint.CreateBody0Rel().SetTargets([Sdf.Path(layout.link_path(link.parent))])
    joint.CreateBody1Rel().SetTargets([Sdf.Path(layout.link_path(link.name))])
    joint.CreateAxisAttr("X")
    frame = _axis_frame(rj.axis)
    joint.CreateLocalPos0Attr(Gf.Vec3f(*link.offset.tolist()))
    joint.CreateLocalRot0Attr(frame)
    joint.CreateLocalPos1Attr(Gf.Vec3f(0.0, 0.0, 0.0))
    joint.CreateLocalRot1Attr(frame)
    scale = 1.0 if linear else DEG  # USD: metres, degrees
    if rj.lower is not None:
        joint.CreateLowerLimitAttr(rj.lower * scale)
        joint.CreateUpperLimitAttr(rj.upper * scale)
    kind = "linear" if linear else "angular"
    drive = UsdPhysics.DriveAPI.Apply(joint.GetPrim(), kind)
    drive.CreateTypeAttr("force")
    drive.CreateStiffnessAttr(rj.kp / scale)  # per degree for angular drives
    drive.CreateDampingAttr(rj.kv / scale)
    drive.CreateMaxForceAttr(rj.force_limit)
    drive.CreateTargetPositionAttr(value * scale)
    prim = joint.GetPrim()
    prim.AddAppliedSchema(f"PhysicsJointStateAPI:{kind}")
    prim.CreateAttribute(f"state:{kind}:physics:position", Sdf.ValueTypeNames.Float).Set(value * scale)
    prim.CreateAttribute(f"state:{kind}:physics:velocity", Sdf.ValueTypeNames.Float).Set(0.0)
    # passive joint properties (no UsdPhysics schema): PhysX's and Newton's names, Newton's
    # damping per degree like the drives
    prim.AddAppliedSchema("PhysxJointAPI")
    prim.CreateAttribute("physxJoint:armature", Sdf.ValueTypeNames.Float).Set(rj.armature)
    prim.CreateAttribute("newton:armature", Sdf.ValueTypeNames.Float).Set(rj.armature)
    prim.CreateAttribute("newton:damping", Sdf.ValueTypeNames.Float).Set(rj.damping / scale)


def _add_colliders(stage: Usd.Stage, layout: HandLayout, link: Link, rig: HandRig, material: str) -> None:
    base = layout.link_path(link.name)
    for cap in rig.capsules:
        if cap.body != link.bone:
            continue
        axis = cap.end - cap.start
        length = float(np.linalg.norm(axis))
        capsule = UsdGeom.Capsule.Define(stage, f"{base}/{cap.name}")
        capsule.CreateAxisAttr(UsdGeom.Tokens.z)
        capsule.CreateRadiusAttr(cap.radius)
        capsule.CreateHeightAttr(length)
        capsule.CreatePurposeAttr(UsdGeom.Tokens.guide)
        pose = np.eye(4)
        pose[:3, 3] = 0.5 * (cap.start + cap.end)
        pose[:3, :3] = _z_to(axis / length)
        set_pose(capsule, pose)
        _collider(capsule.GetPrim(), material)
    if link.bone == 0:
        hull = rig.palm_hull
        faces = _outward_hull_faces(hull)
        mesh = define_mesh(stage, f"{base}/{rig.palm_name}", hull, faces)
        mesh.CreatePurposeAttr(UsdGeom.Tokens.guide)
        _collider(mesh.GetPrim(), material)
        UsdPhysics.MeshCollisionAPI.Apply(mesh.GetPrim()).CreateApproximationAttr(UsdPhysics.Tokens.convexHull)


def _collider(prim: Usd.Prim, material: str) -> None:
    UsdPhysics.CollisionAPI.Apply(prim)
    bind_physics_material(prim, material)
    # Newton's MuJoCo solver reads the contact dimensionality from mjc:condim (its default is 3)
    prim.CreateAttribute("mjc:condim", Sdf.ValueTypeNames.Int).Set(int(HAND_CONDIM))
    add_labels(prim, **HAND_LABELS)


def _z_to(direction: np.ndarray) -> np.ndarray:
    """A rotation taking +Z onto the unit vector ``direction`` (the shortest arc)."""
    rot, _ = Rotation.align_vectors([direction], [[0.0, 0.0, 1.0]])
    return rot.as_matrix()


def _outward_hull_faces(points: np.ndarray) -> np.ndarray:
    """Triangles of the convex hull of ``points`` (all of them hull vertices), wound outwards."""
    hull = ConvexHull(points)
    faces = hull.simplices.copy()
    centre = points.mean(axis=0)
    for i, (a, b, c) in enumerate(faces):
        if np.dot(np.cross(points[b] - points[a], points[c] - points[a]), points[a] - centre) < 0:
            faces[i] = (a, c, b)
    return faces


def _skin_pieces(hand: HandModel, rig: HandRig) -> list[tuple[np.ndarray, np.ndarray]]:
    """The skin's triangles split by the bone with the largest summed weight over the triangle's
    corners, each piece in its bone's frame."""
    faces = np.asarray(hand.faces, dtype=np.int64)
    owner = hand.weights[faces].sum(axis=1).argmax(axis=1)
    out = []
    for j in range(NUM_JOINTS):
        f = faces[owner == j]
        used, inverse = np.unique(f, return_inverse=True)
        out.append((rig.rest_vertices[used] - rig.rest_joints[j], inverse.reshape(-1, 3)))
    return out


def skeleton_joint_paths() -> list[str]:
    """UsdSkel joint paths of the 16 MANO joints (``wrist/index1/index2`` ...), MANO order."""
    paths: list[str] = []
    for j, name in enumerate(MANO_JOINT_NAMES):
        paths.append(name if MANO_PARENTS[j] < 0 else f"{paths[MANO_PARENTS[j]]}/{name}")
    return paths


def add_skin(stage: Usd.Stage, path: str, hand: HandModel, rig: HandRig) -> UsdSkel.Skeleton:
    """The skin as a ``UsdSkel`` skinned mesh (the model's linear-blend weights, exactly), in the
    base frame at rest; invisible by default since the rigid pieces already draw the hand."""
    root = UsdSkel.Root.Define(stage, path)
    root.CreateVisibilityAttr(UsdGeom.Tokens.invisible)
    add_labels(root.GetPrim(), **HAND_LABELS)
    skel = UsdSkel.Skeleton.Define(stage, f"{path}/skeleton")
    skel.CreateJointsAttr(skeleton_joint_paths())
    rest = rig.rest_joints - rig.rest_joints[0]
    skel.CreateBindTransformsAttr([Gf.Matrix4d(1.0).SetTranslate(Gf.Vec3d(*p.tolist())) for p in rest])
    skel.CreateRestTransformsAttr([Gf.Matrix4d(1.0).SetTranslate(Gf.Vec3d(*o.tolist())) for o in rig.body_offsets])
    mesh = define_mesh(stage, f"{path}/mesh", rig.rest_vertices - rig.rest_joints[0], hand.faces, SKIN_COLOR)
    add_labels(mesh.GetPrim(), **HAND_LABELS)
    binding = UsdSkel.BindingAPI.Apply(mesh.GetPrim())
    binding.CreateSkeletonRel().SetTargets([skel.GetPath()])
    weights = np.asarray(hand.weights, dtype=np.float64)
    k = int((weights > 0).sum(axis=1).max())
    order = np.argsort(-weights, axis=1)[:, :k]
    w = np.take_along_axis(weights, order, axis=1)
    binding.CreateJointIndicesPrimvar(False, k).Set(order.astype(np.int32).ravel())
    binding.CreateJointWeightsPrimvar(False, k).Set(w.astype(np.float32).ravel())
    binding.CreateGeomBindTransformAttr(Gf.Matrix4d(1.0))
    UsdSkel.BindingAPI.Apply(root.GetPrim()).CreateSkeletonRel().SetTargets([skel.GetPath()])
    return skel


def pose_skin(stage: Usd.Stage, layout: HandLayout, poses: dict[str, np.ndarray], time: float | None = None) -> None:
    """Pose the skinned mesh like the links (``poses``: :func:`link_poses`), through the skeleton's
    ``UsdSkel.Animation`` (a default value, or a time sample at ``time``)."""
    skel = UsdSkel.Skeleton(stage.GetPrimAtPath(f"{layout.root}/skin/skeleton"))
    if not skel:
        return
    rig = layout.rig
    path = f"{layout.root}/skin/animation"
    animation = UsdSkel.Animation(stage.GetPrimAtPath(path))
    if not animation:
        animation = UsdSkel.Animation.Define(stage, path)
        animation.CreateJointsAttr(skel.GetJointsAttr().Get())
        UsdSkel.BindingAPI.Apply(skel.GetPrim()).CreateAnimationSourceRel().SetTargets([animation.GetPath()])
    when = Usd.TimeCode.Default() if time is None else Usd.TimeCode(time)
    rotations, translations = [], rig.body_offsets.copy()
    translations[0] = poses[rig.body_names[0]][:3, 3]
    for j, name in enumerate(rig.body_names):  # each bone's rotation relative to its parent bone
        parent = rig.parents[j]
        parent_rot = np.eye(3) if parent < 0 else poses[rig.body_names[parent]][:3, :3]
        rotations.append(quatf(parent_rot.T @ poses[name][:3, :3]))
    animation.CreateTranslationsAttr().Set([Gf.Vec3f(*p.tolist()) for p in translations], when)
    animation.CreateRotationsAttr().Set(rotations, when)
    animation.CreateScalesAttr().Set([Gf.Vec3h(1.0, 1.0, 1.0)] * len(rotations), when)
