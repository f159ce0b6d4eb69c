"""One episode in memory, ready for the writer, and its assembly from a capture."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pam_engine import __version__
from pam_engine.capture.camera import Camera, check_resolution
from pam_engine.capture.frames import CaptureSequence
from pam_engine.capture.labels import LABEL_SHAPES, episode_labels
from pam_engine.capture.maps import condition_maps
from pam_engine.capture.style import MapStyle
from pam_engine.dataset.format import (
    ACTIONS_FILE, ACTIONS_MASK_FILE, DEPTH_MAX_M, MAP_VIDEOS, WORLD_MODEL_VIDEOS, WORLD_MODELS_KEY, EpisodeMeta,
)
from pam_engine.errors import ConfigError


@dataclass
class EpisodeData:
    """Arrays of one episode. ``maps`` holds the condition videos named as in ``MAP_VIDEOS``
    (except ``sim_rgb``, given separately), each (T, H, W, 3) uint8."""

    meta: EpisodeMeta
    sim_rgb: np.ndarray  # (T, H, W, 3) uint8
    depth: np.ndarray  # (T, H, W) float32 metres, 0 = no surface
    seg: np.ndarray  # (T, H, W) uint8
    maps: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    video: np.ndarray | None = None  # (T, H, W, 3) uint8 photoreal video
    #: HandWorld's action rows (T, 138) float32 and hand mask (T, 2) bool (``dataset.actions``)
    actions: np.ndarray | None = None
    actions_mask: np.ndarray | None = None
    #: DWM's static-scene video (T, H, W, 3) uint8: objects at their initial poses, no hand
    static_rgb: np.ndarray | None = None

    def set_actions(self, actions: np.ndarray, mask: np.ndarray) -> None:
        """Attach HandWorld's actions and name their files in ``meta.extra`` (docs/worldmodels.md)."""
        self.actions, self.actions_mask = actions, mask
        files = self.meta.extra.setdefault(WORLD_MODELS_KEY, {})
        files["actions"], files["actions_mask"] = ACTIONS_FILE, ACTIONS_MASK_FILE

    def set_static(self, frames: np.ndarray) -> None:
        """Attach DWM's static-scene video and name its file in ``meta.extra``."""
        self.static_rgb = frames
        self.meta.extra.setdefault(WORLD_MODELS_KEY, {})["static"] = WORLD_MODEL_VIDEOS["static"]

    def check(self) -> None:
        """Raise ConfigError naming the first inconsistent array (before anything is written)."""
        m = self.meta
        t, h, w = m.num_frames, m.height, m.width
        check_resolution(w, h)
        if t <= 0:
            raise ConfigError(f"episode num_frames: expected > 0, got {t}")
        n_obj = len(m.object_ids)
        expect = {"sim_rgb": ((t, h, w, 3), np.uint8), "depth": ((t, h, w), np.float32), "seg": ((t, h, w), np.uint8)}
        for name, (shape, dtype) in expect.items():
            arr = getattr(self, name)
            if arr.shape != shape or arr.dtype != dtype:
                raise ConfigError(f"episode {name}: expected {np.dtype(dtype).name} {shape}, got {arr.dtype} {arr.shape}")
        if not np.all(np.isfinite(self.depth)) or np.any(self.depth < 0) or np.any(self.depth > DEPTH_MAX_M):
            raise ConfigError(f"episode depth: expected finite metres in [0, {DEPTH_MAX_M}] (0 = no surface; the "
                              "format stores 0.1 mm steps in 16 bits)")
        expected_maps = set(MAP_VIDEOS) - {"sim_rgb"}
        unknown = sorted(set(self.maps) - expected_maps)
        if unknown:
            raise ConfigError(f"episode maps: unknown {unknown} (expected {sorted(expected_maps)})")
        for name in sorted(expected_maps):
            arr = self.maps.get(name)
            if arr is None:
                raise ConfigError(f"episode maps: missing {name!r} (expected {sorted(expected_maps)})")
            if arr.shape != (t, h, w, 3) or arr.dtype != np.uint8:
                raise ConfigError(f"episode map {name!r}: expected uint8 {(t, h, w, 3)}, got {arr.dtype} {arr.shape}")
        if self.video is not None and (self.video.shape != (t, h, w, 3) or self.video.dtype != np.uint8):
            raise ConfigError(f"episode video: expected uint8 {(t, h, w, 3)}, got {self.video.dtype} {self.video.shape}")
        if self.static_rgb is not None and (self.static_rgb.shape != (t, h, w, 3) or self.static_rgb.dtype != np.uint8):
            raise ConfigError(f"episode static video: expected uint8 {(t, h, w, 3)}, got {self.static_rgb.dtype} "
                              f"{self.static_rgb.shape}")
        if (self.actions is None) != (self.actions_mask is None):
            raise ConfigError("episode actions: actions and actions_mask come together")
        if self.actions is not None:
            from pam_engine.dataset.actions import ACTION_DIM, MASK_HANDS

            a, m = self.actions, self.actions_mask
            if a.shape != (t, ACTION_DIM) or a.dtype != np.float32 or not np.all(np.isfinite(a)):
                raise ConfigError(f"episode actions: expected finite float32 {(t, ACTION_DIM)}, got {a.dtype} {a.shape}")
            if m.shape != (t, len(MASK_HANDS)) or m.dtype != bool:
                raise ConfigError(f"episode actions_mask: expected bool {(t, len(MASK_HANDS))}, got {m.dtype} {m.shape}")
        for key, per_frame in LABEL_SHAPES.items():
            if key not in self.labels:
                raise ConfigError(f"episode labels: missing {key!r}")
            shape = (t,) + tuple(n_obj if d == "n" else d for d in per_frame)
            arr = np.asarray(self.labels[key])
            if arr.shape != shape:
                raise ConfigError(f"episode labels[{key!r}]: expected shape {shape}, got {arr.shape}")
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise ConfigError(f"episode labels[{key!r}] holds NaN or inf")


def make_episode(trajectory, camera: Camera, capture: CaptureSequence, *, prompt: str = "",
                 policy_version: str = "", video: np.ndarray | None = None, extra: dict | None = None,
                 keypoint_tolerance: float = 0.01, map_style: MapStyle | None = None,
                 actions: bool = False) -> EpisodeData:
    """Labels, condition maps and metadata of one captured trajectory (``Trajectory`` from Stage I,
    the ``CaptureSequence`` of the same frames through ``camera``).

    ``actions``: also HandWorld's 138-D actions (``dataset.actions``) from the labels and camera.
    The episode references the capture's ``rgb``/``depth``/``seg`` arrays (no copy): write it
    before reusing that ``CaptureSequence`` for the next episode.
    """
    if capture.num_frames != trajectory.num_frames:
        raise ConfigError(f"capture has {capture.num_frames} frames but the trajectory {trajectory.num_frames}")
    if (capture.height, capture.width) != (camera.height, camera.width):
        raise ConfigError(f"capture is {capture.width}x{capture.height} but the camera {camera.width}x{camera.height}")
    labels = episode_labels(trajectory, camera, capture.depth, capture.seg, keypoint_tolerance)
    joint_z = labels["joint_3d"][..., 2]
    map_style = MapStyle() if map_style is None else map_style
    maps = condition_maps(capture.depth, capture.seg, capture.hand_mesh, labels["joint_2d"], camera, joint_z,
                          capture.normal, map_style)
    # DexYCB marks keypoints without a projection (behind the camera) with -1.
    labels["joint_2d"] = np.where(np.isfinite(labels["joint_2d"]), labels["joint_2d"], -1).astype(np.float32)
    meta = EpisodeMeta(
        K=camera.K.tolist(), world_to_cam=camera.world_to_cam.tolist(), width=camera.width, height=camera.height,
        fps=float(trajectory.fps), num_frames=trajectory.num_frames, object_ids=[int(i) for i in trajectory.object_ids],
        object_names=list(trajectory.object_names), seed=int(trajectory.seed), prompt=prompt,
        engine_version=__version__, policy=trajectory.policy, policy_version=policy_version,
        hand_model=trajectory.hand_model, target_object=int(trajectory.target_object),
        success=bool(trajectory.success), failure_reason=trajectory.failure_reason,
        has_video=video is not None,
        extra={"maps": {"depth": map_style.depth, "limb_order": map_style.limb_order,
                        "keypoint_canvas": list(camera.canvas or (camera.width, camera.height))},
               **(extra or {})},
    )
    episode = EpisodeData(meta=meta, sim_rgb=capture.rgb, depth=capture.depth, seg=capture.seg,
                          maps=dict(maps.items()), labels=labels, video=video)
    if actions:
        from pam_engine.dataset.actions import handworld_actions

        episode.set_actions(*handworld_actions(labels["joint_3d"], camera.world_to_cam))
    return episode
