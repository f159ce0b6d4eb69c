"""The world-model outputs of an episode (docs/worldmodels.md): HandWorld's 138-D actions and
DWM's static-scene video."""

import json
import shutil

import numpy as np
import pytest

from pam_engine.capture.camera import Camera
from pam_engine.cli import main
from pam_engine.config import load_config
from pam_engine.dataset.actions import ACTION_DIM, LEFT_HAND, decode_actions, handworld_actions
from pam_engine.dataset.reader import list_episodes, load_episode
from pam_engine.dataset.validate import validate_dataset
from pam_engine.errors import ConfigError
from pam_engine.pipeline import GenerateConfig, Generator
from pam_engine.pose import ObjectSpec, Stage1Config, Stage1Request
from pam_engine.pose.stage import run_stage1

SMALL = ["width=320", "height=240", "randomization.objects=[061_foam_brick]", "stage1.num_frames=17",
         "randomization.camera.distance=[0.6,0.7]", "randomization.camera.elevation_deg=[35,55]"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("wm") / "data"
    cfg = load_config(GenerateConfig, None, SMALL + ["episodes=1", "seed=3", "keep_failed=true"])
    summary = Generator(cfg, out).run(progress=False)
    assert summary.written == 1
    return out


@pytest.fixture(scope="module")
def episode(dataset):
    return load_episode(list_episodes(dataset)[0])


@pytest.fixture(scope="module")
def scene_run():
    """One simulated grasp, and a camera that sees the hand from the first frame on."""
    run = run_stage1(Stage1Request([ObjectSpec("061_foam_brick")], seed=3), Stage1Config(num_frames=9))
    traj = run.trajectory
    mid = (traj.pose_y[0, 0, :, 3] + traj.wrist_pose[0, :3, 3]) / 2
    camera = Camera.preset("pam", 615, 320, 240).looking_at(mid + np.array([0.5, -0.5, 0.5]), mid)
    return run, camera


# --- HandWorld's actions -------------------------------------------------------------------


def test_actions_round_trip_to_labels_and_extrinsics(episode):
    actions, mask = episode.actions, episode.actions_mask
    t = episode.num_frames
    assert actions.dtype == np.float32 and actions.shape == (t, ACTION_DIM)
    decoded = episode.decoded_actions()
    np.testing.assert_allclose(decoded["right"], episode.labels["joint_3d"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(decoded["world_to_cam"], np.broadcast_to(episode.world_to_cam, (t, 4, 4)), rtol=0, atol=1e-6)
    # the rotation block is the world->camera rotation, row-major
    np.testing.assert_allclose(actions[0, :9], episode.world_to_cam[:3, :3].reshape(-1), atol=1e-6)
    assert mask.dtype == bool and mask[:, 0].all() and not mask[:, 1].any()
    assert not np.any(actions[:, LEFT_HAND])
    # world-frame keypoints follow from the two
    world = episode.decoded_actions("world")["right"]
    np.testing.assert_allclose(world, episode.labels["joint_3d_world"], rtol=0, atol=1e-6)


def test_actions_follow_a_moving_camera_and_masks():
    rng = np.random.default_rng(0)
    t = 5
    joints = rng.normal(size=(t, 21, 3)).astype(np.float32)
    w2c = np.stack([Camera.default().looking_at(rng.uniform(-1, 1, 3) + [0, 0, 2], [0, 0, 0]).world_to_cam
                    for _ in range(t)])
    actions, mask = handworld_actions(joints, w2c)
    decoded = decode_actions(actions, mask)
    np.testing.assert_allclose(decoded["world_to_cam"], w2c, atol=1e-6)
    np.testing.assert_array_equal(decoded["right"], joints)
    mask[2, 0] = False  # a frame without the right hand decodes to zeros
    assert not decode_actions(actions, mask)["right"][2].any()
    with pytest.raises(ConfigError, match="8 m"):
        far = w2c.copy()
        far[:, 0, 3] = 9.0
        handworld_actions(joints, far)
    with pytest.raises(ConfigError, match=r"\(T, 138\)"):
        decode_actions(actions[:, :100])


def test_validate_catches_actions_that_do_not_round_trip(dataset, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(dataset, bad)
    path = list_episodes(bad)[0] / "actions.npy"
    actions = np.load(path)
    actions[3, 12] += 1e-4  # 0.1 mm on one keypoint
    np.save(path, actions)
    problems = validate_dataset(bad).episodes["episode_000000"]
    assert any("joint_3d" in p for p in problems), problems
    path.unlink()
    problems = validate_dataset(bad).episodes["episode_000000"]
    assert "missing actions.npy" in problems


def test_world_model_outputs_are_declared_and_optional(dataset, tmp_path):
    desc = json.loads((dataset / "dataset.json").read_text())
    assert desc["features"]["actions"]["shape"] == [17, 138]
    assert desc["features"]["actions_mask"]["dtype"] == "bool"
    assert desc["features"]["video.static"]["file"] == "static.mp4"
    meta = json.loads((list_episodes(dataset)[0] / "meta.json").read_text())
    assert meta["extra"]["world_models"] == {"actions": "actions.npy", "actions_mask": "actions_mask.npy",
                                             "static": "static.mp4"}
    off = load_config(GenerateConfig, None, SMALL + ["world_models.actions=false", "world_models.static_video=false"])
    Generator(off, tmp_path / "off")
    features = json.loads((tmp_path / "off" / "dataset.json").read_text())["features"]
    assert "actions" not in features and "video.static" not in features


# --- DWM's static scene --------------------------------------------------------------------


def test_static_scene_has_no_hand_and_matches_the_first_frame_where_the_hand_is_absent(scene_run):
    run, camera = scene_run
    traj, scene = run.trajectory, run.scene
    state = np.random.default_rng(7)
    interaction = scene.capture(traj, camera, np.random.default_rng(7))  # random preview look
    static = scene.capture_static(traj, camera, state)
    hand0 = interaction.seg[0] == 255
    assert hand0.sum() > 500  # the hand is in view: the comparison means something
    assert not np.any(static.seg == 255)
    np.testing.assert_array_equal(static.rgb[0][~hand0], interaction.rgb[0][~hand0])
    np.testing.assert_array_equal(static.seg[0][~hand0], interaction.seg[0][~hand0])
    assert np.abs(static.rgb[0][hand0].astype(int) - interaction.rgb[0][hand0]).mean() > 5  # the hand is gone
    # the objects stay where they started while the interaction lifts them
    last_obj = (interaction.seg[-1] == traj.object_ids[0]) & ~(interaction.seg[-1] == 255)
    assert np.count_nonzero(static.seg[-1] == traj.object_ids[0]) == np.count_nonzero(static.seg[0] == traj.object_ids[0])
    assert not np.array_equal(last_obj, static.seg[-1] == traj.object_ids[0])
    # a static camera is rendered once
    assert static.rgb.strides[0] == 0 and np.array_equal(static.rgb[-1], static.rgb[0])


def test_static_scene_follows_a_moving_camera(scene_run):
    run, camera = scene_run
    traj, scene = run.trajectory, run.scene
    other = camera.with_pose(Camera.default().looking_at(camera.position + [0.1, 0.1, 0.0],
                                                         traj.pose_y[0, 0, :, 3]).world_to_cam)
    t = traj.num_frames
    path = [camera] * 4 + [other] * (t - 4)
    static = scene.capture_static(traj, path, None)
    alone = scene.capture_static(traj, other, None)
    assert np.array_equal(static.rgb[3], static.rgb[0]) and not np.array_equal(static.rgb[4], static.rgb[0])
    np.testing.assert_array_equal(static.rgb[4:], alone.rgb[4:])
    np.testing.assert_array_equal(static.depth[5], alone.depth[0])
    with pytest.raises(ConfigError, match="cameras for"):
        scene.capture_static(traj, path[:3], None)


def test_static_video_file_matches_the_interaction_first_frame(episode):
    static, sim = episode.video("static"), episode.video("sim_rgb")
    assert static.shape == sim.shape
    hand = episode.seg[0] == 255
    diff = np.abs(static[0].astype(int) - sim[0])[~hand]
    assert diff.mean() < 2.0  # H.264 at crf 18, both encoded from identical pixels there
    assert main(["validate", str(episode.path.parent)]) == 0


def test_a_dataset_from_before_the_world_model_outputs_resumes_only_without_them(tmp_path):
    from pam_engine.errors import OutputError

    cfg = load_config(GenerateConfig, None, SMALL)
    Generator(cfg, tmp_path / "old")
    path = tmp_path / "old" / "dataset.json"
    desc = json.loads(path.read_text())
    del desc["config"]["world_models"]  # as an engine without them wrote it
    path.write_text(json.dumps(desc))
    with pytest.raises(OutputError, match="world_models.actions, world_models.static_video"):
        Generator(cfg, tmp_path / "old")
    Generator(load_config(GenerateConfig, None, SMALL + ["world_models.actions=false",
                                                         "world_models.static_video=false"]), tmp_path / "old")
