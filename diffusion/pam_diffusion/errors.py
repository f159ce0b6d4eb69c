"""Errors of the diffusion backend. Each names the bad input and what was expected, and is raised
before weights are loaded or any denoising starts. They extend the engine's ``PamError`` family so
the CLI prints them as one line."""

from __future__ import annotations

from pam_engine.errors import AssetError, PamError


class DiffusionError(PamError):
    """Base of the diffusion backend's user-facing errors."""


class ConditionError(DiffusionError, ValueError):
    """Condition maps of the wrong kind, dtype, size or frame count."""


class WeightsNotFoundError(DiffusionError, AssetError):
    """A weight folder or file that is missing, or lacks the files a model needs."""


class CheckpointMismatchError(DiffusionError, AssetError):
    """A checkpoint whose keys or tensor shapes belong to a different architecture."""
