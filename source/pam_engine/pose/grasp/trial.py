"""The physical trial of synthesized grasps: a kinematic grasp can still slip once forces act, so
the best candidates are tried in a short simulation (close, lift, hold) on a scratch copy of
the scene's state, and the first that holds the object is used."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pam_engine.hand.pose import HandPose
from pam_engine.pose.grasp.plan import PlanConfig, closing_targets, min_jerk
from pam_engine.pose.grasp.target import GraspTarget
from pam_engine.sim.base import HandObjectEnv


@dataclass(frozen=True)
class GraspCheckConfig:
    """How many candidates to try and how the trial lift goes."""

    candidates: int = 12
    close_time: float = 0.35  # s
    lift_time: float = 0.45  # s
    hold_time: float = 0.2  # s
    lift_height: float = 0.08  # m
    min_rise: float = 0.06  # m the object must follow


def trial_lift(scene: HandObjectEnv, grasp: GraspTarget, target: int, config: GraspCheckConfig,
               plan: PlanConfig) -> float:
    """Rise of the object (m) after closing on ``grasp`` and lifting, simulated on a copy of the
    scene state (the scene's own state is left as it was); -1 when the hand lost the object."""
    art = scene.articulation
    scene = scene.fork()  # a scratch copy of the state: the caller's scene is left as it was
    object_pose = scene.object_pose(target)
    wrist = grasp.wrist_world(object_pose)
    preshape = grasp.preshape if grasp.preshape is not None else np.zeros(art.size)
    closed = closing_targets(grasp, preshape, art.lower, art.upper, plan)
    scene.set_base_pose(wrist)
    scene.set_hand_state(HandPose(wrist, preshape))
    start_height = scene.object_pose(target)[2, 3]
    dt = scene.config.control_dt
    n_close, n_lift, n_hold = (int(round(t / dt)) for t in (config.close_time, config.lift_time, config.hold_time))
    lift_dir = np.linalg.inv(wrist[:3, :3]) @ np.array([0.0, 0.0, 1.0])  # world up, in base axes
    for k in range(n_close + n_lift + n_hold):
        s_close = min_jerk(np.array(min(k / max(n_close, 1), 1.0)))
        s_lift = min_jerk(np.array(np.clip((k - n_close) / max(n_lift, 1), 0.0, 1.0)))
        wrist_q = np.zeros(6)
        wrist_q[:3] = lift_dir * config.lift_height * s_lift
        scene.set_targets(wrist_q, preshape + s_close * (closed - preshape))
        scene.step()
        if not scene.is_finite():
            return -1.0
    scene.sync()
    touching = scene.contacts(target)
    if touching[:5].sum() < 2 or not (touching[0] or touching[5]):
        return -1.0
    return float(scene.object_pose(target)[2, 3] - start_height)


def choose_grasps(scene: HandObjectEnv, candidates: list[GraspTarget], target: int,
                  config: GraspCheckConfig, plan: PlanConfig, count: int = 1) -> list[GraspTarget]:
    """The first ``count`` candidates (best first) that lift the object in a trial, each tried
    once; when none does, the one that lifted it most, else the best-scored, alone."""
    passing: list[GraspTarget] = []
    best, best_rise = candidates[0], -np.inf
    for grasp in candidates[: max(config.candidates, count)]:
        rise = trial_lift(scene, grasp, target, config, plan)
        if rise >= config.min_rise:
            passing.append(grasp)
            if len(passing) == count:
                break
        elif rise > best_rise:
            best, best_rise = grasp, rise
    return passing or [best]


def choose_grasp(scene: HandObjectEnv, candidates: list[GraspTarget], target: int,
                 config: GraspCheckConfig, plan: PlanConfig) -> GraspTarget:
    """The grasp Stage I uses: the first candidate that lifts the object in a trial (see
    :func:`choose_grasps`)."""
    return choose_grasps(scene, candidates, target, config, plan)[0]
