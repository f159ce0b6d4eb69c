"""Scene USD: the table, objects at o0 and hand at h0 where the MuJoCo scene has them; a camera
that projects like K (as USD and as Isaac compute it), off-centre principal point included."""

import mujoco
import numpy as np
import pytest
from pxr import Usd, UsdGeom
from scipy.spatial.transform import Rotation

from pam_engine.capture.camera import Camera, intrinsics, look_at
from pam_engine.hand.pose import HandPose, make_transform
from pam_engine.objects import load_object
from pam_engine.sim.base import PlacedObject, SceneSpec
from pam_engine.sim.mujoco.scene import HandObjectScene
from pam_engine.usd import export_scene
from pam_engine.usd.camera import OPENCV_FLIP
from pam_engine.usd.scene import EpisodeScene
from pam_engine.usd.stage import world_pose

from .conftest import parse_physics

TOL = 1e-6
W, H = 720, 480


def off_centre_camera():
    K = intrinsics(600.0, 590.0, 331.7, 262.3)  # non-square pixels, principal point well off centre
    return Camera(K, look_at([0.45, -0.35, 0.4], [0.0, 0.0, 0.08]), W, H)


@pytest.fixture(scope="module")
def scene_pair(builtin_hand, tmp_path_factory):
    hand, art = builtin_hand
    rng = np.random.default_rng(0)
    mustard = load_object("006_mustard_bottle")
    o0 = make_transform(Rotation.from_euler("z", 0.7), [0.02, -0.03, 0.001])
    h0 = HandPose(make_transform(Rotation.from_rotvec([0.3, -1.2, 0.4]), [0.05, 0.12, 0.18]),
                  rng.uniform(art.lower, art.upper))
    scene = EpisodeScene(SceneSpec(hand, art, (PlacedObject(mustard, o0),)), h0, camera=off_centre_camera())
    path = tmp_path_factory.mktemp("usd") / "scene.usda"
    export_scene(path, scene)
    sim = HandObjectScene(hand, art, [PlacedObject(mustard, o0)])
    sim.set_base_pose(h0.wrist)
    sim.set_hand_state(h0)
    mujoco.mj_kinematics(sim.model, sim.data)
    return Usd.Stage.Open(str(path)), sim, scene


def test_hand_and_objects_stand_where_mujoco_has_them(scene_pair):
    stage, sim, scene = scene_pair
    for b, name in zip(sim.joint_bodies, sim.hand_info.joint_bodies):
        pose = world_pose(stage.GetPrimAtPath(f"/World/Hand/{name}"))
        np.testing.assert_allclose(pose[:3, 3], sim.data.xpos[b], atol=TOL)
        np.testing.assert_allclose(pose[:3, :3], sim.data.xmat[b].reshape(3, 3), atol=TOL)
    np.testing.assert_allclose(world_pose(stage.GetPrimAtPath("/World/Objects/object_0")), sim.object_pose(0), atol=TOL)
    # joint state = h0 (degrees), wrist joints zero: the base is anchored at h0's wrist
    for name, angle in zip(sim.hand_info.finger_joints, scene.hand_start.angles):
        value = stage.GetPrimAtPath(f"/World/Hand/joints/{name}").GetAttribute("state:angular:physics:position").Get()
        assert np.radians(value) == pytest.approx(angle, abs=TOL)
    table = UsdGeom.Cube(stage.GetPrimAtPath("/World/Table"))
    bound = table.ComputeWorldBound(Usd.TimeCode.Default(), UsdGeom.Tokens.default_).ComputeAlignedRange()
    g = sim.model.geom(sim.table_geom)
    np.testing.assert_allclose(np.array(bound.GetMax()) - np.array(bound.GetMin()), 2 * g.size, atol=TOL)
    np.testing.assert_allclose((np.array(bound.GetMax()) + np.array(bound.GetMin())) / 2, g.pos, atol=TOL)


def test_usd_physics_parses_the_scene_without_warnings(scene_pair, capfd):
    stage, _, _ = scene_pair
    capfd.readouterr()
    counts = parse_physics(stage)
    out, err = capfd.readouterr()
    assert "warning" not in (out + err).lower(), err
    assert counts["Articulation"] == 1 and counts["CubeShape"] == 1
    assert counts["RigidBody"] == 28 + 1  # hand links + the object


def points_in_view(camera, n=50, seed=1):
    rng = np.random.default_rng(seed)
    cam_points = np.stack([rng.uniform(-0.3, 0.3, n), rng.uniform(-0.2, 0.2, n), rng.uniform(0.3, 1.5, n)], axis=1)
    return camera.camera_to_world(cam_points)


def test_camera_projects_like_K_through_usd_lens_attributes(scene_pair):
    """USD's own camera model (Gf.Camera from the prim's attributes: focal length, apertures,
    aperture offsets, transform), projected to pixels with OpenCV's pixel centres."""
    stage, _, scene = scene_pair
    camera = scene.camera
    gf = UsdGeom.Camera(stage.GetPrimAtPath("/World/Camera")).GetCamera(Usd.TimeCode.Default())
    frustum = gf.frustum
    view_proj = np.array(frustum.ComputeViewMatrix() * frustum.ComputeProjectionMatrix(), dtype=np.float64)
    world = points_in_view(camera)
    clip = np.concatenate([world, np.ones((len(world), 1))], axis=1) @ view_proj  # USD: row vectors
    ndc = clip[:, :3] / clip[:, 3:]
    u = (ndc[:, 0] + 1) / 2 * W - 0.5
    v = (1 - ndc[:, 1]) / 2 * H - 0.5
    expected, _ = camera.project(world)
    np.testing.assert_allclose(np.stack([u, v], axis=1), expected, atol=0.01)
    near, far = gf.clippingRange.min, gf.clippingRange.max
    assert near > 0 and far > 1.5


def test_camera_projects_like_K_as_isaac_reads_it(scene_pair):
    """Isaac Lab's camera: the OpenCV pinhole lens attributes as intrinsics (what the RTX renderer
    draws with, since it ignores aperture offsets), the prim's world pose turned to the ROS/OpenCV
    optical frame (forward +Z, up -Y)."""
    stage, _, scene = scene_pair
    camera = scene.camera
    prim = stage.GetPrimAtPath("/World/Camera")
    assert prim.GetAttribute("omni:lensdistortion:model").Get() == "opencvPinhole"
    prefix = "omni:lensdistortion:opencvPinhole"
    fx, fy, cx, cy = (prim.GetAttribute(f"{prefix}:{k}").Get() for k in ("fx", "fy", "cx", "cy"))
    assert tuple(prim.GetAttribute(f"{prefix}:imageSize").Get()) == (W, H)
    assert all(prim.GetAttribute(f"{prefix}:{k}").Get() == 0.0 for k in ("k1", "k2", "p1", "p2"))
    pose = world_pose(prim)
    cam_to_world = pose.copy()
    cam_to_world[:3, :3] = pose[:3, :3] @ OPENCV_FLIP
    world = points_in_view(camera)
    p = (world - cam_to_world[:3, 3]) @ cam_to_world[:3, :3]
    uv = np.stack([fx * p[:, 0] / p[:, 2] + cx, fy * p[:, 1] / p[:, 2] + cy], axis=1)
    expected, _ = camera.project(world)
    np.testing.assert_allclose(uv, expected, atol=0.01)
    # and the pinhole focal length / aperture ratio alone (square-pixel renderers) gives fx
    usd = UsdGeom.Camera(prim)
    assert W * usd.GetFocalLengthAttr().Get() / usd.GetHorizontalApertureAttr().Get() == pytest.approx(camera.fx, rel=1e-6)
    assert H * usd.GetFocalLengthAttr().Get() / usd.GetVerticalApertureAttr().Get() == pytest.approx(camera.fy, rel=1e-6)


def test_scene_from_request_starts_where_simulate_starts():
    """o0 and h0 of the exported scene are frame 0 of ``pam simulate``'s run with that seed."""
    from pam_engine.pose import ObjectSpec, Stage1Config, Stage1Request, simulate
    from pam_engine.usd.scene import scene_from_request

    # the same config for both: the grasp's physical trial plays the episode's own plan, so the
    # episode length is part of what chooses hT (and so h0)
    cfg = Stage1Config(num_frames=9)
    request = Stage1Request([ObjectSpec("006_mustard_bottle")], seed=3)
    scene = scene_from_request(request, cfg)
    traj = simulate(Stage1Request([ObjectSpec("006_mustard_bottle")], seed=3), cfg)
    np.testing.assert_allclose(scene.hand_start.wrist, traj.wrist_pose[0], atol=1e-12)
    np.testing.assert_allclose(scene.hand_start.angles, traj.joint_angles[0], atol=1e-12)
    np.testing.assert_allclose(scene.objects[0].pose[:3], traj.pose_y[0, 0], atol=1e-12)


def test_the_skinned_skin_stands_at_h0(scene_pair):
    """The UsdSkel skeleton's joints (what an RTX renderer skins with) are the posed bones."""
    from pxr import UsdSkel

    stage, sim, _ = scene_pair
    cache = UsdSkel.Cache()
    cache.Populate(UsdSkel.Root(stage.GetPrimAtPath("/World/Hand/skin")), Usd.TraverseInstanceProxies())
    query = cache.GetSkelQuery(UsdSkel.Skeleton(stage.GetPrimAtPath("/World/Hand/skin/skeleton")))
    joints = np.array(query.ComputeJointWorldTransforms(UsdGeom.XformCache()), dtype=np.float64)
    np.testing.assert_allclose(joints[:, 3, :3], sim.data.xpos[sim.joint_bodies], atol=1e-5)


def test_frictions_are_the_mujoco_scenes(scene_pair):
    """Each surface's sliding friction as the MuJoCo scene's geoms have it, combined by max."""
    from pxr import UsdPhysics, UsdShade

    stage, sim, _ = scene_pair
    m = sim.model

    def friction(prim_path):
        binding = UsdShade.MaterialBindingAPI(stage.GetPrimAtPath(prim_path))
        material = binding.ComputeBoundMaterial("physics")[0].GetPrim()
        assert material.GetAttribute("physxMaterial:frictionCombineMode").Get() == "max"
        return UsdPhysics.MaterialAPI(material).GetDynamicFrictionAttr().Get()

    geom = lambda name: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, name)  # noqa: E731
    assert friction("/World/Table") == pytest.approx(m.geom_friction[geom("table"), 0])
    assert friction("/World/Objects/object_0/collision/hull_0") == pytest.approx(m.geom_friction[geom("object_0_hull0"), 0])
    assert friction("/World/Hand/hand_index3/hand_index3_col") == pytest.approx(m.geom_friction[geom("hand_index3_col"), 0])
