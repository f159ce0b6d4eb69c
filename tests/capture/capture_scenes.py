"""Small MjSpec scenes for the capture tests (built in code, no files)."""

import mujoco
import numpy as np

from synthetic_scene import box_mesh, tube_mesh


def new_spec(width=320, height=240, extent=1.0):
    spec = mujoco.MjSpec()
    spec.visual.global_.offwidth = width
    spec.visual.global_.offheight = height
    spec.stat.extent = extent
    spec.worldbody.add_light(pos=[0, 0, 3], dir=[0, 0, -1])
    return spec


def add_box_mesh_object(spec, name, half, pos, quat=(1, 0, 0, 0), group=2, collision_scale=None):
    """A free-floating (static) mesh box in geom group ``group``; optionally a larger collision box
    in group 3 that must never be drawn."""
    verts, faces = box_mesh(half)
    spec.add_mesh(name=f"{name}_mesh", uservert=verts.reshape(-1).tolist(), userface=faces.reshape(-1).tolist())
    body = spec.worldbody.add_body(name=name, pos=list(pos), quat=list(quat))
    body.add_geom(name=f"{name}_visual", type=mujoco.mjtGeom.mjGEOM_MESH, meshname=f"{name}_mesh", group=group,
                  rgba=[0.8, 0.3, 0.2, 1])
    if collision_scale:
        body.add_geom(name=f"{name}_collision", type=mujoco.mjtGeom.mjGEOM_BOX,
                      size=[h * collision_scale for h in half], group=3, rgba=[0, 1, 0, 1])
    return verts, faces


def add_two_bone_skin(spec, root_pos, length=0.12, radius=0.015, name="skin"):
    """A tube skin along +x bound to a root body and a hinged tip body (hinge about z at the
    middle; bends in the x-y plane). Returns (vertices at bind pose relative to the root, weights of the tip bone)."""
    root_pos = np.asarray(root_pos, dtype=np.float64)
    half = length / 2
    root = spec.worldbody.add_body(name=f"{name}_root", pos=root_pos.tolist())
    tip = root.add_body(name=f"{name}_tip", pos=[half, 0, 0])
    tip.add_joint(name=f"{name}_hinge", type=mujoco.mjtJoint.mjJNT_HINGE, axis=[0, 0, 1])
    root.add_geom(type=mujoco.mjtGeom.mjGEOM_CAPSULE, fromto=[0, 0, 0, half, 0, 0], size=[radius, 0, 0], group=3)
    tip.add_geom(type=mujoco.mjtGeom.mjGEOM_CAPSULE, fromto=[0, 0, 0, half, 0, 0], size=[radius, 0, 0], group=3)
    verts, faces = tube_mesh(length, radius, rings=24, segments=24)
    w_tip = np.clip((verts[:, 0] - 0.35 * length) / (0.3 * length), 0.0, 1.0)
    skin = spec.add_skin(name=name, rgba=[0.9, 0.7, 0.6, 1])
    skin.vert = (verts + root_pos).reshape(-1).tolist()
    skin.face = faces.reshape(-1).tolist()
    skin.bodyname = [f"{name}_root", f"{name}_tip"]
    skin.bindpos = np.concatenate([root_pos, root_pos + [half, 0, 0]]).tolist()
    skin.bindquat = [1, 0, 0, 0, 1, 0, 0, 0]
    ids = np.arange(len(verts))
    skin.vertid = [ids[w_tip < 1].tolist(), ids[w_tip > 0].tolist()]
    skin.vertweight = [(1 - w_tip[w_tip < 1]).tolist(), w_tip[w_tip > 0].tolist()]
    return verts, faces, w_tip


def iou(a, b):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = np.logical_or(a, b).sum()
    return np.logical_and(a, b).sum() / union if union else 1.0
