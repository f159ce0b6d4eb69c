"""Configs are resolved, not mutated: derived values come from one resolve step into a new
config, a user value that disagrees is an error naming both keys, and a dataset's identity
covers only what defines its content."""

import pytest

from pam_engine.cli import main
from pam_engine.config import apply_overrides, from_dict
from pam_engine.errors import ConfigError, OutputError
from pam_engine.pipeline import GenerateConfig, Generator, dataset_identity


def _given(*overrides):
    return apply_overrides({}, list(overrides))


def test_resolve_derives_into_a_new_config_and_leaves_the_input_alone():
    given = _given("width=640", "height=480", "stage1.num_frames=25", "randomization.placement_radius=0.05")
    cfg = from_dict(GenerateConfig, given)
    resolved = cfg.resolve(given)
    assert (resolved.diffusion.num_frames, resolved.diffusion.width, resolved.diffusion.height) == (25, 640, 480)
    assert (resolved.randomization.camera.width, resolved.randomization.camera.height) == (640, 480)
    assert resolved.stage1.placement_radius == 0.05
    assert cfg.diffusion.num_frames == 49 and cfg.randomization.camera.width == 720  # untouched
    assert resolved.resolve() == resolved  # idempotent


@pytest.mark.parametrize("overrides, key, source", [
    (["stage1.num_frames=25", "diffusion.num_frames=49"], "diffusion.num_frames", "stage1.num_frames"),
    (["width=640", "diffusion.width=720"], "diffusion.width", "width"),
    (["height=464", "randomization.camera.height=480"], "randomization.camera.height", "height"),
    (["stage1.placement_radius=0.2"], "stage1.placement_radius", "randomization.placement_radius"),
])
def test_a_conflicting_user_value_names_both_keys(overrides, key, source):
    given = _given(*overrides)
    with pytest.raises(ConfigError, match=rf"'{key}' = .* conflicts with '{source}'"):
        from_dict(GenerateConfig, given).resolve(given)


def test_a_user_value_that_agrees_is_accepted():
    given = _given("width=640", "diffusion.width=640")
    assert from_dict(GenerateConfig, given).resolve(given).diffusion.width == 640


def test_without_the_raw_mapping_a_non_default_value_counts_as_the_users():
    cfg = from_dict(GenerateConfig, _given("stage1.num_frames=25", "diffusion.num_frames=33"))
    with pytest.raises(ConfigError, match="diffusion.num_frames"):
        cfg.resolve()


def test_the_synthesis_seed_is_per_episode():
    given = _given("stage1.synthesis.seed=5")
    with pytest.raises(ConfigError, match="stage1.synthesis.seed"):
        from_dict(GenerateConfig, given).resolve(given)


def test_the_cli_refuses_a_conflict_before_any_work(tmp_path, capsys):
    assert main(["generate", "--out", str(tmp_path / "out"), "--set", "diffusion.fps=30"]) == 2
    assert "'diffusion.fps' = 30 conflicts with 'stage1.scene.fps'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_runtime_settings_may_change_between_runs_of_one_dataset(tmp_path):
    out = tmp_path / "ds"
    Generator(from_dict(GenerateConfig, _given("episodes=1")), out)
    # the same batch, resumed elsewhere: other device, offloading, tiling, Ray, offline switch
    Generator(from_dict(GenerateConfig, _given("episodes=1", "diffusion.device=cpu", "diffusion.offload=sequential",
                                               "diffusion.vae_tiling=false", "diffusion.local_files_only=true",
                                               "ray.workers=2")), out)
    with pytest.raises(OutputError, match="different config"):
        Generator(from_dict(GenerateConfig, _given("episodes=1", "seed=3")), out)
    with pytest.raises(OutputError, match="different config"):
        Generator(from_dict(GenerateConfig, _given("episodes=1", "diffusion.stage2.steps=4")), out)


def test_identity_drops_only_runtime_keys():
    full = {"seed": 1, "ray": {"workers": 2}, "diffusion": {"device": "cuda", "steps": 3, "stage2": {"offload": "model"}}}
    assert dataset_identity(full) == {"seed": 1, "diffusion": {"steps": 3, "stage2": {}}}
