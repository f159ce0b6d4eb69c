"""The Replicator writer's conversion on CPU: annotator dicts filled exactly as Replicator lays
them out, from a MuJoCo capture put into Replicator's conventions, must give back the MuJoCo
episode."""

import numpy as np
import pytest

from pam_engine.cli import main
from pam_engine.dataset.reader import list_episodes, load_episode
from pam_engine.dataset.writer import EpisodeWriter
from pam_engine.kitless.replicator_format import (
    ArticulationState,
    ReplicatorDataError,
    ReplicatorEpisodeBuilder,
    camera_from_params,
    camera_params_from_camera,
    usd_camera_attributes,
)
from replicator_frames import replicator_frames, scene_of

@pytest.fixture(scope="module")
def datasets(mujoco_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("replicator")
    EpisodeWriter(root / "mujoco").write(mujoco_run.episode, index=0)
    builder = ReplicatorEpisodeBuilder(scene_of(mujoco_run))
    for data, state in replicator_frames(mujoco_run):
        builder.add_frame(data, state)
    builder.write(root / "replicator", index=0)
    return root


def test_replicator_episode_equals_the_mujoco_episode(datasets):
    ref = load_episode(list_episodes(datasets / "mujoco")[0])
    got = load_episode(list_episodes(datasets / "replicator")[0])
    assert set(got.labels) == set(ref.labels)
    for key, value in ref.labels.items():
        assert got.labels[key].shape == value.shape, key
        if value.dtype == bool:
            np.testing.assert_array_equal(got.labels[key], value, err_msg=key)
        else:
            np.testing.assert_allclose(got.labels[key], value, atol=1e-6, rtol=0, err_msg=key)
    np.testing.assert_array_equal(got.seg, ref.seg)
    np.testing.assert_array_equal(got.depth, ref.depth)
    np.testing.assert_allclose(got.K, ref.K, atol=1e-9, rtol=0)
    np.testing.assert_allclose(got.world_to_cam, ref.world_to_cam, atol=1e-9, rtol=0)
    assert got.meta.object_ids == ref.meta.object_ids and got.meta.object_names == ref.meta.object_names
    assert {255, 21, 9} <= set(np.unique(got.seg).tolist())  # hand and both objects in view


def test_replicator_dataset_passes_pam_validate(datasets, capsys):
    assert main(["validate", str(datasets / "replicator")]) == 0


def test_camera_params_round_trip_in_centimetre_stages(mujoco_run):
    cam = camera_from_params(camera_params_from_camera(mujoco_run.camera, meters_per_unit=0.01))
    np.testing.assert_allclose(cam.K, mujoco_run.camera.K, atol=1e-9, rtol=0)
    np.testing.assert_allclose(cam.world_to_cam, mujoco_run.camera.world_to_cam, atol=1e-9, rtol=0)


def test_replicator_projection_of_a_point_lands_on_the_engine_pixel(mujoco_run):
    """Replicator's documented use of camera_params (row vectors, p @ view @ proj, NDC y up,
    raster pixel centres at +0.5) agrees with the engine's OpenCV projection."""
    params = camera_params_from_camera(mujoco_run.camera)
    view, proj = params["cameraViewTransform"].reshape(4, 4), params["cameraProjection"].reshape(4, 4)
    points = mujoco_run.trajectory.joint_3d[4]
    clip = np.pad(points, ((0, 0), (0, 1)), constant_values=1.0) @ view @ proj
    ndc = clip[:, :2] / clip[:, 3:]
    raster = np.stack([(ndc[:, 0] + 1) / 2 * 160, (1 - ndc[:, 1]) / 2 * 128], axis=1)
    uv, _ = mujoco_run.camera.project(points)
    np.testing.assert_allclose(raster - 0.5, uv, atol=1e-9)


def test_usd_camera_attributes_agree_with_usd_own_frustum(mujoco_run):
    """USD's own camera maths (pxr's GfCamera) on the authored attributes gives the view and
    projection matrices the conversion reads (checks -Z forward, +Y up, row-major, offsets)."""
    Gf = pytest.importorskip("pxr.Gf")
    from pxr import Usd, UsdGeom

    cam = mujoco_run.camera
    attrs = usd_camera_attributes(cam)
    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    prim = UsdGeom.Camera.Define(stage, "/World/Camera")
    for name in ("focalLength", "horizontalAperture", "verticalAperture", "horizontalApertureOffset",
                 "verticalApertureOffset"):
        prim.GetPrim().GetAttribute(name).Set(float(attrs[name]))
    prim.AddTransformOp().Set(Gf.Matrix4d(attrs["transform"].T.tolist()))  # USD stores row-vector matrices
    frustum = prim.GetCamera(Usd.TimeCode.Default()).frustum
    params = {"cameraViewTransform": np.array(frustum.ComputeViewMatrix()).reshape(-1),
              "cameraProjection": np.array(frustum.ComputeProjectionMatrix()).reshape(-1),
              "renderProductResolution": [cam.width, cam.height], "metersPerSceneUnit": 1.0}
    got = camera_from_params(params)
    # USD's camera attributes are 32-bit floats: K survives to float precision; the pose (a
    # double matrix) exactly. A sign or half-pixel slip would be off by far more.
    np.testing.assert_allclose(got.K, cam.K, rtol=3e-7, atol=0)
    np.testing.assert_allclose(got.world_to_cam, cam.world_to_cam, atol=1e-9, rtol=0)


def test_missing_annotator_is_named_and_nothing_is_written(mujoco_run, tmp_path):
    frames = replicator_frames(mujoco_run)
    builder = ReplicatorEpisodeBuilder(scene_of(mujoco_run))
    builder.add_frame(*frames[0])
    data, state = frames[1]
    del data["distance_to_image_plane"]
    with pytest.raises(ReplicatorDataError, match="distance_to_image_plane"):
        builder.add_frame(data, state)
    out = tmp_path / "out"
    with pytest.raises(ReplicatorDataError):
        bad = ReplicatorEpisodeBuilder(scene_of(mujoco_run))
        data, state = replicator_frames(mujoco_run)[0]
        del data["camera_params"]
        bad.add_frame(data, state)
        bad.write(out)
    assert not out.exists() or not any(out.iterdir())


def test_unknown_segmentation_label_is_named_and_nothing_is_written(mujoco_run, tmp_path):
    frames = replicator_frames(mujoco_run)
    scene = scene_of(mujoco_run)
    scene.semantics["/World/Stray/mug"] = "025_mug"  # labelled in the stage, not part of the episode
    frames[3][0]["instance_id_segmentation_fast"]["info"]["idToLabels"]["40"] = "/World/Stray/mug/mesh"
    builder = ReplicatorEpisodeBuilder(scene)
    out = tmp_path / "out"
    with pytest.raises(ReplicatorDataError, match="025_mug"):
        for data, state in frames:
            builder.add_frame(data, state)
        builder.write(out)
    assert not out.exists()


def test_unlabelled_prims_are_background():
    from pam_engine.kitless.replicator_format import segmentation_lookup

    table = segmentation_lookup({"0": "BACKGROUND", "3": "/World/Props/lamp/mesh", "4": "/World/PAM/Hand/skin"},
                                {"/World/PAM/Hand": "hand"}, ["061_foam_brick"])
    assert table.tolist() == [0, 0, 0, 0, 255]


def test_missing_hand_joint_is_named(mujoco_run):
    data, state = replicator_frames(mujoco_run)[0]
    joints = dict(state.joint_positions)
    name = next(iter(joints))
    del joints[name]
    builder = ReplicatorEpisodeBuilder(scene_of(mujoco_run))
    with pytest.raises(ReplicatorDataError, match=name):
        builder.add_frame(data, ArticulationState(state.wrist_pose, joints, state.object_poses))


def test_lens_model_cameras_take_k_from_the_prim(mujoco_run):
    from pam_engine.kitless.replicator_format import intrinsics_from_lens

    cam = mujoco_run.camera
    params = camera_params_from_camera(cam)
    params["cameraModel"] = "opencvPinhole"
    with pytest.raises(ReplicatorDataError, match="opencvPinhole"):
        camera_from_params(params)
    prefix = "omni:lensdistortion:opencvPinhole:"
    lens = {prefix + "fx": cam.fx, prefix + "fy": cam.fy, prefix + "cx": cam.cx, prefix + "cy": cam.cy}
    got = camera_from_params(params, intrinsics_from_lens(lens))
    np.testing.assert_allclose(got.K, cam.K, atol=1e-9, rtol=0)
    np.testing.assert_allclose(got.world_to_cam, cam.world_to_cam, atol=1e-9, rtol=0)


def test_centimetre_stage_gives_the_same_episode(mujoco_run):
    """Stage units are converted with metersPerSceneUnit: depth, poses and extrinsics."""
    builder = ReplicatorEpisodeBuilder(scene_of(mujoco_run))
    for data, state in replicator_frames(mujoco_run, meters_per_unit=0.01):
        builder.add_frame(data, state)
    got, ref = builder.build(), mujoco_run.episode
    np.testing.assert_allclose(got.depth, ref.depth, rtol=1e-6, atol=0)
    for key in ("joint_3d", "pose_m", "pose_y", "joint_3d_world", "wrist_pose_world"):
        np.testing.assert_allclose(got.labels[key], ref.labels[key], atol=1e-6, rtol=0, err_msg=key)
    np.testing.assert_allclose(got.meta.world_to_cam, ref.meta.world_to_cam, atol=1e-9, rtol=0)
