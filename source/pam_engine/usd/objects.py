"""An object asset as a USD rigid body: the visual mesh, one convex-hull collider per part of the
convex decomposition MuJoCo collides with, and the asset's mass, centre of mass and inertia.

Layout under the object's prim (its frame = the object frame, the mesh file's own):
``visual`` (the render mesh, no collision) and ``collision/hull_<i>`` (``MeshCollisionAPI``
convexHull, guide purpose), labelled ``class=<YCB name>`` and ``dexycb_id=<id>``.
"""

from __future__ import annotations

import numpy as np
from pxr import Gf, Sdf, Usd, UsdGeom, UsdPhysics

from pam_engine.errors import AssetError
from pam_engine.usd.stage import add_labels, bind_physics_material, define_mesh, physics_material, quatf, set_pose

OBJECT_COLOR = (0.75, 0.75, 0.75)
#: How far (fraction of the mesh's bounding-box diagonal) a hull may reach beyond the mesh's box.
HULL_MARGIN = 0.05


def principal_inertia(inertia: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Principal moments (3,) and axes (3x3, columns, a proper rotation) of an inertia tensor."""
    moments, axes = np.linalg.eigh(0.5 * (inertia + inertia.T))
    if np.linalg.det(axes) < 0:
        axes[:, 2] *= -1
    return moments, axes


def check_hulls(asset) -> None:
    """Reject a collision set that cannot belong to the visual mesh (none, or reaching well
    beyond the mesh's bounding box), before anything is written."""
    if not asset.collision_parts:
        raise AssetError(f"object {asset.name!r} has no collision hulls")
    lo, hi = np.asarray(asset.mesh.bounds)
    margin = HULL_MARGIN * float(np.linalg.norm(hi - lo))
    for i, hull in enumerate(asset.collision_parts):
        v = np.asarray(hull.vertices)
        if len(v) < 4 or np.any(v < lo - margin) or np.any(v > hi + margin):
            raise AssetError(f"object {asset.name!r}: collision hull {i} does not match its mesh (it reaches "
                             f"{v.min(axis=0).round(4).tolist()}..{v.max(axis=0).round(4).tolist()}, the mesh spans "
                             f"{lo.round(4).tolist()}..{hi.round(4).tolist()})")


def add_object(stage: Usd.Stage, path: str, asset, pose: np.ndarray | None = None,
               friction: float | None = None) -> Usd.Prim:
    """Author ``asset`` (an :class:`pam_engine.objects.ObjectAsset`) as a rigid body at ``path``
    with world pose ``pose`` (4x4, default identity; the prim's parent at the origin)."""
    check_hulls(asset)
    body = UsdGeom.Xform.Define(stage, path)
    set_pose(body, np.eye(4) if pose is None else np.asarray(pose, dtype=np.float64))
    prim = body.GetPrim()
    UsdPhysics.RigidBodyAPI.Apply(prim)
    mass = UsdPhysics.MassAPI.Apply(prim)
    moments, axes = principal_inertia(np.asarray(asset.inertia, dtype=np.float64))
    mass.CreateMassAttr(float(asset.mass))
    mass.CreateCenterOfMassAttr(Gf.Vec3f(*np.asarray(asset.com, dtype=np.float64).tolist()))
    mass.CreateDiagonalInertiaAttr(Gf.Vec3f(*moments.tolist()))
    mass.CreatePrincipalAxesAttr(quatf(axes))
    labels = {"class": asset.name, "dexycb_id": str(int(asset.seg_id))}
    add_labels(prim, **labels)
    prim.CreateAttribute("pam:source", Sdf.ValueTypeNames.String).Set(str(asset.source))
    visual = define_mesh(stage, f"{path}/visual", asset.mesh.vertices, asset.mesh.faces, OBJECT_COLOR)
    add_labels(visual.GetPrim(), **labels)
    material = None
    if friction is not None:
        material = f"{path}/physics_material"
        physics_material(stage, material, friction)
    UsdGeom.Scope.Define(stage, f"{path}/collision")
    for i, hull in enumerate(asset.collision_parts):
        mesh = define_mesh(stage, f"{path}/collision/hull_{i}", hull.vertices, hull.faces)
        mesh.CreatePurposeAttr(UsdGeom.Tokens.guide)
        UsdPhysics.CollisionAPI.Apply(mesh.GetPrim())
        UsdPhysics.MeshCollisionAPI.Apply(mesh.GetPrim()).CreateApproximationAttr(UsdPhysics.Tokens.convexHull)
        add_labels(mesh.GetPrim(), **labels)
        if material is not None:
            bind_physics_material(mesh.GetPrim(), material)
    return prim
