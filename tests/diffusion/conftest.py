"""Fixtures of the diffusion tests: tiny random models, built offline on the CPU."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("diffusers")
sys.path.insert(0, str(Path(__file__).parent))  # diffusion_refs

import warnings

warnings.filterwarnings("ignore", category=FutureWarning)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

if os.environ.get("PYTEST_XDIST_WORKER"):
    import torch

    torch.set_num_threads(1)  # one thread per xdist worker: no oversubscription of the cores


@pytest.fixture(scope="session")
def tiny_flux():
    from pam_diffusion.tiny import tiny_flux_transformer

    return tiny_flux_transformer(seed=0)


@pytest.fixture(scope="session")
def small_generator():
    """Tiny generator for 9-frame 32x48 videos (2 steps per stage, 2 candidates)."""
    from pam_diffusion.tiny import tiny_generator

    return tiny_generator(height=32, width=48, num_frames=9, seed=0)


@pytest.fixture(scope="session")
def weight_folders(tmp_path_factory):
    """Tiny weights written the way users get them: FLUX.1-dev and CogVideoX-5b-I2V diffusers folders,
    PAM's controlnet.bin (x-flux keys) and PAM's transformer folder (.bin shards, block-less config)."""
    from diffusers import CogVideoXImageToVideoPipeline, CogVideoXTransformer3DModel, FluxPipeline

    from diffusion_refs import base_config, pam_checkpoint, pam_layout_checkpoint, write_pam_folder
    from pam_diffusion.tiny import tiny_components
    import torch

    root = tmp_path_factory.mktemp("weights")
    comps = tiny_components(32, 48, seed=7)
    stage2 = {k: v for k, v in comps.stage2.items() if k != "controlnet"}
    FluxPipeline(**stage2).save_pretrained(root / "FLUX.1-dev")
    torch.save(pam_checkpoint(stage2["transformer"], seed=3), root / "controlnet.bin")
    stage3 = dict(comps.stage3)
    control = stage3.pop("transformer")
    base = CogVideoXTransformer3DModel(**base_config(control))
    CogVideoXImageToVideoPipeline(transformer=base, **stage3).save_pretrained(root / "CogVideoX-5b-I2V")
    write_pam_folder(root / "pam_transformer", control, pam_layout_checkpoint(control, seed=4))
    return {"flux_path": str(root / "FLUX.1-dev"), "controlnet_path": str(root / "controlnet.bin"),
            "cogvideox_path": str(root / "CogVideoX-5b-I2V"), "transformer_path": str(root / "pam_transformer")}
