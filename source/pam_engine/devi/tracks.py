"""The 2D tracks Algorithm 1 reads, from an engine episode or a hand detector.

- Object: points sampled on the target object's mesh surface (object frame, seeded, so the
  same points everywhere), placed with the labels' camera-frame ``pose_y`` and projected with
  ``K``: what a 2D point tracker run on the video would report, exactly (occluded points
  included, as trackers such as CoTracker report them too).
- Hand: the labels' ``joint_2d`` (all 21 keypoints; the projection is exact even where a joint
  is occluded), or a detector's keypoints from an npz holding ``keypoints`` (T, 21, 2) and
  optionally ``valid`` ((T,) or (T, 21) bool; frames or joints the detector did not find).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from pam_engine.capture.camera import Camera
from pam_engine.errors import ConfigError

#: Object-surface points tracked by default.
DEFAULT_POINTS = 256
#: Keys accepted in a detector's npz, first match wins.
KEYPOINT_KEYS = ("keypoints", "joint_2d")
VALID_KEYS = ("valid", "detected")


@dataclass(frozen=True)
class Tracks:
    """2D tracks of one episode, pixels, OpenCV convention (pixel centres at integers)."""

    object: np.ndarray  # (T, V, 2) projected object-surface points
    hand: np.ndarray  # (T, 21, 2) keypoints, DexYCB order
    hand_valid: np.ndarray  # (T, 21) bool
    points: np.ndarray  # (V, 3) the object-surface points, object (mesh) frame
    width: int
    height: int
    fps: float

    @property
    def num_frames(self) -> int:
        return int(self.hand.shape[0])


def surface_points(mesh: trimesh.Trimesh, count: int = DEFAULT_POINTS, seed: int = 0) -> np.ndarray:
    """(count, 3) points on ``mesh``'s surface (its own frame), the same for the same seed."""
    if int(count) != count or count < 1:
        raise ConfigError(f"devi tracks: the number of object points must be a positive integer, got {count!r}")
    points, _ = trimesh.sample.sample_surface(mesh, int(count), seed=seed)
    return np.asarray(points, dtype=np.float64)


def project_points(points: np.ndarray, pose_cam: np.ndarray, camera: Camera) -> np.ndarray:
    """Object points (V, 3) placed at camera-frame poses (T, 3, 4) -> pixels (T, V, 2)."""
    pose_cam = np.asarray(pose_cam, dtype=np.float64)
    cam = np.einsum("tij,vj->tvi", pose_cam[:, :, :3], points) + pose_cam[:, None, :, 3]
    uv, _ = camera.project_camera(cam)
    return uv


def episode_camera(episode) -> Camera:
    meta = episode.meta
    return Camera(K=episode.K, world_to_cam=episode.world_to_cam, width=meta.width, height=meta.height)


def episode_tracks(episode, count: int = DEFAULT_POINTS, seed: int = 0, keypoints: str | Path | None = None) -> Tracks:
    """Tracks of an engine episode (:class:`pam_engine.dataset.reader.Episode`): its target
    object's projected surface points and its ``joint_2d`` (or, with ``keypoints``, a detector's
    npz of the same episode)."""
    from pam_engine.objects import load_object

    meta = episode.meta
    labels = episode.labels
    for key in ("pose_y", "joint_2d"):
        if key not in labels:
            raise ConfigError(f"{episode.path}: labels.npz has no {key!r}, needed for DeVI's tracks")
    target = int(meta.target_object)
    if not 0 <= target < len(meta.object_names):
        raise ConfigError(f"{episode.path}: target_object {target} is not one of its {len(meta.object_names)} objects")
    points = surface_points(load_object(meta.object_names[target]).mesh, count, seed)
    obj = project_points(points, labels["pose_y"][:, target], episode_camera(episode))
    if keypoints is None:
        hand = np.asarray(labels["joint_2d"], dtype=np.float64)
        valid = np.ones(hand.shape[:2], bool)
    else:
        hand, valid = load_keypoints(keypoints, obj.shape[0])
    return Tracks(obj, hand, valid, points, int(meta.width), int(meta.height), float(meta.fps))


def load_keypoints(path: str | Path, num_frames: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A detector's keypoints: ``(T, 21, 2)`` pixels and a ``(T, 21)`` valid mask from an npz
    with ``keypoints`` (or ``joint_2d``) and optionally ``valid`` (or ``detected``), (T,) or
    (T, 21). Non-finite keypoints count as not detected."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"detector keypoints {path}: no such file (expected an npz with 'keypoints' (T, 21, 2))")
    with np.load(path, allow_pickle=False) as data:
        key = next((k for k in KEYPOINT_KEYS if k in data.files), None)
        if key is None:
            raise ConfigError(f"detector keypoints {path}: none of {list(KEYPOINT_KEYS)} in it (has {data.files})")
        hand = np.asarray(data[key], dtype=np.float64)
        vkey = next((k for k in VALID_KEYS if k in data.files), None)
        valid = np.asarray(data[vkey], dtype=bool) if vkey else np.ones(hand.shape[:2], bool)
    if hand.ndim != 3 or hand.shape[1:] != (21, 2):
        raise ConfigError(f"detector keypoints {path}: {key!r} has shape {hand.shape}, expected (T, 21, 2)")
    if num_frames is not None and hand.shape[0] != num_frames:
        raise ConfigError(f"detector keypoints {path}: {hand.shape[0]} frames, the episode has {num_frames}")
    if valid.shape == hand.shape[:1]:
        valid = np.repeat(valid[:, None], 21, axis=1)
    if valid.shape != hand.shape[:2]:
        raise ConfigError(f"detector keypoints {path}: {vkey!r} has shape {valid.shape}, expected "
                          f"({hand.shape[0]},) or ({hand.shape[0]}, 21)")
    return hand, valid & np.isfinite(hand).all(axis=-1)
