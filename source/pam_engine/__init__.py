"""PAM Engine: simulated hand-object grasps turned into photoreal video with exact ground truth.

Pose (Stage I, physics) -> capture (condition maps + labels) -> Appearance (Stage II, Flux
ControlNets) -> Motion (Stage III, CogVideoX control transformer); see docs/design.md.

Importing the package has no side effects: no environment variable is set and no global hook
installed (the ``pam`` command and the renderers set up headless OpenGL themselves).
"""

__version__ = "0.1.0"
