"""Goals ``pam score-actions`` ranks candidate grasps by (docs/worldmodels.md, "Scoring
candidate actions"). A goal turns one simulated candidate into a score (higher is better) and
the metrics behind it:

- ``lifted``: how far the object rose by the last frame (metres);
- ``target_pose``: minus the distance of the object's last pose to a given pose (metres, plus
  ``rotation_weight`` metres per radian of rotation error);
- ``lpips``: minus the LPIPS distance of the candidate's last rendered frame to a goal image,
  with LPIPS weights the user supplies (``worldmodels.lpips``).

Goals are built from a kind and ``key=value`` arguments; unknown kinds and keys are errors that
name them and the choices, before any simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar

import numpy as np
from scipy.spatial.transform import Rotation

from pam_engine.config import from_dict, to_dict
from pam_engine.errors import ConfigError


@dataclass(frozen=True)
class LiftedGoal:
    """Score = rise of the object (m) between the first and the last frame."""

    kind: ClassVar[str] = "lifted"
    needs_render: ClassVar[bool] = False
    object: int | None = None  # index of the object (None: the grasped one)

    def score(self, trajectory, frame: np.ndarray | None = None) -> tuple[float, dict]:
        k = _object(self.object, trajectory)
        rise = float(trajectory.pose_y[-1, k, 2, 3] - trajectory.pose_y[0, k, 2, 3])
        return rise, {"rise_m": rise}


@dataclass(frozen=True)
class TargetPoseGoal:
    """Score = -(position error + rotation_weight x rotation error) of the object's last pose
    against ``position`` (world, m) and, when given, ``rotation`` (world rotation vector, rad)."""

    kind: ClassVar[str] = "target_pose"
    needs_render: ClassVar[bool] = False
    position: tuple[float, float, float] | None = None
    rotation: tuple[float, float, float] | None = None
    rotation_weight: float = 0.05  # metres per radian
    object: int | None = None

    def __post_init__(self) -> None:
        if self.position is None:
            raise ConfigError("goal target_pose: needs position=[x,y,z] (world frame, metres)")
        values = list(self.position) + list(self.rotation or ()) + [self.rotation_weight]
        if not all(math.isfinite(v) for v in values) or self.rotation_weight < 0:
            raise ConfigError("goal target_pose: position, rotation and rotation_weight must be finite "
                              "(rotation_weight >= 0)")

    def score(self, trajectory, frame: np.ndarray | None = None) -> tuple[float, dict]:
        k = _object(self.object, trajectory)
        pose = np.asarray(trajectory.pose_y[-1, k], dtype=np.float64)
        pos_err = float(np.linalg.norm(pose[:3, 3] - np.asarray(self.position)))
        metrics = {"position_error_m": pos_err}
        total = pos_err
        if self.rotation is not None:
            rel = Rotation.from_rotvec(self.rotation).inv() * Rotation.from_matrix(pose[:3, :3])
            rot_err = float(rel.magnitude())
            metrics["rotation_error_rad"] = rot_err
            total += self.rotation_weight * rot_err
        return -total, metrics


@dataclass(frozen=True)
class LpipsGoal:
    """Score = -LPIPS(last rendered frame, ``image``) with the user's LPIPS weights."""

    kind: ClassVar[str] = "lpips"
    needs_render: ClassVar[bool] = True
    image: str | None = None  # goal image file (any size: resized to the render)
    weights: str | None = None  # LPIPS linear-layer weights (lpips' weights/v0.1/alex.pth layout)
    backbone: str | None = None  # AlexNet features (torchvision's alexnet state dict), unless in weights

    def __post_init__(self) -> None:
        if not self.weights:
            raise ConfigError("goal lpips: needs LPIPS weights (--lpips-weights PATH, the lpips package's "
                              "weights/v0.1/alex.pth layout); the engine downloads none")
        if not self.image:
            raise ConfigError("goal lpips: needs a goal image (image=PATH)")
        for key in ("image", "weights", "backbone"):
            value = getattr(self, key)
            if value and not Path(value).is_file():
                raise ConfigError(f"goal lpips: {key} {value!r} is not a file")

    def load(self):
        """The metric and the goal image as uint8 RGB (both checked now, before simulating)."""
        import cv2

        from pam_engine.worldmodels.lpips import load_lpips

        metric = load_lpips(self.weights, self.backbone)
        image = cv2.imread(str(self.image), cv2.IMREAD_COLOR)
        if image is None:
            raise ConfigError(f"goal lpips: image {self.image!r} cannot be read as an image")
        return metric, cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


GOALS = {g.kind: g for g in (LiftedGoal, TargetPoseGoal, LpipsGoal)}


def make_goal(kind: str, args: dict | None = None):
    """The goal of ``kind`` with ``args`` (ConfigError naming unknown kinds and keys and the choices)."""
    if kind not in GOALS:
        raise ConfigError(f"unknown goal {kind!r}; expected one of {', '.join(GOALS)}")
    cls = GOALS[kind]
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(args or {}) - set(known))
    if unknown:
        raise ConfigError(f"goal {kind}: unknown key(s) {', '.join(unknown)}; expected {', '.join(known) or 'none'}")
    return from_dict(cls, dict(args or {}), path=f"goal {kind}")


def describe(goal) -> dict:
    return {"kind": goal.kind, **to_dict(goal)}


def _object(index: int | None, trajectory) -> int:
    k = trajectory.target_object if index is None else int(index)
    n = trajectory.pose_y.shape[1]
    if not 0 <= k < n:
        raise ConfigError(f"goal object {k}: the scene has objects 0..{n - 1}")
    return k
