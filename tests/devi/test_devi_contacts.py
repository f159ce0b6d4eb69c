"""Algorithm 1 on synthetic 2D tracks whose answer is known: a hand approaches a still object
(no contact), rests on it, lifts it (contact), holds it (carried), lets go and leaves (no
contact). Each rule of the algorithm decides some of these frames, and each test breaks if
its rule does."""

import numpy as np
import pytest

from pam_engine.devi.contacts import CARRY, CONTACT, NO_CONTACT, ContactRuleConfig, contact_labels
from pam_engine.errors import ConfigError

RNG = np.random.default_rng(0)
OBJECT_SHAPE = RNG.uniform(-20, 20, size=(32, 2))  # object points around its centre (px)
HAND_SHAPE = RNG.uniform(-15, 15, size=(21, 2))

# per-interval velocities (t -> t+1), px/frame at 480 px and 15 fps: (hand, object)
APPROACH = [((-8.0, 0.0), (0.0, 0.0))] * 10  # frames 0-9: the hand moves alone
REST = [((0.0, 0.0), (0.0, 0.0))] * 5  # 10-14: at the object, nothing moves (fingers close)
LIFT = [((0.0, -5.0), (0.0, -5.0))] * 10  # 15-24: the object moves with the hand
HOLD = [((0.0, 0.0), (0.0, 0.0))] * 5  # 25-29: held still in the air
RELEASE = [((8.0, 0.0), (0.0, 0.0))] * 9  # 30-38: the hand leaves, the object stays
PHASES = {"approach": (0, 10), "rest": (10, 15), "lift": (15, 25), "hold": (25, 30), "release": (30, 39)}


def tracks(segments, scale=1.0, hand_start=(190.0, 100.0), object_start=(100.0, 100.0)):
    """Object (T, V, 2) and hand (T, 21, 2) tracks following per-interval velocities; the hand
    ends its approach 10 px from the object's edge. ``scale`` scales the whole image."""
    hand_c, obj_c = [np.array(hand_start)], [np.array(object_start)]
    for (vh, vo) in segments:
        hand_c.append(hand_c[-1] + vh)
        obj_c.append(obj_c[-1] + vo)
    hand = np.stack(hand_c)[:, None, :] + HAND_SHAPE
    obj = np.stack(obj_c)[:, None, :] + OBJECT_SHAPE
    return obj * scale, hand * scale


def grasp(**kw):
    return tracks(APPROACH + REST + LIFT + HOLD + RELEASE, **kw)


def frames(name):
    a, b = PHASES[name]
    return slice(a, b)


def test_the_object_moving_with_the_hand_is_contact():
    obj, hand = grasp()
    out = contact_labels(obj, hand)
    assert (out.evidence[frames("lift")] == CONTACT).all()
    assert out.forward[frames("lift")].all() and out.contact[frames("lift")].all()


def test_the_hand_moving_alone_is_no_contact():
    obj, hand = grasp()
    out = contact_labels(obj, hand)
    for phase in ("approach", "release"):
        assert (out.evidence[frames(phase)] == NO_CONTACT).all(), phase
        assert not out.contact[frames(phase)].any(), phase


def test_a_still_hold_carries_the_previous_state():
    obj, hand = grasp()
    out = contact_labels(obj, hand)
    assert (out.evidence[frames("hold")] == CARRY).all()
    assert out.forward[frames("hold")].all()  # carried from the lift
    # the same stillness after an approach carries "no contact" (in the forward pass)
    assert (out.evidence[frames("rest")] == CARRY).all() and not out.forward[frames("rest")].any()


def test_the_backward_pass_fills_the_frames_before_onset():
    obj, hand = grasp()
    out = contact_labels(obj, hand)
    assert out.contact[frames("rest")].all()  # the hand rested on the object before lifting it
    assert not out.contact[frames("approach")].any()  # it stops at the last frame the hand moved alone
    only_forward = contact_labels(obj, hand, ContactRuleConfig(backward=False))
    np.testing.assert_array_equal(only_forward.contact, out.forward)
    assert not only_forward.contact[frames("rest")].any()


def test_the_backward_pass_reaches_the_first_frame_of_a_clip_that_starts_in_a_grasp():
    obj, hand = tracks(REST + LIFT + HOLD, hand_start=(135.0, 100.0))
    out = contact_labels(obj, hand)
    assert out.contact.all() and not out.forward[:5].any()


def test_an_object_moving_away_from_the_hand_is_no_evidence():
    # the hand rests far from the object while the object slides: not moved by the hand
    slide = [((0.0, 0.0), (6.0, 0.0))] * 10
    obj, hand = tracks(APPROACH[:3] + slide, hand_start=(400.0, 100.0))
    out = contact_labels(obj, hand)
    assert (out.evidence[3:13] == CARRY).all() and not out.contact.any()


def test_unknown_hand_frames_give_no_evidence():
    obj, hand = grasp()
    valid = np.ones(len(hand), bool)
    valid[frames("release")] = False  # the detector lost the hand as it left
    out = contact_labels(obj, hand, hand_valid=valid)
    assert np.isnan(out.hand_motion[frames("release")]).all()
    assert out.contact[frames("release")].all()  # nothing says the grasp ended: carried


def test_thresholds_scale_with_image_size_and_frame_rate():
    cfg = ContactRuleConfig()
    big = cfg.scaled(960, 15.0)
    assert big.object_moving == pytest.approx(2 * cfg.object_moving) and big.near == pytest.approx(2 * cfg.near)
    fast = cfg.scaled(480, 30.0)
    assert fast.object_moving == pytest.approx(cfg.object_moving / 2) and fast.near == pytest.approx(cfg.near)
    # the same scene at a quarter of the size: the unscaled thresholds miss the lift, scaled ones see it
    obj, hand = grasp(scale=0.25)
    assert not contact_labels(obj, hand, cfg).contact[frames("lift")].any()
    scaled = contact_labels(obj, hand, cfg.scaled(120, 15.0))
    np.testing.assert_array_equal(scaled.contact, contact_labels(*grasp()).contact)


def test_smoothing_keeps_the_answer_on_noisy_keypoints():
    obj, hand = grasp()
    noisy = hand + np.random.default_rng(1).normal(scale=2.0, size=hand.shape)
    truth = contact_labels(obj, hand).contact
    smooth = contact_labels(obj, noisy, ContactRuleConfig(smooth=5)).contact
    assert np.mean(smooth == truth) >= 0.9


def test_bad_input_names_what_was_expected():
    obj, hand = grasp()
    with pytest.raises(ConfigError, match=r"hand keypoints has shape .*expected \(T, 21, 2\)"):
        contact_labels(obj, hand[:, :20])
    with pytest.raises(ConfigError, match="frames"):
        contact_labels(obj[:-1], hand)
    with pytest.raises(ConfigError, match="hand_valid"):
        contact_labels(obj, hand, hand_valid=np.ones(3, bool))
    with pytest.raises(ConfigError, match="object_still"):
        ContactRuleConfig(object_still=3.0, object_moving=2.0)
    with pytest.raises(ConfigError, match="smooth"):
        ContactRuleConfig(smooth=4)


def test_the_backward_pass_stops_where_the_hand_was_not_at_the_object():
    # a slow drift (below the hand-motion threshold) from far away, then the lift
    drift = [((-1.5, 0.0), (0.0, 0.0))] * 40
    obj, hand = tracks(drift + LIFT, hand_start=(200.0, 100.0))
    out = contact_labels(obj, hand)
    assert (out.evidence[:40] == CARRY).all()
    far = out.distance[:40] > ContactRuleConfig().near
    assert far.any() and (~far).any()
    assert not out.contact[:40][far].any() and out.contact[:40][~far].all()


def test_keypoint_jitter_does_not_read_as_the_hand_moving():
    # independent per-keypoint jitter: each keypoint moves ~2.5 px a frame, the hand as a whole does not
    obj, hand = grasp()
    noisy = hand + np.random.default_rng(2).normal(scale=1.5, size=hand.shape)
    out = contact_labels(obj, noisy)
    assert np.nanmedian(np.linalg.norm(np.diff(noisy, axis=0), axis=-1)) > ContactRuleConfig().hand_moving
    assert out.contact[frames("rest")].all() and out.contact[frames("hold")].all()
    np.testing.assert_array_equal(out.contact, contact_labels(obj, hand).contact)


def test_short_detector_gaps_are_interpolated_long_ones_stay_unknown():
    obj, hand = grasp()
    valid = np.ones(len(hand), bool)
    valid[4:9] = False  # lost for 5 frames while approaching
    filled = contact_labels(obj, hand, hand_valid=valid)
    assert (filled.evidence[3:9] == NO_CONTACT).all()  # the interpolated hand still moves alone
    np.testing.assert_allclose(filled.hand_motion[3:9], 8.0)
    unfilled = contact_labels(obj, hand, ContactRuleConfig(fill_gaps=0), hand_valid=valid)
    assert np.isnan(unfilled.hand_motion[3:9]).all() and (unfilled.evidence[3:9] == CARRY).all()
    too_long = contact_labels(obj, hand, ContactRuleConfig(fill_gaps=4), hand_valid=valid)
    assert np.isnan(too_long.hand_motion[3:9]).all()
    with pytest.raises(ConfigError, match="fill_gaps"):
        ContactRuleConfig(fill_gaps=-1)
