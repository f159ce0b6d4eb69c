"""The ``pam`` camera preset reproduces PAM's training geometry (SPEC §3, docs/pam_maps.md).

Facts relied on, from PAM's loaders (``training/dataset.py``, ``training/hoi_utils.py``):
- DexYCB frames are 640x480; the loaders resize every frame to 720x480 (maps: nearest, i.e. torch
  ``interpolate(mode="nearest")``: destination column i takes source column floor(i * 640 / 720)).
- Keypoint maps are drawn on a black 640x480 canvas from ``joint_2d`` rounded to integers:
  21 filled circles of radius 3, colour ``base[i // 4] + 35 * (i % 4)`` (saturating at 255), then
  the 20 limbs (0-1, 1-2, 2-3, 3-4, 0-5, ..., 19-20) as filled ``cv2.ellipse2Poly`` polygons
  centred at the truncated midpoint, semi-axes (truncated half length, 6 for limbs 0-3 else 3),
  angle = truncated degrees of atan2(dv, du), drawn only when 5 < length < 150, coloured like
  joint ``limb``; limb order 0..19, reversed when joint_3d z of the wrist < z of keypoint 20.
"""

import numpy as np
import pytest

from pam_engine.capture import maps
from pam_reference import CHAINS, nearest_720, pam_rule_drawing
from pam_engine.capture.camera import Camera, look_at

def hand_points(rng, centre):
    """21 hand-like 3D keypoints (m) around ``centre``: five chains of 3-4 cm bones."""
    pts = np.zeros((21, 3))
    pts[0] = centre
    for f, chain in enumerate(CHAINS):
        direction = rng.normal(size=3)
        direction[2] *= 0.3
        for j in range(1, 5):
            direction = direction / np.linalg.norm(direction) + rng.normal(scale=0.3, size=3)
            pts[chain[j]] = pts[chain[j - 1]] + 0.035 * direction / np.linalg.norm(direction)
    return pts


def test_nearest_resize_is_torchs():
    torch = pytest.importorskip("torch")
    img = np.random.default_rng(0).integers(0, 255, (2, 480, 640, 3), dtype=np.uint8)
    ref = torch.nn.functional.interpolate(torch.from_numpy(img).permute(0, 3, 1, 2).float(), size=(480, 720),
                                          mode="nearest").permute(0, 2, 3, 1).numpy().astype(np.uint8)
    np.testing.assert_array_equal(maps.resize_nearest(img, 720, 480), ref)
    np.testing.assert_array_equal(maps.resize_nearest(img, 720, 480)[0], nearest_720(img[0]))


def test_keypoint_map_of_the_pam_preset_equals_pams_640x480_drawing_resized():
    rng = np.random.default_rng(7)
    frames, dexycb_2d, pam_2d, zs = 12, [], [], []
    for t in range(frames):
        eye = rng.uniform([-0.5, -0.5, 0.3], [0.5, 0.5, 0.6])
        w2c = look_at(eye, [0.0, 0.0, 0.05])
        pts = hand_points(rng, rng.uniform(-0.05, 0.05, 3) + [0, 0, 0.05])
        dexycb_2d.append(Camera.dexycb(w2c).project(pts)[0])
        uv, z = Camera.pam(w2c).project(pts)
        pam_2d.append(uv)
        zs.append(z)
    pam_2d, zs = np.array(pam_2d), np.array(zs)
    assert {bool(z[0] < z[20]) for z in zs} == {True, False}  # both limb orders occur
    ours = maps.hand_keypoint_map(pam_2d, 720, 480, zs, canvas=(640, 480))
    assert ours.shape == (frames, 480, 720, 3)
    for t in range(frames):
        expected = nearest_720(pam_rule_drawing(dexycb_2d[t], zs[t]))
        assert expected.any()
        np.testing.assert_array_equal(ours[t], expected)
    # drawn on the 720x480 canvas itself (square-pixel style) it differs
    direct = maps.hand_keypoint_map(pam_2d, 720, 480, zs)
    assert not np.array_equal(direct, ours)


def test_condition_maps_draw_keypoints_on_the_camera_canvas():
    cam = Camera.pam(look_at([0.4, -0.3, 0.5], [0.0, 0.0, 0.05]))
    pts = hand_points(np.random.default_rng(1), [0.0, 0.0, 0.05])
    uv, z = cam.project(pts)
    depth = np.zeros((1, 480, 720), np.float32)
    seg = np.zeros((1, 480, 720), np.uint8)
    bundle = maps.condition_maps(depth, seg, np.zeros((1, 480, 720, 3), np.uint8), uv[None], cam, z[None])
    expected = maps.hand_keypoint_map(uv[None], 720, 480, z[None], canvas=(640, 480))
    np.testing.assert_array_equal(bundle.hand_keypoints, expected)


def test_stage2_keypoint_frame_is_pams_stage2_drawing_on_the_canvas():
    """PAM's Stage II loader calls showHandJoints without joint_3d: limbs always in list order."""
    rng = np.random.default_rng(3)
    w2c = look_at([0.3, -0.4, 0.5], [0.0, 0.0, 0.05])
    pts = hand_points(rng, [0.0, 0.0, 0.05])
    uv640, _ = Camera.dexycb(w2c).project(pts)
    uv720, _ = Camera.pam(w2c).project(pts)
    frame = maps.canvas_keypoint_frame(uv720, 720, 480, (640, 480))
    np.testing.assert_array_equal(frame, pam_rule_drawing(uv640, np.zeros(21)))  # z all equal: list order
    missing = uv720.copy()
    missing[3] = -1  # DexYCB's mark of a keypoint without a projection
    assert not maps.canvas_keypoint_frame(missing, 720, 480, (640, 480)).any()
