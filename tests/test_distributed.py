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


TINY = ["width=96", "height=64", "stage1.num_frames=9", "randomization.objects=[061_foam_brick]",
        "randomization.preview=false", "episodes=1"]
WEIGHTS = ["diffusion.stage2.flux_path=/nowhere/flux", "diffusion.stage2.controlnet_path=/nowhere/cn.bin",
           "diffusion.stage3.cogvideox_path=/nowhere/cog", "diffusion.stage3.transformer_path=/nowhere/tr"]


def test_the_driver_loads_no_models_when_workers_run_the_episodes(tmp_path):
    """With Ray the weights load on the workers only; the driver (maybe a GPU-less head node)
    never builds the pipelines (here they would fail: the paths do not exist)."""
    cfg = load_config(GenerateConfig, None, TINY + WEIGHTS + ["ray.workers=2"])
    generator = Generator(cfg, tmp_path / "data")
    assert generator.diffusion is None and generator.diffusion_enabled
    assert cfg.ray.num_gpus(cfg.diffusion) == 1.0  # the workers get a GPU each, from the config
    assert load_config(GenerateConfig, None, TINY + WEIGHTS + ["diffusion.device=cpu"]).ray.num_gpus(
        load_config(GenerateConfig, None, TINY + WEIGHTS + ["diffusion.device=cpu"]).diffusion) == 0.0
    assert load_config(GenerateConfig, None, TINY + ["ray.gpus_per_worker=0.5"]).ray.num_gpus(cfg.diffusion) == 0.5


def test_objects_that_cannot_reach_the_workers_are_an_error(tmp_path):
    from pam_engine.errors import ConfigError

    cfg = load_config(GenerateConfig, None, TINY + ["ray.workers=2"])
    with pytest.raises(ConfigError, match="cannot be sent to Ray workers"):
        Generator(cfg, tmp_path / "a", diffusion=lambda episode, plan: None)
    with pytest.raises(ConfigError, match="cannot be sent to Ray workers"):
        Generator(cfg, tmp_path / "b", policy=object())
    assert not (tmp_path / "a" / "dataset.json").exists()


def test_bad_worker_counts_and_addresses_are_refused_clearly(tmp_path, capsys):
    from pam_engine.cli import main
    from pam_engine.errors import ConfigError

    out = str(tmp_path / "data")
    assert main(["generate", "--out", out, "--workers", "-1"]) == 2
    assert "--workers" in capsys.readouterr().err
    assert main(["generate", "--out", out, "--ray-address", "not an address"]) == 2
    assert "ray.address" in capsys.readouterr().err
    cfg = load_config(GenerateConfig, None, TINY + ["ray.address=ray://127.0.0.1:9", "ray.connect_timeout_s=2"])
    with pytest.raises(ConfigError, match="nothing answers at 127.0.0.1:9"):
        Generator(cfg, tmp_path / "x").run(progress=False)
