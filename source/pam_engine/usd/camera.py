"""An engine camera (OpenCV: ``K``, world->camera) as a ``UsdGeom.Camera``.

- Lens: USD projects through focal length over aperture, so ``fx = W f / h_ap`` and
  ``fy = H f / v_ap`` (non-square pixels need nothing special); the principal point is the
  aperture offset, the film window being shifted by it. USD's image spans [0, W] with pixel
  centres at +0.5, OpenCV's pixel centres are the integers, hence the half pixel below.
- Isaac's RTX renderer ignores aperture offsets, so the same intrinsics are also authored as
  Omniverse's OpenCV pinhole lens (``omni:lensdistortion:opencvPinhole:fx/fy/cx/cy``, zero
  distortion), which Isaac Sim renders and Isaac Lab reads back as its intrinsic matrix.
- Pose: USD cameras look down -Z with +Y up, OpenCV's down +Z with +Y down: the camera's
  transform is OpenCV's camera->world times diag(1, -1, -1).
"""

from __future__ import annotations

import numpy as np
from pxr import Gf, Sdf, Usd, UsdGeom

from pam_engine.usd.stage import set_pose

#: Horizontal aperture of the authored cameras (Isaac Sim's default, "millimetres"); only the
#: ratios to the focal length matter.
APERTURE = 20.955
OPENCV_FLIP = np.diag([1.0, -1.0, -1.0])
_LENS = "omni:lensdistortion:opencvPinhole"
_COEFFICIENTS = ("k1", "k2", "k3", "k4", "k5", "k6", "p1", "p2", "s1", "s2", "s3", "s4")


def lens_attributes(K: np.ndarray, width: int, height: int) -> dict[str, float]:
    """USD camera lens attributes that project exactly as ``K`` at ``width`` x ``height``."""
    fx, fy, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
    pixel = APERTURE / width
    focal = fx * pixel
    v_aperture = height * focal / fy
    return {
        "focalLength": focal,
        "horizontalAperture": APERTURE,
        "verticalAperture": v_aperture,
        "horizontalApertureOffset": (width / 2.0 - (cx + 0.5)) * APERTURE / width,
        "verticalApertureOffset": ((cy + 0.5) - height / 2.0) * v_aperture / height,
    }


def add_camera(stage: Usd.Stage, path: str, camera, near: float = 0.01, far: float = 100.0) -> UsdGeom.Camera:
    """Author ``camera`` (a :class:`pam_engine.capture.camera.Camera`) at ``path`` (its parent at
    the world origin)."""
    cam = UsdGeom.Camera.Define(stage, path)
    pose = camera.cam_to_world.copy()
    pose[:3, :3] = pose[:3, :3] @ OPENCV_FLIP
    set_pose(cam, pose)
    cam.CreateProjectionAttr(UsdGeom.Tokens.perspective)
    lens = lens_attributes(camera.K, camera.width, camera.height)
    cam.CreateFocalLengthAttr(lens["focalLength"])
    cam.CreateHorizontalApertureAttr(lens["horizontalAperture"])
    cam.CreateVerticalApertureAttr(lens["verticalAperture"])
    cam.CreateHorizontalApertureOffsetAttr(lens["horizontalApertureOffset"])
    cam.CreateVerticalApertureOffsetAttr(lens["verticalApertureOffset"])
    cam.CreateClippingRangeAttr(Gf.Vec2f(near, far))
    prim = cam.GetPrim()
    prim.AddAppliedSchema("OmniLensDistortionOpenCvPinholeAPI")
    prim.CreateAttribute("omni:lensdistortion:model", Sdf.ValueTypeNames.Token).Set("opencvPinhole")
    prim.CreateAttribute(f"{_LENS}:imageSize", Sdf.ValueTypeNames.Int2).Set(Gf.Vec2i(camera.width, camera.height))
    for name, value in zip(("fx", "fy", "cx", "cy"), (camera.fx, camera.fy, camera.cx, camera.cy)):
        prim.CreateAttribute(f"{_LENS}:{name}", Sdf.ValueTypeNames.Float).Set(float(value))
    for name in _COEFFICIENTS:
        prim.CreateAttribute(f"{_LENS}:{name}", Sdf.ValueTypeNames.Float).Set(0.0)
    # the engine's own record: exact doubles, for tools that read the camera back
    prim.CreateAttribute("pam:K", Sdf.ValueTypeNames.Matrix3d).Set(Gf.Matrix3d(*np.asarray(camera.K, dtype=np.float64).ravel().tolist()))
    prim.CreateAttribute("pam:resolution", Sdf.ValueTypeNames.Int2).Set(Gf.Vec2i(camera.width, camera.height))
    return cam
