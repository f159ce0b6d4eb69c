"""Geometry that must line up: rendered depth, segmentation and the hand image against the
camera model (``Camera.project``) on synthetic MjSpec scenes."""

import mujoco
import numpy as np
import pytest
from capture_scenes import add_box_mesh_object, add_two_bone_skin, iou, new_spec

from pam_engine.capture.camera import Camera, intrinsics, look_at
from pam_engine.capture.renderer import MujocoCapture, SegLookup
from pam_engine.capture.style import PreviewStyle
from pam_engine.conventions import SEG_HAND
from pam_engine.errors import ConfigError

W, H = 320, 240
OFF_CENTRE_K = intrinsics(300.0, 310.0, 170.3, 107.6)  # principal point well off the image centre
#: The ``pam`` preset's kind of K: pixels 1.125x narrower than tall (a 9/8 horizontal stretch).
STRETCHED_K = intrinsics(1.125 * 280.0, 280.0, 1.125 * (W / 2 + 0.5) - 0.5, H / 2)


def _capture(model, camera, lookup=None, data=None, **kwargs):
    data = data or mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    with MujocoCapture(model, camera, lookup, **kwargs) as cap:
        return cap.capture(data)


def _rasterise(camera, verts_world, faces):
    """Pixels whose centre lies inside a projected triangle (OpenGL's coverage rule), computed
    independently of the renderer from ``Camera.project``."""
    uv, z = camera.project(verts_world)
    assert np.all(z > 0)
    mask = np.zeros((camera.height, camera.width), bool)
    for a, b, c in uv[faces]:
        lo = np.maximum(np.floor(np.minimum(np.minimum(a, b), c)), 0).astype(int)
        hi = np.minimum(np.ceil(np.maximum(np.maximum(a, b), c)), [camera.width - 1, camera.height - 1]).astype(int)
        if np.any(hi < lo):
            continue
        xs, ys = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1))
        p = np.stack([xs, ys], -1).astype(np.float64)

        def edge(p0, p1):
            return (p1[0] - p0[0]) * (p[..., 1] - p0[1]) - (p1[1] - p0[1]) * (p[..., 0] - p0[0])

        e0, e1, e2 = edge(a, b), edge(b, c), edge(c, a)
        inside = ((e0 >= 0) & (e1 >= 0) & (e2 >= 0)) | ((e0 <= 0) & (e1 <= 0) & (e2 <= 0))
        mask[lo[1]:hi[1] + 1, lo[0]:hi[0] + 1] |= inside
    return mask


def _wall_scene(quat=(1, 0, 0, 0)):
    spec = new_spec(W, H)
    body = spec.worldbody.add_body(name="wall", quat=list(quat))
    body.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=[3, 3, 0.01], pos=[0, 0, -0.01], group=1)
    return spec.compile()


@pytest.mark.parametrize("K", [intrinsics(280.0, 280.0, W / 2, H / 2), OFF_CENTRE_K, STRETCHED_K],
                         ids=["centred", "off-centre", "stretched"])
def test_depth_of_fronto_parallel_plane_is_exact(K):
    model = _wall_scene()
    dist = 0.7345
    cam = Camera(K, look_at([0, 0, dist], [0, 0, 0], up=(0, 1, 0)), W, H)
    frame = _capture(model, cam)
    assert frame.depth.dtype == np.float32 and frame.depth.shape == (H, W)
    np.testing.assert_allclose(frame.depth, dist, rtol=2e-6)
    assert np.all(frame.seg == 0)  # table/wall groups are background


def test_depth_of_tilted_plane_matches_every_pixel_ray():
    tilt = np.radians(35)
    model = _wall_scene(quat=(np.cos(tilt / 2), np.sin(tilt / 2), 0, 0))  # plane through origin, normal tilted about x
    cam = Camera(OFF_CENTRE_K, look_at([0.05, -0.1, 0.8], [0, 0, 0], up=(0, 1, 0)), W, H)
    frame = _capture(model, cam)
    # plane: n . X = 0 in the world; in the camera frame n_c . X_c = n_c . t_c
    n_world = np.array([0.0, -np.sin(tilt), np.cos(tilt)])
    n_cam = cam.world_to_cam[:3, :3] @ n_world
    offset = n_cam @ cam.world_to_cam[:3, 3]
    rays = cam.pixel_rays()
    expected = offset / (rays @ n_cam)
    assert np.all(frame.depth > 0)
    np.testing.assert_allclose(frame.depth, expected, rtol=1e-5)


def test_mujoco_camera_from_attributes_renders_the_same_image():
    spec = new_spec(W, H)
    spec.visual.quality.offsamples = 0
    body = spec.worldbody.add_body(name="wall", quat=[0.95, 0.3, 0.1, 0])
    body.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=[3, 3, 0.01], group=1)
    spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.03, 0, 0], pos=[0.05, 0.02, 0.1], group=2)
    cam = Camera(OFF_CENTRE_K, look_at([0.2, -0.3, 0.7], [0, 0, 0.05]), W, H)
    cam.add_to_spec(spec, "pam_camera")
    model = spec.compile()
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    renderer = mujoco.Renderer(model, H, W)
    try:
        renderer.enable_depth_rendering()
        renderer.update_scene(data, camera="pam_camera")
        depth_mj = renderer.render()
    finally:
        renderer.close()
    ours = _capture(model, cam, data=data).depth
    np.testing.assert_allclose(ours, depth_mj, rtol=1e-5, atol=1e-6)


def test_mesh_object_silhouette_matches_segmentation_and_collision_geoms_are_hidden():
    spec = new_spec(W, H)
    spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_PLANE, size=[2, 2, 0.1], group=0)
    quat = np.array([0.9, 0.2, 0.3, 0.25])
    quat /= np.linalg.norm(quat)
    pos = [0.02, -0.01, 0.08]
    verts, faces = add_box_mesh_object(spec, "box", (0.04, 0.03, 0.06), pos, quat, collision_scale=1.4)
    model = spec.compile()
    geom = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "box_visual")
    collision = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "box_collision")
    lookup = SegLookup(geoms={geom: 5, collision: 6})  # the collision geom must never show up
    cam = Camera(OFF_CENTRE_K, look_at([0.35, -0.3, 0.35], [0, 0, 0.06]), W, H)
    frame = _capture(model, cam, lookup)

    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, quat)
    world = verts @ rot.reshape(3, 3).T + pos
    expected = _rasterise(cam, world, faces)
    assert expected.sum() > 2000
    assert iou(frame.seg == 5, expected) >= 0.98
    assert not np.any(frame.seg == 6)
    assert set(np.unique(frame.seg)) <= {0, 5}
    # no green (the collision geom's colour) in the preview
    green = (frame.rgb[..., 1] > 150) & (frame.rgb[..., 0] < 80) & (frame.rgb[..., 2] < 80)
    assert not green.any()


def test_collision_geom_alone_leaves_depth_and_seg_empty():
    spec = new_spec(W, H)
    spec.worldbody.add_geom(name="c", type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.1, 0, 0], group=3)
    model = spec.compile()
    cam = Camera.from_focal(280.0, W, H, look_at([0.5, 0, 0], [0, 0, 0]))
    frame = _capture(model, cam, SegLookup(geoms={0: 7}))
    assert np.all(frame.depth == 0)  # background convention: 0 = no surface
    assert np.all(frame.seg == 0)
    assert np.all(frame.rgb == 0)


@pytest.mark.parametrize("K", [OFF_CENTRE_K, STRETCHED_K], ids=["off-centre", "stretched"])
def test_projected_sphere_centres_land_on_their_pixels(K):
    spec = new_spec(W, H)
    spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_PLANE, size=[2, 2, 0.1], pos=[0, 0, -0.2], group=0)
    centres = np.array([[0.0, 0.0, 0.0], [0.08, 0.05, 0.02], [-0.1, 0.04, -0.03],
                        [0.05, -0.09, 0.05], [-0.07, -0.06, 0.08], [0.12, -0.02, -0.05]])
    radius = 0.012
    for i, c in enumerate(centres):
        spec.worldbody.add_geom(name=f"s{i}", type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[radius, 0, 0],
                                pos=c.tolist(), group=2)
    model = spec.compile()
    lookup = SegLookup(geoms={mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, f"s{i}"): i + 1
                              for i in range(len(centres))})
    cam = Camera(K, look_at([0.15, -0.2, 0.45], [0, 0, 0]), W, H)
    frame = _capture(model, cam, lookup)
    uv, z = cam.project(centres)
    for i in range(len(centres)):
        mask = frame.seg == i + 1
        assert mask.sum() > 100
        ys, xs = np.nonzero(mask)
        np.testing.assert_allclose([xs.mean(), ys.mean()], uv[i], atol=0.3)
        px, py = np.round(uv[i]).astype(int)
        assert frame.seg[py, px] == i + 1
        # the surface seen at the centre pixel is the sphere's front, about one radius nearer
        assert z[i] - radius - 2e-3 < frame.depth[py, px] < z[i] - radius + 2e-3


def test_segmentation_with_more_than_255_scene_geoms():
    spec = new_spec(W, H)
    for i in range(300):  # a grid of small boxes, each its own seg id cycling 1..21
        x, y = i % 20, i // 20
        spec.worldbody.add_geom(name=f"g{i}", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.004, 0.004, 0.004],
                                pos=[-0.095 + 0.01 * x, -0.075 + 0.01 * y, 0.0], group=2)
    model = spec.compile()
    lookup = SegLookup(geoms={i: 1 + i % 21 for i in range(300)})
    cam = Camera.from_focal(600.0, W, H, look_at([0, 0, 0.5], [0, 0, 0], up=(0, 1, 0)))
    frame = _capture(model, cam, lookup)
    uv, _ = cam.project([[-0.095 + 0.01 * (i % 20), -0.075 + 0.01 * (i // 20), 0.004] for i in range(300)])
    px = np.round(uv).astype(int)
    assert [int(frame.seg[v, u]) for u, v in px] == [1 + i % 21 for i in range(300)]


def _skin_scene(angle):
    spec = new_spec(W, H)
    spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_PLANE, size=[2, 2, 0.1], pos=[0, 0, -0.1], group=0)
    verts, faces, w_tip = add_two_bone_skin(spec, root_pos=[-0.06, 0, 0])
    add_box_mesh_object(spec, "obj", (0.02, 0.02, 0.02), (0.0, 0.09, 0.0))
    model = spec.compile()
    data = mujoco.MjData(model)
    data.qpos[0] = angle
    mujoco.mj_forward(model, data)
    return model, data, verts, faces, w_tip


def _skinned_vertices(model, data, verts, w_tip, root_pos=(-0.06, 0, 0), length=0.12):
    """Linear-blend skinning with identity bind rotations, as MuJoCo does for <skin>."""
    out = np.zeros_like(verts)
    bind = [np.asarray(root_pos), np.asarray(root_pos) + [length / 2, 0, 0]]
    for b, (name, w) in enumerate((("skin_root", 1 - w_tip), ("skin_tip", w_tip))):
        body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
        rot = data.xmat[body].reshape(3, 3)
        out += w[:, None] * ((verts + root_pos - bind[b]) @ rot.T + data.xpos[body])
    return out


def test_skin_deforms_with_its_bones_in_segmentation_and_hand_image():
    angle = 0.9
    model, data, verts, faces, w_tip = _skin_scene(angle)
    lookup = SegLookup(geoms={mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "obj_visual"): 3},
                       skins={0: SEG_HAND})
    cam = Camera(OFF_CENTRE_K, look_at([0.0, -0.02, 0.4], [0, 0.02, 0], up=(0, 1, 0)), W, H)
    frame = _capture(model, cam, lookup, data=data)

    deformed = _rasterise(cam, _skinned_vertices(model, data, verts, w_tip), faces)
    rest = _rasterise(cam, verts + [-0.06, 0, 0], faces)
    hand = frame.seg == SEG_HAND
    assert hand.sum() > 1500
    assert iou(hand, deformed) >= 0.98
    assert iou(hand, rest) < 0.7  # the bend is visible: the skin follows the tip bone
    assert np.any(frame.seg == 3)

    # the hand-only image: the skin alone, shaded, black elsewhere (the object is absent)
    lit = frame.hand_mesh.max(axis=-1) > 0
    assert iou(lit, deformed) >= 0.98
    obj = frame.seg == 3
    assert not np.any(lit & obj)
    shades = frame.hand_mesh[hand]
    assert np.all(shades[:, 0] == shades[:, 1])  # grey material
    assert shades[:, 0].std() > 3  # shaded, not flat


def test_hand_image_does_not_depend_on_preview_style_and_preview_does():
    model, data, *_ = _skin_scene(0.5)
    lookup = SegLookup(skins={0: SEG_HAND})
    cam = Camera(OFF_CENTRE_K, look_at([0.0, -0.02, 0.4], [0, 0.02, 0], up=(0, 1, 0)), W, H)
    a = _capture(model, cam, lookup, data=data)
    style = PreviewStyle(light_dir=(1.0, 0.2, -0.3), light_diffuse=0.9, ambient=0.05,
                         skin_rgba={0: (0.1, 0.9, 0.1, 1.0)})
    b = _capture(model, cam, lookup, data=data, preview=style)
    np.testing.assert_array_equal(a.depth, b.depth)
    np.testing.assert_array_equal(a.seg, b.seg)
    np.testing.assert_array_equal(a.hand_mesh, b.hand_mesh)
    hand = a.seg == SEG_HAND
    assert np.abs(a.rgb[hand].astype(int) - b.rgb[hand].astype(int)).mean() > 20
    assert b.rgb[hand][:, 1].mean() > b.rgb[hand][:, 0].mean() + 30  # recoloured green


def test_random_textures_repaint_the_table():
    from synthetic_scene import build_demo_scene

    scene = build_demo_scene()
    data = mujoco.MjData(scene.model)
    scene.set_frame(data, 0, 2)
    cam = Camera.from_focal(280.0, W, H, look_at([0.3, -0.35, 0.3], [0, 0, 0]))
    with MujocoCapture(scene.model, cam, scene.seg_lookup) as cap:
        a = cap.capture(data)
        a_rgb = a.rgb.copy()
        cap.set_preview(PreviewStyle(texture_seed=7))
        b = cap.capture(data)
    table = (a.seg == 0) & (a.depth > 0)
    assert np.abs(a_rgb[table].astype(int) - b.rgb[table].astype(int)).mean() > 5
    np.testing.assert_array_equal(a.seg, b.seg)


def test_seg_lookup_is_checked():
    model = _wall_scene()
    cam = Camera.from_focal(280.0, W, H, look_at([0, 0, 1], [0, 0, 0], up=(0, 1, 0)))
    with pytest.raises(ConfigError, match="seg id"):
        SegLookup(geoms={0: 300})
    with pytest.raises(ConfigError, match="geom id 99"):
        MujocoCapture(model, cam, SegLookup(geoms={99: 1}))
    with pytest.raises(ConfigError, match="no geom named 'nope'"):
        SegLookup.from_names(model, geoms={"nope": 1})


def test_close_is_idempotent_and_capture_after_close_fails():
    model = _wall_scene()
    cam = Camera.from_focal(280.0, W, H, look_at([0, 0, 1], [0, 0, 0], up=(0, 1, 0)))
    cap = MujocoCapture(model, cam)
    cap.close()
    cap.close()
    with pytest.raises(RuntimeError, match="after close"):
        cap.capture(mujoco.MjData(model))
