"""Simulators behind one seam: :mod:`pam_engine.sim.base` (the interface) and its backends,
:mod:`pam_engine.sim.mujoco` (the embedded default). Importing this package loads no simulator."""

from __future__ import annotations


def get_backend(name: str = "mujoco"):
    """The :class:`~pam_engine.sim.base.SimBackend` called ``name``, imported on demand."""
    if name == "mujoco":
        from pam_engine.sim.mujoco import MUJOCO_BACKEND

        return MUJOCO_BACKEND
    from pam_engine.errors import ConfigError

    raise ConfigError(f"simulator backend {name!r}: expected 'mujoco' (the embedded default)")
