"""The window's stage work: an episode's scene and trajectory put into a USD stage through
pam_engine.usd, read back as the Replicator writer reads it (labels, articulation state)."""

import numpy as np
import pytest

pytest.importorskip("pxr")
usd_scene = pytest.importorskip("pam_engine.usd.scene", reason="USD scene authoring (pam_engine.usd) not present")

from pxr import Usd  # noqa: E402

from pam_engine.kitless.replicator_format import label_to_seg_id  # noqa: E402
from pam_engine.kitless.usd_stage import articulation_state, load_trajectory, semantics_from_stage  # noqa: E402


@pytest.fixture(scope="module")
def stage_scene(mujoco_run):
    stage = Usd.Stage.CreateInMemory()
    scene = load_trajectory(stage, mujoco_run.trajectory, camera=mujoco_run.camera)
    return stage, scene


def test_labels_of_the_stage_map_to_dexycb_ids(stage_scene, mujoco_run):
    stage, scene = stage_scene
    semantics = semantics_from_stage(stage)
    names = mujoco_run.trajectory.object_names
    for k, path in enumerate(scene.objects):
        assert label_to_seg_id(semantics[path], names) == mujoco_run.trajectory.object_ids[k]
    assert "hand" in semantics.values() and "table" in semantics.values()


def test_articulation_state_read_back_from_the_time_samples(stage_scene, mujoco_run):
    stage, scene = stage_scene
    traj = mujoco_run.trajectory
    for t in (0, traj.num_frames // 2, traj.num_frames - 1):
        state = articulation_state(stage, scene, t)
        np.testing.assert_allclose([state.joint_positions[n] for n in traj.joint_names], traj.joint_angles[t], atol=1e-5)
        np.testing.assert_allclose(state.wrist_pose, traj.wrist_pose[t], atol=1e-5)
        for k, pose in enumerate(state.object_poses):
            np.testing.assert_allclose(pose[:3], traj.pose_y[t, k], atol=1e-5)


def test_randomised_look_lands_on_the_stage(mujoco_run):
    from pxr import UsdGeom, UsdLux

    from pam_engine.config import load_config
    from pam_engine.pipeline import GenerateConfig
    from pam_engine.kitless.randomization import episode_draws
    from pam_engine.kitless.replicator_format import camera_from_params
    from pam_engine.kitless.usd_stage import SCENE_ROOT, apply_draws

    stage = Usd.Stage.CreateInMemory()
    scene = load_trajectory(stage, mujoco_run.trajectory, camera=mujoco_run.camera)
    cfg = load_config(GenerateConfig, None, ["width=160", "height=128"])
    draws = episode_draws(cfg, 5, mujoco_run.trajectory.pose_y[0, 0, :, 3], len(scene.objects))
    apply_draws(stage, scene, draws)
    key = UsdLux.DistantLight(stage.GetPrimAtPath(f"{SCENE_ROOT}/Lights/key"))
    assert key.GetIntensityAttr().Get() == pytest.approx(draws.key_intensity)
    m = np.array(UsdGeom.Xformable(key.GetPrim()).ComputeLocalToWorldTransform(Usd.TimeCode.Default())).T
    np.testing.assert_allclose(-m[:3, 2], draws.light_direction, atol=1e-9)
    cam = UsdGeom.Camera(stage.GetPrimAtPath(scene.camera)).GetCamera(Usd.TimeCode.Default())
    view = np.array(cam.frustum.ComputeViewMatrix()).reshape(-1)
    proj = np.array(cam.frustum.ComputeProjectionMatrix()).reshape(-1)
    got = camera_from_params({"cameraViewTransform": view, "cameraProjection": proj, "renderProductResolution": [160, 128]})
    np.testing.assert_allclose(got.world_to_cam, draws.camera.world_to_cam, atol=1e-6)


def test_rtx_capture_path_states_from_the_stage_give_the_mujoco_labels(mujoco_run):
    """The window's RTX capture path without the renderer: the trajectory played back as USD
    time samples, the articulation state read at each time code, Replicator-format frames (here
    from the MuJoCo capture) -> the episode's labels equal the MuJoCo episode's (USD stores joint
    angles as 32-bit floats, hence 1e-5)."""
    from replicator_frames import replicator_frames

    from pam_engine.kitless.replicator_format import ReplicatorEpisodeBuilder, scene_for_trajectory
    from pam_engine.kitless.usd_stage import SCENE_ROOT

    stage = Usd.Stage.CreateInMemory()
    scene = load_trajectory(stage, mujoco_run.trajectory, camera=mujoco_run.camera)
    semantics = semantics_from_stage(stage)  # the labels the USD assets carry, by their real prim paths
    builder = ReplicatorEpisodeBuilder(scene_for_trajectory(mujoco_run.trajectory, semantics, "a hand grasps a foam brick"))
    frames = replicator_frames(mujoco_run, hand_prim=scene.hand_root, object_prims=list(scene.objects),
                               table_prim=f"{SCENE_ROOT}/Table")
    for t, (data, _) in enumerate(frames):
        builder.add_frame(data, articulation_state(stage, scene, t))
    got, ref = builder.build(), mujoco_run.episode
    for key in ("joint_3d", "pose_m", "pose_y", "joint_3d_world", "wrist_pose_world", "joint_2d"):
        tol = 1e-3 if key == "joint_2d" else 1e-5  # pixels vs metres/radians
        np.testing.assert_allclose(got.labels[key], ref.labels[key], atol=tol, rtol=0, err_msg=key)
    np.testing.assert_array_equal(got.seg, ref.seg)
