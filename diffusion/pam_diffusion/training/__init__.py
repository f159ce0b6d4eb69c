"""Training PAM's control networks on engine datasets (``pam train-appearance``, ``pam train-motion``).

Modules: ``config`` (the trainer YAML as frozen dataclasses), ``data`` (checking and reading episode
folders), ``loop`` (accelerate, checkpoints, exact resume, logging), ``appearance`` (Stage II: the two
Flux ControlNets, ``controlnet.bin`` out), ``motion`` (Stage III: the CogVideoX control branch, latent
cache, sharded transformer folder out). Importing this package is cheap; torch loads with the stage
modules."""

from __future__ import annotations

from .config import DataConfig, ModelConfig, TrainConfig, TrainerConfig, TrainingConfigError, load_trainer_config

__all__ = ["DataConfig", "ModelConfig", "TrainConfig", "TrainerConfig", "TrainingConfigError", "load_trainer_config",
           "train"]


def train(cfg: TrainerConfig, stop_after: int | None = None):
    """Run the trainer of ``cfg.stage``; returns ``loop.TrainResult``."""
    if cfg.stage == "appearance":
        from .appearance import train_appearance

        return train_appearance(cfg, stop_after=stop_after)
    from .motion import train_motion

    return train_motion(cfg, stop_after=stop_after)
