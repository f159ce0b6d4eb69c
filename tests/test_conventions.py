import numpy as np

from pam_engine import conventions as C


def test_keypoint_order_maps_mano_joints_and_tips():
    assert len(C.KEYPOINT_NAMES) == 21 and len(C.KEYPOINT_FROM_MANO) == 21
    # every MANO joint and every tip appears exactly once
    assert sorted(C.KEYPOINT_FROM_MANO) == list(range(21))
    # thumb chain: MANO thumb1..3 then the thumb tip (tip slot 16)
    assert C.KEYPOINT_FROM_MANO[1:5] == (13, 14, 15, 16)
    assert C.KEYPOINT_NAMES[C.FINGERTIP_KEYPOINTS[0]] == "thumb_tip"
    assert C.KEYPOINT_NAMES[C.FINGERTIP_KEYPOINTS[4]] == "little_tip"


def test_mano_parents_form_five_three_joint_chains():
    for joints in C.MANO_FINGERS.values():
        assert C.MANO_PARENTS[joints[0]] == 0
        assert C.MANO_PARENTS[joints[1]] == joints[0]
        assert C.MANO_PARENTS[joints[2]] == joints[1]


def test_palette_entries_match_pam():
    assert C.ADE20K_PALETTE.shape == (150, 3)
    np.testing.assert_array_equal(C.ADE20K_PALETTE[1], [180, 120, 120])
    np.testing.assert_array_equal(C.ADE20K_PALETTE[2], [6, 230, 230])
    assert C.YCB_CLASSES[1] == "002_master_chef_can" and C.YCB_CLASSES[21] == "061_foam_brick"
