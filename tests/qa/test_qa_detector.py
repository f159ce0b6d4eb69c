"""``pam qa`` and ``pam generate --set qa.max_keypoint_error=PX`` with the real detector (mediapipe
0.10.14 in its own environment) on an engine episode's sim preview, a hand video with exact
labels; planted defects (a video shifted by a few frames, a mirrored one) are rejected."""

import json
import shutil

import numpy as np
import pytest

from pam_engine.cli import main
from pam_engine.dataset.reader import is_rejected, list_episodes, list_good_episodes
from pam_engine.dataset.validate import validate_dataset
from pam_engine.dataset.videoio import read_video, write_video

from .conftest import SMALL

pytestmark = pytest.mark.qa


def test_generate_checks_each_episode_and_the_sim_preview_passes(checked_dataset):
    root, summary = checked_dataset
    (episode,) = list_episodes(root)
    qa = json.loads((episode / "qa.json").read_text())
    assert qa["video"] == "sim_rgb.mp4" and qa["detector"] == "mediapipe 0.10.14"
    assert qa["passed"] is True, qa["failures"]
    # the detector finds the engine's hand where the labels put it
    assert qa["detection_rate"] >= 0.6
    assert 0 < qa["keypoint_error_px"] <= 20 and qa["pck"]["20"] >= 0.7
    assert qa["temporal"]["best_lag"] == 0 and qa["mirror"]["right_hand_rate"] >= 0.9
    assert qa["flicker"]["hand"] > qa["flicker"]["background"] >= 0
    top = qa["worst_frames"][0]
    assert top["error_px"] == max(e for e in qa["per_frame_error_px"] if e is not None)
    listing = json.loads((root / "qa_summary.json").read_text())
    assert listing["checked"] == 1 and listing["rejected"] == [] and summary.qa["passed"] == 1
    assert validate_dataset(root).ok  # qa.json in the episode, qa_summary.json at the root


def _plant(root, name, transform):
    path = root / name / "sim_rgb.mp4"
    frames = read_video(path)
    write_video(path, transform(frames), 15.0)


def test_shifted_and_mirrored_videos_are_rejected(checked_dataset, tmp_path, capsys):
    source, _ = checked_dataset
    root = tmp_path / "planted"
    shutil.copytree(source, root)
    for name in ("episode_000001", "episode_000002"):
        shutil.copytree(root / "episode_000000", root / name)
    desc = json.loads((root / "dataset.json").read_text())
    (root / "dataset.json").write_text(json.dumps({**desc, "episodes": 3}))
    shift = 3
    _plant(root, "episode_000001", lambda v: np.concatenate([v[shift:], np.repeat(v[-1:], shift, 0)]))
    _plant(root, "episode_000002", lambda v: v[:, :, ::-1].copy())
    code = main(["qa", str(root), "--video", "sim_rgb", "--max-keypoint-error", "20", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1, out
    good = json.loads((root / "episode_000000" / "qa.json").read_text())
    shifted = json.loads((root / "episode_000001" / "qa.json").read_text())
    mirrored = json.loads((root / "episode_000002" / "qa.json").read_text())
    assert good["passed"], good["failures"]
    assert not shifted["passed"] and shifted["temporal"]["best_lag"] == shift
    assert shifted["checks"]["temporal_alignment"] is False
    assert not mirrored["passed"] and mirrored["checks"]["not_mirrored"] is False
    assert json.loads((root / "qa_summary.json").read_text())["rejected"] == ["episode_000001", "episode_000002"]
    assert "episode_000001: REJECTED" in out and f"{shift} frame(s) ahead" in out
    # rejected episodes stay, flagged, and are not good data
    assert [p.name for p in list_good_episodes(root)] == ["episode_000000"]
    assert is_rejected(root / "episode_000002")
    report = validate_dataset(root)
    assert report.ok and any("2 episode(s) rejected by QA" in n for n in report.notes)


def test_episodes_without_the_video_are_listed_and_skipped(checked_dataset, tmp_path, capsys):
    source, _ = checked_dataset
    root = tmp_path / "novideo"
    shutil.copytree(source, root)
    (root / "episode_000000" / "qa.json").unlink()
    shutil.copytree(root / "episode_000000", root / "episode_000001")
    (root / "episode_000001" / "sim_rgb.mp4").write_bytes(b"not a video")
    # one undecodable video is named and skipped; the other episode is checked
    assert main(["qa", str(root), "--video", "sim_rgb", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "episode_000000: passed" in out
    assert "episode_000001: skipped (could not be checked (VideoUnreadableError: video" in out
    shutil.rmtree(root / "episode_000001")
    (root / "episode_000000" / "qa.json").unlink()
    code = main(["qa", str(root), "--no-progress"])  # default: video.mp4, which no episode has
    out = capsys.readouterr().out
    assert code == 1
    assert "episode_000000: skipped (episode_000000 has no video.mp4)" in out
    assert "--video sim_rgb" in out
    assert not (root / "episode_000000" / "qa.json").exists()
    assert json.loads((root / "qa_summary.json").read_text())["skipped"] == {
        "episode_000000": "episode_000000 has no video.mp4"}


def test_generate_marks_failing_episodes_rejected_and_resumes_missing_checks(checked_dataset, tmp_path):
    from pam_engine.config import load_config
    from pam_engine.pipeline import GenerateConfig, Generator

    source, _ = checked_dataset
    root = tmp_path / "resume"
    shutil.copytree(source, root)
    (root / "episode_000000" / "qa.json").unlink()  # as if killed between writing and checking
    # a resumed batch may change the threshold (qa only judges): 1 px rejects the episode
    cfg = load_config(GenerateConfig, None, SMALL + ["episodes=1", "seed=3", "qa.video=sim_rgb",
                                                     "qa.max_keypoint_error=1"])
    summary = Generator(cfg, root).run(progress=False)
    assert summary.skipped == 1 and summary.written == 0
    qa = json.loads((root / "episode_000000" / "qa.json").read_text())
    assert qa["passed"] is False and qa["checks"]["keypoint_error"] is False
    assert summary.qa["rejected"] == ["episode_000000"]
    assert "1 rejected" in summary.report() and "episode_000000" in summary.report()
    assert (root / "episode_000000" / "sim_rgb.mp4").is_file()  # kept
    assert list_good_episodes(root) == []
