import mujoco
import numpy as np
import pytest

from pam_engine.capture.camera import Camera, look_at
from pam_engine.capture.renderer import MujocoCapture
from pam_engine.capture.replay import capture_sequence, qpos_replay
from pam_engine.capture.style import sample_preview_style
from synthetic_scene import build_demo_scene
from pam_engine.conventions import SEG_HAND
from pam_engine.errors import ConfigError

T = 4


@pytest.fixture(scope="module")
def scene():
    return build_demo_scene()


def _camera():
    return Camera.from_focal(300.0, 320, 240, look_at([0.25, -0.45, 0.35], [-0.03, 0, 0.05]))


def test_replaying_recorded_qpos_reproduces_the_capture(scene):
    model = scene.model
    data = mujoco.MjData(model)
    qpos, mocap = [], []
    for t in range(T):
        scene.set_frame(data, t, T)
        qpos.append(data.qpos.copy())
        mocap.append(data.mocap_pos.copy())
    with MujocoCapture(model, _camera(), scene.seg_lookup) as cap:
        direct = capture_sequence(cap, data, lambda d, t: scene.set_frame(d, t, T), T)
        replayed = capture_sequence(cap, mujoco.MjData(model), qpos_replay(model, np.array(qpos), np.array(mocap)), T)
        again = capture_sequence(cap, data, lambda d, t: scene.set_frame(d, t, T), T, out=replayed)
    assert again is replayed
    np.testing.assert_array_equal(direct.depth, replayed.depth)
    np.testing.assert_array_equal(direct.seg, replayed.seg)
    assert all((direct.seg[t] == SEG_HAND).any() and (direct.seg[t] == scene.object_id).any() for t in range(T))
    # the finger moves between frames
    assert not np.array_equal(direct.seg[0], direct.seg[-1])


def test_replay_inputs_are_checked(scene):
    with pytest.raises(ConfigError, match=r"expected \(T, %d\)" % scene.model.nq):
        qpos_replay(scene.model, np.zeros((3, scene.model.nq + 1)))
    with MujocoCapture(scene.model, _camera(), scene.seg_lookup) as cap:
        with pytest.raises(ConfigError, match="num_frames"):
            capture_sequence(cap, mujoco.MjData(scene.model), lambda d, t: None, 0)


def test_sample_preview_style_is_seeded_and_colours_given_geoms(scene):
    a = sample_preview_style(np.random.default_rng(5), [scene.object_geom], scene.table_geoms)
    b = sample_preview_style(np.random.default_rng(5), [scene.object_geom], scene.table_geoms)
    c = sample_preview_style(np.random.default_rng(6), [scene.object_geom], scene.table_geoms)
    assert a == b and a != c
    assert set(a.geom_rgba) == {scene.object_geom, *scene.table_geoms}
    assert np.dot(a.light_dir, [0, 0, 1]) < 0  # the key light shines downwards
    data = mujoco.MjData(scene.model)
    scene.set_frame(data, 0, 1)
    with MujocoCapture(scene.model, _camera(), scene.seg_lookup) as cap:
        plain = cap.capture(data).rgb.copy()
        cap.set_preview(a)
        styled = cap.capture(data)
    obj = styled.seg == scene.object_id
    assert np.abs(plain[obj].astype(int) - styled.rgb[obj].astype(int)).mean() > 5


def test_set_camera_switches_view_and_refuses_a_larger_image(scene):
    data = mujoco.MjData(scene.model)
    scene.set_frame(data, 0, 1)
    with MujocoCapture(scene.model, _camera(), scene.seg_lookup) as cap:
        near = Camera.from_focal(300.0, 320, 240, look_at([0.0, -0.25, 0.2], [0, 0, 0.06]))
        cap.set_camera(near)
        frame = cap.capture(data)
        centre = np.array([[0.0, 0.0, scene.object_half[2]]])  # the object's centre, world frame
        uv, z = near.project(centre)
        u, v = np.round(uv[0]).astype(int)
        assert frame.seg[v, u] == scene.object_id and frame.depth[v, u] < z[0]
        small = Camera.from_focal(150.0, 160, 128, near.world_to_cam)
        cap.set_camera(small)
        assert cap.capture(data).depth.shape == (128, 160)
        with pytest.raises(ConfigError, match="1280x960 exceeds"):  # the demo's buffer is 720x480
            cap.set_camera(Camera.from_focal(600.0, 1280, 960))


def test_a_buffer_the_camera_size_gives_the_same_pixels(scene):
    """The pipeline sizes the offscreen buffer to its one camera (less to clear per pass); every
    capture stays pixel for pixel what the model-sized buffer gives, and the model's own
    buffer size is left as it was."""
    model = scene.model
    data = mujoco.MjData(model)
    size = (model.vis.global_.offwidth, model.vis.global_.offheight)
    style = sample_preview_style(np.random.default_rng(2))
    with MujocoCapture(model, _camera(), scene.seg_lookup, preview=style) as cap:
        big = capture_sequence(cap, data, lambda d, t: scene.set_frame(d, t, T), T)
    with MujocoCapture(model, _camera(), scene.seg_lookup, preview=style, buffer=(320, 240)) as cap:
        small = capture_sequence(cap, data, lambda d, t: scene.set_frame(d, t, T), T)
        with pytest.raises(ConfigError, match="exceeds this capture's buffer 320x240"):
            cap.set_camera(Camera.from_focal(300.0, 640, 480))
    assert (model.vis.global_.offwidth, model.vis.global_.offheight) == size != (320, 240)
    for name in ("rgb", "depth", "seg", "hand_mesh"):
        np.testing.assert_array_equal(getattr(small, name), getattr(big, name), err_msg=name)
    with pytest.raises(ConfigError, match="smaller than the camera"):
        MujocoCapture(model, _camera(), scene.seg_lookup, buffer=(100, 100))
