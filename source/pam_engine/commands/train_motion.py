"""``pam train-motion``: Stage III training (see ``train_diffusion``)."""

from __future__ import annotations

from .train_diffusion import register_stage


def register(subparsers) -> None:
    register_stage(subparsers, "train-motion")
