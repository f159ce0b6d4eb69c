"""Errors for bad input. Each names the offending input and what was expected, and is raised
before heavy work starts; the CLI prints them as one line (exit code 2) without a traceback.

``PamError``, ``ConfigError`` and ``AssetError`` are shared with the diffusion backend, which
defines them (it must not import the engine).
"""

from __future__ import annotations

from pam_diffusion.errors import AssetError, ConfigError, PamError

__all__ = ["AssetError", "ConfigError", "NoGraspError", "OutputError", "PamError", "PoseError"]


class PoseError(PamError, ValueError):
    """A pose with NaN/inf, joint angles out of range, or a target the hand cannot reach."""


class NoGraspError(PoseError):
    """No grasp family found a grasp of the object: Stage I ends that episode as failed (with
    this message as the reason) instead of raising, since the input itself was valid."""


class OutputError(PamError, OSError):
    """An output location that cannot be used (not writable, or holds foreign files)."""
