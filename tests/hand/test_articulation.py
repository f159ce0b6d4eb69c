import warnings

import numpy as np
import pytest

from pam_engine.errors import PoseError
from pam_engine.hand.articulation import JointLimitWarning, build_articulation
from pam_engine.hand.pose import HandPose, from_pose_m, make_transform, to_pose_m
from pam_engine.hand.procedural import build_builtin_hand
from scipy.spatial.transform import Rotation


@pytest.fixture(scope="module")
def hand():
    return build_builtin_hand()


@pytest.fixture(scope="module")
def art(hand):
    return build_articulation(hand)


def test_mano_tree_with_anatomical_dofs(art):
    assert art.size == 21  # 4 fingers x (MCP 2 + PIP + DIP) + thumb (CMC 3 + MCP + IP)
    assert all(lo < 0.01 and hi >= 1.0 for lo, hi, d in zip(art.lower, art.upper, art.dofs) if d.kind == "flex")
    for d in art.dofs:
        assert abs(np.linalg.norm(d.axis) - 1) < 1e-12


def test_angles_round_trip_through_pose_m(hand, art):
    rng = np.random.default_rng(0)
    angles = rng.uniform(art.lower, art.upper, size=(500, art.size))
    hand_pose = art.angles_to_hand_pose(angles)
    np.testing.assert_allclose(art.hand_pose_to_angles(hand_pose), angles, atol=1e-9)
    wrist = make_transform(Rotation.from_rotvec([0.3, 1.0, -0.5]), [0.2, -0.1, 0.4])
    pose_m = to_pose_m(HandPose(wrist, angles[0]), art, hand.j_template[0])
    back = from_pose_m(pose_m, art, hand.j_template[0])
    np.testing.assert_allclose(back.wrist, wrist, atol=1e-12)
    np.testing.assert_allclose(back.angles, angles[0], atol=1e-9)


def test_pose_m_places_the_wrist_where_the_simulator_has_it(hand, art):
    angles = np.clip(np.full(art.size, 0.4), art.lower, art.upper)
    wrist = make_transform(Rotation.from_rotvec([0.0, 0.5, 0.2]), [0.3, 0.1, 0.25])
    pose_m = to_pose_m(HandPose(wrist, angles), art, hand.j_template[0])
    out = hand.forward(pose_m[:48], transl=pose_m[48:])
    np.testing.assert_allclose(out.joints[0], wrist[:3, 3], atol=1e-12)
    np.testing.assert_allclose(out.transforms[0, :3, :3], wrist[:3, :3], atol=1e-12)


def test_flexion_curls_every_finger_towards_the_palm(hand, art):
    rest = hand.forward(np.zeros(48)).keypoints
    angles = np.where([d.kind == "flex" for d in art.dofs], art.upper * 0.5, 0.0)
    bent = hand.forward(np.concatenate([np.zeros(3), art.angles_to_hand_pose(angles)])).keypoints
    palm_normal = np.array([0.0, -1.0, 0.0])
    for tip in (8, 12, 16, 20):
        assert (bent[tip] - rest[tip]) @ palm_normal > 0.03


def test_out_of_range_angles_are_clamped_with_a_warning_naming_the_joint(art):
    angles = np.zeros(art.size)
    angles[art.names.index("index2_flex")] = 3.0
    with pytest.warns(JointLimitWarning, match="index2_flex=3.000"):
        clamped = art.check_angles(angles)
    assert clamped[art.names.index("index2_flex")] == art.upper[art.names.index("index2_flex")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        art.check_angles(np.clip(angles, art.lower, art.upper))


def test_nan_or_inf_poses_are_rejected(hand, art):
    bad = np.zeros(51)
    bad[10] = np.nan
    with pytest.raises(PoseError, match="NaN"):
        from_pose_m(bad, art, hand.j_template[0])
    with pytest.raises(PoseError, match="NaN or inf"):
        art.check_angles(np.full(art.size, np.inf))
    with pytest.raises(PoseError, match="expected 21"):
        art.check_angles(np.zeros(5))
    with pytest.raises(PoseError, match="NaN or inf"):
        HandPose(np.full((4, 4), np.nan), np.zeros(art.size))
