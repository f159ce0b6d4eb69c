"""pam generate on Ray workers writes what a local run writes."""

import numpy as np
import pytest

from pam_engine.config import load_config
from pam_engine.dataset.reader import list_episodes, load_episode
from pam_engine.pipeline import GenerateConfig, Generator

pytest.importorskip("ray")

SMALL = ["width=320", "height=240", "randomization.objects=[061_foam_brick,004_sugar_box]", "episodes=2",
         "seed=5", "keep_failed=true", "randomization.preview=false"]


def test_ray_workers_write_the_same_episodes_as_a_local_run(tmp_path):
    local = Generator(load_config(GenerateConfig, None, SMALL), tmp_path / "local").run(progress=False)
    remote_cfg = load_config(GenerateConfig, None, SMALL + ["ray.workers=2"])
    remote = Generator(remote_cfg, tmp_path / "ray").run(progress=False)
    assert remote.attempted == 2 and remote.written == local.written == 2
    for a, b in zip(list_episodes(tmp_path / "local"), list_episodes(tmp_path / "ray")):
        assert a.name == b.name
        la, lb = load_episode(a).labels, load_episode(b).labels
        np.testing.assert_allclose(la["joint_3d"], lb["joint_3d"], atol=1e-9)
        np.testing.assert_allclose(la["pose_y"], lb["pose_y"], atol=1e-9)
    # resuming with another worker count is the same dataset: nothing left to do
    again = Generator(load_config(GenerateConfig, None, SMALL), tmp_path / "ray").run(progress=False)
    assert again.skipped == 2 and again.attempted == 0
