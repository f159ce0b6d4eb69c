"""The hybrid imitation reward: each factor falls with its own error, they multiply, the object
scale follows the image size, and the torch form equals the numpy one."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pam_engine.capture.camera import look_at
from pam_engine.errors import ConfigError
from pam_engine.rl import imitation, imitation_torch
from pam_engine.rl.imitation import ImitationReference, ImitationRewardConfig, imitation_reward

T, V = 5, 40
RNG = np.random.default_rng(0)


def pose(rot=None, trans=(0.0, 0.0, 0.0)):
    out = np.eye(4)
    if rot is not None:
        out[:3, :3] = rot
    out[:3, 3] = trans
    return out


def reference(height=480):
    rng = np.random.default_rng(1)
    world_to_cam = look_at([0.0, -0.5, 0.4], [0.0, 0.0, 0.05])
    K = np.array([[600.0 * height / 480, 0, 360.0 * height / 480], [0, 600.0 * height / 480, 240.0 * height / 480], [0, 0, 1]])
    points = rng.uniform(-0.04, 0.04, size=(V, 3))
    object_poses = [pose(Rotation.from_rotvec(rng.normal(scale=0.2, size=3)).as_matrix(), [0, 0, 0.01 * t]) for t in range(T)]
    uv = np.stack([imitation.project(points @ p[:3, :3].T + p[:3, 3], world_to_cam, K) for p in object_poses])
    joints = rng.normal(scale=0.05, size=(T, 21, 3)) + [0, 0, 0.1]
    return ImitationReference(joints, uv, np.array([0, 0, 1, 1, 1], bool), points, K, world_to_cam, height, 15.0,
                              np.tile(np.eye(4), (T, 1, 1)), np.zeros((T, 20)), object_poses[0], "025_mug"), object_poses


def test_perfect_tracking_earns_one_and_each_error_lowers_its_factor():
    ref, poses = reference()
    r, terms, err = imitation_reward(ref.joints[3], poses[3], True, ref, 3)
    assert r == pytest.approx(1.0) and all(v == pytest.approx(0.0, abs=1e-9) for v in err.values())
    cfg = ImitationRewardConfig()
    r_hand, terms_hand, err_hand = imitation_reward(ref.joints[3] + [0.01, 0, 0], poses[3], True, ref, 3)
    assert err_hand["hand"] == pytest.approx(0.01) and terms_hand["hand"] == pytest.approx(np.exp(-0.01 / cfg.sigma_hand))
    assert terms_hand["object"] == pytest.approx(1.0) and r_hand == pytest.approx(terms_hand["hand"])
    moved = poses[3].copy()
    moved[:3, 3] += [0.02, 0, 0]
    r_obj, terms_obj, err_obj = imitation_reward(ref.joints[3], moved, True, ref, 3)
    assert err_obj["object"] > 5.0 and terms_obj["object"] == pytest.approx(np.exp(-err_obj["object"] / cfg.sigma_object))
    r_c, terms_c, err_c = imitation_reward(ref.joints[3], poses[3], False, ref, 3)
    assert err_c["contact"] == 1.0 and r_c == pytest.approx(np.exp(-1.0 / cfg.sigma_contact))
    # the factors multiply
    r_all, terms_all, _ = imitation_reward(ref.joints[3] + [0.01, 0, 0], moved, False, ref, 3)
    assert r_all == pytest.approx(terms_hand["hand"] * terms_obj["object"] * terms_c["contact"])


def test_the_object_scale_follows_the_image_height():
    cfg = ImitationRewardConfig()
    assert cfg.object_sigma_px(240) == pytest.approx(cfg.sigma_object / 2)
    small, poses = reference(height=240)
    big, _ = reference(height=480)
    moved = poses[2].copy()
    moved[:3, 3] += [0.015, 0.0, 0.0]
    # the same 3D offset spans half the pixels in the half-size image, and the reward is the same
    _, t_small, e_small = imitation_reward(small.joints[2], moved, False, small, 2)
    _, t_big, e_big = imitation_reward(big.joints[2], moved, False, big, 2)
    assert e_small["object"] == pytest.approx(e_big["object"] / 2, rel=1e-6)
    assert t_small["object"] == pytest.approx(t_big["object"], rel=1e-6)


def test_torch_equals_numpy_on_random_states():
    ref, poses = reference()
    cfg = ImitationRewardConfig(sigma_hand=0.03, sigma_object=7.0, sigma_contact=0.7)
    n = 16
    rng = np.random.default_rng(2)
    ts = rng.integers(0, T, n)
    joints = ref.joints[ts] + rng.normal(scale=0.02, size=(n, 21, 3))
    obj = np.stack([poses[t] @ pose(Rotation.from_rotvec(rng.normal(scale=0.1, size=3)).as_matrix(),
                                    rng.normal(scale=0.01, size=3)) for t in ts])
    contact = rng.random(n) < 0.5
    expected = [imitation_reward(joints[i], obj[i], contact[i], ref, ts[i], cfg) for i in range(n)]
    f = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)
    err = imitation_torch.errors(f(joints), f(obj), torch.as_tensor(contact), f(ref.joints[ts]), f(ref.object_uv[ts]),
                                 torch.as_tensor(ref.contact[ts]), f(ref.points), f(ref.world_to_cam), f(ref.K))
    terms = imitation_torch.reward_terms(err, cfg, ref.height)
    for key in ("hand", "object", "contact"):
        np.testing.assert_allclose(err[key].numpy(), [e[2][key] for e in expected], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(terms["total"].numpy(), [e[0] for e in expected], rtol=1e-6, atol=1e-12)
    assert len({round(e[0], 6) for e in expected}) > n // 2  # the states really differ


def test_bad_config_and_reference_are_named():
    with pytest.raises(ConfigError, match="sigma_hand"):
        ImitationRewardConfig(sigma_hand=0.0)
    ref, _ = reference()
    with pytest.raises(ConfigError, match=r"contact has shape \(4,\)"):
        ImitationReference(ref.joints, ref.object_uv, ref.contact[:4], ref.points, ref.K, ref.world_to_cam, 480, 15.0,
                           ref.wrist, ref.angles, ref.object_start, "025_mug")
    with pytest.raises(ConfigError, match="window"):
        ref.window(3, 3)
    with pytest.raises(ConfigError, match="starts after the object moved"):
        ref.window(1, 4)  # this reference's object moves from frame 0 on
    still = ImitationReference(ref.joints, np.repeat(ref.object_uv[:1], T, axis=0), ref.contact, ref.points, ref.K,
                               ref.world_to_cam, 480, 15.0, ref.wrist, ref.angles, ref.object_start, "025_mug")
    window = still.window(1, 4)
    assert window.num_frames == 3 and np.array_equal(window.joints, ref.joints[1:4])
