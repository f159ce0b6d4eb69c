"""Errors for bad input. Each names the offending input and what was expected, and is raised
before heavy work starts (before weights load or any denoising starts); the ``pam`` command
prints them as one line.

The base classes (:class:`PamError`, :class:`ConfigError`, :class:`AssetError`) are shared with
the engine, which imports them from here (``pam_diffusion`` imports nothing from ``pam_engine``),
so one ``except PamError`` catches both packages' errors.
"""

from __future__ import annotations


class PamError(Exception):
    """Base of the user-facing errors of PAM Engine and its diffusion backend."""


class ConfigError(PamError, ValueError):
    """A config file or option with an unknown key, a wrong type or a value out of range."""


class AssetError(PamError, ValueError):
    """An unknown object, or a mesh, model or weight file that is missing, corrupt or degenerate."""


class DiffusionError(PamError):
    """Base of the diffusion backend's user-facing errors."""


class ConditionError(DiffusionError, ValueError):
    """Condition maps of the wrong kind, dtype, size or frame count."""


class WeightsNotFoundError(DiffusionError, AssetError):
    """A weight folder or file that is missing, or lacks the files a model needs."""


class CheckpointMismatchError(DiffusionError, AssetError):
    """A checkpoint whose keys or tensor shapes belong to a different architecture."""
