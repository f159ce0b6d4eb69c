"""Stage I (Pose): from (objects o0, hand start h0, grasp target hT) to a physically simulated
grasp trajectory at the capture rate, on the embedded MuJoCo backend.

Every input is checked before the simulation starts (unknown objects, bad meshes, NaN poses,
out-of-range joints, unreachable targets); a simulation that diverges ends the episode as
failed with a reason instead of raising.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Sequence

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from pam_engine.errors import ConfigError, PoseError
from pam_engine.hand.articulation import HandArticulation, build_articulation
from pam_engine.hand.mano import load_hand_model
from pam_engine.hand.model import HandModel
from pam_engine.hand.pose import HandPose, make_transform
from pam_engine.policy.base import GraspPolicy, ScriptedPolicy
from pam_engine.policy.grasp_check import GraspCheckConfig, choose_grasp
from pam_engine.policy.grasp_synthesis import GraspSynthesisConfig, GraspSynthesizer, GraspTarget
from pam_engine.policy.plan import GraspPlan, PlanConfig, default_start_pose
from pam_engine.sim.scene import HandObjectScene, PlacedObject, SceneConfig
from pam_engine.trajectory import CONTACT_PARTS, Trajectory

_BAD_STATE_WARNINGS = (mujoco.mjtWarning.mjWARN_BADQACC, mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADQVEL)


@dataclass
class ObjectSpec:
    """An object of an episode: a DexYCB id, a YCB name or a mesh file, and its world pose
    (4x4; None places it upright at a random spot and yaw on the table)."""

    name: str | int
    pose: np.ndarray | list | None = None
    scale: float = 1.0


@dataclass
class Stage1Config:
    """Stage I settings: clip length, physics, the reference motion, grasp synthesis, success."""

    num_frames: int = 49
    scene: SceneConfig = field(default_factory=SceneConfig)
    plan: PlanConfig = field(default_factory=PlanConfig)
    synthesis: GraspSynthesisConfig = field(default_factory=GraspSynthesisConfig)
    check: GraspCheckConfig = field(default_factory=GraspCheckConfig)  # physics trial of synthesized grasps
    settle_time: float = 0.3  # s of physics before frame 0, so objects rest on the table
    success_height: float = 0.10  # m the object must rise
    max_reach: float = 1.0  # m between h0's wrist and hT's: farther targets are unreachable
    max_wrist_offset: float = 0.15  # m a grasp's wrist may lie beyond the object's bounding sphere
    placement_radius: float = 0.08  # m around the table centre for automatic placement
    mano: str | None = None  # MANO_RIGHT.pkl or its folder; None: $PAM_MANO_DIR, else the built-in hand
    betas: list[float] | None = None  # MANO shape (MANO only)


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


class HandCache:
    """Hand model and articulation, built once per process (building the skin takes seconds)."""

    _cache: dict = {}

    @classmethod
    def get(cls, mano: str | None) -> tuple[HandModel, HandArticulation]:
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
    return [load_object(s.name, scale=s.scale) for s in specs]


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


@dataclass
class Stage1Run:
    """A Stage I result with the scene it ran in (which capture can render directly)."""

    trajectory: Trajectory
    scene: HandObjectScene


def simulate(request: Stage1Request, config: Stage1Config | None = None,
             policy: GraspPolicy | None = None) -> Trajectory:
    """Run Stage I and return the trajectory sampled at the capture rate."""
    return run_stage1(request, config, policy).trajectory


def run_stage1(request: Stage1Request, config: Stage1Config | None = None,
               policy: GraspPolicy | None = None, start_sampler=None) -> Stage1Run:
    """Run Stage I; the result keeps the scene for capture. ``start_sampler(grasp_wrist,
    approach, n_dof) -> HandPose`` draws h0 when the request gives none."""
    cfg = config or Stage1Config()
    policy = policy or ScriptedPolicy()
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
        _check_grasp(request.grasp, articulation)
    poses = place_objects(assets, request.objects, rng, cfg.placement_radius)
    scene = HandObjectScene(hand, articulation, [PlacedObject(a, p) for a, p in zip(assets, poses)],
                            cfg.scene, betas=cfg.betas)
    _settle(scene, cfg)
    target_pose = scene.object_pose(request.target)

    if request.grasp is None:
        synth_cfg = replace(cfg.synthesis, seed=request.seed)
        candidates = GraspSynthesizer(scene, request.target, synth_cfg).synthesize(max(cfg.check.candidates, 1))
        grasp = choose_grasp(scene, candidates, request.target, cfg.check, cfg.plan)
    else:
        grasp = request.grasp
    if request.hand_start is not None:
        start = request.hand_start
    elif start_sampler is not None:
        start = start_sampler(grasp.wrist_world(target_pose), grasp.approach_world(target_pose), articulation.size)
    else:
        start = default_start_pose(grasp, target_pose, rng)
    start = HandPose(start.wrist, articulation.check_angles(start.angles, "h0 joint angles"))
    _check_reachable(scene, request.target, start, grasp, target_pose, cfg)

    num_steps = (cfg.num_frames - 1) * cfg.scene.control_per_frame + 1
    plan = GraspPlan.build(start, grasp, target_pose, num_steps, articulation.lower, articulation.upper, cfg.plan)
    plan.anchor(scene)
    scene.set_hand_state(start)
    scene.forward()
    policy.reset(scene, plan, request.target)
    return Stage1Run(_run(scene, policy, plan, request, cfg, hand), scene)


def _check_grasp(grasp: GraspTarget, articulation: HandArticulation) -> None:
    wrist = np.asarray(grasp.wrist_in_object, dtype=np.float64)
    if wrist.shape != (4, 4) or not np.all(np.isfinite(wrist)):
        raise PoseError("grasp target hT: wrist_in_object must be a finite 4x4 transform")
    HandPose(wrist, np.asarray(grasp.angles, dtype=np.float64))  # proper rotation, finite angles
    approach = np.asarray(grasp.approach, dtype=np.float64)
    if approach.shape != (3,) or not np.all(np.isfinite(approach)) or np.linalg.norm(approach) < 1e-6:
        raise PoseError(f"grasp target hT: approach must be a finite non-zero 3-vector, got {approach.tolist()}")
    grasp.approach = approach / np.linalg.norm(approach)
    grasp.angles = articulation.check_angles(grasp.angles, "hT joint angles")


def _settle(scene: HandObjectScene, cfg: Stage1Config) -> None:
    """Let the objects come to rest with the hand parked out of the way."""
    parked = make_transform(None, [0.0, 0.0, 2.0])
    scene.set_base_pose(parked)
    scene.set_hand_state(HandPose(parked, np.zeros(scene.articulation.size)))
    scene.step(int(round(cfg.settle_time / cfg.scene.control_dt)))
    if not scene.is_finite():
        raise PoseError("the objects do not rest stably on the table at the given poses (simulation diverged while settling)")
    for k in range(len(scene.objects)):
        scene.data.qvel[scene.object_dof[k]:scene.object_dof[k] + 6] = 0.0


def _check_reachable(scene: HandObjectScene, target: int, start: HandPose, grasp: GraspTarget, object_pose: np.ndarray,
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
        depth, hits = _penetration(scene, pose)
        if depth > tolerance:
            raise PoseError(f"{what} is unreachable: the hand sinks {depth * 1000:.1f} mm into the {hits}")


def _penetration(scene: HandObjectScene, pose: HandPose) -> tuple[float, str]:
    """Deepest penetration of the hand into the table (or, for non-target poses, anything)."""
    saved = scene.data.qpos.copy()
    scene.set_hand_state(pose)
    mujoco.mj_kinematics(scene.model, scene.data)
    mujoco.mj_collision(scene.model, scene.data)
    depth, what = 0.0, ""
    for i in range(scene.data.ncon):
        g1, g2 = scene.data.contact.geom[i]
        if (scene.geom_part[g1] >= 0) == (scene.geom_part[g2] >= 0):
            continue
        other = g2 if scene.geom_part[g1] >= 0 else g1
        d = -float(scene.data.contact.dist[i])
        if d > depth:
            depth = d
            what = "table" if other == scene.table_geom else f"object {scene.objects[scene.geom_object[other]].asset.name!r}"
    scene.data.qpos[:] = saved
    scene.forward()
    return depth, what


def _run(scene: HandObjectScene, policy: GraspPolicy, plan: GraspPlan, request: Stage1Request,
         cfg: Stage1Config, hand: HandModel) -> Trajectory:
    per_frame = cfg.scene.control_per_frame
    n_frames, n_obj, n_dof = cfg.num_frames, len(scene.objects), scene.articulation.size
    wrist = np.zeros((n_frames, 4, 4))
    angles = np.zeros((n_frames, n_dof))
    keypoints = np.zeros((n_frames, 21, 3))
    objects = np.zeros((n_frames, n_obj, 3, 4))
    contacts = np.zeros((n_frames, len(CONTACT_PARTS)), dtype=bool)
    data = scene.data
    failure, recorded = "", 0
    for step in range(plan.num_steps):
        if step % per_frame == 0:
            frame = step // per_frame
            # mj_step leaves body poses one integration step behind qpos: bring them level
            mujoco.mj_kinematics(scene.model, data)
            wrist[frame] = scene.wrist_pose()
            angles[frame] = scene.finger_angles()
            keypoints[frame] = scene.keypoints()
            objects[frame] = scene.object_poses()
            contacts[frame] = scene.contacts(request.target)
            recorded = frame + 1
            if step == plan.num_steps - 1:
                break
        wrist_q, finger_q = policy.act(step)
        scene.set_targets(wrist_q, finger_q)
        scene.step()
        if any(data.warning[w].number for w in _BAD_STATE_WARNINGS) or not scene.is_finite():
            failure = f"simulation diverged at t={data.time:.3f} s (step {step})"
            break

    start_height = objects[0, request.target, 2, 3]
    trajectory_len = recorded
    if not failure:
        rise = objects[recorded - 1, request.target, 2, 3] - start_height
        held = contacts[recorded - 1]
        in_hand = held[:5].sum() >= 2 and (held[0] or held[5])
        if rise <= cfg.success_height:
            failure = f"object rose {rise:.3f} m, less than {cfg.success_height:.2f} m"
        elif not in_hand:
            failure = "object is not held at the end (thumb or palm and another finger must touch it)"
    sl = slice(0, trajectory_len)
    pose_m = to_pose_m_batch(wrist[sl], angles[sl], scene)
    return Trajectory(
        fps=cfg.scene.fps,
        pose_m=pose_m,
        betas=np.zeros(10) if cfg.betas is None else np.asarray(cfg.betas, float),
        wrist_pose=wrist[sl],
        joint_angles=angles[sl],
        joint_names=list(scene.articulation.names),
        joint_3d=keypoints[sl],
        pose_y=objects[sl],
        object_names=[p.asset.name for p in scene.objects],
        object_ids=[int(p.asset.seg_id) for p in scene.objects],
        contacts=contacts[sl],
        success=not failure,
        failure_reason=failure,
        target_object=request.target,
        hand_model=hand.name,
        policy=f"{policy.name}-{policy.version}",
        seed=request.seed,
    )


def to_pose_m_batch(wrist: np.ndarray, angles: np.ndarray, scene: HandObjectScene) -> np.ndarray:
    """(T, 51) pose_m of recorded wrist poses and joint angles."""
    global_rot = Rotation.from_matrix(wrist[:, :3, :3]).as_rotvec()
    hand_pose = scene.articulation.angles_to_hand_pose(angles)
    transl = wrist[:, :3, 3] - scene.rest_wrist
    return np.concatenate([global_rot, hand_pose, transl], axis=1)


__all__ = ["ObjectSpec", "Stage1Config", "Stage1Request", "Stage1Run", "simulate", "run_stage1", "HandCache"]
