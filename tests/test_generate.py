"""pam generate end to end on the embedded default, and the alignment of what it writes."""

import os

import cv2
import numpy as np
import pytest
import trimesh

from pam_engine.cli import main
from pam_engine.config import load_config
from pam_engine.dataset.reader import list_episodes, load_episode
from pam_engine.errors import ConfigError, OutputError
from pam_engine.pipeline import GenerateConfig, Generator
from pam_engine.objects import load_object

SMALL = ["width=320", "height=240", "randomization.objects=[061_foam_brick]", "randomization.preview=false",
         "randomization.camera.distance=[0.4,0.5]", "randomization.camera.elevation_deg=[35,55]"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "data"
    # keep_failed: the alignment checks hold whether or not this grasp lifts the brick
    cfg = load_config(GenerateConfig, None, SMALL + ["episodes=1", "seed=3", "keep_failed=true"])
    summary = Generator(cfg, out).run(progress=False)
    assert summary.written == 1, (out / "failures.jsonl").read_text() if (out / "failures.jsonl").exists() else ""
    return out


@pytest.fixture(scope="module")
def episode(dataset):
    return load_episode(list_episodes(dataset)[0])


def test_episode_folder_is_complete_and_valid(dataset, capsys):
    names = {p.name for p in list_episodes(dataset)[0].iterdir()}
    assert {"sim_rgb.mp4", "depth.mp4", "seg.mp4", "hand_keypoints.mp4", "hand_mesh.mp4", "normal.mp4",
            "labels.npz", "meta.json", "depth_raw.mkv", "seg_raw.npz"} <= names
    assert "video.mp4" not in names  # no diffusion weights configured
    assert main(["validate", str(dataset)]) == 0


def test_reprojected_joint_3d_gives_joint_2d(episode):
    K = episode.K
    labels = episode.labels
    j3, j2 = labels["joint_3d"], labels["joint_2d"]
    uvw = j3 @ K.T
    np.testing.assert_allclose(uvw[..., :2] / uvw[..., 2:], j2, atol=1e-3)


def test_episodes_use_the_pam_preset_and_record_their_map_style(episode):
    """By default the camera is PAM's stretched DexYCB geometry (here 320x240 from a 284x240 canvas)."""
    K = episode.K
    assert K[0, 0] == pytest.approx(K[1, 1] * 320 / 284)
    assert episode.meta.extra["maps"] == {"depth": "pam", "limb_order": "pam", "keypoint_canvas": [284, 240]}


def test_stage2_paints_on_the_pam_canvas_by_default():
    """PAM's Stage II was trained on unstretched 640x480 frames; Stage III on 720x480 ones."""
    cfg = load_config(GenerateConfig, None, []).resolve()
    assert cfg.randomization.camera.preset == "pam" and cfg.diffusion.stage2.size == (640, 480)
    assert (cfg.diffusion.width, cfg.diffusion.height) == (720, 480)
    assert cfg.resolve() == cfg  # resolving a resolved config changes nothing
    square = load_config(GenerateConfig, None, ["randomization.camera.preset=square"]).resolve()
    assert square.diffusion.stage2.size is None
    # a size the user chose stays
    own = load_config(GenerateConfig, None, ["diffusion.stage2.size=[720,480]"]).resolve({"diffusion": {"stage2": {"size": [720, 480]}}})
    assert own.diffusion.stage2.size == (720, 480)
    with pytest.raises(ConfigError, match="pam, square"):
        load_config(GenerateConfig, None, ["randomization.camera.preset=fisheye"])
    with pytest.raises(ConfigError, match="pam, grey"):
        load_config(GenerateConfig, None, ["maps.depth=gray"])


def test_visible_keypoints_land_on_hand_pixels(episode):
    seg = episode.seg
    labels = episode.labels
    hand = (seg == 255).astype(np.uint8)
    checked = 0
    for t in range(seg.shape[0]):
        grown = cv2.dilate(hand[t], np.ones((7, 7), np.uint8))  # 3 px around the hand
        for (u, v), vis in zip(labels["joint_2d"][t], labels["joint_visible"][t]):
            if vis:
                assert grown[int(round(v)), int(round(u))], (t, u, v)
                checked += 1
    assert checked > 21 * 10


def test_fingertip_depth_matches_its_camera_z(episode):
    """Rendered depth at hand pixels equals a ray cast into the hand mesh posed by the labels'
    camera-frame pose_m; where that ray meets the fingertip itself, depth is the tip's z."""
    from pam_engine.pose import HandCache

    hand, _ = HandCache.get(None)
    labels, depth, seg, K = episode.labels, episode.depth, episode.seg, episode.K
    checked, tips_seen = 0, 0
    for t in range(0, 49, 4):
        out = hand.forward(labels["pose_m"][t, :48], transl=labels["pose_m"][t, 48:])
        mesh = trimesh.Trimesh(out.vertices, hand.faces, process=False)
        np.testing.assert_allclose(out.keypoints, labels["joint_3d"][t], atol=1e-5)
        for k in (4, 8, 12, 16, 20):
            u, v = np.round(labels["joint_2d"][t, k]).astype(int)
            if not (0 <= u < depth.shape[2] and 0 <= v < depth.shape[1]) or seg[t, v, u] != 255:
                continue
            ray = np.linalg.solve(K, [u, v, 1.0])
            hits, _, _ = mesh.ray.intersects_location([[0.0, 0.0, 0.0]], [ray / np.linalg.norm(ray)])
            first = hits[np.argmin(hits[:, 2])]
            assert abs(depth[t, v, u] - first[2]) < 0.002, (t, k, depth[t, v, u], first)
            checked += 1
            # where the fingertip is what the pixel shows, depth is the tip's z within the
            # skin offset (the tip vertex vs the surface seen there: at most a finger radius)
            if np.linalg.norm(first - labels["joint_3d"][t, k]) < 0.012:
                assert abs(depth[t, v, u] - labels["joint_3d"][t, k, 2]) < 0.012
                tips_seen += 1
    assert checked >= 12 and tips_seen >= 3


def test_object_silhouette_matches_its_segmentation(episode):
    K = episode.K
    mesh = load_object("061_foam_brick").mesh
    pose = episode.labels["pose_y"][0, 0]  # frame 0: the hand is away from the object
    cam_pts = mesh.vertices @ pose[:, :3].T + pose[:, 3]
    uv = cam_pts @ K.T
    uv = uv[:, :2] / uv[:, 2:]
    h, w = episode.seg.shape[1:]
    mask = np.zeros((h, w), np.uint8)
    for face in mesh.faces:
        cv2.fillConvexPoly(mask, np.round(uv[face] * 16).astype(np.int32), 1, lineType=cv2.LINE_8, shift=4)
    seg = episode.seg[0] == 21
    iou = (seg & (mask > 0)).sum() / (seg | (mask > 0)).sum()
    assert iou >= 0.95, iou


def test_labels_are_in_the_camera_frame(episode):
    w2c = episode.world_to_cam
    labels = episode.labels
    world = labels["joint_3d_world"]
    np.testing.assert_allclose(world @ w2c[:3, :3].T + w2c[:3, 3], labels["joint_3d"], atol=1e-6)
    assert (labels["joint_3d"][..., 2] > 0).all()


def test_bad_output_folders_are_refused_before_work(tmp_path):
    cfg = load_config(GenerateConfig, None, SMALL)
    foreign = tmp_path / "holds_stuff"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="notes.txt"):
        Generator(cfg, foreign)
    if os.geteuid() != 0:  # root can write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(OutputError, match="cannot be written"):
            Generator(cfg, locked / "out")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OutputError):
        Generator(cfg, blocker / "out")


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="randomization.no_such_key"):
        load_config(GenerateConfig, None, ["randomization.no_such_key=1"])
    with pytest.raises(ConfigError, match="'episodes'"):
        load_config(GenerateConfig, None, ["episodes=many"])
    path = tmp_path / "c.yaml"
    path.write_text("stage1:\n  num_frames: [1, 2]\n")
    with pytest.raises(ConfigError, match="stage1.num_frames"):
        load_config(GenerateConfig, path)
    with pytest.raises(ConfigError, match="divisible by 16"):
        Generator(load_config(GenerateConfig, None, ["width=650"]), tmp_path / "x")
    assert not (tmp_path / "x").exists()
    assert main(["generate", "--out", str(tmp_path / "y"), "--set", "height=470"]) == 2


def test_an_interrupted_run_leaves_no_partial_episode_and_resumes(tmp_path, monkeypatch):
    import pam_engine.dataset.writer as writer_module

    out = tmp_path / "data"
    cfg = load_config(GenerateConfig, None, SMALL + ["episodes=2", "seed=3"])
    calls = {"n": 0}
    real = writer_module.write_video

    def dying_write_video(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the user hits Ctrl-C mid-episode
        return real(*args, **kwargs)

    monkeypatch.setattr(writer_module, "write_video", dying_write_video)
    with pytest.raises(KeyboardInterrupt):
        Generator(cfg, out).run(progress=False)
    assert not list_episodes(out) and not [p for p in out.iterdir() if p.name.startswith(".tmp")]
    monkeypatch.setattr(writer_module, "write_video", real)
    summary = Generator(load_config(GenerateConfig, None, SMALL + ["episodes=2", "seed=3"]), out).run(progress=False)
    assert summary.written + summary.failed == 2
    assert len(list_episodes(out)) == summary.written
    again = Generator(load_config(GenerateConfig, None, SMALL + ["episodes=2", "seed=3"]), out).run(progress=False)
    assert again.skipped == 2 and again.attempted == 0
    with pytest.raises(OutputError, match="different config"):
        Generator(load_config(GenerateConfig, None, SMALL + ["episodes=2", "seed=4"]), out)


def test_stage2_gets_pams_stage2_keypoint_map_on_the_canvas(tmp_path):
    """Under the pam preset Stage II paints on the canvas and sees the keypoint map drawn there as
    PAM's Stage II loader drew it (list limb order, no joint_3d rule); Stage III the 720-style maps."""
    import torch
    from pam_diffusion.tiny import tiny_generator
    from pam_engine.capture.maps import canvas_keypoint_frame
    from pam_engine.pipeline import video_stage

    cfg = load_config(GenerateConfig, None, ["width=144", "height=64", "randomization.objects=[061_foam_brick]",
                                             "randomization.camera.distance=[1.0,1.0]", "episodes=1", "seed=3",
                                             "keep_failed=true", "randomization.preview=false",
                                             "randomization.camera.focal=100", "randomization.camera.focal_jitter=0"])
    gen = tiny_generator(64, 144, 49, stage2=dict(size=[128, 64]))
    hints = []
    gen.appearance.pipe.controlnet.nets[1].register_forward_pre_hook(
        lambda module, args, kwargs: hints.append(kwargs["controlnet_cond"].clone()), with_kwargs=True)
    out = tmp_path / "data"
    assert Generator(cfg, out, diffusion=video_stage(gen)).run(progress=False).written == 1
    ep = load_episode(list_episodes(out)[0])
    assert ep.meta.extra["maps"]["keypoint_canvas"] == [128, 64] and ep.video("video").shape == (49, 64, 144, 3)
    expected = canvas_keypoint_frame(ep.labels["joint_2d"][0], 144, 64, (128, 64))
    assert expected.any()
    hand_hint = torch.from_numpy(expected.astype(np.float32) / 127.5 - 1).permute(2, 0, 1)
    torch.testing.assert_close(hints[0][0, :3], hand_hint)


def test_diffusion_stages_paint_a_video_from_the_engine_maps(tmp_path):
    """Engine condition maps -> tiny Stage II/III models -> video.mp4 with every frame."""
    from pam_diffusion.tiny import tiny_generator
    from pam_engine.pipeline import video_stage

    cfg = load_config(GenerateConfig, None, ["width=96", "height=64", "randomization.objects=[061_foam_brick]",
                                             "randomization.camera.distance=[0.5,0.6]", "episodes=1", "seed=3",
                                             "keep_failed=true"])
    out = tmp_path / "data"
    summary = Generator(cfg, out, diffusion=video_stage(tiny_generator(64, 96, 49))).run(progress=False)
    assert summary.written == 1
    ep = load_episode(list_episodes(out)[0])
    assert ep.has_video
    video = ep.video("video")
    assert video.shape == (49, 64, 96, 3)
    assert video.std() > 0  # painted, not blank
