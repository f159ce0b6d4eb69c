"""Finding weights: local folders, the Hugging Face cache, offline behaviour, and loading both stages
from folders laid out as users get them (FLUX.1-dev, CogVideoX-5b-I2V, PAM's controlnet.bin and
transformer folder)."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from diffusion_refs import pam_style_conditions
from pam_diffusion import DiffusionConfig, WeightsNotFoundError
from pam_diffusion.checkpoints import FLUX_FOLDER, resolve_model_dir
from pam_diffusion.generator import PamVideoGenerator
from pam_diffusion.errors import ConfigError


@pytest.fixture
def no_network(monkeypatch):
    """Any connection attempt fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_missing_folder_names_path_and_expected_contents(tmp_path, no_network):
    with pytest.raises(WeightsNotFoundError, match=r"stage2\.flux_path '.*nothing' does not exist.*model_index\.json"):
        resolve_model_dir(str(tmp_path / "nothing"), "stage2.flux_path", FLUX_FOLDER, True, "FLUX.1-dev")
    (tmp_path / "flux" / "transformer").mkdir(parents=True)
    (tmp_path / "flux" / "model_index.json").write_text("{}")
    with pytest.raises(WeightsNotFoundError, match=r"lacks transformer/config\.json, vae/config\.json"):
        resolve_model_dir(str(tmp_path / "flux"), "stage2.flux_path", FLUX_FOLDER, True, "FLUX.1-dev")


def test_uncached_repo_offline_fails_without_network(no_network, monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # an empty cache
    with pytest.raises(WeightsNotFoundError, match=r"'black-forest-labs/FLUX\.1-dev'.*not in the Hugging Face cache"):
        resolve_model_dir("black-forest-labs/FLUX.1-dev", "stage2.flux_path", FLUX_FOLDER, True, "FLUX.1-dev")


def test_repo_found_in_hf_cache(no_network, monkeypatch, tmp_path):
    from huggingface_hub import constants

    snapshot = tmp_path / "hub" / "models--owner--flux" / "snapshots" / "abc123"
    for item in FLUX_FOLDER:
        target = snapshot / item
        if item.endswith(".json"):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("{}")
        else:
            target.mkdir(parents=True, exist_ok=True)
    (tmp_path / "hub" / "models--owner--flux" / "refs").mkdir()
    (tmp_path / "hub" / "models--owner--flux" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    found = resolve_model_dir("owner/flux", "stage2.flux_path", FLUX_FOLDER, True, "FLUX.1-dev")
    assert Path(found) == snapshot


def test_unconfigured_weights_say_how_to_enable():
    with pytest.raises(ConfigError, match=r"skipped: no weights configured for stage2\.flux_path.*controlnet\.bin"):
        PamVideoGenerator.from_config(DiffusionConfig(device="cpu"))


def test_bad_folder_is_reported_before_loading(weight_folders, tmp_path, monkeypatch, no_network):
    import pam_diffusion.generator as gen

    def boom(*args, **kwargs):
        raise AssertionError("loading started")

    monkeypatch.setattr(gen, "load_stage2", boom)
    monkeypatch.setattr(gen, "load_stage3", boom)
    for key, message in (("transformer_path", r"stage3\.transformer_path .* does not exist"),
                         ("controlnet_path", r"stage2\.controlnet_path .* does not exist.*controlnet\.bin"),
                         ("cogvideox_path", r"stage3\.cogvideox_path .* does not exist.*vae/config\.json")):
        paths = {**weight_folders, key: str(tmp_path / "absent")}
        cfg = DiffusionConfig.from_dict({"stage2": {k: paths[k] for k in ("flux_path", "controlnet_path")},
                                         "stage3": {k: paths[k] for k in ("cogvideox_path", "transformer_path")},
                                         "device": "cpu", "local_files_only": True})
        with pytest.raises(WeightsNotFoundError, match=message):
            PamVideoGenerator.from_config(cfg)


def test_from_config_loads_user_layout_and_generates(weight_folders, no_network):
    """Both stages load from disk offline (PAM's checkpoints unchanged) and run."""
    cfg = DiffusionConfig.from_dict({
        "stage2": {"flux_path": weight_folders["flux_path"], "controlnet_path": weight_folders["controlnet_path"],
                   "steps": 2, "num_candidates": 1, "max_sequence_length": 16},
        "stage3": {"cogvideox_path": weight_folders["cogvideox_path"],
                   "transformer_path": weight_folders["transformer_path"], "steps": 2, "max_sequence_length": 16},
        "height": 32, "width": 48, "num_frames": 9, "device": "cpu", "local_files_only": True,
    })
    gen = PamVideoGenerator.from_config(cfg)
    assert gen.motion.pipe.transformer.config.num_tracking_blocks == 1
    assert type(gen.motion.pipe.scheduler).__name__ == "CogVideoXDPMScheduler"
    assert gen.motion.pipe.scheduler.config.timestep_spacing == "trailing"
    result = gen.generate(pam_style_conditions(9, 32, 48), "a hand grasps a can", seed=1)
    assert result.frames.shape == (9, 32, 48, 3) and result.frames.dtype == np.uint8
