import re
import shutil
import subprocess

import pytest

from pam_engine.cli import main
from pam_engine.dataset.format import MAP_VIDEOS
from pam_engine.dataset.validate import validate_dataset
from pam_engine.dataset.viewer import PANELS, write_viewer
from pam_engine.dataset.writer import EpisodeWriter

HOSTILE = '</script><script>alert(1)</script>'


def _num_videos(root):
    """Videos the page shows: every episode's map videos (sim preview included) and its video.mp4."""
    return sum(sum((ep / f).is_file() for f in MAP_VIDEOS.values()) + (ep / "video.mp4").is_file()
               for ep in sorted(root.glob("episode_*")))


def test_page_is_self_contained_and_escapes_dataset_text(demo_dataset, tmp_path):
    out, shown = write_viewer(demo_dataset, tmp_path / "view.html")
    assert shown == 2
    page = out.read_text()
    # the sim-only episode: its preview + the maps; the one with a video: also the sim preview beside it
    videos = _num_videos(demo_dataset)
    assert videos == (1 + len(PANELS)) + (2 + len(PANELS)) + 2 * (len(MAP_VIDEOS) - 1 - len(PANELS))
    assert page.count("<video") == videos
    assert page.count('src="data:video/mp4;base64,') == videos
    assert "http://" not in page and "https://" not in page  # nothing fetched from a network
    assert "alert(1)" in page  # the prompt is shown ...
    assert HOSTILE not in page and "<b>box</b>" not in page  # ... but never as markup
    assert "&lt;b&gt;box&lt;/b&gt; &amp; &quot;lift&quot;" in page
    # only the page's own script element runs (the labels are inert JSON)
    assert len(re.findall(r"<script>", page)) == 1
    assert page.count('<script type="application/json" class="labels">') == 2
    labels = re.findall(r'<script type="application/json" class="labels">(.*?)</script>', page, re.S)
    assert all("<" not in block for block in labels)


def test_view_command_writes_into_the_dataset_and_keeps_it_valid(demo_dataset, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(demo_dataset, copy)
    assert main(["view", str(copy), "--max-episodes", "1"]) == 0
    assert "1 episode(s)" in capsys.readouterr().out
    assert (copy / "index.html").is_file()
    assert validate_dataset(copy).ok  # index.html is an allowed dataset file
    EpisodeWriter(copy)  # and the writer still accepts the folder
    linked = tmp_path / "linked.html"
    assert main(["view", str(copy), "--link", "-o", str(linked)]) == 0
    assert "data:video" not in linked.read_text()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium); CI installs it")
def test_page_renders_in_headless_chromium(demo_dataset, tmp_path):
    out, _ = write_viewer(demo_dataset, tmp_path / "view.html")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000", "--dump-dom",
           out.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert 'data-rendered="2"' in body and 'data-failed="0"' in body, body
    # every video decoded its metadata at the episode's size
    assert dom.count('data-size="320x240"') == _num_videos(demo_dataset)
    # the keypoint overlay of each episode drew its 21 keypoints
    assert len(re.findall(r'<canvas class="keypoints"[^>]*data-drawn="21"', dom)) == 2
    assert "<b>box</b>" not in dom


def test_unreadable_episodes_are_marked_and_the_rest_shown(demo_dataset, tmp_path, capsys):
    import base64

    root = tmp_path / "mixed"
    shutil.copytree(demo_dataset, root)
    for name in ("episode_000002", "episode_000003", "episode_000004", "episode_000005"):
        shutil.copytree(root / "episode_000000", root / name)
    (root / "episode_000002" / "labels.npz").write_bytes(b"")  # empty
    data = (root / "episode_000003" / "labels.npz").read_bytes()
    (root / "episode_000003" / "labels.npz").write_bytes(data[: len(data) // 2])  # truncated
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"private bytes of the user's own files")
    (root / "episode_000004" / "depth.mp4").unlink()
    (root / "episode_000004" / "depth.mp4").symlink_to(secret)  # leaves the dataset folder
    (root / "episode_000005").rename(tmp_path / "elsewhere")
    (root / "episode_000005").symlink_to(tmp_path / "elsewhere")  # a whole episode outside

    out, shown = write_viewer(root, tmp_path / "view.html")
    page = out.read_text()
    assert shown == 2
    assert base64.b64encode(secret.read_bytes()).decode() not in page
    for name in ("episode_000002", "episode_000003", "episode_000004", "episode_000005"):
        assert f'<section class="episode unreadable" data-episode="{name}">' in page
    assert "outside the dataset folder; refused" in page
    assert "4 unreadable" in page
    assert main(["view", str(root), "-o", str(tmp_path / "v2.html")]) == 0


def _chromium_dom(page, tmp_path, fragment=""):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000", "--dump-dom",
           page.as_uri() + fragment]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout


@pytest.fixture
def rich_dataset(demo_dataset, tmp_path):
    """The demo dataset with contacts in one episode, QA figures, and a candidate ranking."""
    import json

    import numpy as np

    from pam_engine.dataset.format import save_npz

    root = tmp_path / "rich"
    shutil.copytree(demo_dataset, root)
    path = root / "episode_000001" / "labels.npz"
    with np.load(path) as data:
        labels = {k: data[k] for k in data.files}
    labels["contacts"][2:, 1] = True  # the index finger touches from frame 2
    labels["contacts"][4:, 5] = True  # the palm from frame 4
    save_npz(path, **labels)
    qa = {"passed": False, "video": "video.mp4", "detector": "mediapipe 0.10.14", "detection_rate": 0.75,
          "keypoint_error_px": 12.34, "pck": {"5": 0.1, "10": 0.5, "20": 0.9}, "temporal": {"best_lag": 3},
          "flicker": {"hand": 4.5, "background": 0.5, "ratio": 9.0},
          "worst_frames": [{"frame": 4, "error_px": 30.5}], "per_frame_error_px": [None, 10.0, 12.0, 30.5, 11.0, 9.0],
          "failures": ["video is 3 frame(s) ahead of the labels <b>x</b>"]}
    (root / "episode_000001" / "qa.json").write_text(json.dumps(qa))
    ranking = {"goal": {"lift": 0.05},
               "candidates": [{"rank": 2, "name": "grasp-b", "score": 0.25, "metrics": {"lift_m": 0.01}, "episode": None},
                              {"rank": 1, "name": HOSTILE, "score": 0.875, "metrics": {"lift_m": 0.07},
                               "episode": "episode_000001"}]}
    (root / "score_actions.json").write_text(json.dumps(ranking))
    return root


def test_page_shows_qa_figures_and_the_candidate_ranking(rich_dataset, tmp_path):
    out, _ = write_viewer(rich_dataset, tmp_path / "view.html")
    page = out.read_text()
    assert '<div class="qa" data-qa="none">' in page  # episode 0 was never checked
    assert '<div class="qa" data-qa="rejected">' in page and "QA: REJECTED" in page
    assert "12.3 px" in page and "75%" in page and "0.10 / 0.50 / 0.90" in page and "4 (30.5 px)" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    table = re.search(r'<table class="ranking">(.*?)</table>', page, re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", table)
    assert "lift_m" in rows[0]
    assert "0.8750" in rows[1] and 'href="#episode_000001"' in rows[1] and "grasp-b" in rows[2]  # by rank
    assert HOSTILE not in page and len(re.findall(r"<script>", page)) == 1
    # a broken ranking file is named, the episodes still shown
    (rich_dataset / "score_actions.json").write_text('{"candidates": 3}')
    out, shown = write_viewer(rich_dataset, tmp_path / "broken.html")
    assert shown == 2 and "score_actions.json not shown" in out.read_text()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium); CI installs it")
def test_scrubber_moves_every_video_and_the_overlay_and_plot_follow(rich_dataset, tmp_path):
    out, _ = write_viewer(rich_dataset, tmp_path / "view.html")
    frame, fps = 3, 15.0
    dom = _chromium_dom(out, tmp_path, f"#selftest={frame}")
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert 'data-rendered="2"' in body and 'data-failed="0"' in body, body
    sections = re.findall(r'(<section class="episode"[^>]*>)(.*?)</section>', dom, re.S)
    assert len(sections) == 2
    for head, inner in sections:
        # every video's currentTime moved to the scrubber's frame (the seek each one started)
        times = re.findall(r'<video[^>]*data-time="([0-9.]+)"', inner)
        assert len(times) == inner.count("<video") >= 1 + len(PANELS)
        assert all(abs(float(t) - (frame + 0.5) / fps) < 1e-3 for t in times), times
        assert re.search(rf'<canvas class="keypoints"[^>]*data-frame="{frame}"[^>]*data-drawn="21"', inner)
        # the overlay toggle: off draws nothing, on again draws the 21 keypoints
        assert 'data-overlay-off="0"' in head and 'data-overlay-on="21/21"' in head
        assert re.search(rf'<canvas class="plot"[^>]*data-cursor="{frame}"', inner)
    plots = re.findall(r'<canvas class="plot"[^>]*>', dom)
    # episode 0: no contacts, one object height; episode 1: 4 + 2 contact frames, height + QA error lines
    assert 'data-contact-cells="0"' in plots[0] and 'data-lines="1"' in plots[0]
    assert 'data-contact-cells="6"' in plots[1] and 'data-lines="2"' in plots[1]
    assert "12.3 px" in dom and "Candidate ranking" in dom
