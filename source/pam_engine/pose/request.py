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
from pam_engine.pose.grasp.synthesis import SEARCH_MODES, GraspSynthesisConfig
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


def _finite_numbers(data, key: str):
    """(dotted key, value) of every float in plain config data."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _finite_numbers(v, f"{key}.{k}" if key else str(k))
    elif isinstance(data, (list, tuple)):
        for i, v in enumerate(data):
            yield from _finite_numbers(v, f"{key}[{i}]")
    elif isinstance(data, float):
        yield key, data


def check_numbers(config, prefix: str = "") -> None:
    """Reject NaN and infinite numbers anywhere in a config dataclass (ConfigError naming the key)."""
    import math

    from pam_engine.config import to_dict

    for key, value in _finite_numbers(to_dict(config), prefix):
        if not math.isfinite(value):
            raise ConfigError(f"config key {key!r}: expected a finite number, got {value}")


def check_stage1(cfg: Stage1Config, prefix: str = "stage1.") -> None:
    """Every Stage I number in range (ConfigError naming the key), before any simulation."""
    check_numbers(cfg, prefix.rstrip("."))

    def bad(key: str, expected: str, value) -> ConfigError:
        return ConfigError(f"config key {prefix + key!r}: expected {expected}, got {value!r}")

    if cfg.num_frames < 2:
        raise bad("num_frames", "at least 2 frames", cfg.num_frames)
    scene = cfg.scene
    if not scene.fps > 0:
        raise bad("scene.fps", "a rate > 0 frames per second", scene.fps)
    if scene.fps > 1000:
        raise bad("scene.fps", "at most 1000 frames per second", scene.fps)
    for key in ("control_per_frame", "substeps"):
        if getattr(scene, key) < 1:
            raise bad(f"scene.{key}", "at least 1", getattr(scene, key))
    if not cfg.plan.lift_height > 0 or cfg.plan.lift_height > 1.0:
        raise bad("plan.lift_height", "a height in (0, 1] metres", cfg.plan.lift_height)
    ends = cfg.plan.phase_ends
    if not all(a < b for a, b in zip((0.0,) + tuple(ends), ends)) or ends[-1] > 1:
        raise bad("plan.phase_ends", "increasing fractions in (0, 1]", list(ends))
    for key in ("settle_time", "placement_radius", "max_wrist_offset"):
        if getattr(cfg, key) < 0:
            raise bad(key, "a value >= 0", getattr(cfg, key))
    for key in ("success_height", "max_reach"):
        if not getattr(cfg, key) > 0:
            raise bad(key, "a value > 0", getattr(cfg, key))
    if cfg.check.candidates < 1:
        raise bad("check.candidates", "at least 1", cfg.check.candidates)
    if cfg.synthesis.search not in SEARCH_MODES:
        raise bad("synthesis.search", f"one of {list(SEARCH_MODES)}", cfg.synthesis.search)
    if not 0 < cfg.check.min_rise_fraction <= 1:
        raise bad("check.min_rise_fraction", "a fraction in (0, 1] of plan.lift_height", cfg.check.min_rise_fraction)
    if not cfg.check.max_hand_error > 0:
        raise bad("check.max_hand_error", "a distance > 0 m", cfg.check.max_hand_error)
    if cfg.synthesis.num_directions < 1 or cfg.synthesis.num_rolls < 1:
        raise bad("synthesis.num_directions/num_rolls", "at least 1 each",
                  (cfg.synthesis.num_directions, cfg.synthesis.num_rolls))


@dataclass
class Stage1Request:
    """What to simulate: objects (o0), which one to grasp, h0 and hT (None: synthesized)."""

    objects: Sequence[ObjectSpec]
    target: int = 0
    hand_start: HandPose | None = None
    grasp: GraspTarget | None = None  # hT in the target object's frame
    seed: int = 0
