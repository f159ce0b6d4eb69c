"""Stages, transforms, labels and atomic saving shared by the USD writers.

Stages are Z-up, one metre and one kilogram per unit (the engine's SI units), so no value is
scaled on the way in or out; angles are where USD says degrees (joint limits, drive gains).
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
from pxr import Gf, Sdf, Usd, UsdGeom, UsdPhysics, UsdSemantics

from pam_engine.errors import OutputError

USD_SUFFIXES = (".usd", ".usda", ".usdc")
DEG = 180.0 / math.pi  # degrees per radian


def check_output_path(path: str | os.PathLike) -> Path:
    """The output path, if it names a USD file in an existing folder; else an OutputError."""
    path = Path(path)
    if path.suffix.lower() not in USD_SUFFIXES:
        raise OutputError(f"USD output {str(path)!r} must end in .usd, .usda or .usdc")
    if not path.parent.is_dir():
        raise OutputError(f"USD output {str(path)!r}: folder {str(path.parent)!r} does not exist")
    return path


def new_stage(default_prim: str = "World") -> Usd.Stage:
    """An in-memory Z-up SI stage whose default prim is ``/<default_prim>`` (an Xform)."""
    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    UsdPhysics.SetStageKilogramsPerUnit(stage, 1.0)
    root = UsdGeom.Xform.Define(stage, f"/{default_prim}")
    stage.SetDefaultPrim(root.GetPrim())
    return stage


def save_stage(stage: Usd.Stage, path: str | os.PathLike) -> Path:
    """Write ``stage`` to ``path`` atomically: exported to a temporary file of the same format in
    the same folder, then renamed over ``path``, so a crash never leaves half a file."""
    path = check_output_path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        if not stage.GetRootLayer().Export(tmp):
            raise OutputError(f"USD could not write {str(path)!r}")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 is for the temporary name only
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def add_physics_scene(stage: Usd.Stage, gravity: tuple[float, float, float] = (0.0, 0.0, -9.81),
                      path: str = "/World/physicsScene") -> UsdPhysics.Scene:
    scene = UsdPhysics.Scene.Define(stage, path)
    g = np.asarray(gravity, dtype=np.float64)
    norm = float(np.linalg.norm(g))
    scene.CreateGravityDirectionAttr(Gf.Vec3f(*(g / norm if norm > 0 else (0.0, 0.0, -1.0))))
    scene.CreateGravityMagnitudeAttr(norm)
    return scene


def quatd(rotation: np.ndarray) -> Gf.Quatd:
    """A 3x3 rotation as a Gf.Quatd (w, x, y, z)."""
    from scipy.spatial.transform import Rotation

    x, y, z, w = Rotation.from_matrix(np.asarray(rotation, dtype=np.float64)).as_quat()
    return Gf.Quatd(float(w), float(x), float(y), float(z))


def quatf(rotation: np.ndarray) -> Gf.Quatf:
    q = quatd(rotation)
    return Gf.Quatf(q.GetReal(), Gf.Vec3f(q.GetImaginary()))


def quat_to_matrix(q) -> np.ndarray:
    """A Gf quaternion (either precision) as a 3x3 rotation matrix."""
    from scipy.spatial.transform import Rotation

    im = q.GetImaginary()
    return Rotation.from_quat([im[0], im[1], im[2], q.GetReal()]).as_matrix()


def set_pose(xformable: UsdGeom.Xformable, pose: np.ndarray, time: Usd.TimeCode | float | None = None) -> None:
    """Give a prim the rigid transform ``pose`` (4x4, parent frame) as translate + orient ops
    (double precision), the form physics engines read; ``time`` adds a time sample instead."""
    ops = {op.GetOpName(): op for op in xformable.GetOrderedXformOps()}
    translate = ops.get("xformOp:translate") or xformable.AddTranslateOp(UsdGeom.XformOp.PrecisionDouble)
    orient = ops.get("xformOp:orient") or xformable.AddOrientOp(UsdGeom.XformOp.PrecisionDouble)
    when = Usd.TimeCode.Default() if time is None else Usd.TimeCode(time)
    translate.Set(Gf.Vec3d(*np.asarray(pose[:3, 3], dtype=np.float64).tolist()), when)
    orient.Set(quatd(pose[:3, :3]), when)


def local_pose(prim: Usd.Prim, time: Usd.TimeCode | float | None = None) -> np.ndarray:
    """A prim's local transform as a 4x4 matrix (column-vector convention)."""
    when = Usd.TimeCode.Default() if time is None else Usd.TimeCode(time)
    m = UsdGeom.Xformable(prim).GetLocalTransformation(when)
    return np.array(m, dtype=np.float64).T


def world_pose(prim: Usd.Prim, time: Usd.TimeCode | float | None = None) -> np.ndarray:
    """A prim's world transform as a 4x4 matrix (column-vector convention)."""
    when = Usd.TimeCode.Default() if time is None else Usd.TimeCode(time)
    m = UsdGeom.Xformable(prim).ComputeLocalToWorldTransform(when)
    return np.array(m, dtype=np.float64).T


def add_labels(prim: Usd.Prim, **labels: str | list[str]) -> None:
    """Semantic labels (``UsdSemantics.LabelsAPI``, what Isaac's segmentation reads), one
    instance per keyword: ``add_labels(prim, **{"class": "hand"})``."""
    for instance, values in labels.items():
        values = [values] if isinstance(values, str) else list(values)
        UsdSemantics.LabelsAPI.Apply(prim, instance).CreateLabelsAttr().Set(values)


def define_mesh(stage: Usd.Stage, path: str | Sdf.Path, vertices: np.ndarray, faces: np.ndarray,
                color: tuple[float, float, float] | None = None) -> UsdGeom.Mesh:
    """A triangle mesh prim with its extent (and a display colour)."""
    mesh = UsdGeom.Mesh.Define(stage, path)
    points = np.asarray(vertices, dtype=np.float32)
    mesh.CreatePointsAttr(points)
    mesh.CreateFaceVertexCountsAttr(np.full(len(faces), 3, dtype=np.int32))
    mesh.CreateFaceVertexIndicesAttr(np.asarray(faces, dtype=np.int32).ravel())
    mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    mesh.CreateExtentAttr([Gf.Vec3f(*points.min(axis=0).tolist()), Gf.Vec3f(*points.max(axis=0).tolist())])
    if color is not None:
        mesh.CreateDisplayColorAttr([Gf.Vec3f(*color)])
    return mesh


def physics_material(stage: Usd.Stage, path: str, friction: float, torsional: float | None = None,
                     rolling: float | None = None) -> UsdPhysics.MaterialAPI:
    """A physics material with equal static and dynamic friction, combined with the other
    surface's by the larger of the two, as MuJoCo combines geom frictions; ``torsional`` and
    ``rolling`` are MuJoCo's second and third friction coefficients (Newton's
    ``newton:torsionalFriction`` / ``newton:rollingFriction``; unset: Newton's defaults, which are
    MuJoCo's)."""
    from pxr import UsdShade

    material = UsdShade.Material.Define(stage, path)
    prim = material.GetPrim()
    api = UsdPhysics.MaterialAPI.Apply(prim)
    api.CreateStaticFrictionAttr(float(friction))
    api.CreateDynamicFrictionAttr(float(friction))
    api.CreateRestitutionAttr(0.0)
    prim.AddAppliedSchema("PhysxMaterialAPI")
    prim.CreateAttribute("physxMaterial:frictionCombineMode", Sdf.ValueTypeNames.Token).Set("max")
    if torsional is not None:
        prim.CreateAttribute("newton:torsionalFriction", Sdf.ValueTypeNames.Float).Set(float(torsional))
    if rolling is not None:
        prim.CreateAttribute("newton:rollingFriction", Sdf.ValueTypeNames.Float).Set(float(rolling))
    return api


def bind_physics_material(prim: Usd.Prim, material_path: str) -> None:
    from pxr import UsdShade

    binding = UsdShade.MaterialBindingAPI.Apply(prim)
    binding.Bind(UsdShade.Material.Get(prim.GetStage(), material_path), UsdShade.Tokens.weakerThanDescendants, "physics")
