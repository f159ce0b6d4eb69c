import re
import shutil
import subprocess

import pytest

from pam_engine.cli import main
from pam_engine.dataset.validate import validate_dataset
from pam_engine.dataset.viewer import PANELS, write_viewer
from pam_engine.dataset.writer import EpisodeWriter

HOSTILE = '</script><script>alert(1)</script>'


def test_page_is_self_contained_and_escapes_dataset_text(demo_dataset, tmp_path):
    out, shown = write_viewer(demo_dataset, tmp_path / "view.html")
    assert shown == 2
    page = out.read_text()
    assert page.count("<video") == 2 * (1 + len(PANELS))
    assert page.count('src="data:video/mp4;base64,') == 2 * (1 + len(PANELS))
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
    assert dom.count('data-size="320x240"') == 2 * (1 + len(PANELS))
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
