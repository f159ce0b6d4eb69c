import numpy as np
import pytest

from pam_engine.capture.camera import Camera, CameraRange, intrinsics, look_at, sample_camera
from pam_engine.errors import ConfigError


def test_look_at_axes_follow_opencv():
    cam = Camera.default().looking_at(eye=[1.0, 0.0, 0.0], target=[0.0, 0.0, 0.0])
    # target on the optical axis lands on the principal point, 1 m away
    uv, z = cam.project([[0.0, 0.0, 0.0]])
    np.testing.assert_allclose(uv[0], [cam.cx, cam.cy], atol=1e-9)
    np.testing.assert_allclose(z, [1.0])
    # world up (+z) is image up (smaller v); looking along -x, world +y is on the right
    uv, _ = cam.project([[0.0, 0.0, 0.1], [0.0, 0.1, 0.0]])
    assert uv[0, 1] < cam.cy and abs(uv[0, 0] - cam.cx) < 1e-9
    assert uv[1, 0] > cam.cx and abs(uv[1, 1] - cam.cy) < 1e-9
    np.testing.assert_allclose(cam.position, [1.0, 0.0, 0.0], atol=1e-12)


def test_projection_matches_intrinsics_and_round_trips():
    rng = np.random.default_rng(0)
    cam = Camera(intrinsics(600.0, 610.0, 300.3, 200.7), look_at([0.3, -0.5, 0.4], [0, 0, 0.05]), 720, 480)
    pts = rng.uniform(-0.1, 0.1, (50, 3))
    pc = cam.world_to_camera(pts)
    uv, z = cam.project(pts)
    np.testing.assert_allclose(uv[:, 0], 600.0 * pc[:, 0] / pc[:, 2] + 300.3)
    np.testing.assert_allclose(uv[:, 1], 610.0 * pc[:, 1] / pc[:, 2] + 200.7)
    np.testing.assert_allclose(z, pc[:, 2])
    np.testing.assert_allclose(cam.camera_to_world(pc), pts, atol=1e-12)
    # a point behind the camera has no projection
    uv, z = cam.project(cam.camera_to_world([[0.0, 0.0, -1.0]]))
    assert np.all(np.isnan(uv)) and z[0] < 0


def test_pose_to_camera_maps_object_points():
    cam = Camera.default().looking_at([0.4, 0.2, 0.5], [0, 0, 0])
    pose = np.eye(4)[:3]
    pose = np.concatenate([np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]]), [[0.1], [0.0], [0.2]]], axis=1)
    local = np.array([0.05, 0.02, -0.01])
    world = pose[:, :3] @ local + pose[:, 3]
    pose_cam = cam.pose_to_camera(pose)
    np.testing.assert_allclose(pose_cam[:, :3] @ local + pose_cam[:, 3], cam.world_to_camera(world), atol=1e-12)


@pytest.mark.parametrize("size", [(721, 480), (720, 470), (100, 100)])
def test_resolution_must_be_divisible_by_16(size):
    with pytest.raises(ConfigError, match=f"{size[0]}x{size[1]}"):
        Camera.from_focal(600.0, *size)
    with pytest.raises(ConfigError, match=f"{size[0]}x{size[1]}"):
        CameraRange(width=size[0], height=size[1])


def test_bad_intrinsics_and_extrinsics_are_rejected():
    with pytest.raises(ConfigError, match="K"):
        Camera(np.eye(2))
    with pytest.raises(ConfigError, match="rigid"):
        Camera(intrinsics(600, 600, 360, 240), np.diag([2.0, 1.0, 1.0, 1.0]))
    with pytest.raises(ConfigError, match="parallel"):
        look_at([0, 0, 1], [0, 0, 0])


def test_presets():
    dex = Camera.dexycb()
    assert (dex.width, dex.height, dex.fx, dex.fy, dex.cx, dex.cy) == (640, 480, 615.0, 615.0, 320.0, 240.0)
    cam = Camera.default()
    assert (cam.width, cam.height) == (720, 480)


def test_pam_preset_is_a_dexycb_frame_stretched_to_720x480():
    """PAM's loaders resize DexYCB's 640x480 frames to 720x480: x 1.125 across, pixel edges fixed
    (u' + 0.5 = 1.125 (u + 0.5)); K says so exactly, so projections stay exact."""
    w2c = look_at([0.4, -0.3, 0.5], [0.0, 0.0, 0.05])
    dex = Camera.dexycb(w2c)
    pam = Camera.pam(w2c)
    assert (pam.width, pam.height, pam.canvas) == (720, 480, (640, 480))
    assert pam.fx == pytest.approx(1.125 * 615) and pam.fy == 615
    assert pam.cx == pytest.approx(1.125 * 320.5 - 0.5) and pam.cy == 240
    pts = np.random.default_rng(0).uniform([-0.1, -0.1, 0.0], [0.1, 0.1, 0.2], (50, 3))
    uv_dex, z_dex = dex.project(pts)
    uv_pam, z_pam = pam.project(pts)
    np.testing.assert_allclose(uv_pam[:, 0] + 0.5, 1.125 * (uv_dex[:, 0] + 0.5), atol=1e-9)
    np.testing.assert_allclose(uv_pam[:, 1], uv_dex[:, 1], atol=1e-9)
    np.testing.assert_allclose(z_pam, z_dex)
    # the image corners map onto each other
    assert dex.resized(720, 480).K == pytest.approx(pam.K)
    np.testing.assert_allclose(pam.with_pose(np.eye(4)).K, pam.K)
    assert pam.with_pose(np.eye(4)).canvas == (640, 480)
    sq = Camera.preset("square")
    assert sq.fx == sq.fy == 615 and sq.canvas is None and (sq.width, sq.height) == (720, 480)


def test_unknown_preset_names_the_valid_ones():
    with pytest.raises(ConfigError, match="'fisheye'.*pam, square"):
        Camera.preset("fisheye")
    with pytest.raises(ConfigError, match="pam, square"):
        CameraRange(preset="stretched")
    with pytest.raises(ConfigError, match="canvas must be two positive integers"):
        Camera(intrinsics(500.0, 500.0, 360.0, 240.0), canvas=(640, 480, 3))
    # at widths that are not multiples of 9 the canvas is the nearest whole-pixel one, K exact
    small = Camera.preset("pam", focal=300.0, width=320, height=240)
    assert small.canvas == (284, 240) and small.fx == pytest.approx(300.0 * 320 / 284)


def test_sample_camera_stays_in_range_and_looks_at_target():
    target = np.array([0.1, -0.05, 0.08])
    r = CameraRange(distance=(0.5, 0.6), elevation_deg=(30, 40), roll_deg=(-5, 5), target_jitter=0.0, focal_jitter=0.05)
    for seed in range(20):
        cam = sample_camera(np.random.default_rng(seed), target, r)
        dist = np.linalg.norm(cam.position - target)
        assert 0.5 - 1e-9 <= dist <= 0.6 + 1e-9
        elevation = np.degrees(np.arcsin((cam.position - target)[2] / dist))
        assert 30 - 1e-6 <= elevation <= 40 + 1e-6
        uv, z = cam.project([target])
        np.testing.assert_allclose(uv[0], [cam.cx, cam.cy], atol=1e-6)  # roll keeps the target centred
        # the default "pam" preset: focal in DexYCB canvas pixels, stretched 1.125x across
        assert 615 * 0.95 - 1e-9 <= cam.fy <= 615 * 1.05 + 1e-9
        assert cam.fx == pytest.approx(1.125 * cam.fy) and cam.canvas == (640, 480)
    square = sample_camera(np.random.default_rng(0), target, CameraRange(preset="square"))
    assert square.fx == square.fy and square.canvas is None
    a = sample_camera(np.random.default_rng(3), target, r)
    b = sample_camera(np.random.default_rng(3), target, r)
    np.testing.assert_array_equal(a.world_to_cam, b.world_to_cam)


def test_sample_camera_roll_rotates_the_image():
    target = np.zeros(3)
    r0 = CameraRange(roll_deg=(0, 0), target_jitter=0, focal_jitter=0, preset="square")  # angles in square pixels
    r1 = CameraRange(roll_deg=(20, 20), target_jitter=0, focal_jitter=0, preset="square")
    c0 = sample_camera(np.random.default_rng(1), target, r0)
    c1 = sample_camera(np.random.default_rng(1), target, r1)
    up = np.array([[0.0, 0.0, 0.05]])
    d0 = c0.project(up)[0][0] - [c0.cx, c0.cy]
    d1 = c1.project(up)[0][0] - [c1.cx, c1.cy]
    angle = np.degrees(np.arctan2(d1[1], d1[0]) - np.arctan2(d0[1], d0[0]))
    assert abs((angle + 180) % 360 - 180) == pytest.approx(20, abs=0.5)
