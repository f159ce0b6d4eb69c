"""Grasp families picked from geometry, the plan's closing squeeze, and objects no family can hold."""

import numpy as np
import pytest
import trimesh

from pam_engine.pose.grasp import families as fam
from pam_engine.pose.grasp.plan import PlanConfig, closing_targets
from pam_engine.pose.grasp.target import GraspTarget


def _box(size, yaw=0.0):
    mesh = trimesh.creation.box(extents=size)
    mesh.apply_translation([0, 0, size[2] / 2])
    mesh.apply_transform(trimesh.transformations.rotation_matrix(yaw, [0, 0, 1]))
    return np.asarray(mesh.vertices), np.asarray(mesh.center_mass)


def test_measure_finds_the_long_axis_height_and_widths():
    v, com = _box([0.20, 0.02, 0.015], yaw=0.6)
    geo = fam.measure(v, com)
    assert geo.length == pytest.approx(0.20, abs=1e-6) and geo.width == pytest.approx(0.02, abs=1e-6)
    assert geo.height == pytest.approx(0.015) and geo.flat
    assert abs(geo.long_axis @ [np.cos(0.6), np.sin(0.6), 0.0]) == pytest.approx(1.0, abs=1e-6)
    assert np.allclose(geo.section_widths, 0.02, atol=1e-6)
    assert set(geo.graspable(0.04)) == set(range(len(geo.sections)))  # every section fits a 4 cm pinch
    assert len(geo.graspable(0.01)) == 0


def test_families_follow_the_geometry():
    span = 0.19
    flat_bar = fam.measure(*_box([0.20, 0.02, 0.015]))
    assert fam.choose_families(flat_bar, span)[:3] == ("pinch", "lateral", "along_table")
    assert "handle" in fam.choose_families(flat_bar, span)
    tall_box = fam.measure(*_box([0.06, 0.09, 0.18]))
    assert fam.choose_families(tall_box, span) == ("power",)
    sheet = fam.measure(*_box([0.40, 0.40, 0.003]))  # flat and wider than the hand: fingertips only
    assert "power" not in fam.choose_families(sheet, span) and "pinch" in fam.choose_families(sheet, span)


def test_pinch_candidates_put_the_fingers_across_the_narrow_side():
    geo = fam.measure(*_box([0.20, 0.02, 0.015], yaw=0.3))
    cands = list(fam.family_candidates("pinch", geo, 0.04, np.random.default_rng(0)))
    assert cands
    for d, u, aim, shape, standoff, family in cands:
        assert family == "pinch" and shape == "tripod"
        assert abs(d @ u) < 1e-9 and d[2] < -0.9  # from above, fingers perpendicular to the travel
        assert abs(u @ geo.long_axis) < 1e-9  # across the object, not along it
        assert aim[2] >= 0.009  # the thumb tip stays clear of the table


def _grasp(family, squeeze):
    n = 4
    angles = np.array([0.5, 0.2, 0.0, 0.3])
    return GraspTarget(np.eye(4), angles, np.array([0, 0, -1.0]), np.zeros(n), family=family, squeeze=squeeze)


def test_closing_presses_every_touching_joint_and_leaves_a_pinch_alone():
    lower, upper = np.full(4, -0.1), np.full(4, 1.6)
    cfg = PlanConfig()
    squeeze = np.array([1.0, 1.0, 0.0, 0.0])  # the first finger touched; joint 2 never moved
    power = closing_targets(_grasp("power", squeeze), np.zeros(4), lower, upper, cfg)
    np.testing.assert_allclose(power[:2], [0.5 + cfg.squeeze, 0.2 + cfg.squeeze])
    # the fingers that met nothing curl part of the way
    np.testing.assert_allclose(power[2:], lower[2:] + cfg.free_finger_close * (upper[2:] - lower[2:]))
    pinch = closing_targets(_grasp("pinch", squeeze), np.zeros(4), lower, upper, cfg)
    np.testing.assert_allclose(pinch, [0.5 + cfg.pinch_squeeze, 0.2 + cfg.pinch_squeeze, 0.0, 0.3])


def test_a_touching_finger_that_never_moved_still_grips():
    """The old rule pressed only joints that moved after the pre-shape: a finger stopped by the
    object at once got no grip."""
    lower, upper = np.full(4, -0.1), np.full(4, 1.6)
    grasp = _grasp("power", np.array([0.0, 0.0, 1.0, 1.0]))
    grasp.preshape = grasp.angles.copy()  # nothing moved: every finger met the object at once
    closed = closing_targets(grasp, grasp.preshape, lower, upper, PlanConfig())
    np.testing.assert_allclose(closed[2:], grasp.angles[2:] + PlanConfig().squeeze)
    # the rule for a user's hT without a closing direction: unmoved joints count as idle
    old = closing_targets(_grasp("power", None), grasp.angles.copy(), lower, upper, PlanConfig())
    assert not np.allclose(old[2:], grasp.angles[2:] + PlanConfig().squeeze)


def test_an_object_no_family_can_hold_ends_the_episode_failed(tmp_path, monkeypatch):
    from pam_engine.pose import ObjectSpec, Stage1Request, simulate

    monkeypatch.setenv("PAM_CACHE_DIR", str(tmp_path / "cache"))
    sheet = trimesh.creation.box(extents=[0.30, 0.30, 0.002])
    sheet.apply_translation([0, 0, 0.001])
    path = tmp_path / "sheet.stl"
    sheet.export(path)
    t = simulate(Stage1Request([ObjectSpec(str(path))], seed=0))
    assert not t.success and t.num_frames == 49
    assert "'sheet'" in t.failure_reason and "no feasible grasp" in t.failure_reason
    assert "pinch" in t.failure_reason  # what was tried
    assert not t.contacts.any()
