import mujoco
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pam_engine.hand.pose import HandPose, make_transform, to_pose_m
from pam_engine.objects import load_object
from pam_engine.sim.mujoco.scene import HandObjectScene, PlacedObject
from pam_engine.pose import HandCache


@pytest.fixture(scope="module")
def hand():
    return HandCache.get(None)


def random_pose(art, rng):
    angles = rng.uniform(art.lower, art.upper)
    wrist = make_transform(Rotation.from_rotvec(rng.normal(size=3)), rng.uniform(-0.2, 0.2, 3) + [0, 0, 0.4])
    return HandPose(wrist, angles)


def test_simulated_keypoints_and_skin_are_the_hand_model_at_pose_m(hand):
    """Labels and pixels agree: the MuJoCo hand (bodies + drawn skin) is exactly the MANO-style
    model evaluated at the pose_m the trajectory records."""
    model, art = hand
    scene = HandObjectScene(model, art, [])
    rng = np.random.default_rng(3)
    for _ in range(3):
        pose = random_pose(art, rng)
        scene.set_base_pose(make_transform(Rotation.from_rotvec(rng.normal(size=3)), [0.1, 0.0, 0.3]))
        scene.set_hand_state(pose)
        scene.forward()
        pose_m = to_pose_m(scene.hand_pose(), art, scene.rest_wrist)
        expected = model.forward(pose_m[:48], transl=pose_m[48:])
        np.testing.assert_allclose(scene.wrist_pose(), pose.wrist, atol=1e-9)
        np.testing.assert_allclose(scene.keypoints(), expected.keypoints, atol=1e-9)
        # the skin MuJoCo draws (its vertices as the visualiser computes them)
        vscene = mujoco.MjvScene(scene.model, maxgeom=100)
        mujoco.mjv_updateScene(scene.model, scene.data, mujoco.MjvOption(), None, mujoco.MjvCamera(),
                               mujoco.mjtCatBit.mjCAT_ALL, vscene)
        skin = np.asarray(vscene.skinvert).reshape(-1, 3)[: model.num_vertices]
        np.testing.assert_allclose(skin, expected.vertices, atol=2e-5)


def test_floating_hand_tracks_its_targets(hand):
    model, art = hand
    scene = HandObjectScene(model, art, [])
    start = HandPose(make_transform(None, [0.0, 0.0, 0.4]), np.zeros(art.size))
    scene.set_base_pose(start.wrist)
    scene.set_hand_state(start)
    goal_wrist = np.array([0.05, -0.03, 0.08, 0.2, -0.1, 0.3])
    goal_fingers = np.clip(np.full(art.size, 0.6), art.lower, art.upper)
    scene.set_targets(goal_wrist, goal_fingers)
    scene.step(int(1.0 / scene.config.control_dt))
    assert scene.is_finite()
    np.testing.assert_allclose(scene.data.qpos[scene.wrist_qpos], goal_wrist, atol=3e-3)
    np.testing.assert_allclose(scene.finger_angles(), goal_fingers, atol=0.05)


def test_objects_rest_on_the_table_without_sinking(hand):
    model, art = hand
    brick = load_object("061_foam_brick")
    can = load_object("005_tomato_soup_can")
    poses = [make_transform(None, [0.0, 0.0, 0.01 - brick.mesh.vertices[:, 2].min()]),
             make_transform(Rotation.from_euler("x", 1.5707963), [0.15, 0.0, 0.06])]
    scene = HandObjectScene(model, art, [PlacedObject(brick, poses[0]), PlacedObject(can, poses[1])])
    scene.set_base_pose(make_transform(None, [0, 0, 1.0]))
    scene.set_hand_state(HandPose(make_transform(None, [0, 0, 1.0]), np.zeros(art.size)))
    scene.step(int(2.0 / scene.config.control_dt))
    assert scene.is_finite()
    depth = -min([scene.data.contact.dist[i] for i in range(scene.data.ncon)] + [0.0])
    assert depth < 0.002  # no explosive or deep penetration
    assert np.abs(scene.data.qvel).max() < 0.05  # at rest
    brick_bottom = (np.asarray(brick.mesh.vertices) @ scene.object_pose(0)[:3, :3].T + scene.object_pose(0)[:3, 3])[:, 2].min()
    assert abs(brick_bottom) < 0.003  # resting on the table top (z = 0)
