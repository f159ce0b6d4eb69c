"""Simulators behind one seam: :mod:`pam_engine.sim.base` (the interface) and its backends,
:mod:`pam_engine.sim.mujoco` (the embedded default). Importing this package loads no simulator."""

from __future__ import annotations


def get_backend(name: str = "mujoco"):
    """The :class:`~pam_engine.sim.base.SimBackend` called ``name``, imported on demand."""
    if name == "mujoco":
        from pam_engine.sim.mujoco import MUJOCO_BACKEND

        return MUJOCO_BACKEND
    from pam_engine.errors import ConfigError

    if name == "isaaclab":  # batched only, and it imports the seam's users (no import from here)
        raise ConfigError("simulator backend 'isaaclab' has no single-episode view: build the batched task with "
                          "pam_engine.isaaclab.task.make_env_cfg and PamGraspEnv (docs/isaaclab.md)")
    raise ConfigError(f"simulator backend {name!r}: expected 'mujoco' (the embedded default)")
