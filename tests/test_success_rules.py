"""The two success rules, named apart: the engine's (a usable clip) and GraspXL's (the RL task)."""

import numpy as np

from pam_engine.pose.success import engine_rule, graspxl_rule, held

THUMB_INDEX = np.array([1, 1, 0, 0, 0, 0], bool)
PALM_TWO = np.array([0, 1, 1, 0, 0, 1], bool)
INDEX_MIDDLE = np.array([0, 1, 1, 0, 0, 0], bool)


def test_held_needs_two_fingers_one_of_them_the_thumb_or_the_palm():
    assert held(THUMB_INDEX) and held(PALM_TWO)
    assert not held(INDEX_MIDDLE)  # no opposition
    assert not held(np.array([1, 0, 0, 0, 0, 1], bool))  # thumb and palm are one finger


def test_engine_rule_says_why_a_grasp_failed():
    assert engine_rule(0.15, THUMB_INDEX, 0.10) == ""
    assert "rose 0.050 m, less than 0.10 m" in engine_rule(0.05, THUMB_INDEX, 0.10)
    assert "not held at the end" in engine_rule(0.15, INDEX_MIDDLE, 0.10)


def test_graspxl_rule_is_rise_and_hand_distance_only():
    assert graspxl_rule(0.11, 0.05)
    assert not graspxl_rule(0.09, 0.05) and not graspxl_rule(0.2, 0.12)
