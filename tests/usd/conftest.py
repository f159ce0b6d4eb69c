"""Shared fixtures of the USD tests: the two hands, and the MuJoCo model they are compared with."""

import mujoco
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pam_engine.hand.articulation import build_articulation
from pam_engine.hand.pose import HandPose, make_transform
from pam_engine.hand.mano import load_hand_model
from pam_engine.pose.setup import HandCache
from pam_engine.sim.base import PlacedObject
from pam_engine.sim.mujoco.hand_builder import add_hand as add_mujoco_hand
from pam_engine.objects import load_object
from pam_engine.sim.mujoco.scene import HandObjectScene
from pam_engine.trajectory import Trajectory

T = 6  # frames of the recorded trajectory


@pytest.fixture(scope="session")
def builtin_hand():
    return HandCache.get(None)


@pytest.fixture(scope="session")
def mano_hand(tmp_path_factory):
    from hand.mano_fixture import write_mano_pkl

    path = tmp_path_factory.mktemp("mano") / "MANO_RIGHT.pkl"
    write_mano_pkl(path)
    hand = load_hand_model(str(path))
    return hand, build_articulation(hand)


@pytest.fixture(scope="session")
def recorded(builtin_hand):
    """A trajectory recorded from the MuJoCo scene, base fixed at frame 0's wrist (as capture
    replays one), with the MuJoCo joint-body positions of every frame."""
    hand, art = builtin_hand
    rng = np.random.default_rng(7)
    sim = HandObjectScene(hand, art, [PlacedObject(load_object("006_mustard_bottle"), np.eye(4))])
    wrist, angles, objects, bodies, keypoints = [], [], [], [], []
    anchor = make_transform(Rotation.from_rotvec([0.2, -1.0, 0.3]), [0.0, 0.1, 0.2])
    sim.set_base_pose(anchor)
    for t in range(T):
        pose = HandPose(make_transform(Rotation.from_rotvec([0.2, -1.0, 0.3]) * Rotation.from_rotvec(rng.normal(scale=0.3, size=3)),
                                       [0.0, 0.1, 0.2] + rng.normal(scale=0.03, size=3)),
                        rng.uniform(art.lower, art.upper))
        if t == 0:
            pose = HandPose(anchor, pose.angles)
        sim.set_hand_state(pose)
        sim.set_object_pose(0, make_transform(Rotation.from_rotvec(rng.normal(size=3)), rng.normal(scale=0.1, size=3)))
        mujoco.mj_kinematics(sim.model, sim.data)
        wrist.append(sim.wrist_pose())
        angles.append(sim.finger_angles())
        objects.append(sim.object_poses())
        bodies.append(sim.data.xpos[sim.joint_bodies].copy())
        keypoints.append(sim.keypoints())
    traj = Trajectory(
        fps=15.0, pose_m=np.zeros((T, 51)), betas=np.zeros(10), wrist_pose=np.array(wrist), joint_angles=np.array(angles),
        joint_names=list(art.names), joint_3d=np.array(keypoints), pose_y=np.array(objects),
        object_names=["006_mustard_bottle"], object_ids=[5], contacts=np.zeros((T, 6), bool), success=True)
    return traj, np.array(bodies)


def mujoco_hand(hand, articulation):
    """The compiled MuJoCo hand (base at the world origin) and its data at rest."""
    spec = mujoco.MjSpec()
    spec.compiler.degree = False
    add_mujoco_hand(spec, hand, articulation)
    model = spec.compile()
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    return model, data


def parse_physics(stage, descriptors=False):
    """UsdPhysics' own parser over the whole stage: {descriptor type name: count} (and, with
    ``descriptors``, {type name: (paths, descriptors)})."""
    import warnings

    from pxr import UsdPhysics

    with warnings.catch_warnings():  # USD 26 renamed it; both releases in use keep this name
        warnings.simplefilter("ignore", DeprecationWarning)
        result = UsdPhysics.LoadUsdPhysicsFromRange(stage, ["/"])
    counts = {str(k): len(v[0]) for k, v in result.items()}
    return (counts, {str(k): v for k, v in result.items()}) if descriptors else counts
