"""PAM Engine's diffusion backend: Stage II (Flux.1 + PAM's two ControlNets -> first frame) and
Stage III (CogVideoX-5B-I2V + PAM's control transformer -> video), on diffusers and transformers.

Importing this package is cheap (no torch, diffusers or transformers); the names below load their
modules on first use::

    from pam_diffusion import DiffusionConfig, PamVideoGenerator
    cfg = DiffusionConfig.from_dict(yaml_section)
    if cfg.is_configured():
        result = PamVideoGenerator.from_config(cfg).generate(conditions, prompt, seed=0)

Modules: ``config`` (settings), ``conditions`` (input checks), ``flux_controlnet`` and ``convert``
(Stage II models and PAM checkpoint mapping), ``control_transformer`` (Stage III model and loader),
``appearance`` and ``motion`` (the Stage II and III samplers), ``scoring`` (candidate choice),
``generator`` (the entry point), ``tiny`` (small random components), ``fullsize`` (published
configs), ``typed_config`` and ``errors`` (the typed-config loader and error classes the engine
shares), ``training`` (the Stage II and III trainers). It imports nothing from ``pam_engine``."""

from __future__ import annotations

from importlib import import_module

from .config import CONDITION_KEYS, PAM_USED_CONDITIONS, SLOTS, DiffusionConfig, Stage2Config, Stage3Config
from .errors import CheckpointMismatchError, ConditionError, DiffusionError, WeightsNotFoundError

_LAZY = {
    "PamVideoGenerator": "generator",
    "VideoResult": "generator",
    "PamFluxControlNetModel": "flux_controlnet",
    "PamCogVideoXControlTransformer": "control_transformer",
    "PamCogVideoXControlPipeline": "motion",
    "load_pam_controlnets": "convert",
    "load_pam_transformer": "control_transformer",
    "convert_controlnet_file": "convert",
}

__all__ = [
    "CONDITION_KEYS", "PAM_USED_CONDITIONS", "SLOTS", "DiffusionConfig", "Stage2Config", "Stage3Config",
    "CheckpointMismatchError", "ConditionError", "DiffusionError", "WeightsNotFoundError", *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
