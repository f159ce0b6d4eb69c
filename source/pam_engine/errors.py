"""Errors for bad input. Each names the offending input and what was expected, and is raised
before heavy work starts; the CLI prints them as one line (exit code 2) without a traceback."""

from __future__ import annotations


class PamError(Exception):
    """Base of the engine's user-facing errors."""


class ConfigError(PamError, ValueError):
    """A config file or option with an unknown key, a wrong type or a value out of range."""


class AssetError(PamError, ValueError):
    """An unknown object, or a mesh or model file that is missing, corrupt or degenerate."""


class PoseError(PamError, ValueError):
    """A pose with NaN/inf, joint angles out of range, or a target the hand cannot reach."""


class OutputError(PamError, OSError):
    """An output location that cannot be used (not writable, or holds foreign files)."""
