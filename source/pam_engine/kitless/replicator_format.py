"""Replicator's annotator data -> the engine's episode (omni-free).

Replicator hands a writer one dict per captured frame. The keys used here and their layout, as
Replicator documents them:

- ``rgb``: uint8 (H, W, 4) RGBA;
- ``distance_to_image_plane``: float32 (H, W), distance along the camera's optical axis in
  stage units, ``inf`` where nothing was hit;
- ``instance_id_segmentation_fast``: ``{"data": uint32 (H, W), "info": {"idToLabels": {id: prim
  path}}}``; ids 0/1 are ``BACKGROUND``/``UNLABELLED``;
- ``camera_params``: ``cameraViewTransform`` (16, row-major world->view matrix used with row
  vectors, ``p_view = p_world @ V``), ``cameraProjection`` (16, row-major, row vectors,
  ``ndc = (p_view @ P)[:2] / w``), ``cameraAperture``, ``cameraApertureOffset``,
  ``cameraFocalLength``, ``renderProductResolution`` (W, H), ``metersPerSceneUnit``,
  ``cameraNearFar``, ``cameraModel``.

Conventions converted here: USD's camera looks down -Z with +Y up (OpenCV's y and z flipped);
NDC y points up; a raster pixel (i, j) has its centre at continuous (i + 0.5, j + 0.5), while the
engine (OpenCV) puts it at (i, j). Stage units become metres through ``metersPerSceneUnit``.

Segmentation: each instance id's prim path is resolved to the semantic label of its nearest
labelled ancestor (the labels the USD assets carry: the YCB name of an object, ``hand`` for the
hand), and the label to the DexYCB id (1-21, 22 other objects, 255 hand, 0 background; prims
without a label are background, a label that is not in the episode is an error).

Hand keypoints and MANO ``pose_m`` come from the articulation state (wrist pose and the
engine-named finger joints) through the engine's hand model, exactly as Stage I computes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from pam_engine.capture.camera import Camera
from pam_engine.capture.frames import CaptureSequence
from pam_engine.capture.segmentation import (  # noqa: F401  re-exported: the Kit layer's names
    BACKGROUND_LABELS, HAND_LABEL, SegmentationLabelError, label_to_seg_id,
)
from pam_engine.capture.segmentation import segmentation_lookup as _segmentation_lookup
from pam_engine.conventions import SEG_HAND
from pam_engine.errors import ConfigError
from pam_engine.trajectory import CONTACT_PARTS, Trajectory

#: The annotators the writer attaches, in Replicator's names.
ANNOTATORS: tuple[str, ...] = ("rgb", "distance_to_image_plane", "instance_id_segmentation_fast", "camera_params")
#: ``camera_params`` keys the conversion reads.
CAMERA_PARAM_KEYS: tuple[str, ...] = ("cameraViewTransform", "cameraProjection", "renderProductResolution")
#: USD camera axes (x right, y up, z backwards) -> OpenCV axes (x right, y down, z forward).
USD_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


class ReplicatorDataError(ConfigError):
    """Replicator data the engine cannot turn into an episode (missing annotator, unknown
    segmentation label, inconsistent camera, ...)."""


# --- camera ---------------------------------------------------------------------------------

def _matrix(params: Mapping, key: str) -> np.ndarray:
    if key not in params:
        raise ReplicatorDataError(f"camera_params lacks {key!r} (expected keys {list(CAMERA_PARAM_KEYS)})")
    m = np.asarray(params[key], dtype=np.float64)
    if m.size != 16 or not np.all(np.isfinite(m)):
        raise ReplicatorDataError(f"camera_params[{key!r}]: expected 16 finite values (row-major 4x4), got shape {m.shape}")
    return m.reshape(4, 4)


def intrinsics_from_lens(attributes: Mapping[str, float]) -> np.ndarray:
    """K of a camera prim's OpenCV pinhole lens (``omni:lensdistortion:opencvPinhole:fx/fy/cx/cy``,
    OpenCV pixel convention), as the engine's USD cameras author it next to the exact ``pam:K``."""
    prefix = "omni:lensdistortion:opencvPinhole:"
    try:
        fx, fy, cx, cy = (float(attributes[prefix + k]) for k in ("fx", "fy", "cx", "cy"))
    except KeyError as exc:
        raise ReplicatorDataError(f"camera lens attributes lack {exc.args[0]!r}") from exc
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def camera_from_params(params: Mapping, intrinsics: np.ndarray | None = None) -> Camera:
    """The engine's ``Camera`` (OpenCV K, world->camera in metres) of a ``camera_params`` dict.

    Intrinsics come from ``cameraProjection`` (what a plain pinhole camera renders, after any
    aperture fitting) unless ``intrinsics`` gives K: cameras with a lens model (the OpenCV
    pinhole lens RTX renders, since it ignores aperture offsets) report a model other than
    ``pinhole``, and their K must come from the prim (``pam:K`` or ``intrinsics_from_lens``).
    Extrinsics come from ``cameraViewTransform``.
    """
    model = str(params.get("cameraModel", "pinhole") or "pinhole")
    if intrinsics is None and model.lower() != "pinhole":
        raise ReplicatorDataError(f"camera_params cameraModel {model!r}: give the lens's K (the camera prim's pam:K "
                                  "or its opencvPinhole fx, fy, cx, cy); only plain 'pinhole' cameras are read from "
                                  "cameraProjection")
    res = np.asarray(params.get("renderProductResolution", ()), dtype=np.float64).reshape(-1)
    if res.size != 2:
        raise ReplicatorDataError("camera_params lacks 'renderProductResolution' (expected (width, height))")
    width, height = int(res[0]), int(res[1])
    view = _matrix(params, "cameraViewTransform")
    proj = _matrix(params, "cameraProjection")
    if abs(proj[2, 3] + 1.0) > 1e-9 or abs(proj[3, 3]) > 1e-9 or abs(proj[0, 1]) > 1e-12 or abs(proj[1, 0]) > 1e-12:
        raise ReplicatorDataError("camera_params['cameraProjection'] is not a perspective (pinhole) projection")
    fx, fy = proj[0, 0] * width / 2.0, proj[1, 1] * height / 2.0
    # ndc_x = P00 x/(-z) - P20, ndc_y = P11 y/(-z) - P21 (view frame, y up); raster u = (ndc_x+1) W/2,
    # v = (1-ndc_y) H/2, pixel centres at +0.5
    cx = (1.0 - proj[2, 0]) * width / 2.0 - 0.5
    cy = (1.0 + proj[2, 1]) * height / 2.0 - 0.5
    K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    if intrinsics is not None:
        K = np.asarray(intrinsics, dtype=np.float64)
    world_to_view = view.T  # row-vector matrix -> column-vector matrix
    scale = float(params.get("metersPerSceneUnit", 1.0) or 1.0)
    rot = world_to_view[:3, :3]
    if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-6):
        raise ReplicatorDataError("camera_params['cameraViewTransform'] is not a rigid transform (scaled camera prim?)")
    world_to_cam = USD_TO_OPENCV @ world_to_view
    world_to_cam[:3, 3] *= scale  # stage units -> metres (rotation unchanged)
    try:
        return Camera(K, world_to_cam, width, height)
    except ConfigError as exc:
        raise ReplicatorDataError(f"camera_params: {exc}") from exc


def usd_camera_attributes(camera: Camera, horizontal_aperture: float = 20.955, meters_per_unit: float = 1.0) -> dict:
    """USD ``Camera`` attributes (focal length, apertures and offsets in the same film units) and
    its local->world transform (column-vector 4x4, stage units) that render exactly ``camera``."""
    w, h = camera.width, camera.height
    focal = camera.fx * horizontal_aperture / w
    vertical_aperture = focal * h / camera.fy
    cam_to_world_usd = camera.cam_to_world @ USD_TO_OPENCV
    cam_to_world_usd[:3, 3] /= meters_per_unit
    return {
        "focalLength": focal,
        "horizontalAperture": horizontal_aperture,
        "verticalAperture": vertical_aperture,
        # continuous principal point (cx + 0.5) = W/2 - off_x W/ap_x; (cy + 0.5) = H/2 + off_y H/ap_y
        "horizontalApertureOffset": (w / 2.0 - (camera.cx + 0.5)) * horizontal_aperture / w,
        "verticalApertureOffset": ((camera.cy + 0.5) - h / 2.0) * vertical_aperture / h,
        "projection": "perspective",
        "transform": cam_to_world_usd,
    }


def camera_params_from_camera(camera: Camera, meters_per_unit: float = 1.0, near_far=(0.01, 100.0),
                              horizontal_aperture: float = 20.955) -> dict:
    """The ``camera_params`` Replicator reports for the USD camera of ``usd_camera_attributes``
    (``cameraProjection`` built as USD's ``GfFrustum`` does, for row vectors)."""
    a = usd_camera_attributes(camera, horizontal_aperture, meters_per_unit)
    view = np.linalg.inv(a["transform"]).T  # column-vector world->view -> row-vector matrix
    f, (n, fa) = a["focalLength"], near_far
    left = (-a["horizontalAperture"] / 2 + a["horizontalApertureOffset"]) / f
    right = (a["horizontalAperture"] / 2 + a["horizontalApertureOffset"]) / f
    bottom = (-a["verticalAperture"] / 2 + a["verticalApertureOffset"]) / f
    top = (a["verticalAperture"] / 2 + a["verticalApertureOffset"]) / f
    proj = np.zeros((4, 4))
    proj[0, 0] = 2.0 / (right - left)
    proj[1, 1] = 2.0 / (top - bottom)
    proj[2, 0] = (right + left) / (right - left)
    proj[2, 1] = (top + bottom) / (top - bottom)
    proj[2, 2] = -(fa + n) / (fa - n)
    proj[2, 3] = -1.0
    proj[3, 2] = -2.0 * fa * n / (fa - n)
    return {
        "cameraViewTransform": view.reshape(-1),
        "cameraProjection": proj.reshape(-1),
        "cameraAperture": np.array([a["horizontalAperture"], a["verticalAperture"]]),
        "cameraApertureOffset": np.array([a["horizontalApertureOffset"], a["verticalApertureOffset"]]),
        "cameraFocalLength": a["focalLength"],
        "renderProductResolution": np.array([camera.width, camera.height], dtype=np.int32),
        "metersPerSceneUnit": meters_per_unit,
        "cameraNearFar": np.array(near_far, dtype=np.float64),
        "cameraModel": "pinhole",
    }


# --- segmentation -----------------------------------------------------------------------------

def segmentation_lookup(id_to_labels: Mapping, semantics: Mapping[str, str], object_names: Sequence[str]) -> np.ndarray:
    """:func:`pam_engine.capture.segmentation.segmentation_lookup` (the code base's one label ->
    id mapping), its errors as :class:`ReplicatorDataError`."""
    try:
        return _segmentation_lookup(id_to_labels, semantics, object_names)
    except SegmentationLabelError as exc:
        raise ReplicatorDataError(str(exc)) from exc


# --- the articulation state -----------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class ArticulationState:
    """The hand and objects at one captured frame (world frame, stage units for positions):
    the wrist's pose, the finger joints by the engine's joint names, the objects' poses in the
    scene's order and, where the simulator reports them, the contacts (``CONTACT_PARTS``)."""

    wrist_pose: np.ndarray  # (4, 4)
    joint_positions: Mapping[str, float]
    object_poses: Sequence[np.ndarray]  # n_obj x (4, 4)
    contacts: Sequence[bool] | None = None


@dataclass(frozen=True, eq=False)
class ReplicatorScene:
    """What the writer knows about the scene besides pixels: objects in order (YCB names or
    custom names), which is grasped, the prim path -> semantic label map of the stage, the
    capture rate and episode metadata."""

    object_names: tuple[str, ...]
    semantics: Mapping[str, str]
    fps: float = 15.0
    target_object: int = 0
    seed: int = 0
    prompt: str = ""
    success: bool = True
    failure_reason: str = ""
    policy: str = "scripted-1"
    intrinsics: tuple | None = None  # K (3x3) of a camera with a lens model (see camera_from_params)
    mano: str | None = None
    betas: tuple[float, ...] | None = None
    extra: Mapping = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.object_names:
            raise ReplicatorDataError("ReplicatorScene.object_names: expected at least one object")
        if not 0 <= self.target_object < len(self.object_names):
            raise ReplicatorDataError(f"ReplicatorScene.target_object {self.target_object} is out of range "
                                      f"for {len(self.object_names)} objects")
        if not self.fps > 0:
            raise ReplicatorDataError(f"ReplicatorScene.fps: expected > 0, got {self.fps}")


def scene_for_trajectory(trajectory, semantics: Mapping[str, str], prompt: str = "",
                         intrinsics: np.ndarray | None = None) -> ReplicatorScene:
    """The ``ReplicatorScene`` of a Stage I trajectory played back on the stage (its objects,
    target, rate, seed, outcome and policy), with the stage's semantic labels."""
    return ReplicatorScene(
        object_names=tuple(str(n) for n in trajectory.object_names), semantics=dict(semantics),
        fps=float(trajectory.fps), target_object=int(trajectory.target_object), seed=int(trajectory.seed),
        prompt=prompt, success=bool(trajectory.success), failure_reason=str(trajectory.failure_reason),
        policy=str(trajectory.policy),
        intrinsics=None if intrinsics is None else tuple(map(tuple, np.asarray(intrinsics, dtype=np.float64))))


def _annotator(data: Mapping, name: str, frame: int):
    if name not in data:
        present = sorted(k for k in data)
        raise ReplicatorDataError(f"frame {frame}: Replicator data lacks the annotator {name!r} "
                                  f"(attach {list(ANNOTATORS)}; got {present})")
    return data[name]


def _array(value, name: str, frame: int, ndim: int, dtypes: tuple) -> np.ndarray:
    arr = np.asarray(value["data"] if isinstance(value, Mapping) else value)
    if arr.ndim != ndim or arr.dtype not in dtypes:
        raise ReplicatorDataError(f"frame {frame}: annotator {name!r} holds {arr.dtype} {arr.shape}, "
                                  f"expected {ndim}-d {'/'.join(np.dtype(d).name for d in dtypes)}")
    return arr


class ReplicatorEpisodeBuilder:
    """Collects a clip frame by frame (``add_frame``) and turns it into one engine episode
    (``build``) or writes it atomically (``write``). Everything is checked per frame, so a bad
    frame fails before anything is written; nothing is written until the clip is complete."""

    def __init__(self, scene: ReplicatorScene) -> None:
        from pam_engine.pose.setup import HandCache

        self.scene = scene
        self.hand, self.articulation = HandCache.get(scene.mano)
        self.camera: Camera | None = None
        self._scale = 1.0
        self._rgb: list[np.ndarray] = []
        self._depth: list[np.ndarray] = []
        self._seg: list[np.ndarray] = []
        self._states: list[ArticulationState] = []

    @property
    def num_frames(self) -> int:
        return len(self._states)

    def add_frame(self, data: Mapping, state: ArticulationState) -> None:
        """One frame: Replicator's annotator dict and the articulation state at that instant."""
        t = self.num_frames
        params = _annotator(data, "camera_params", t)
        camera = camera_from_params(params, None if self.scene.intrinsics is None else np.asarray(self.scene.intrinsics))
        if self.camera is None:
            self.camera = camera
            self._scale = float(params.get("metersPerSceneUnit", 1.0) or 1.0)
        elif not (np.allclose(camera.K, self.camera.K, atol=1e-9, rtol=0)
                  and np.allclose(camera.world_to_cam, self.camera.world_to_cam, atol=1e-9, rtol=0)
                  and (camera.width, camera.height) == (self.camera.width, self.camera.height)):
            raise ReplicatorDataError(f"frame {t}: the camera moved or changed within the clip "
                                      "(an episode has one camera; randomise cameras between clips)")
        h, w = self.camera.height, self.camera.width
        rgb = _array(_annotator(data, "rgb", t), "rgb", t, 3, (np.dtype(np.uint8),))
        depth = _array(_annotator(data, "distance_to_image_plane", t), "distance_to_image_plane", t, 2,
                       (np.dtype(np.float32), np.dtype(np.float64)))
        seg_value = _annotator(data, "instance_id_segmentation_fast", t)
        seg_ids = _array(seg_value, "instance_id_segmentation_fast", t, 2,
                         tuple(np.dtype(d) for d in (np.uint32, np.int32, np.uint16, np.uint8)))
        for name, arr in (("rgb", rgb), ("distance_to_image_plane", depth), ("instance_id_segmentation_fast", seg_ids)):
            if arr.shape[:2] != (h, w):
                raise ReplicatorDataError(f"frame {t}: annotator {name!r} is {arr.shape[1]}x{arr.shape[0]}, "
                                          f"the render product {w}x{h}")
        if rgb.shape[2] not in (3, 4):
            raise ReplicatorDataError(f"frame {t}: annotator 'rgb' has {rgb.shape[2]} channels, expected RGBA (4) or RGB (3)")
        info = seg_value.get("info", {}) if isinstance(seg_value, Mapping) else {}
        if "idToLabels" not in info:
            raise ReplicatorDataError(f"frame {t}: annotator 'instance_id_segmentation_fast' lacks info['idToLabels']")
        table = segmentation_lookup(info["idToLabels"], self.scene.semantics, self.scene.object_names)
        present = np.unique(seg_ids)
        unknown = present[present >= len(table)]
        if unknown.size:
            raise ReplicatorDataError(f"frame {t}: instance ids {unknown.tolist()} appear in the segmentation "
                                      "but not in idToLabels")
        self._check_state(state, t)
        metres = np.asarray(depth, dtype=np.float64) * self._scale
        metres = np.where(np.isfinite(metres) & (metres > 0), metres, 0.0).astype(np.float32)
        self._rgb.append(np.ascontiguousarray(rgb[..., :3]))
        self._depth.append(metres)
        self._seg.append(table[seg_ids])
        self._states.append(state)

    def _check_state(self, state: ArticulationState, t: int) -> None:
        wrist = np.asarray(state.wrist_pose, dtype=np.float64)
        if wrist.shape != (4, 4) or not np.all(np.isfinite(wrist)):
            raise ReplicatorDataError(f"frame {t}: articulation wrist_pose must be a finite 4x4 transform")
        missing = [n for n in self.articulation.names if n not in state.joint_positions]
        if missing:
            raise ReplicatorDataError(f"frame {t}: articulation state lacks the hand joints {missing} "
                                      f"(expected {self.articulation.names})")
        extra = sorted(set(state.joint_positions) - set(self.articulation.names))
        if extra:
            raise ReplicatorDataError(f"frame {t}: articulation state holds unknown hand joints {extra}")
        if len(state.object_poses) != len(self.scene.object_names):
            raise ReplicatorDataError(f"frame {t}: {len(state.object_poses)} object poses for "
                                      f"{len(self.scene.object_names)} scene objects")
        if state.contacts is not None and len(state.contacts) != len(CONTACT_PARTS):
            raise ReplicatorDataError(f"frame {t}: contacts need {len(CONTACT_PARTS)} values {list(CONTACT_PARTS)}")

    def trajectory(self) -> Trajectory:
        """The Stage I-style trajectory of the collected articulation states (world frame, metres)."""
        if not self._states:
            raise ReplicatorDataError("no frames were captured")
        scale = self._scale
        names = self.articulation.names
        wrist = np.stack([np.asarray(s.wrist_pose, dtype=np.float64) for s in self._states])
        wrist[:, :3, 3] *= scale
        angles = np.array([[float(s.joint_positions[n]) for n in names] for s in self._states])
        if not np.all(np.isfinite(angles)):  # measured state: never clamped (contacts push joints past limits)
            raise ReplicatorDataError("articulation joint positions contain NaN or inf")
        from pam_engine.hand.pose import pose_m_and_keypoints

        betas = None if self.scene.betas is None else np.asarray(self.scene.betas, dtype=np.float64)
        pose_m, keypoints = pose_m_and_keypoints(self.hand, self.articulation, wrist, angles, betas)
        objects = np.stack([[np.asarray(p, dtype=np.float64)[:3] for p in s.object_poses] for s in self._states])
        objects[..., 3] *= scale
        contacts = np.array([np.zeros(len(CONTACT_PARTS), bool) if s.contacts is None else np.asarray(s.contacts, bool)
                             for s in self._states])
        sc = self.scene
        return Trajectory(
            fps=float(sc.fps), pose_m=pose_m, betas=np.zeros(10) if betas is None else betas, wrist_pose=wrist,
            joint_angles=angles, joint_names=list(names), joint_3d=keypoints, pose_y=objects,
            object_names=list(sc.object_names), object_ids=[label_to_seg_id(n, sc.object_names) for n in sc.object_names],
            contacts=contacts, success=bool(sc.success), failure_reason=sc.failure_reason,
            target_object=int(sc.target_object), hand_model=self.hand.name, policy=sc.policy, seed=int(sc.seed))

    def capture(self) -> CaptureSequence:
        """The frames as the engine's capture buffers. Replicator has no hand-only pass: the
        hand image is the RGB frame where the segmentation is the hand, black elsewhere."""
        rgb, seg = np.stack(self._rgb), np.stack(self._seg)
        hand = np.where((seg == SEG_HAND)[..., None], rgb, 0).astype(np.uint8)
        return CaptureSequence(rgb=rgb, depth=np.stack(self._depth), seg=seg, hand_mesh=hand)

    def build(self):
        """The engine's ``EpisodeData`` (labels, condition maps, metadata), as ``pam generate``
        makes it from a MuJoCo capture."""
        from pam_engine.dataset.episode import make_episode

        traj = self.trajectory()
        extra = {"capture": "replicator", **dict(self.scene.extra)}
        return make_episode(traj, self.camera, self.capture(), prompt=self.scene.prompt,
                            policy_version=traj.policy.rsplit("-", 1)[-1], extra=extra)

    def write(self, root: str | Path, index: int | None = None) -> Path:
        """Build and write the episode atomically into dataset folder ``root``."""
        from pam_engine.dataset.writer import EpisodeWriter

        episode = self.build()  # every check before the folder is touched
        return EpisodeWriter(root).write(episode, index=index)

    def reset(self) -> None:
        """Start the next clip (same scene)."""
        self.camera = None
        self._rgb.clear()
        self._depth.clear()
        self._seg.clear()
        self._states.clear()
