"""Putting an :class:`ObjectAsset` into a MuJoCo model (``mujoco.MjSpec``).

One body per object, its frame = the object frame (so a body pose is the object's 6D pose):
- the visual mesh as a geom in group 2 with contype = conaffinity = 0 (drawn, never collides);
- each convex part as a mesh geom in group 3 (collides; hidden by MuJoCo's default group mask);
- the body's inertial set explicitly from the asset's mass, COM and inertia, so MuJoCo does not
  re-derive them from the (possibly open) visual mesh.
"""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np

from pam_engine.objects.asset import ObjectAsset

VISUAL_GROUP = 2
COLLISION_GROUP = 3


def _add_mesh(spec: mujoco.MjSpec, name: str, vertices: np.ndarray, faces: np.ndarray):
    mesh = spec.add_mesh()
    mesh.name = name
    mesh.uservert = np.asarray(vertices, dtype=np.float32).ravel().tolist()
    mesh.userface = np.asarray(faces, dtype=np.int32).ravel().tolist()
    return mesh


def add_object_to_spec(spec: mujoco.MjSpec, asset: ObjectAsset, body_name: str,
                       pos: Sequence[float] = (0.0, 0.0, 0.0), quat: Sequence[float] = (1.0, 0.0, 0.0, 0.0),
                       free: bool = True, parent: mujoco.MjsBody | None = None,
                       rgba: Sequence[float] = (0.75, 0.75, 0.75, 1.0),
                       friction: Sequence[float] | None = None) -> mujoco.MjsBody:
    """Add ``asset`` as body ``body_name`` at ``pos``/``quat`` (w, x, y, z; object frame in the
    parent's frame), with a free joint ``<body_name>_free`` when ``free``. Mesh assets are named
    ``<body_name>_visual`` and ``<body_name>_hull<i>``. Returns the new body."""
    parent = spec.worldbody if parent is None else parent
    body = parent.add_body()
    body.name = body_name
    body.pos = np.asarray(pos, dtype=np.float64)
    body.quat = np.asarray(quat, dtype=np.float64)
    if free:
        joint = body.add_freejoint()
        joint.name = f"{body_name}_free"

    I = asset.inertia
    body.explicitinertial = True
    body.mass = float(asset.mass)
    body.ipos = np.asarray(asset.com, dtype=np.float64)
    body.fullinertia = [I[0, 0], I[1, 1], I[2, 2], I[0, 1], I[0, 2], I[1, 2]]

    visual = _add_mesh(spec, f"{body_name}_visual", asset.mesh.vertices, asset.mesh.faces)
    # The visual scan may be open; "shell" inertia never fails on that (the body's inertia is
    # explicit, so this only affects how MuJoCo frames the mesh internally).
    visual.inertia = mujoco.mjtMeshInertia.mjMESH_INERTIA_SHELL
    geom = body.add_geom()
    geom.name = f"{body_name}_visual"
    geom.type = mujoco.mjtGeom.mjGEOM_MESH
    geom.meshname = visual.name
    geom.group = VISUAL_GROUP
    geom.contype = 0
    geom.conaffinity = 0
    geom.rgba = np.asarray(rgba, dtype=np.float32)

    for i, hull in enumerate(asset.collision_parts):
        mesh = _add_mesh(spec, f"{body_name}_hull{i}", hull.vertices, hull.faces)
        geom = body.add_geom()
        geom.name = f"{body_name}_hull{i}"
        geom.type = mujoco.mjtGeom.mjGEOM_MESH
        geom.meshname = mesh.name
        geom.group = COLLISION_GROUP
        geom.contype = 1
        geom.conaffinity = 1
        geom.rgba = np.array([0.2, 0.6, 1.0, 0.5], dtype=np.float32)
        if friction is not None:
            geom.friction = np.asarray(friction, dtype=np.float64)
    return body
