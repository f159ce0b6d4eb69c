"""PAM Engine: simulated hand-object grasps turned into photoreal video with exact ground truth.

Pose (Stage I, physics) -> capture (condition maps + labels) -> Appearance (Stage II, Flux
ControlNets) -> Motion (Stage III, CogVideoX control transformer).
"""

import os as _os

# Headless rendering goes through EGL (Mesa on CPU machines, the NVIDIA driver on GPU ones).
# MuJoCo reads this when its GL context is first created, so set it before any import of it.
_os.environ.setdefault("MUJOCO_GL", "egl")
_os.environ.setdefault("PYOPENGL_PLATFORM", _os.environ["MUJOCO_GL"] if _os.environ["MUJOCO_GL"] in ("egl", "osmesa") else "egl")

__version__ = "0.1.0"
