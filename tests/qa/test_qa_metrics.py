"""QA figures and verdicts on synthetic detections (no detector needed): the error and PCK on
visible joints, the lag search that catches a shifted video, the mirror check, the choice among
several detected hands, and the hand-region flicker."""

import numpy as np
import pytest

from pam_engine.conventions import SEG_HAND
from pam_engine.errors import ConfigError
from pam_engine.qa.check import judge
from pam_engine.qa.config import QaConfig
from pam_engine.qa.metrics import flicker, keypoint_figures

W, H, T = 320, 240, 40


def moving_hand(seed=0):
    """Labels of a right hand sweeping left to right across the image (21 joints, all visible)."""
    rng = np.random.default_rng(seed)
    offsets = rng.uniform(-25, 25, (21, 2))
    centre = np.stack([np.linspace(60, 250, T), np.linspace(90, 150, T)], axis=1)
    joint_2d = centre[:, None, :] + offsets[None]
    visible = np.ones((T, 21), bool)
    visible[:, 3] = False  # one joint hidden by the object
    return joint_2d, visible


def detections(points, right=True, noise=1.5, seed=1, missing=()):
    """One detected hand per frame at ``points`` plus pixel noise; frames in ``missing`` empty."""
    rng = np.random.default_rng(seed)
    kp = (points + rng.normal(scale=noise, size=points.shape))[:, None].copy()
    present = np.ones((len(points), 1), bool)
    for f in missing:
        kp[f] = np.nan
        present[f] = False
    return kp, present, np.full((len(points), 1), right)


def figures(kp, present, is_right, joint_2d, visible):
    return keypoint_figures(kp, present, is_right, joint_2d, visible, W, H, max_lag=6, min_joints_in_view=15)


def test_aligned_video_passes_with_its_error_and_pck_measured_on_visible_joints():
    joint_2d, visible = moving_hand()
    kp, present, right = detections(joint_2d, missing=(5, 6))
    kp[:, 0, 3] += 500  # a wild guess on the hidden joint must not count
    fig = figures(kp, present, right, joint_2d, visible)
    dist = np.linalg.norm(kp[:, 0] - joint_2d, axis=-1)[np.isfinite(kp[:, 0, 0, 0])][:, np.arange(21) != 3]
    assert fig["keypoint_error_px"] == pytest.approx(dist.mean())
    assert fig["joints_compared"] == dist.size
    assert fig["pck"]["5"] == pytest.approx((dist <= 5).mean()) and fig["pck"]["20"] == 1.0
    assert fig["detection_rate"] == pytest.approx((T - 2) / T)
    assert fig["per_frame_error_px"][5] is None and fig["temporal"]["best_lag"] == 0
    assert fig["worst_frames"][0]["error_px"] == max(e for e in fig["per_frame_error_px"] if e is not None)
    checks, reasons = judge(fig, QaConfig(max_keypoint_error=5.0))
    assert reasons == [] and all(checks.values())
    _, reasons = judge(fig, QaConfig(max_keypoint_error=1.0))
    assert any("keypoint error" in r for r in reasons)


@pytest.mark.parametrize("shift", [-3, -1, 2, 4])
def test_a_shifted_video_is_caught_by_the_lag_search(shift):
    joint_2d, visible = moving_hand()
    shown = joint_2d[np.clip(np.arange(T) + shift, 0, T - 1)]  # frame f of the video shows frame f+shift
    fig = figures(*detections(shown), joint_2d, visible)
    assert fig["temporal"]["best_lag"] == shift
    checks, reasons = judge(fig, QaConfig())
    assert checks["temporal_alignment"] is False
    assert any(f"{abs(shift)} frame(s)" in r for r in reasons)
    # the shift alone fails the episode, even with no error threshold
    assert reasons


def test_a_static_hand_is_not_called_shifted():
    joint_2d, visible = moving_hand()
    still = np.repeat(joint_2d[:1], T, axis=0)
    checks, _ = judge(figures(*detections(still), still, visible), QaConfig())
    assert checks["temporal_alignment"] is True


def test_a_mirrored_video_is_caught():
    joint_2d, visible = moving_hand()
    mirrored = joint_2d.copy()
    mirrored[..., 0] = W - joint_2d[..., 0]
    fig = figures(*detections(mirrored, right=False), joint_2d, visible)
    checks, reasons = judge(fig, QaConfig())
    assert checks["not_mirrored"] is False
    assert any("mirrored" in r for r in reasons) and any("left hand" in r for r in reasons)
    # the handedness alone is enough (a hand near the image centre mirrors onto itself)
    checks, reasons = judge(figures(*detections(joint_2d, right=False), joint_2d, visible), QaConfig())
    assert checks["not_mirrored"] is False and any("left hand" in r for r in reasons)


def test_the_detection_closest_to_the_labels_is_compared_and_missed_frames_fail():
    joint_2d, visible = moving_hand()
    kp, present, right = detections(joint_2d)
    far = kp + 120.0
    kp2 = np.concatenate([far, kp], axis=1)  # a false hand first, the real one second
    fig = figures(kp2, np.ones((T, 2), bool), np.ones((T, 2), bool), joint_2d, visible)
    assert fig["keypoint_error_px"] < 5
    none = figures(np.full((T, 1, 21, 2), np.nan), np.zeros((T, 1), bool), np.zeros((T, 1), bool), joint_2d, visible)
    assert none["detection_rate"] == 0 and none["keypoint_error_px"] is None
    checks, reasons = judge(none, QaConfig(max_keypoint_error=10))
    assert checks["detection_rate"] is False and checks["keypoint_error"] is False
    # labels with the hand out of view: nothing to judge by, so not passed
    gone = np.full_like(joint_2d, -1)
    checks, reasons = judge(figures(kp, present, right, gone, visible), QaConfig())
    assert checks == {"hand_in_view": False} and reasons


def test_flicker_is_higher_when_the_hand_region_shimmers():
    rng = np.random.default_rng(0)
    seg = np.zeros((8, 48, 64), np.uint8)
    seg[:, 10:30, 10:30] = SEG_HAND
    frames = np.full((8, 48, 64, 3), 120, np.uint8)
    steady = flicker(frames, seg)
    assert steady["hand"] == 0 and steady["background"] == 0 and steady["ratio"] is None
    noisy = frames.copy()
    noisy[:, 10:30, 10:30] = rng.integers(0, 255, (8, 20, 20, 3), dtype=np.uint8)
    noisy[:, 35:, :] = rng.integers(118, 123, (8, 13, 64, 3), dtype=np.uint8)
    shimmer = flicker(noisy, seg)
    assert shimmer["hand"] > 20 * shimmer["background"] > 0
    assert shimmer["ratio"] == pytest.approx(shimmer["hand"] / shimmer["background"])


@pytest.mark.parametrize("key, value", [("max_keypoint_error", 0.0), ("min_detection_rate", 1.5),
                                        ("video", "photo"), ("max_lag", -1), ("min_joints_in_view", 30)])
def test_bad_qa_config_names_the_key(key, value):
    with pytest.raises(ConfigError, match=f"qa.{key}"):
        QaConfig(**{key: value}).check()
