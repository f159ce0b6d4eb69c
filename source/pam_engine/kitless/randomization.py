"""Replicator randomisation driven by ``pam generate``'s own randomisation config (omni-free).

The Kit module applies these draws to the stage (camera pose and lens, key and dome light,
object and table colours) before each clip. They come from the same ``RandomizationConfig``
and the same sampling functions as the embedded MuJoCo preview (``sample_camera``,
``sample_preview_style``), on the episode's own random stream, so one config describes both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: USD light intensities at the embedded preview's mean key diffuse (0.65) and ambient (0.275).
KEY_INTENSITY, DOME_INTENSITY = 3000.0, 500.0


@dataclass(frozen=True)
class ReplicatorDraws:
    """One episode's random look: the camera, the key light (direction it shines along, world),
    USD intensities, and RGB colours per object and for the table (None when preview
    randomisation is off)."""

    camera: object  # pam_engine.capture.camera.Camera
    light_direction: tuple[float, float, float] | None
    key_intensity: float | None
    dome_intensity: float | None
    object_colours: tuple[tuple[float, float, float], ...]
    table_colour: tuple[float, float, float] | None


def episode_draws(config, index: int, target, num_objects: int) -> ReplicatorDraws:
    """The draws of episode ``index`` of a ``GenerateConfig`` (camera aimed at ``target``, world)."""
    from pam_engine.capture.camera import sample_camera
    from pam_engine.capture.style import sample_preview_style

    from dataclasses import replace

    rng = np.random.default_rng([config.seed, index, 2])
    r = config.randomization
    camera_range = replace(r.camera, width=int(config.width), height=int(config.height))  # the clip's size
    camera = sample_camera(rng, np.asarray(target, dtype=np.float64), camera_range)
    if not r.preview:
        return ReplicatorDraws(camera, None, None, None, (), None)
    style = sample_preview_style(rng, list(range(num_objects)), [num_objects])
    colours = tuple(tuple(float(c) for c in style.geom_rgba[k][:3]) for k in range(num_objects))
    return ReplicatorDraws(
        camera=camera,
        light_direction=tuple(float(v) for v in style.light_dir),
        key_intensity=KEY_INTENSITY * style.light_diffuse / 0.65,
        dome_intensity=DOME_INTENSITY * style.ambient / 0.275,
        object_colours=colours,
        table_colour=tuple(float(c) for c in style.geom_rgba[num_objects][:3]),
    )
