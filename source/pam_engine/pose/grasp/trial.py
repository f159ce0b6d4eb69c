"""The physical trial of synthesized grasps: a kinematic grasp can still slip once forces act, so
the best candidates are tried in simulation on a scratch copy of the scene's state, and the first
that holds the object is used.

The trial plays the episode's own plan (:class:`~pam_engine.pose.grasp.plan.GraspPlan`, built
for the episode's length), from the pre-grasp pose on: the final reach, the close, the lift and
the hold, with the plan's timings, heights and closing targets. Only the approach from h0 is
left out (it ends at rest at the pre-grasp pose with the pre-shape, where the trial starts). So
what the trial passes is what the rollout does: an earlier, shorter trial (0.35 s close, 8 cm lift
in 0.45 s, 0.2 s hold, the hand placed at the grasp) passed fingertip grasps that then dropped
the object in the plan's longer hold or pushed it away on the plan's reach.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pam_engine.hand.pose import HandPose
from pam_engine.pose.grasp.plan import PHASES, GraspPlan, PlanConfig, pregrasp_pose
from pam_engine.pose.grasp.target import GraspTarget
from pam_engine.pose.success import held
from pam_engine.sim.base import HandObjectEnv

#: the plan's phase the trial starts at
_REACH = PHASES.index("reach")


@dataclass(frozen=True)
class GraspCheckConfig:
    """How many candidates to try, and what the trial's lift must achieve."""

    candidates: int = 12
    #: the object must end at least this fraction of the plan's lift height above where it
    #: rested, still held (thumb or palm and another finger touching)
    min_rise_fraction: float = 0.7
    #: and the wrist must end within this distance (m) of hT carried along with the object: an
    #: object that turned in the grip fails GraspXL's rule (0.1 m), which the benchmarks report
    max_hand_error: float = 0.08
    #: candidates whose hand at hT sinks deeper than this (m) into the table or an object are not
    #: tried: Stage I's reachability check refuses such an hT (the same 1 cm), so choosing one
    #: would end the episode before it starts
    max_penetration: float = 0.01


@dataclass(frozen=True)
class TrialResult:
    """What one trial of a grasp did: the object's rise (m), whether the hand held it at the end,
    and how far (m) the wrist ended from hT carried along with the object."""

    rise: float
    held: bool
    hand_error: float


def trial_lift(scene: HandObjectEnv, grasp: GraspTarget, target: int, config: GraspCheckConfig,
               plan: PlanConfig, *, num_steps: int) -> float:
    """Rise of the object (m) at the end of the plan's reach, close, lift and hold for ``grasp``
    (an episode of ``num_steps`` control steps), simulated on a copy of the scene state (the
    scene's own state is left as it was); -1 when the simulation failed or the hand lost the
    object."""
    result = trial(scene, grasp, target, config, plan, num_steps=num_steps)
    return result.rise if result.held else -1.0


def trial(scene: HandObjectEnv, grasp: GraspTarget, target: int, config: GraspCheckConfig,
          plan: PlanConfig, *, num_steps: int) -> TrialResult:
    """The trial of :func:`trial_lift`, with the hold and the hand's error reported apart."""
    art = scene.articulation
    scene = scene.fork()  # a scratch copy of the state: the caller's scene is left as it was
    object_pose = scene.object_pose(target)
    preshape = grasp.preshape if grasp.preshape is not None else np.zeros(art.size)
    start = HandPose(pregrasp_pose(grasp, object_pose, plan), preshape)
    motion = GraspPlan.build(start, grasp, object_pose, num_steps, art.lower, art.upper, plan)
    motion.anchor(scene)
    first = int(np.argmax(motion.phase == _REACH))
    scene.set_hand_state(HandPose(motion.wrist[first], motion.fingers[first]))
    scene.forward()
    start = scene.object_pose(target)
    grasp_in_object = np.linalg.inv(start) @ motion.grasp_wrist
    for k in range(first, motion.num_steps - 1):
        scene.set_targets(motion.wrist_q[k], motion.fingers[k])
        scene.step()
        if not scene.is_finite():
            return TrialResult(-1.0, False, np.inf)
    scene.sync()
    end = scene.object_pose(target)
    hand_error = float(np.linalg.norm(scene.wrist_pose()[:3, 3] - (end @ grasp_in_object)[:3, 3]))
    return TrialResult(float(end[2, 3] - start[2, 3]), held(scene.contacts(target)), hand_error)


def choose_grasps(scene: HandObjectEnv, candidates: list[GraspTarget], target: int,
                  config: GraspCheckConfig, plan: PlanConfig, count: int = 1, *,
                  num_steps: int) -> list[GraspTarget]:
    """The first ``count`` candidates (best first) that lift the object in a trial and keep it
    where the grasp put it (``config.max_hand_error``), each tried once; when none does, the one
    that lifted and held it (else merely lifted it) most, else the best-scored, alone."""
    passing: list[GraspTarget] = []
    best, best_key = candidates[0], (False, -np.inf)
    min_rise = config.min_rise_fraction * plan.lift_height
    object_pose = scene.object_pose(target) if scene is not None else None
    for grasp in candidates[: max(config.candidates, count)]:
        if object_pose is not None:
            depth, _ = scene.fork().penetration(HandPose(grasp.wrist_world(object_pose), grasp.angles))
            if depth > config.max_penetration:
                continue
        r = trial(scene, grasp, target, config, plan, num_steps=num_steps)
        lifted = r.held and r.rise >= min_rise
        if lifted and r.hand_error <= config.max_hand_error:
            passing.append(grasp)
            if len(passing) == count:
                break
        elif (lifted, r.rise if r.held else -1.0) > best_key:
            best, best_key = grasp, (lifted, r.rise if r.held else -1.0)
    return passing or [best]


def choose_grasp(scene: HandObjectEnv, candidates: list[GraspTarget], target: int,
                 config: GraspCheckConfig, plan: PlanConfig, *, num_steps: int) -> GraspTarget:
    """The grasp Stage I uses: the first candidate that lifts the object in a trial (see
    :func:`choose_grasps`)."""
    return choose_grasps(scene, candidates, target, config, plan, num_steps=num_steps)[0]
