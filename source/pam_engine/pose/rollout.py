"""The rollout: a controller drives the hand along the plan, the scene is recorded at the
capture rate, and the engine's success rule (:mod:`pam_engine.pose.success`) judges the end.

A controller is anything with ``reset(scene, plan, target)`` and ``act(step) -> (wrist_q,
finger_q)`` (:class:`GraspPolicy`); the default, :class:`ScriptedPolicy`, plays the plan back.
Trained controllers live in :mod:`pam_engine.policy`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from scipy.spatial.transform import Rotation

from pam_engine.pose.grasp.plan import GraspPlan
from pam_engine.pose.request import Stage1Config
from pam_engine.pose.success import engine_rule
from pam_engine.sim.base import HandObjectEnv
from pam_engine.trajectory import CONTACT_PARTS, Trajectory


class GraspPolicy(Protocol):
    """What drives the hand: each control step, position-servo targets for the wrist joints and
    the finger joints, given the scene and the grasp plan."""

    name: str
    version: str

    def reset(self, scene: HandObjectEnv, plan: GraspPlan, target: int) -> None:
        """Start an episode in ``scene`` following ``plan`` to grasp object ``target``."""

    def act(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Wrist joint targets (6,) and finger joint targets (n_dof,) for control step ``step``."""


class ScriptedPolicy:
    """Plays the plan back open-loop: the default Stage I controller and the RL baseline."""

    name = "scripted"
    version = "1"

    def reset(self, scene: HandObjectEnv, plan: GraspPlan, target: int) -> None:
        self.plan = plan

    def act(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        return self.plan.wrist_q[step], self.plan.fingers[step]


def rollout(scene: HandObjectEnv, policy: GraspPolicy, plan: GraspPlan, target: int, cfg: Stage1Config,
            hand_name: str, seed: int) -> Trajectory:
    """Run ``policy`` (already reset) over ``plan`` and record the trajectory; a simulation that
    diverges ends it early as failed, with a reason."""
    per_frame = cfg.scene.control_per_frame
    n_frames, n_obj, n_dof = cfg.num_frames, len(scene.objects), scene.articulation.size
    wrist = np.zeros((n_frames, 4, 4))
    angles = np.zeros((n_frames, n_dof))
    keypoints = np.zeros((n_frames, 21, 3))
    objects = np.zeros((n_frames, n_obj, 3, 4))
    contacts = np.zeros((n_frames, len(CONTACT_PARTS)), dtype=bool)
    failure, recorded = "", 0
    for step in range(plan.num_steps):
        if step % per_frame == 0:
            frame = step // per_frame
            scene.sync()  # a step leaves body poses one integration step behind the joints
            wrist[frame] = scene.wrist_pose()
            angles[frame] = scene.finger_angles()
            keypoints[frame] = scene.keypoints()
            objects[frame] = scene.object_poses()
            contacts[frame] = scene.contacts(target)
            recorded = frame + 1
            if step == plan.num_steps - 1:
                break
        wrist_q, finger_q = policy.act(step)
        scene.set_targets(wrist_q, finger_q)
        scene.step()
        if scene.diverged():
            failure = f"simulation diverged at t={scene.sim_time():.3f} s (step {step})"
            break

    if not failure:
        rise = objects[recorded - 1, target, 2, 3] - objects[0, target, 2, 3]
        failure = engine_rule(rise, contacts[recorded - 1], cfg.success_height)
    sl = slice(0, recorded)
    return Trajectory(
        fps=cfg.scene.fps,
        pose_m=to_pose_m_batch(wrist[sl], angles[sl], scene),
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
        target_object=target,
        hand_model=hand_name,
        policy=f"{policy.name}-{policy.version}",
        seed=seed,
    )


def failed_trajectory(scene: HandObjectEnv, target: int, cfg: Stage1Config, hand_name: str, seed: int,
                      policy: str, reason: str) -> Trajectory:
    """A Stage I episode that never started (no grasp of the object was found): the settled
    scene with the open hand waiting above the object for the whole clip, marked failed."""
    from pam_engine.hand.pose import HandPose, make_transform

    above = scene.object_pose(target)[:3, 3] + np.array([0.0, 0.0, 0.3])
    wrist = make_transform(None, above)
    scene.set_base_pose(wrist)
    scene.set_hand_state(HandPose(wrist, np.zeros(scene.articulation.size)))
    scene.forward()
    n = cfg.num_frames
    wrists = np.broadcast_to(scene.wrist_pose(), (n, 4, 4)).copy()
    angles = np.broadcast_to(scene.finger_angles(), (n, scene.articulation.size)).copy()
    return Trajectory(
        fps=cfg.scene.fps, pose_m=to_pose_m_batch(wrists, angles, scene),
        betas=np.zeros(10) if cfg.betas is None else np.asarray(cfg.betas, float), wrist_pose=wrists,
        joint_angles=angles, joint_names=list(scene.articulation.names),
        joint_3d=np.broadcast_to(scene.keypoints(), (n, 21, 3)).copy(),
        pose_y=np.broadcast_to(scene.object_poses(), (n, len(scene.objects), 3, 4)).copy(),
        object_names=[p.asset.name for p in scene.objects], object_ids=[int(p.asset.seg_id) for p in scene.objects],
        contacts=np.zeros((n, len(CONTACT_PARTS)), dtype=bool), success=False, failure_reason=reason,
        target_object=target, hand_model=hand_name, policy=policy, seed=seed)


def to_pose_m_batch(wrist: np.ndarray, angles: np.ndarray, scene: HandObjectEnv) -> np.ndarray:
    """(T, 51) pose_m of recorded wrist poses and joint angles."""
    global_rot = Rotation.from_matrix(wrist[:, :3, :3]).as_rotvec()
    hand_pose = scene.articulation.angles_to_hand_pose(angles)
    transl = wrist[:, :3, 3] - scene.rest_wrist
    return np.concatenate([global_rot, hand_pose, transl], axis=1)
