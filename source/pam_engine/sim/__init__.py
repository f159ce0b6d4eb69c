"""Simulators behind one seam: :mod:`pam_engine.sim.base` (the interface) and its backends,
:mod:`pam_engine.sim.mujoco` (the embedded default). Importing this package loads no simulator."""

from __future__ import annotations


def get_backend(name: str = "mujoco"):
    """The :class:`~pam_engine.sim.base.SimBackend` called ``name``, imported on demand."""
    if name == "mujoco":
        from pam_engine.sim.mujoco import MUJOCO_BACKEND

        return MUJOCO_BACKEND
    from pam_engine.errors import ConfigError

    if name == "isaaclab":
        from pam_engine.isaaclab import require_isaaclab

        require_isaaclab()  # names the install steps
        raise ConfigError("simulator backend 'isaaclab' is batched only: build the task with "
                          "pam_engine.isaaclab.task.make_env_cfg / PamGraspEnv (no single-episode view)")
    raise ConfigError(f"simulator backend {name!r}: expected 'mujoco' (the embedded default) or 'isaaclab'")
