"""Stage I (Pose): from (objects o0, hand start h0, grasp target hT) to a physically simulated
grasp trajectory at the capture rate.

Every input is checked before the simulation starts (unknown objects, bad meshes, NaN poses,
out-of-range joints, unreachable targets); a simulation that diverges ends the episode as
failed with a reason instead of raising.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from pam_engine.errors import NoGraspError, PoseError
from pam_engine.pose.grasp.target import GraspTarget
from pam_engine.pose.request import Stage1Config, Stage1Request
from pam_engine.pose.rollout import GraspPolicy, ScriptedPolicy, failed_trajectory, rollout
from pam_engine.pose.setup import (
    HandCache, StartSampler, build_scene, check_grasp, load_objects, place_objects, prepare_episode,
)
from pam_engine.sim.base import HandObjectEnv
from pam_engine.trajectory import Trajectory


@dataclass
class Stage1Run:
    """A Stage I result with the scene it ran in (which capture can render directly)."""

    trajectory: Trajectory
    scene: HandObjectEnv
    #: wall seconds: settle, synthesis, trial, rollout; process CPU seconds: <stage>_cpu
    timings: dict = field(default_factory=dict)
    #: the grasp hT the episode used (given or synthesized); None when no grasp was found. A
    #: request with this grasp and the same seed replays the same episode without synthesis.
    grasp: GraspTarget | None = None


def simulate(request: Stage1Request, config: Stage1Config | None = None,
             policy: GraspPolicy | None = None) -> Trajectory:
    """Run Stage I and return the trajectory sampled at the capture rate."""
    return run_stage1(request, config, policy).trajectory


def run_stage1(request: Stage1Request, config: Stage1Config | None = None,
               policy: GraspPolicy | None = None, start_sampler: StartSampler | None = None) -> Stage1Run:
    """Run Stage I; the result keeps the scene for capture. ``start_sampler(grasp_wrist,
    approach, n_dof) -> HandPose`` draws h0 when the request gives none."""
    cfg = config or Stage1Config()
    policy = policy or ScriptedPolicy()
    prepared = prepare_stage1(request, cfg, f"{policy.name}-{policy.version}", start_sampler)
    scene, timings = prepared.scene, prepared.timings
    if prepared.failed is not None:
        return Stage1Run(prepared.failed, scene, timings)
    policy.reset(scene, prepared.setup.plan, request.target)
    t0, c0 = time.perf_counter(), time.process_time()
    traj = rollout(scene, policy, prepared.setup.plan, request.target, cfg, prepared.hand_name, request.seed)
    timings["rollout"] = time.perf_counter() - t0
    timings["rollout_cpu"] = time.process_time() - c0
    return Stage1Run(traj, scene, timings, prepared.setup.grasp)


@dataclass
class Stage1Setup:
    """Stage I up to the rollout: the settled scene with the hand at h0 and the plan
    (``setup``), or, where no grasp of the object was found, the ``failed`` trajectory."""

    scene: HandObjectEnv
    setup: object  # pose.setup's episode set-up (plan, grasp, h0); None when failed
    hand_name: str
    timings: dict
    failed: Trajectory | None = None


def prepare_stage1(request: Stage1Request, cfg: Stage1Config, policy_name: str = "scripted-1",
                   start_sampler: StartSampler | None = None) -> Stage1Setup:
    """Every check, the placement, the scene, settling, grasp synthesis and h0 of a Stage I
    request: what any physics backend's rollout starts from (the embedded one in
    :func:`run_stage1`, Isaac Lab's in ``isaaclab.stage1``). Draws from ``default_rng(seed)``."""
    rng = np.random.default_rng(request.seed)
    if not 0 <= request.target < len(request.objects):
        raise PoseError(f"target object index {request.target} is out of range for {len(request.objects)} objects")
    if cfg.num_frames < 2:
        raise PoseError(f"num_frames must be at least 2, got {cfg.num_frames}")
    assets = load_objects(request.objects)
    hand, articulation = HandCache.get(cfg.mano)
    if request.hand_start is not None:
        articulation.check_angles(request.hand_start.angles, "h0 joint angles")
    if request.grasp is not None:
        check_grasp(request.grasp, articulation)
    poses = place_objects(assets, request.objects, rng, cfg.placement_radius)
    scene = build_scene(assets, poses, cfg)
    timings: dict = {}
    try:
        setup = prepare_episode(scene, request.target, cfg, rng, grasp=request.grasp, hand_start=request.hand_start,
                                start_sampler=start_sampler, synthesis_seed=request.seed, timings=timings)
    except NoGraspError as exc:  # valid input no grasp family can hold: a failed episode, not a crash
        traj = failed_trajectory(scene, request.target, cfg, hand.name, request.seed, policy_name, str(exc))
        return Stage1Setup(scene, None, hand.name, timings, traj)
    return Stage1Setup(scene, setup, hand.name, timings)
