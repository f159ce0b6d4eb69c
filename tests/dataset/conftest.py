import mujoco
import numpy as np
import pytest

from pam_engine.capture.camera import Camera, look_at
from pam_engine.capture.frames import CaptureSequence
from pam_engine.capture.renderer import MujocoCapture
from pam_engine.capture.replay import capture_sequence
from synthetic_scene import build_demo_scene, demo_labels
from pam_engine.conventions import SEG_HAND
from pam_engine.dataset.episode import make_episode
from pam_engine.dataset.writer import EpisodeWriter
from pam_engine.trajectory import Trajectory


def make_trajectory(joint_3d, pose_y, object_ids=(3,), prompt_seed=0, success=True, failure=""):
    t = joint_3d.shape[0]
    return Trajectory(
        fps=15.0, pose_m=np.zeros((t, 51)), betas=np.zeros(10), wrist_pose=np.tile(np.eye(4), (t, 1, 1)),
        joint_angles=np.zeros((t, 1)), joint_names=["finger_hinge"], joint_3d=joint_3d, pose_y=pose_y,
        object_names=[f"obj{i}" for i in object_ids], object_ids=list(object_ids),
        contacts=np.zeros((t, 6), bool), success=success, failure_reason=failure, seed=prompt_seed,
    )


@pytest.fixture
def synthetic_episode():
    """Build an EpisodeData from synthetic arrays (no rendering): T frames of W x H."""

    def build(t=5, w=64, h=48, prompt="a hand grasps a box", video=False, seed=0):
        rng = np.random.default_rng(seed)
        cam = Camera.from_focal(60.0, w, h, look_at([0.0, -0.3, 0.3], [0, 0, 0]))
        seq = CaptureSequence.allocate(t, h, w)
        seq.rgb[:] = rng.integers(0, 255, seq.rgb.shape, dtype=np.uint8)
        seq.depth[:] = rng.uniform(0.3, 0.6, seq.depth.shape).astype(np.float32)
        seq.seg[:, 10:30, 10:40] = SEG_HAND
        seq.seg[:, 30:40, 20:50] = 3
        seq.hand_mesh[:, 10:30, 10:40] = 200
        joints = rng.normal(scale=0.02, size=(t, 21, 3))
        pose_y = np.tile(np.eye(4)[:3], (t, 1, 1, 1))
        traj = make_trajectory(joints, pose_y, prompt_seed=seed)
        frames = rng.integers(0, 255, (t, h, w, 3), dtype=np.uint8) if video else None
        return make_episode(traj, cam, seq, prompt=prompt, video=frames)

    return build


def render_demo_episode(num_frames=6, width=320, height=240, prompt="demo", video=False):
    """A real capture of the synthetic demo scene through the whole assembly path."""
    scene = build_demo_scene()
    data = mujoco.MjData(scene.model)
    cam = Camera.from_focal(300.0, width, height, look_at([0.25, -0.45, 0.35], [-0.03, 0, 0.05]))
    with MujocoCapture(scene.model, cam, scene.seg_lookup) as cap:
        seq = capture_sequence(cap, data, lambda d, t: scene.set_frame(d, t, num_frames), num_frames)
    joints, pose_y = demo_labels(scene, data, num_frames)
    traj = make_trajectory(joints, pose_y)
    frames = seq.rgb[:, ::-1].copy() if video else None  # stand-in for a diffusion video
    return make_episode(traj, cam, seq, prompt=prompt, video=frames)


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory):
    """A small rendered dataset: one episode with the sim preview only, one with a video."""
    root = tmp_path_factory.mktemp("demo") / "dataset"
    writer = EpisodeWriter(root)
    writer.write(render_demo_episode(prompt='grasp the <b>box</b> & "lift" </script><script>alert(1)</script>'))
    writer.write(render_demo_episode(video=True, prompt="second"))
    return root
