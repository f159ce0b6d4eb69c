"""What Stage I is asked to do (:class:`Stage1Request`) and how (:class:`Stage1Config`)."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from pam_engine.errors import ConfigError
from pam_engine.hand.pose import HandPose
from pam_engine.pose.grasp.plan import PlanConfig
from pam_engine.pose.grasp.synthesis import GraspSynthesisConfig
from pam_engine.pose.grasp.target import GraspTarget
from pam_engine.pose.grasp.trial import GraspCheckConfig
from pam_engine.sim.base import SceneConfig


@dataclass
class ObjectSpec:
    """An object of an episode: a DexYCB id, a YCB name or a mesh file, and its world pose
    (4x4; None places it upright at a random spot and yaw on the table). ``mass`` (kg) overrides
    the published YCB mass or the density estimate."""

    name: str | int
    pose: np.ndarray | list | None = None
    scale: float = 1.0
    mass: float | None = None

    def __post_init__(self):
        # checked here, so a bad override fails when the request is made, before any mesh is read
        m = self.mass
        if m is not None and (isinstance(m, bool) or not isinstance(m, numbers.Real) or not math.isfinite(m) or m <= 0):
            raise ConfigError(f"object {self.name!r}: mass={m!r}: expected a finite number of kg > 0")


@dataclass(frozen=True)
class Stage1Config:
    """Stage I settings: clip length, physics, the reference motion, grasp synthesis, success."""

    num_frames: int = 49
    scene: SceneConfig = field(default_factory=SceneConfig)
    plan: PlanConfig = field(default_factory=PlanConfig)
    synthesis: GraspSynthesisConfig = field(default_factory=GraspSynthesisConfig)
    check: GraspCheckConfig = field(default_factory=GraspCheckConfig)  # physics trial of synthesized grasps
    settle_time: float = 0.3  # s of physics before frame 0, so objects rest on the table
    success_height: float = 0.10  # m the object must rise (the engine's success rule)
    max_reach: float = 1.0  # m between h0's wrist and hT's: farther targets are unreachable
    max_wrist_offset: float = 0.15  # m a grasp's wrist may lie beyond the object's bounding sphere
    placement_radius: float = 0.08  # m around the table centre for automatic placement
    mano: str | None = None  # MANO_RIGHT.pkl or its folder; None: $PAM_MANO_DIR, else the built-in hand
    betas: list[float] | None = None  # MANO shape (MANO only)

    @property
    def num_steps(self) -> int:
        """Control steps of an episode: capture frames fall on every ``control_per_frame``-th."""
        return (self.num_frames - 1) * self.scene.control_per_frame + 1


@dataclass
class Stage1Request:
    """What to simulate: objects (o0), which one to grasp, h0 and hT (None: synthesized)."""

    objects: Sequence[ObjectSpec]
    target: int = 0
    hand_start: HandPose | None = None
    grasp: GraspTarget | None = None  # hT in the target object's frame
    seed: int = 0
