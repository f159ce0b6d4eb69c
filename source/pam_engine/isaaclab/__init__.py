"""The Isaac Lab backend: the grasp task as an Isaac Lab 3.0 ``DirectRLEnv`` (hand, object, table,
camera), its gym registration and the episode capture from its camera.

Importing this package needs nothing beyond the engine; the Isaac Lab modules
(:mod:`~pam_engine.isaaclab.task`, :mod:`~pam_engine.isaaclab.registration`) import ``isaaclab``
and are loaded only where it is installed (:func:`require_isaaclab` says how, otherwise). The
task runs kit-less on Newton (MuJoCo-Warp; CPU or CUDA) and on PhysX/RTX inside Isaac Sim. No
``omni.*`` import lives here (only in ``exts/``).
"""

from __future__ import annotations

from pam_engine.isaaclab.checks import (
    DEVICES, INSTALL_HINT, PHYSICS_PRESETS, check_device, check_joint_names, check_num_envs, check_physics,
    isaaclab_available, require_isaaclab,
)

#: The gym id of the task (Isaac Lab's own train/play tools find it through the entry point).
TASK_ID = "PAM-Grasp-IsaacLab-v0"

__all__ = ["DEVICES", "INSTALL_HINT", "PHYSICS_PRESETS", "TASK_ID", "check_device", "check_joint_names",
           "check_num_envs", "check_physics", "isaaclab_available", "require_isaaclab"]
