"""Capturing a recorded trajectory in the MuJoCo scene it ran in: the scene is posed frame by
frame (positions only) and the MuJoCo renderer of :mod:`pam_engine.capture` fills one
``CaptureSequence`` (depth, segmentation, hand pass, normals, the randomised RGB preview)."""

from __future__ import annotations

import numpy as np

from pam_engine.capture.camera import Camera
from pam_engine.capture.frames import CaptureSequence
from pam_engine.capture.renderer import MujocoCapture, SegLookup
from pam_engine.capture.replay import capture_sequence
from pam_engine.capture.style import sample_preview_style


def capture_trajectory(scene, trajectory, camera: Camera, rng: np.random.Generator | None,
                       out: CaptureSequence | None = None, on_frame=None) -> CaptureSequence:
    """Render every frame of ``trajectory`` through ``camera``. ``rng`` draws the preview's
    random look (lighting, colours, textures; None: the plain look). ``out`` (the previous
    episode's sequence) is reused when its size fits. ``on_frame(t)`` runs before frame ``t``
    is posed (progress, cancellation)."""
    geoms, skins = scene.segmentation_ids()
    style = sample_preview_style(rng, list(geoms), [scene.table_geom]) if rng is not None else None
    fits = out is not None and out.depth.shape == (trajectory.num_frames, camera.height, camera.width)
    with MujocoCapture(scene.model, camera, SegLookup(geoms=geoms, skins=skins), preview=style,
                       buffer=(camera.width, camera.height)) as cap:  # one camera: a buffer its size
        def set_frame(data, t: int) -> None:
            if on_frame is not None:
                on_frame(t)
            scene.pose_frame(trajectory, t)

        return capture_sequence(cap, scene.data, set_frame, trajectory.num_frames, out=out if fits else None)


def capture_static_scene(scene, trajectory, cameras, rng: np.random.Generator | None) -> CaptureSequence:
    """DWM's static scene (docs/worldmodels.md): every frame of ``trajectory`` seen by its camera
    with the objects held at their initial poses (frame 0) and no hand. ``cameras`` is one
    ``Camera`` (a static camera) or one per frame (a moving one). Consecutive frames with the same
    camera are rendered once and repeated; a static camera's sequence holds one render behind
    read-only broadcast views. ``rng`` in the state ``capture_trajectory`` got draws the same
    preview look, so pixels the hand does not cover match the interaction's frame 0 exactly."""
    from pam_engine.errors import ConfigError

    t_total = trajectory.num_frames
    per_frame = [cameras] * t_total if isinstance(cameras, Camera) else list(cameras)
    if len(per_frame) != t_total:
        raise ConfigError(f"static scene: {len(per_frame)} cameras for {t_total} frames (give one, or one per frame)")
    sizes = {(c.width, c.height) for c in per_frame}
    if len(sizes) != 1:
        raise ConfigError(f"static scene: the cameras differ in size {sorted(sizes)}")
    geoms, skins = scene.segmentation_ids()
    style = sample_preview_style(rng, list(geoms), [scene.table_geom]) if rng is not None else None
    # one render per run of equal cameras
    starts = [t for t in range(t_total) if t == 0 or not _same_camera(per_frame[t], per_frame[t - 1])]
    renders = CaptureSequence.allocate(len(starts), per_frame[0].height, per_frame[0].width)
    scene.pose_frame(trajectory, 0)  # objects where they start; the hand is not drawn
    with MujocoCapture(scene.model, per_frame[0], SegLookup(geoms=geoms, skins=skins), preview=style,
                       draw_hand=False) as cap:
        for k, t in enumerate(starts):
            cap.set_camera(per_frame[t])
            cap.capture(scene.data, out=renders.frame(k))
    if len(starts) == 1:
        def repeat(a):
            return np.broadcast_to(a[0], (t_total,) + a.shape[1:])
    else:
        which = np.searchsorted(np.asarray(starts), np.arange(t_total), side="right") - 1

        def repeat(a):
            return a[which]
    return CaptureSequence(rgb=repeat(renders.rgb), depth=repeat(renders.depth), seg=repeat(renders.seg),
                           hand_mesh=repeat(renders.hand_mesh))


def _same_camera(a: Camera, b: Camera) -> bool:
    return (a is b or (np.array_equal(a.K, b.K) and np.array_equal(a.world_to_cam, b.world_to_cam)
                       and (a.width, a.height) == (b.width, b.height)))
