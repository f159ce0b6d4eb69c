"""The reference motion of a grasp: approach, reach, close, lift, hold.

A :class:`GraspPlan` turns (h0, hT, object pose) into per-control-step targets for the wrist's
six joints and the finger joints, precomputed once so that stepping stays as cheap as bare
``mj_step``. The scripted policy plays it back; the RL policy adds residuals to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from pam_engine.hand.pose import HandPose, make_transform
from pam_engine.pose.grasp.target import GraspTarget

PHASES = ("approach", "reach", "close", "lift", "hold")


@dataclass(frozen=True)
class PlanConfig:
    """Timing (fractions of the episode, ending at 1) and geometry of the reference motion."""

    phase_ends: tuple[float, float, float, float] = (0.30, 0.45, 0.60, 0.88)  # approach..lift
    pregrasp_distance: float = 0.08  # m back along the approach before the final reach
    lift_height: float = 0.20  # m
    squeeze: float = 0.35  # rad added to flexion targets beyond first contact: the grip force
    free_finger_close: float = 0.6  # fraction of range that fingers not touching curl to
    #: the same for fingertip grasps (pinch, lateral, along-table families), whose thumb presses
    #: too (straight at the fingertips, see synthesis' thumb opposition): with the thumb only
    #: standing still the fingers squeezed the object out past it, and at 0.12 rad the grip
    #: did not hold the large marker through the lift. At 0.4 it held it but rolled it ~55 deg
    #: in the grip (the curling fingertips drag its far side up), so the wrist ended 12-13 cm
    #: from hT carried with the marker (GraspXL's rule fails above 10); at 0.2 the marker,
    #: banana and screwdriver turned 12-22 deg but the knife flipped out; 0.3 holds all four
    #: within 6-9 cm
    pinch_squeeze: float = 0.3


def min_jerk(s: np.ndarray) -> np.ndarray:
    """Minimum-jerk time scaling on [0, 1] (zero velocity and acceleration at both ends)."""
    s = np.clip(s, 0.0, 1.0)
    return s ** 3 * (10 - 15 * s + 6 * s * s)


@dataclass
class GraspPlan:
    """Per-control-step targets (world wrist poses and finger angles) and phase labels."""

    wrist: np.ndarray  # (n, 4, 4) wrist targets, world
    fingers: np.ndarray  # (n, n_dof)
    phase: np.ndarray  # (n,) index into PHASES
    grasp_wrist: np.ndarray  # (4, 4) wrist at the grasp, world
    grasp_angles: np.ndarray  # (n_dof,) finger angles at first contact
    approach: np.ndarray  # (3,) world direction of the final reach
    wrist_q: np.ndarray | None = None  # (n, 6) wrist joint targets, once anchored to a scene
    family: str = "power"  # the grasp family of hT (pose.grasp.families)

    def anchor(self, scene) -> None:
        """Anchor the hand's wrist joints at the grasp pose and express the wrist targets in
        them (small angles near the grasp, where precision matters)."""
        scene.set_base_pose(self.grasp_wrist)
        q = scene.wrist_to_joints(self.wrist)
        q[:, 3:] = np.unwrap(q[:, 3:], axis=0)  # hinge angles continuous over time
        self.wrist_q = q

    @property
    def num_steps(self) -> int:
        return int(self.wrist.shape[0])

    @classmethod
    def build(cls, start: HandPose, grasp: GraspTarget, object_pose: np.ndarray, num_steps: int,
              lower: np.ndarray, upper: np.ndarray, config: PlanConfig | None = None) -> "GraspPlan":
        cfg = config or PlanConfig()
        grasp_wrist = grasp.wrist_world(object_pose)
        approach = grasp.approach_world(object_pose)
        pregrasp = pregrasp_pose(grasp, object_pose, cfg)
        lifted = grasp_wrist.copy()
        lifted[2, 3] += cfg.lift_height
        preshape = grasp.preshape if grasp.preshape is not None else np.zeros_like(grasp.angles)
        closed = closing_targets(grasp, preshape, lower, upper, cfg)

        t = np.arange(num_steps) / max(num_steps - 1, 1)
        ends = np.array(cfg.phase_ends + (1.0,))
        starts = np.concatenate([[0.0], ends[:-1]])
        phase = np.searchsorted(ends, t, side="left").clip(0, len(PHASES) - 1)
        local = np.clip((t - starts[phase]) / (ends[phase] - starts[phase]), 0, 1)
        s = min_jerk(local)

        keys = [start.wrist, pregrasp, grasp_wrist, grasp_wrist, lifted, lifted]  # pose at each phase start
        wrist = np.empty((num_steps, 4, 4))
        fingers = np.empty((num_steps, closed.shape[0]))
        finger_keys = [start.angles, preshape, preshape, closed, closed, closed]
        for p in range(len(PHASES)):
            mask = phase == p
            if not mask.any():
                continue
            wrist[mask] = _interpolate(keys[p], keys[p + 1], s[mask])
            fingers[mask] = finger_keys[p] + s[mask, None] * (finger_keys[p + 1] - finger_keys[p])
        return cls(wrist, np.clip(fingers, lower, upper), phase, grasp_wrist, grasp.angles.copy(), approach,
                   family=grasp.family)


def pregrasp_pose(grasp: GraspTarget, object_pose: np.ndarray, cfg: PlanConfig) -> np.ndarray:
    """The wrist where the final reach starts: ``cfg.pregrasp_distance`` back along the approach
    from the grasp (world)."""
    pose = grasp.wrist_world(object_pose).copy()
    pose[:3, 3] -= cfg.pregrasp_distance * grasp.approach_world(object_pose)
    return pose


def closing_targets(grasp: GraspTarget, preshape, lower, upper, cfg: PlanConfig) -> np.ndarray:
    """Targets beyond first contact, so the position servos press: the grip force.

    With the synthesizer's closing direction (``grasp.squeeze``), every joint of every finger
    that touches the object presses ``cfg.squeeze`` rad further along the way it closed. (The
    older rule, kept for a user's hT without one, pressed only joints that had moved since the
    pre-shape: a finger that met the object at once, or the thumb's opposition, got no grip,
    and a finger touching from the start counted as free and curled to a fixed fraction of its
    range, which is what a constant +0.3 rad after the close had been making up for.) Fingers
    that touch nothing curl part of the way for a power grasp, and stay put for a pinch, where
    curling them would pull the pinching fingertips off the object."""
    closed = grasp.angles.copy()
    if grasp.squeeze is not None:
        pressing = np.abs(grasp.squeeze) > 1e-9
        press = cfg.squeeze if grasp.family in ("power", "handle") else cfg.pinch_squeeze
        closed[pressing] += press * grasp.squeeze[pressing]
        if grasp.family in ("power", "handle"):
            # flexion joints of fingers that met nothing (a touching finger's joints all press)
            idle = ~pressing & (upper > 1.0)
            closed[idle] = np.maximum(closed[idle], lower[idle] + cfg.free_finger_close * (upper[idle] - lower[idle]))
        return np.clip(closed, lower, upper)
    moved = grasp.angles - preshape
    flexing = moved > 1e-6
    closed[flexing] += cfg.squeeze
    # joints that never closed (their finger met nothing) curl part of the way
    idle = ~flexing & (upper > 1.0)
    closed[idle] = np.maximum(closed[idle], lower[idle] + cfg.free_finger_close * (upper[idle] - lower[idle]))
    return np.clip(closed, lower, upper)


def _interpolate(a: np.ndarray, b: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Poses between a and b: straight-line positions, slerped rotations."""
    rots = Rotation.from_matrix(np.stack([a[:3, :3], b[:3, :3]]))
    r = Slerp([0.0, 1.0], rots)(s).as_matrix()
    out = np.broadcast_to(np.eye(4), (len(s), 4, 4)).copy()
    out[:, :3, :3] = r
    out[:, :3, 3] = a[:3, 3] + s[:, None] * (b[:3, 3] - a[:3, 3])
    return out


def default_start_pose(grasp: GraspTarget, object_pose: np.ndarray, rng: np.random.Generator | None = None,
                       distance: float = 0.22, lift: float = 0.10) -> HandPose:
    """A plausible h0: the open hand back along the approach and raised, slightly perturbed."""
    rng = rng or np.random.default_rng(0)
    wrist = grasp.wrist_world(object_pose)
    approach = grasp.approach_world(object_pose)
    position = wrist[:3, 3] - distance * approach + np.array([0.0, 0.0, lift]) + rng.normal(scale=0.02, size=3)
    position[2] = max(position[2], wrist[2, 3] + 0.05)
    rotation = Rotation.from_rotvec(rng.normal(scale=0.15, size=3)) * Rotation.from_matrix(wrist[:3, :3])
    return HandPose(make_transform(rotation, position), np.zeros_like(grasp.angles))
