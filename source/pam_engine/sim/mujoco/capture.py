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
