"""Condition maps follow PAM's drawing conventions exactly (docs/design.md, "Condition maps in PAM's style"), pixel by pixel."""

import numpy as np
import pytest

from pam_engine.capture import maps
from pam_engine.capture.camera import Camera, intrinsics, look_at
from pam_engine.conventions import ADE20K_PALETTE, KEYPOINT_FINGER_COLORS, SEG_HAND
from pam_engine.errors import ConfigError


def test_seg_colour_map_uses_pam_palette():
    seg = np.zeros((2, 32, 48), np.uint8)
    seg[0, 2:10, 3:9] = 1
    seg[0, 12:20, 3:9] = 2
    seg[1, 5:15, 20:40] = SEG_HAND
    seg[1, 20:25, 5:10] = 21
    out = maps.seg_color_map(seg)
    assert out.shape == (2, 32, 48, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 5, 5], [180, 120, 120])
    np.testing.assert_array_equal(out[0, 15, 5], [6, 230, 230])
    np.testing.assert_array_equal(out[1, 10, 30], [92, 0, 255])
    np.testing.assert_array_equal(out[1, 22, 7], ADE20K_PALETTE[21])
    np.testing.assert_array_equal(out[0, 30, 40], [0, 0, 0])
    # limiting the work to the foreground boxes changes nothing
    np.testing.assert_array_equal(maps.seg_color_map(seg, maps.foreground_boxes(seg)), out)
    np.testing.assert_array_equal(maps.seg_color_map(seg[1]), out[1])


def _spread_keypoints():
    """21 keypoints more than 150 px apart (PAM skips such limbs: only the joint circles remain)."""
    grid = [(60 + 160 * (i % 4), 40 + 160 * (i // 4)) for i in range(21)]
    return np.array(grid, dtype=np.float64)


def _expected_colour(i):
    return np.minimum(KEYPOINT_FINGER_COLORS[i // 4] + 35 * (i % 4), 255)


def test_keypoint_joints_are_pam_coloured_discs_of_radius_3():
    kp = _spread_keypoints()
    assert maps.keypoint_scale(700, 1000) == pytest.approx(700 / 640)
    canvas = np.zeros((960, 640, 3), np.uint8)  # scale 1 (min of 640/640, 960/480)
    maps.draw_hand_keypoints(canvas, kp)
    for i, (u, v) in enumerate(kp.astype(int)):
        np.testing.assert_array_equal(canvas[v, u], _expected_colour(i))
        np.testing.assert_array_equal(canvas[v, u + 3], _expected_colour(i))  # radius 3
        np.testing.assert_array_equal(canvas[v, u + 5], [0, 0, 0])
    # the exact PAM colours of a few joints: wrist, thumb tip (PAM colours it by i // 4 = 1), pinky tip
    np.testing.assert_array_equal(canvas[int(kp[0, 1]), int(kp[0, 0])], [139, 53, 255])
    np.testing.assert_array_equal(canvas[int(kp[1, 1]), int(kp[1, 0])], [174, 88, 255])
    np.testing.assert_array_equal(canvas[int(kp[4, 1]), int(kp[4, 0])], [0, 56, 255])
    np.testing.assert_array_equal(canvas[int(kp[20, 1]), int(kp[20, 0])], [70, 17, 145])


def test_keypoint_radius_scales_with_resolution():
    kp = _spread_keypoints() * 2
    canvas = np.zeros((1920, 1280, 3), np.uint8)  # scale 2
    maps.draw_hand_keypoints(canvas, kp)
    u, v = kp[0].astype(int)
    assert canvas[v, u + 6].any() and not canvas[v, u + 8].any()


def test_limbs_are_filled_ellipses_with_pam_widths_and_colours():
    kp = _spread_keypoints()
    # thumb limb 0 (wrist -> thumb MCP): 40 px long, horizontal
    kp[0] = (100, 100)
    kp[1] = (140, 100)
    # index limb 4 (wrist -> index MCP) would start at the wrist too: move index MCP far away
    canvas = np.zeros((480, 640, 3), np.uint8)
    maps.draw_hand_keypoints(canvas, kp)
    thumb = _expected_colour(0)  # limb 0: colour index 0, brightened by 0
    np.testing.assert_array_equal(canvas[100, 120], thumb)
    np.testing.assert_array_equal(canvas[105, 120], thumb)  # half-width 6 for thumb limbs
    assert not canvas[108, 120].any()
    # a non-thumb limb: index limb 5 (MCP 5 -> PIP 6), half-width 3, colour 1 brightened by 35
    kp2 = _spread_keypoints()
    kp2[5] = (300, 300)
    kp2[6] = (300, 340)
    canvas = np.zeros((480, 640, 3), np.uint8)
    maps.draw_hand_keypoints(canvas, kp2)
    limb5 = np.minimum(KEYPOINT_FINGER_COLORS[1] + 35, 255)
    np.testing.assert_array_equal(canvas[320, 300], limb5)
    np.testing.assert_array_equal(canvas[320, 302], limb5)
    assert not canvas[320, 305].any()


def test_limbs_are_drawn_far_to_near_in_depth_order():
    kp = _spread_keypoints()
    # thumb limb 2 (2 -> 3) horizontal and index limb 6 (6 -> 7) vertical, crossing at (300, 200)
    kp[2], kp[3] = (270, 200), (330, 200)
    kp[6], kp[7] = (300, 170), (300, 230)
    thumb_colour = _expected_colour(2)
    index_colour = _expected_colour(6)
    z = np.full(21, 0.5)
    near_thumb = z.copy()
    near_thumb[[2, 3]] = 0.4
    near_index = z.copy()
    near_index[[6, 7]] = 0.4
    a = np.zeros((480, 640, 3), np.uint8)
    maps.draw_hand_keypoints(a, kp, near_thumb, order="depth")
    np.testing.assert_array_equal(a[200, 300], thumb_colour)
    b = np.zeros((480, 640, 3), np.uint8)
    maps.draw_hand_keypoints(b, kp, near_index, order="depth")
    np.testing.assert_array_equal(b[200, 300], index_colour)


def test_pam_limb_order_reverses_when_the_wrist_is_nearer_than_the_little_tip():
    """PAM's rule (showHandJoints with joint_3d): limbs in list order (thumb first, little finger
    last), all reversed (thumb last, on top) when z(wrist) < z(little fingertip)."""
    kp = _spread_keypoints()
    kp[2], kp[3] = (270, 200), (330, 200)  # thumb limb 2, horizontal
    kp[6], kp[7] = (300, 170), (300, 230)  # index limb 6, vertical, crossing it at (300, 200)
    z = np.full(21, 0.5)
    wrist_near = z.copy()
    wrist_near[0] = 0.4
    wrist_far = z.copy()
    wrist_far[0] = 0.6
    assert maps.limb_order(wrist_near) == list(range(19, -1, -1))
    assert maps.limb_order(wrist_far) == list(range(20)) == maps.limb_order(None)
    a = np.zeros((480, 640, 3), np.uint8)
    maps.draw_hand_keypoints(a, kp, wrist_near)  # reversed: the thumb limb is drawn last
    np.testing.assert_array_equal(a[200, 300], _expected_colour(2))
    b = np.zeros((480, 640, 3), np.uint8)
    maps.draw_hand_keypoints(b, kp, wrist_far)  # list order: the index limb covers the thumb's
    np.testing.assert_array_equal(b[200, 300], _expected_colour(6))
    with pytest.raises(ConfigError, match="pam, forward, depth"):
        maps.limb_order(z, "random")


def test_keypoint_map_video_leaves_frames_without_a_hand_black():
    kp = np.repeat(_spread_keypoints()[None], 3, axis=0) / 2
    kp[1, 4] = np.nan
    out = maps.hand_keypoint_map(kp, 320, 240)
    assert out.shape == (3, 240, 320, 3)
    assert out[0].any() and not out[1].any() and out[2].any()


def test_depth_map_is_per_video_normalised_disparity():
    depth = np.zeros((2, 16, 32), np.float32)
    seg = np.zeros((2, 16, 32), np.uint8)
    depth[:] = 2.0  # table (background) at 2 m: it sets the far end of the range
    depth[0, 4:8, 4:8] = 0.5
    seg[0, 4:8, 4:8] = 3
    depth[1, 4:8, 10:14] = 1.0
    seg[1, 4:8, 10:14] = SEG_HAND
    depth[1, 10:12, 10:14] = 0.0  # no surface
    seg[1, 10:12, 10:14] = SEG_HAND
    out = maps.depth_map(depth, seg, style="grey")
    assert out.shape == (2, 16, 32, 3) and out.dtype == np.uint8
    assert np.all(out[..., 0] == out[..., 1]) and np.all(out[..., 1] == out[..., 2])
    # disparity range over the whole video: [1/2, 1/0.5] = [0.5, 2]
    assert out[0, 5, 5, 0] == 255  # nearest pixel of the video
    assert out[1, 5, 11, 0] == round((1.0 - 0.5) / 1.5 * 255)  # 85
    assert out[0, 0, 0, 0] == 0 and out[1, 11, 11, 0] == 0  # background and missing depth black
    # foreground-only range: [1, 2] -> the 1 m pixel becomes 0 (the farthest foreground)
    fg = maps.depth_map(depth, seg, foreground_only=True, style="grey")
    assert fg[0, 5, 5, 0] == 255 and fg[1, 5, 11, 0] == 0


def _inferno_uint8():
    """matplotlib's 256 inferno colours, truncated to uint8 as DepthCrafter's save_video does."""
    from matplotlib import colormaps

    return (np.asarray(colormaps["inferno"].colors) * 255).astype(np.uint8)


def test_pam_depth_map_is_inferno_coloured_nearer_brighter_background_black():
    """DepthCrafter's vis_sequence_depth: x = (d - min) / (max - min) over the whole video, colour =
    inferno[clamp(floor(255 x), 0, 255)]; PAM then blacked out the background (seg 0)."""
    rng = np.random.default_rng(0)
    depth = np.full((3, 24, 32), 2.0, np.float32)  # table, background
    seg = np.zeros((3, 24, 32), np.uint8)
    depth[:, 4:20, 4:28] = rng.uniform(0.4, 1.2, (3, 16, 24)).astype(np.float32)
    seg[:, 4:20, 4:16] = SEG_HAND
    seg[:, 4:20, 16:28] = 5
    out = maps.depth_map(depth, seg)  # "pam" is the default style
    lut = _inferno_uint8()
    fg = seg > 0
    assert not out[~fg].any()  # background black
    colours = out[fg].astype(int)
    on_palette = (np.abs(colours[:, None, :] - lut[None].astype(int)).sum(-1) == 0).any(1)
    assert on_palette.all()
    # exact entries: the range is [1/2, 1/min depth] over all three frames
    lo, hi = 0.5, 1.0 / float(depth.min())
    x = (1.0 / depth[fg].astype(np.float64) - lo) / (hi - lo)
    np.testing.assert_array_equal(out[fg], lut[np.clip(np.floor(255 * x), 0, 255).astype(int)])
    assert (out[fg] == lut[255]).all(-1).any()  # the nearest pixel of the video is the top colour
    # nearer is brighter: luminance falls with depth (rank correlation)
    from scipy.stats import spearmanr

    lum = colours @ [0.299, 0.587, 0.114]
    assert spearmanr(lum, depth[fg]).statistic < -0.99
    assert lum[np.argmin(depth[fg])] > lum[np.argmax(depth[fg])]
    with pytest.raises(ConfigError, match="pam, grey"):
        maps.depth_map(depth, seg, style="gray")


def _plane_depth(camera, normal_cam, offset):
    rays = camera.pixel_rays()
    return (offset / (rays @ normal_cam)).astype(np.float32)


def test_normals_from_depth_recover_a_tilted_plane_in_dsine_colours():
    cam = Camera(intrinsics(300.0, 300.0, 170.3, 110.2), np.eye(4), 320, 240)
    # plane facing the camera, tilted: normal towards the camera n, n.X = c with c < 0
    n = np.array([0.3, -0.2, -1.0])
    n /= np.linalg.norm(n)
    depth = _plane_depth(cam, n, -0.6)
    normals = maps.normals_from_depth(depth, cam.K)
    np.testing.assert_allclose(normals[5:-5, 5:-5].reshape(-1, 3) @ n, 1.0, atol=1e-4)
    seg = np.full((1, 240, 320), 3, np.uint8)
    rgb = maps.normal_map(depth[None], seg, cam.K)[0]
    expected = ((1.0 - n) * 127.5).astype(np.uint8)  # DSINE: outward normal -n, (x+1)/2*255 truncated
    np.testing.assert_array_equal(rgb[120, 160], expected)
    # a fronto-parallel wall is (0, 0, 1) outward: (127, 127, 255)
    wall = np.full((1, 240, 320), 0.8, np.float32)
    np.testing.assert_array_equal(maps.normal_map(wall, seg, cam.K)[0, 100, 100], [127, 127, 255])


def test_normal_map_is_black_on_background_and_uses_the_object_surface_at_silhouettes():
    cam = Camera(intrinsics(300.0, 300.0, 160.0, 120.0), np.eye(4), 320, 240)
    depth = np.full((1, 240, 320), 2.0, np.float32)  # far wall: background
    seg = np.zeros((1, 240, 320), np.uint8)
    depth[0, 80:160, 100:200] = 0.5  # a box face facing the camera
    seg[0, 80:160, 100:200] = 4
    out = maps.normal_map(depth, seg, cam.K)
    assert not out[0][seg[0] == 0].any()
    face = out[0][seg[0] == 4]
    assert np.all(face == [127, 127, 255])  # edges included: no smearing into the wall
    # the foreground crop gives the same normals as the full image
    full = maps.normals_from_depth(depth[0], cam.K)
    crop_rgb = out[0][seg[0] == 4]
    full_rgb = ((1.0 - full) * 127.5).astype(np.uint8)[seg[0] == 4]
    np.testing.assert_array_equal(crop_rgb, full_rgb)


def test_project_keypoints_visibility():
    cam = Camera(intrinsics(300.0, 300.0, 160.0, 120.0), look_at([0, 0, 1.0], [0, 0, 0], up=(0, 1, 0)), 320, 240)
    pts = np.array([[[0.0, 0.0, 0.0],  # centre: seen through an object 10 cm in front -> occluded
                     [0.1, 0.0, 0.0],  # hand pixel in front -> visible (hand self-occlusion allowed)
                     [0.0, 0.1, 0.0],  # surface 5 mm in front: within tolerance -> visible
                     [5.0, 0.0, 0.0],  # outside the image
                     [0.0, 0.0, 2.0],  # behind the camera
                     [-0.1, 0.0, 0.0]]])  # nothing rendered there (depth 0) -> visible
    depth = np.full((1, 240, 320), 1.2, np.float32)
    seg = np.zeros((1, 240, 320), np.uint8)
    uv, z = cam.project(pts[0])
    px = np.round(np.nan_to_num(uv, nan=-1)).astype(int)
    depth[0, px[0, 1], px[0, 0]] = 0.9
    seg[0, px[0, 1], px[0, 0]] = 5
    depth[0, px[1, 1], px[1, 0]] = 0.95
    seg[0, px[1, 1], px[1, 0]] = SEG_HAND
    depth[0, px[2, 1], px[2, 0]] = z[2] - 0.005
    seg[0, px[2, 1], px[2, 0]] = 5
    depth[0, px[5, 1], px[5, 0]] = 0.0
    joint_2d, visible = maps.project_keypoints(pts, cam, depth, seg)
    assert joint_2d.shape == (1, 6, 2) and visible.shape == (1, 6)
    assert visible[0].tolist() == [False, True, True, False, False, True]
    np.testing.assert_allclose(joint_2d[0, 0], [160.0, 120.0])
    assert np.all(np.isnan(joint_2d[0, 4]))


def test_condition_maps_bundle_has_every_map_at_full_size():
    cam = Camera(intrinsics(300.0, 300.0, 160.0, 120.0), np.eye(4), 320, 240)
    depth = np.full((2, 240, 320), 1.0, np.float32)
    seg = np.zeros((2, 240, 320), np.uint8)
    seg[:, 100:140, 100:200] = SEG_HAND
    kp = np.repeat(_spread_keypoints()[None] / 4, 2, axis=0)
    result = maps.condition_maps(depth, seg, np.zeros((2, 240, 320, 3), np.uint8), kp, cam)
    for name, video in result.items():
        assert video.shape == (2, 240, 320, 3) and video.dtype == np.uint8, name
    np.testing.assert_array_equal(result.seg[0, 120, 150], [92, 0, 255])


def _padded_normals(depth, K):
    """normals_from_depth as first written (np.pad copies per component), the reference."""
    h, w = depth.shape
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    valid = depth > 0
    big = np.float32(1e6)
    z = np.where(valid, depth, big).astype(np.float32)
    x = z * ((np.arange(w, dtype=np.float32) - np.float32(cx)) / np.float32(fx))[None, :]
    y = z * ((np.arange(h, dtype=np.float32) - np.float32(cy)) / np.float32(fy))[:, None]

    def derivative(axis):
        comps = []
        for p in (x, y, z):
            d = np.diff(p, axis=axis)
            pad = [(0, 0), (0, 0)]
            pad[axis] = (0, 1)
            fwd = np.pad(d, pad, mode="edge")
            pad[axis] = (1, 0)
            bwd = np.pad(d, pad, mode="edge")
            comps.append((fwd, bwd))
        (fx_, bx_), (fy_, by_), (fz_, bz_) = comps
        use_bwd = np.abs(bz_) < np.abs(fz_)
        dz = np.where(use_bwd, bz_, fz_)
        return np.where(use_bwd, bx_, fx_), np.where(use_bwd, by_, fy_), dz, np.abs(dz) < big / 2

    ux, uy, uz, ok_u = derivative(1)
    vx, vy, vz, ok_v = derivative(0)
    nx, ny, nz = uz * vy - uy * vz, ux * vz - uz * vx, uy * vx - ux * vy
    norm = np.sqrt(nx * nx + ny * ny + nz * nz)
    good = valid & ok_u & ok_v & (norm > 0)
    inv = np.where(good, 1.0 / np.where(norm > 0, norm, 1), 0).astype(np.float32)
    return np.stack([nx * inv, ny * inv, nz * inv], axis=-1)


@pytest.mark.parametrize("shape", [(40, 56), (2, 9), (7, 2)])
def test_normals_and_maps_equal_the_reference_formulas_bit_for_bit(shape):
    """The copy-free normals and the foreground-only depth colouring give exactly what the
    straightforward forms give, holes, silhouettes and image edges included."""
    rng = np.random.default_rng(5)
    K = np.array([[50.0, 0, 27.3], [0, 51.0, 19.6], [0, 0, 1]])
    depth = (0.5 + 0.1 * rng.random(shape) + np.linspace(0, 0.2, shape[1])[None]).astype(np.float32)
    depth[rng.random(shape) < 0.15] = 0.0  # holes
    depth[:, : shape[1] // 3] += 0.3  # a silhouette step
    np.testing.assert_array_equal(maps.normals_from_depth(depth, K), _padded_normals(depth, K))
    seg = np.where(rng.random((3,) + shape) < 0.7, 255, 0).astype(np.uint8)
    video = np.stack([depth, depth * 1.1, np.roll(depth, 1, axis=1)])
    n = _padded_normals(video[1], K)
    want = ((1.0 - n) * 127.5).astype(np.uint8)
    want[~((seg[1] != 0) & np.any(n != 0, axis=-1))] = 0
    np.testing.assert_array_equal(maps.normal_map(video, seg, K, boxes=[(slice(0, shape[0]), slice(0, shape[1]))] * 3)[1], want)
    lo, hi = maps.disparity_range(video, seg)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (1.0 / video.astype(np.float64) - lo) * (255.0 / (hi - lo))
    index = np.clip(np.nan_to_num(np.floor(x), nan=0.0, posinf=255.0, neginf=0.0), 0, 255).astype(np.uint8)
    rgb = maps.inferno_lut()[index]
    rgb[~((video > 0) & (seg != 0))] = 0
    np.testing.assert_array_equal(maps.depth_map(video, seg), rgb)
