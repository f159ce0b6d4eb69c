"""A gymnasium environment that imitates a reference (:class:`~pam_engine.rl.imitation.ImitationReference`,
e.g. one DeVI extracts from a video) with the hybrid reward of :mod:`pam_engine.rl.imitation`.

The scene is Stage I's (:func:`pam_engine.pose.setup.build_scene`): the hand and the reference's
object at its start pose, on the simulator seam (:class:`pam_engine.sim.base.HandObjectEnv`). The
hand starts at the reference's first frame; each step is one video frame (``control_per_frame``
control steps). Actions are the grasp task's residuals (:func:`pam_engine.rl.spec.residual_targets`:
wrist translation, rotation and finger synergies, in [-1, 1]) on top of the reference's own hand
pose, interpolated between frames and blended from the previous action as the grasp task does,
so the policy corrects what following the reference hand alone gets wrong (the object's motion,
the contacts).

Observation (float32, in the order below): the reference's next-frame keypoints minus the hand's
(63, m, world), the mean image offset of the object's points from their reference track (2, in
units of the image height), the hand's contact and the reference's next label (2), progress (1),
the previous action (13).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from pam_engine.errors import ConfigError
from pam_engine.hand.pose import HandPose
from pam_engine.pose.request import Stage1Config
from pam_engine.rl import spec
from pam_engine.rl.imitation import ImitationReference, ImitationRewardConfig, imitation_reward, project

#: Observation size (see the module docstring).
OBSERVATION_SIZE = 63 + 2 + 2 + 1 + spec.action_size()


@dataclass(frozen=True)
class ImitationEnvConfig:
    reward: ImitationRewardConfig = field(default_factory=ImitationRewardConfig)
    action: spec.ActionConfig = field(default_factory=spec.ActionConfig)
    stage1: Stage1Config = field(default_factory=Stage1Config)


class ImitationEnv(gym.Env):
    """One reference, imitated from its first frame to its last. ``info`` of each step holds the
    tracking ``errors`` (hand m, object px, contact 0/1) and the reward's ``terms``."""

    metadata = {"render_modes": []}

    def __init__(self, reference: ImitationReference, config: ImitationEnvConfig | None = None):
        from pam_engine.pose.request import ObjectSpec
        from pam_engine.pose.setup import build_scene, load_objects

        self.reference, self.config = reference, config or ImitationEnvConfig()
        fps = self.config.stage1.scene.fps
        if abs(reference.fps - fps) > 1e-6:
            raise ConfigError(f"imitation reference is {reference.fps:g} fps, the scene steps {fps:g} frames per second "
                              f"(stage1.scene.fps); make them equal")
        assets = load_objects([ObjectSpec(reference.object_name)])
        self._scene = build_scene(assets, [reference.object_start], self.config.stage1)
        art = self._scene.articulation
        if reference.angles.shape[1] != art.size:
            raise ValueError(f"imitation reference has {reference.angles.shape[1]} finger angles per frame, "
                             f"the simulated hand {art.size}")
        self.synergies = spec.synergy_matrix(art.names)
        self.lower, self.upper = art.lower, art.upper
        self.substeps = self._scene.config.control_per_frame
        # the wrist joints are anchored at the grasp: the first frame labelled in contact (else the last)
        onset = np.flatnonzero(reference.contact)
        self.anchor = reference.wrist[int(onset[0]) if onset.size else -1]
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (OBSERVATION_SIZE,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (spec.action_size(),), np.float32)
        self.scene = None

    # -- gymnasium ---------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        ref = self.reference
        scene = self._scene.fresh()
        scene.set_base_pose(self.anchor)
        self.wrist_q = scene.wrist_to_joints(ref.wrist)
        scene.set_object_pose(0, ref.object_start)
        scene.set_hand_state(HandPose(ref.wrist[0], ref.angles[0]))
        scene.forward()
        self.scene, self.t = scene, 0
        self.action = np.zeros(spec.action_size())
        self.previous = self.action
        return self._observe(), {}

    def step(self, action):
        ref, scene, n = self.reference, self.scene, self.substeps
        self.previous = self.action
        self.action = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -1.0, 1.0)
        t = self.t
        diverged = False
        for k in range(n):
            w = (k + 1) / n
            wrist_q = (1 - w) * self.wrist_q[t] + w * self.wrist_q[t + 1]
            fingers = (1 - w) * ref.angles[t] + w * ref.angles[t + 1]
            residual = spec.blend(self.previous, self.action, k, n)
            scene.set_targets(*spec.residual_targets(residual, wrist_q, fingers, self.synergies,
                                                     self.config.action, self.lower, self.upper))
            scene.step()
            if scene.diverged():
                diverged = True
                break
        self.t = t + 1
        terminated = diverged or self.t >= ref.num_frames - 1
        if diverged:
            nan = float("nan")
            return (np.zeros(OBSERVATION_SIZE, np.float32), 0.0, True, False,
                    {"diverged": True, "errors": {"hand": nan, "object": nan, "contact": nan}, "terms": {}})
        scene.sync()
        reward, terms, err = imitation_reward(scene.keypoints(), scene.object_pose(0), bool(scene.contacts(0).any()),
                                              ref, self.t, self.config.reward)
        return self._observe(), reward, terminated, False, {"diverged": False, "errors": err, "terms": terms}

    # -- observation -------------------------------------------------------------------------

    def _observe(self) -> np.ndarray:
        ref, scene = self.reference, self.scene
        scene.sync()
        nxt = min(self.t + 1, ref.num_frames - 1)
        pose = scene.object_pose(0)
        uv = project(ref.points @ pose[:3, :3].T + pose[:3, 3], ref.world_to_cam, ref.K)
        return np.concatenate([
            (ref.joints[nxt] - scene.keypoints()).ravel(),
            (ref.object_uv[self.t] - uv).mean(axis=0) / ref.height,
            [float(scene.contacts(0).any()), float(ref.contact[nxt])],
            [self.t / (ref.num_frames - 1)],
            self.action,
        ]).astype(np.float32)
