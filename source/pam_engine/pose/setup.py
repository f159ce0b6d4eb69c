"""Setting up an episode, the public API that Stage I, the RL environment and the grasp bank all
call, so the three never drift apart: placement -> settle -> grasp choice -> h0 ->
reachability -> plan.

Every check raises :class:`~pam_engine.errors.PoseError` naming the input before any rollout.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from pam_engine.errors import ConfigError, PoseError
from pam_engine.hand.articulation import HandArticulation, build_articulation
from pam_engine.hand.model import HandModel
from pam_engine.hand.pose import HandPose, make_transform
from pam_engine.pose.grasp.plan import GraspPlan, default_start_pose
from pam_engine.pose.grasp.target import GraspTarget
from pam_engine.pose.request import ObjectSpec, Stage1Config
from pam_engine.sim.base import HandObjectEnv, PlacedObject, SceneSpec

#: ``start_sampler(grasp_wrist, approach, n_dof) -> HandPose``: draws h0 when none is given.
StartSampler = Callable[[np.ndarray, np.ndarray, int], HandPose]


class HandCache:
    """Hand model and articulation, built once per process (building the skin takes seconds)."""

    _cache: dict = {}

    @classmethod
    def get(cls, mano: str | None) -> tuple[HandModel, HandArticulation]:
        from pam_engine.hand.mano import load_hand_model

        key = mano or os.environ.get("PAM_MANO_DIR") or "builtin"
        if key not in cls._cache:
            hand = load_hand_model(mano)
            cls._cache[key] = (hand, build_articulation(hand))
        return cls._cache[key]


def load_objects(specs: Sequence[ObjectSpec]):
    """Load (and validate) every object before any simulation work."""
    from pam_engine.objects import load_object

    if not specs:
        raise PoseError("an episode needs at least one object")
    return [load_object(s.name, scale=s.scale, mass=s.mass) for s in specs]


def place_objects(assets, specs: Sequence[ObjectSpec], rng: np.random.Generator, radius: float) -> list[np.ndarray]:
    """World poses: the user's where given, else upright on the table at a free random spot."""
    poses, footprints = [], []
    for asset, spec in zip(assets, specs):
        vertices = np.asarray(asset.mesh.vertices)
        if spec.pose is not None:
            pose = np.asarray(spec.pose, dtype=np.float64)
        else:
            for _ in range(100):
                rot = Rotation.from_euler("z", rng.uniform(-np.pi, np.pi)).as_matrix()
                rotated = vertices @ rot.T
                xy = rng.uniform(-radius, radius, size=2) * (1 + len(footprints))
                size = np.ptp(rotated[:, :2], axis=0).max() / 2
                if all(np.linalg.norm(xy - c) > size + s + 0.02 for c, s in footprints):
                    break
            else:
                raise PoseError(f"no free spot on the table for object {asset.name!r}")
            centre = (rotated[:, :2].min(axis=0) + rotated[:, :2].max(axis=0)) / 2
            pose = make_transform(rot, [xy[0] - centre[0], xy[1] - centre[1], -rotated[:, 2].min() + 0.001])
            footprints.append((xy, size))
        poses.append(pose)
    return poses


def build_scene(assets, poses: Sequence[np.ndarray], cfg: Stage1Config, backend: str = "mujoco") -> HandObjectEnv:
    """One environment with the configured hand and ``assets`` at ``poses``."""
    from pam_engine.sim import get_backend

    hand, articulation = HandCache.get(cfg.mano)
    spec = SceneSpec(hand, articulation, tuple(PlacedObject(a, p) for a, p in zip(assets, poses)), cfg.scene,
                     betas=cfg.betas)
    return get_backend(backend).build_env(spec)


def replace_object(scene: HandObjectEnv, k: int, rng: np.random.Generator, radius: float) -> None:
    """Put object ``k`` of an existing scene at a new random spot and yaw (as Stage I places it)."""
    asset = scene.objects[k].asset
    pose = place_objects([asset], [ObjectSpec(asset.name)], rng, radius)[0]
    scene.set_object_pose(k, pose)
    scene.forward()


def settle(scene: HandObjectEnv, cfg: Stage1Config) -> None:
    """Let the objects come to rest with the hand parked out of the way."""
    parked = make_transform(None, [0.0, 0.0, 2.0])
    scene.set_base_pose(parked)
    scene.set_hand_state(HandPose(parked, np.zeros(scene.articulation.size)))
    scene.step(int(round(cfg.settle_time / cfg.scene.control_dt)))
    if not scene.is_finite():
        raise PoseError("the objects do not rest stably on the table at the given poses (simulation diverged while settling)")
    scene.stop_objects()


def check_grasp(grasp: GraspTarget, articulation: HandArticulation) -> None:
    """Validate a user's hT (finite transform, proper rotation, non-zero approach); normalises
    the approach and clamps the angles (with a warning) in place."""
    wrist = np.asarray(grasp.wrist_in_object, dtype=np.float64)
    if wrist.shape != (4, 4) or not np.all(np.isfinite(wrist)):
        raise PoseError("grasp target hT: wrist_in_object must be a finite 4x4 transform")
    HandPose(wrist, np.asarray(grasp.angles, dtype=np.float64))  # proper rotation, finite angles
    approach = np.asarray(grasp.approach, dtype=np.float64)
    if approach.shape != (3,) or not np.all(np.isfinite(approach)) or np.linalg.norm(approach) < 1e-6:
        raise PoseError(f"grasp target hT: approach must be a finite non-zero 3-vector, got {approach.tolist()}")
    norm = np.linalg.norm(approach)
    # a unit approach is kept bit for bit (an episode replayed with its synthesized hT given is
    # then the same episode: contact dynamics amplify a 1e-16 change)
    grasp.approach = approach if abs(norm - 1.0) <= 1e-12 else approach / norm
    grasp.angles = articulation.check_angles(grasp.angles, "hT joint angles")


def synthesize_grasp(scene: HandObjectEnv, target: int, cfg: Stage1Config, seed: int,
                     timings: dict | None = None) -> GraspTarget:
    """Stage I's grasp when none is given: synthesis (seeded), then the physical trial; the
    seconds each took are added to ``timings`` ("synthesis", "trial"; process CPU seconds as
    "synthesis_cpu", "trial_cpu") when given."""
    from pam_engine.pose.grasp.synthesis import GraspSynthesizer
    from pam_engine.pose.grasp.trial import choose_grasp

    if cfg.synthesis.seed not in (0, seed):  # 0: unset (the default); the request's seed is used
        raise ConfigError(f"config key 'synthesis.seed' = {cfg.synthesis.seed!r} conflicts with the request seed "
                          f"{seed!r}, which Stage I synthesizes with; leave it unset")
    timings = {} if timings is None else timings
    t0, c0 = time.perf_counter(), time.process_time()
    synth_cfg = replace(cfg.synthesis, seed=seed)
    try:
        candidates = GraspSynthesizer(scene, target, synth_cfg).synthesize(max(cfg.check.candidates, 1))
    finally:
        timings["synthesis"] = timings.get("synthesis", 0.0) + time.perf_counter() - t0
        timings["synthesis_cpu"] = timings.get("synthesis_cpu", 0.0) + time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        return choose_grasp(scene, candidates, target, cfg.check, cfg.plan, num_steps=cfg.num_steps)
    finally:
        timings["trial"] = timings.get("trial", 0.0) + time.perf_counter() - t0
        timings["trial_cpu"] = timings.get("trial_cpu", 0.0) + time.process_time() - c0


def check_reachable(scene: HandObjectEnv, target: int, start: HandPose, grasp: GraspTarget, object_pose: np.ndarray,
                    cfg: Stage1Config) -> None:
    """Reject targets the hand cannot reach, before simulating: too far from h0, below the
    table, or sunk into it; and start poses that intersect the table or objects."""
    target_wrist = grasp.wrist_world(object_pose)
    asset = scene.objects[target].asset
    extent = float(np.linalg.norm(np.ptp(np.asarray(asset.mesh.vertices), axis=0))) / 2
    offset = float(np.linalg.norm(grasp.wrist_in_object[:3, 3] - np.asarray(asset.com)))
    if offset > extent + cfg.max_wrist_offset:
        raise PoseError(f"grasp target is unreachable: its wrist is {offset:.2f} m from the object's centre, "
                        f"beyond the object's reach ({extent + cfg.max_wrist_offset:.2f} m)")
    distance = float(np.linalg.norm(target_wrist[:3, 3] - start.wrist[:3, 3]))
    if distance > cfg.max_reach:
        raise PoseError(f"grasp target is unreachable: its wrist is {distance:.2f} m from the start pose h0 "
                        f"(max_reach {cfg.max_reach:.2f} m)")
    if target_wrist[2, 3] < 0.0:
        raise PoseError(f"grasp target is unreachable: its wrist is {-target_wrist[2, 3]:.3f} m below the table top")
    for pose, what, tolerance in ((HandPose(target_wrist, grasp.angles), "grasp target hT", 0.01),
                                  (start, "hand start pose h0", 0.002)):
        depth, hits = scene.penetration(pose)
        if depth > tolerance:
            raise PoseError(f"{what} is unreachable: the hand sinks {depth * 1000:.1f} mm into the {hits}")


@dataclass
class EpisodeSetup:
    """A scene ready to roll out: the grasp hT, the start h0 and the plan between them (the
    hand is at h0, the plan anchored to the scene)."""

    scene: HandObjectEnv
    target: int
    grasp: GraspTarget
    start: HandPose
    plan: GraspPlan
    timings: dict = field(default_factory=dict)  # seconds: settle, synthesis, trial


def prepare_episode(scene: HandObjectEnv, target: int, cfg: Stage1Config, rng: np.random.Generator, *,
                    grasp: GraspTarget | None = None, hand_start: HandPose | None = None,
                    start_sampler: StartSampler | None = None, synthesis_seed: int = 0,
                    timings: dict | None = None) -> EpisodeSetup:
    """Settle the placed scene, choose hT (given, else synthesized with ``synthesis_seed``),
    draw h0 (given, else ``start_sampler``, else :func:`default_start_pose` from ``rng``), check
    reachability and build the anchored plan. ``timings`` (a dict) receives the seconds spent
    settling, synthesizing and in the physical trial, also when synthesis fails."""
    timings = {} if timings is None else timings
    t0, c0 = time.perf_counter(), time.process_time()
    settle(scene, cfg)
    timings["settle"] = time.perf_counter() - t0
    timings["settle_cpu"] = time.process_time() - c0
    target_pose = scene.object_pose(target)
    if grasp is None:
        grasp = synthesize_grasp(scene, target, cfg, synthesis_seed, timings)
    articulation = scene.articulation
    if hand_start is not None:
        start = hand_start
    elif start_sampler is not None:
        start = start_sampler(grasp.wrist_world(target_pose), grasp.approach_world(target_pose), articulation.size)
    else:
        start = default_start_pose(grasp, target_pose, rng)
    start = HandPose(start.wrist, articulation.check_angles(start.angles, "h0 joint angles"))
    check_reachable(scene, target, start, grasp, target_pose, cfg)
    plan = GraspPlan.build(start, grasp, target_pose, cfg.num_steps, articulation.lower, articulation.upper, cfg.plan)
    plan.anchor(scene)
    scene.set_hand_state(start)
    scene.forward()
    return EpisodeSetup(scene, target, grasp, start, plan, timings)
