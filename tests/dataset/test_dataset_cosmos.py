"""``pam export cosmos``: CosmosWriter-style clips and Cosmos Transfer 2.5 specs, checked for
layout and content (depth and segmentation frames equal the episode's)."""

import json

import cv2
import numpy as np
import pytest

from pam_engine.cli import main
from pam_engine.dataset.cosmos import MODALITIES, decode_segmentation, export_cosmos
from pam_engine.dataset.reader import list_episodes, load_episode
from pam_engine.dataset.videoio import probe_video, read_video
from pam_engine.errors import ConfigError, OutputError


@pytest.fixture(scope="module")
def exported(demo_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("cosmos") / "clips"
    assert main(["export", "cosmos", str(demo_dataset), str(out)]) == 0
    return out


def read_png(path, unchanged=False):
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return img if (unchanged or img.ndim == 2) else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def test_layout_is_one_clip_per_episode_with_a_folder_per_modality(demo_dataset, exported):
    episodes = list_episodes(demo_dataset)
    clips = sorted(p.name for p in exported.iterdir() if p.is_dir())
    assert clips == [f"clip_{k:04d}" for k in range(len(episodes))]
    for clip, path in zip(clips, episodes):
        t = load_episode(path).num_frames
        folder = exported / clip
        for name in MODALITIES:
            assert sorted(p.name for p in (folder / name).iterdir()) == [f"{name}_{i:05d}.png" for i in range(t)]
            info = probe_video(folder / f"{name}.mp4")
            assert info["frames"] == t, (clip, name, info)
        spec = json.loads((folder / "spec.json").read_text())
        assert spec["video_path"] == "rgb.mp4" and (folder / spec["prompt_path"]).read_text()
        for control, modality in (("depth", "depth"), ("seg", "segmentation"), ("edge", "edges")):
            assert spec[control]["control_path"] == f"{modality}.mp4" and 0 < spec[control]["control_weight"] <= 1
            assert (folder / spec[control]["control_path"]).is_file()
    listing = json.loads((exported / "clips.json").read_text())
    assert [c["clip"] for c in listing["clips"]] == clips


def test_depth_and_segmentation_frames_equal_the_episode(demo_dataset, exported):
    for k, path in enumerate(list_episodes(demo_dataset)):
        episode = load_episode(path)
        folder = exported / f"clip_{k:04d}"
        depth_mm = np.stack([read_png(folder / "depth" / f"depth_{t:05d}.png", True) for t in range(episode.num_frames)])
        assert depth_mm.dtype == np.uint16
        np.testing.assert_array_equal(depth_mm, np.rint(episode.depth.astype(np.float64) * 1000).astype(np.uint16))
        seg = np.stack([decode_segmentation(read_png(folder / "segmentation" / f"segmentation_{t:05d}.png"))
                        for t in range(episode.num_frames)])
        np.testing.assert_array_equal(seg, episode.seg)
        assert (seg == 255).any() and (seg == 3).any()
        edges = read_png(folder / "edges" / "edges_00000.png")
        assert edges.ndim == 2 and set(np.unique(edges)) <= {0, 255} and edges.any()


def test_rgb_is_the_photoreal_video_when_there_is_one(demo_dataset, exported):
    for k, path in enumerate(list_episodes(demo_dataset)):
        episode = load_episode(path)
        source = episode.video("video") if episode.has_video else episode.video("sim_rgb")
        first = read_png(exported / f"clip_{k:04d}" / "rgb" / "rgb_00000.png")
        np.testing.assert_array_equal(first, source[0])
    assert read_video(exported / "clip_0001" / "rgb.mp4").shape[0] == load_episode(list_episodes(demo_dataset)[1]).num_frames


def test_re_export_resumes_and_bad_input_is_named(demo_dataset, exported, tmp_path):
    before = (exported / "clip_0000" / "spec.json").stat().st_mtime_ns
    export_cosmos(demo_dataset, exported)
    assert (exported / "clip_0000" / "spec.json").stat().st_mtime_ns == before  # existing clips kept
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="notes.txt"):
        export_cosmos(demo_dataset, foreign)
    with pytest.raises(ConfigError, match="no episodes"):
        export_cosmos(tmp_path, tmp_path / "out")
    assert main(["export", "cosmos", str(tmp_path / "missing"), str(tmp_path / "out2")]) == 2
    assert main(["export", "cosmos", str(demo_dataset), str(exported), "--depth-weight", "2"]) == 2
