"""Replicator randomisation follows pam generate's randomisation config."""

import numpy as np

from pam_engine.config import load_config
from pam_engine.pipeline import GenerateConfig
from pam_engine.kitless.randomization import episode_draws


def test_draws_follow_the_config_and_the_episode_seed():
    cfg = load_config(GenerateConfig, None, ["width=320", "height=240", "randomization.camera.distance=[0.4,0.5]",
                                             "randomization.camera.elevation_deg=[35,55]", "randomization.camera.roll_deg=[0,0]",
                                             "randomization.camera.target_jitter=0"])
    target = np.array([0.02, -0.01, 0.08])
    draws = [episode_draws(cfg, i, target, 2) for i in range(8)]
    for d in draws:
        cam = d.camera
        assert (cam.width, cam.height) == (320, 240)
        offset = cam.position - target
        dist = np.linalg.norm(offset)
        assert 0.4 - 1e-9 <= dist <= 0.5 + 1e-9
        assert 35 - 1e-6 <= np.degrees(np.arcsin(offset[2] / dist)) <= 55 + 1e-6
        _, z = cam.project(target[None])
        np.testing.assert_allclose(z, dist, rtol=1e-9)  # aimed at the target
        assert len(d.object_colours) == 2 and d.table_colour is not None
        assert np.isclose(np.linalg.norm(d.light_direction), 1.0) and d.light_direction[2] < 0  # shines downwards
    again = episode_draws(cfg, 3, target, 2)
    np.testing.assert_array_equal(again.camera.world_to_cam, draws[3].camera.world_to_cam)
    assert len({d.camera.position.round(6).tobytes() for d in draws}) == 8
    off = load_config(GenerateConfig, None, ["width=320", "height=240", "randomization.preview=false"])
    plain = episode_draws(off, 0, target, 2)
    assert plain.light_direction is None and plain.object_colours == ()
