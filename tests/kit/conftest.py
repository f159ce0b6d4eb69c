"""A tiny MuJoCo episode (Stage I + capture) shared by the Kit-logic tests."""

from dataclasses import dataclass

import numpy as np
import pytest


@dataclass
class MujocoRun:
    trajectory: object
    camera: object
    capture: object
    episode: object


@pytest.fixture(scope="session")
def mujoco_run():
    from pam_engine.capture.camera import Camera, look_at
    from pam_engine.capture.renderer import MujocoCapture, SegLookup
    from pam_engine.capture.replay import capture_sequence
    from pam_engine.dataset.episode import make_episode
    from pam_engine.pose.request import ObjectSpec, Stage1Config, Stage1Request
    from pam_engine.pose.stage import run_stage1

    run = run_stage1(Stage1Request([ObjectSpec("061_foam_brick"), ObjectSpec("010_potted_meat_can")], seed=0),
                     Stage1Config(num_frames=9))
    traj, scene = run.trajectory, run.scene
    target = traj.pose_y[0, 0, :, 3] + np.array([0.0, 0.0, 0.06])
    # off-centre principal point and unequal focal lengths: exercises every term of K
    camera = Camera(np.array([[205.0, 0.0, 77.3], [0.0, 198.5, 66.1], [0.0, 0.0, 1.0]]),
                    look_at(target + np.array([0.35, -0.3, 0.3]), target), 160, 128)
    geoms, skins = scene.segmentation_ids()
    with MujocoCapture(scene.model, camera, SegLookup(geoms=geoms, skins=skins)) as cap:
        seq = capture_sequence(cap, scene.data, lambda data, t: scene.pose_frame(traj, t), traj.num_frames)
    episode = make_episode(traj, camera, seq, prompt="a hand grasps a foam brick",
                           policy_version=traj.policy.rsplit("-", 1)[-1])
    return MujocoRun(traj, camera, seq, episode)
