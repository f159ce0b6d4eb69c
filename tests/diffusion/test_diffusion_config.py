"""DiffusionConfig: defaults, reading from a config section, validation by name, offline switch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pam_diffusion import PAM_USED_CONDITIONS, SLOTS, DiffusionConfig
from pam_diffusion import config as config_module
from pam_diffusion.errors import ConfigError


def test_defaults_are_pams():
    cfg = DiffusionConfig()
    assert (cfg.num_frames, cfg.height, cfg.width, cfg.fps) == (49, 480, 720, 15)
    assert cfg.used_conditions == ("depth", "seg", "hand") and set(PAM_USED_CONDITIONS) == {"hand", "depth", "seg"}
    assert SLOTS == ("tracking", "normal", "depth", "seg", "hand")  # PAM's concatenation order
    assert (cfg.stage2.steps, cfg.stage2.guidance, cfg.stage2.conditioning_scales) == (28, 4.0, (1.0, 1.0))
    assert (cfg.stage3.steps, cfg.stage3.guidance, cfg.stage3.dynamic_guidance) == (50, 6.0, True)
    assert cfg.offload == "model" and cfg.dtype == "auto" and cfg.local_files_only is None
    assert not cfg.is_configured() and len(cfg.missing_weights()) == 4
    assert "stage2.flux_path" in cfg.skip_message() and "stage3.transformer_path" in cfg.skip_message()
    assert cfg.candidate_seeds(42) == (42, 43, 44, 45)


def test_from_dict_nested_and_aliases():
    cfg = DiffusionConfig.from_dict({
        "stage2": {"flux_path": "/w/flux", "controlnet_path": "/w/controlnet.bin", "num_candidates": 2,
                   "conditioning_scales": [0.8, 1.2], "offload": "sequential"},
        "stage3": {"cogvideox_path": "THUDM/CogVideoX-5b-I2V", "transformer_path": "/w/pam", "guidance": 7},
        "used_conditions": ["seg_mask", "hand_keypoints", "depth", "tracking"],
        "dtype": "bf16", "device": "cpu", "local_files_only": True, "seed": 3,
    })
    assert cfg.is_configured() and cfg.skip_message() == ""
    assert cfg.used_conditions == ("tracking", "depth", "seg", "hand")
    assert cfg.stage2.conditioning_scales == (0.8, 1.2) and cfg.stage3.guidance == 7.0
    assert cfg.dtype == "bfloat16" and cfg.stage2_offload == "sequential" and cfg.stage3_offload == "model"
    assert cfg.candidate_seeds() == (3, 4)
    assert DiffusionConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("d, message", [
    ({"num_frame": 49}, r"unknown config key 'diffusion\.num_frame'"),
    ({"stage2": {"step": 3}}, r"unknown config key 'diffusion\.stage2\.step'"),
    ({"stage3": {"transformer": "/x"}}, r"unknown config key 'diffusion\.stage3\.transformer'"),
    ({"num_frames": 48}, r"frame count 48 is not of the form 4k\+1"),
    ({"height": 470}, r"height 470 is not a positive multiple of 16"),
    ({"offload": "gpu"}, r"offload: 'gpu' is not one of none, model, sequential"),
    ({"dtype": "int8"}, r"dtype: 'int8'"),
    ({"used_conditions": ["depth", "flow"]}, r"unknown condition 'flow'"),
    ({"stage2": {"conditioning_scales": [1.0]}}, r"'diffusion\.stage2\.conditioning_scales': expected 2 values"),
    ({"stage2": {"steps": 0}}, r"stage2\.steps: expected a positive integer"),
    ({"stage2": {"num_candidates": "4"}}, r"'diffusion\.stage2\.num_candidates': expected int"),
    ({"vae_tiling": "yes"}, r"'diffusion\.vae_tiling': expected bool"),
    ({"stage3": {"guidance": "high"}}, r"'diffusion\.stage3\.guidance': expected float"),
    ({"stage2": {"offload": "disk"}}, r"stage2\.offload: 'disk'"),
])
def test_bad_values_are_named(d, message):
    with pytest.raises(ConfigError, match=message):
        DiffusionConfig.from_dict(d)


def test_dtype_and_device_resolution_on_cpu():
    import torch

    cfg = DiffusionConfig(device="cpu")
    assert cfg.resolve_device() == torch.device("cpu") and cfg.resolve_dtype() == torch.float32
    assert DiffusionConfig(device="cpu", dtype="bf16").resolve_dtype() == torch.bfloat16
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            DiffusionConfig(device="cuda").resolve_device()


def test_offline_environment_means_local_files_only_without_probing(monkeypatch):
    def no_probe(*args, **kwargs):
        raise AssertionError("network probed although the environment says offline")

    monkeypatch.setattr(config_module, "network_available", no_probe)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert DiffusionConfig().resolve_local_files_only() is True
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(config_module, "network_available", lambda *a, **k: False)
    assert DiffusionConfig().resolve_local_files_only() is True  # no network: offline
    monkeypatch.setattr(config_module, "network_available", lambda *a, **k: True)
    assert DiffusionConfig().resolve_local_files_only() is False
    assert DiffusionConfig(local_files_only=True).resolve_local_files_only() is True


def test_import_is_cheap():
    code = ("import sys, pam_diffusion; from pam_diffusion import DiffusionConfig; DiffusionConfig();"
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
