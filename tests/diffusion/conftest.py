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


@pytest.fixture(scope="session")
def tiny_flux():
    from pam_diffusion.tiny import tiny_flux_transformer

    return tiny_flux_transformer(seed=0)


@pytest.fixture(scope="session")
def tiny_generator_9():
    """Tiny generator for 9-frame 64x96 videos (2 steps per stage, 2 candidates)."""
    from pam_diffusion.tiny import tiny_generator

    return tiny_generator(height=64, width=96, num_frames=9, seed=0)
