import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from pam_engine.dataset import writer as writer_module
from pam_engine.dataset.format import MAP_VIDEOS, TMP_PREFIX
from pam_engine.dataset.reader import list_episodes, load_episode
from pam_engine.dataset.writer import EpisodeWriter, check_output_dir
from pam_engine.errors import ConfigError, OutputError


def test_written_episode_reads_back(tmp_path, synthetic_episode):
    ep = synthetic_episode(video=True)
    folder = EpisodeWriter(tmp_path / "ds").write(ep, index=7)
    assert folder.name == "episode_000007"
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(["meta.json", "labels.npz", "depth_raw.mkv", "seg_raw.npz", "video.mp4",
                            *MAP_VIDEOS.values()])
    back = load_episode(folder)
    assert back.meta == ep.meta
    # depth: lossless at 0.1 mm (uint16 units in FFV1), so within 0.05 mm of the float metres
    np.testing.assert_allclose(back.depth, ep.depth, rtol=0, atol=0.5e-4 + 1e-7)
    from pam_engine.dataset.videoio import read_depth_units

    np.testing.assert_array_equal(read_depth_units(folder / "depth_raw.mkv"),
                                  np.rint(ep.depth.astype(np.float64) * 10000).astype(np.uint16))
    np.testing.assert_array_equal(back.seg, ep.seg)
    for key, value in ep.labels.items():
        np.testing.assert_array_equal(back.labels[key], value)
    for name in MAP_VIDEOS:
        frames = back.video(name)
        assert frames.shape == (5, 48, 64, 3), name
    # the seg map survives H.264 closely enough to read the hand colour back
    seg_video = back.video("seg")
    assert np.abs(seg_video[0, 20, 25].astype(int) - [92, 0, 255]).max() < 20
    assert back.has_video and back.video("video").shape == (5, 48, 64, 3)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["width"] == 64 and meta["K"][0][0] == 60.0 and meta["prompt"] == "a hand grasps a box"


def test_indices_continue_and_existing_episode_is_refused(tmp_path, synthetic_episode):
    w = EpisodeWriter(tmp_path / "ds")
    assert w.write(synthetic_episode()).name == "episode_000000"
    assert w.write(synthetic_episode()).name == "episode_000001"
    with pytest.raises(OutputError, match="episode_000001 already exists"):
        w.write(synthetic_episode(), index=1)
    assert [p.name for p in list_episodes(tmp_path / "ds")] == ["episode_000000", "episode_000001"]


def test_error_in_the_middle_leaves_nothing(tmp_path, synthetic_episode, monkeypatch):
    calls = []
    real = writer_module.write_video

    def failing(path, frames, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise RuntimeError("disk on fire")
        return real(path, frames, *args, **kwargs)

    monkeypatch.setattr(writer_module, "write_video", failing)
    root = tmp_path / "ds"
    with pytest.raises(RuntimeError, match="disk on fire"):
        EpisodeWriter(root).write(synthetic_episode())
    assert len(calls) >= 3  # files are written side by side: others may have started
    assert list(root.iterdir()) == []  # neither the episode nor its temporary folder


def test_killed_writer_leaves_no_episode_folder(tmp_path):
    """SIGKILL while the episode is being written: no episode_* folder may exist afterwards."""
    root = tmp_path / "ds"
    marker = tmp_path / "started"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        sys.path.append({str(Path(__file__).parents[1])!r})  # synthetic_scene
        from conftest import make_trajectory  # noqa
        import numpy as np
        from pam_engine.capture.camera import Camera
        from pam_engine.capture.frames import CaptureSequence
        from pam_engine.dataset import writer as w
        from pam_engine.dataset.episode import make_episode
        real = w.write_video
        def slow(path, frames, *a, **k):
            real(path, frames, *a, **k)
            open({str(marker)!r}, "w").close()
            time.sleep(60)
        w.write_video = slow
        cam = Camera.from_focal(60.0, 64, 48)
        seq = CaptureSequence.allocate(3, 48, 64)
        seq.depth[:] = 1.0
        traj = make_trajectory(np.full((3, 21, 3), [0, 0, 1.0]), np.tile(np.eye(4)[:3], (3, 1, 1, 1)))
        w.EpisodeWriter({str(root)!r}).write(make_episode(traj, cam, seq))
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(writer_module.__file__).parents[2]),
                                                       os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.time() + 60
        while not marker.exists():
            assert proc.poll() is None, "writer exited before the kill"
            assert time.time() < deadline, "writer never started writing"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    entries = list(root.iterdir())
    assert not any(p.name.startswith("episode_") for p in entries)
    assert all(p.name.startswith(TMP_PREFIX) for p in entries)
    assert list_episodes(root) == []
    # the next writer accepts the folder (a .tmp- leftover is not foreign)
    EpisodeWriter(root)


def test_output_folder_with_foreign_files_is_refused_before_work(tmp_path, synthetic_episode):
    root = tmp_path / "ds"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"notes\.txt"):
        EpisodeWriter(root)
    (root / "notes.txt").unlink()
    (root / "other_dir").mkdir()
    with pytest.raises(OutputError, match="other_dir"):
        check_output_dir(root)


def test_unwritable_output_is_refused(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="a_file"):
        EpisodeWriter(blocker)  # exists and is not a folder
    with pytest.raises(OutputError, match="cannot be written"):
        EpisodeWriter(blocker / "sub")  # its parent is a file
    if os.geteuid() != 0:  # root ignores permission bits
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(OutputError, match="cannot be written"):
                EpisodeWriter(locked)
        finally:
            locked.chmod(0o700)
    if Path("/proc").is_dir():
        with pytest.raises(OutputError, match="cannot be written"):
            EpisodeWriter("/proc/pam_engine_dataset")


def test_inconsistent_episode_is_refused_before_writing(tmp_path, synthetic_episode):
    root = tmp_path / "ds"
    w = EpisodeWriter(root)
    ep = synthetic_episode()
    ep.depth = ep.depth[:, :, :-1]
    with pytest.raises(ConfigError, match="episode depth"):
        w.write(ep)
    ep = synthetic_episode()
    ep.labels["joint_3d"][2, 3, 1] = np.nan
    with pytest.raises(ConfigError, match="joint_3d.*NaN"):
        w.write(ep)
    ep = synthetic_episode()
    del ep.maps["normal"]
    with pytest.raises(ConfigError, match="normal"):
        w.write(ep)
    assert list(root.iterdir()) == []


def test_failures_are_recorded_beside_episodes(tmp_path, synthetic_episode):
    from pam_engine.dataset.validate import validate_dataset

    w = EpisodeWriter(tmp_path / "ds")
    w.write(synthetic_episode(), index=0)
    w.record_failure(1, "PoseError: wrist NaN at step 12", seed=7)
    w.record_failure(2, "grasp target unreachable", seed=8)
    lines = [json.loads(x) for x in (tmp_path / "ds" / "failures.jsonl").read_text().splitlines()]
    assert lines == [{"episode": "episode_000001", "reason": "PoseError: wrist NaN at step 12", "seed": 7},
                     {"episode": "episode_000002", "reason": "grasp target unreachable", "seed": 8}]
    report = validate_dataset(tmp_path / "ds")
    assert report.ok and any("2 episode(s) failed" in n for n in report.notes)
    EpisodeWriter(tmp_path / "ds")  # the log does not make the folder foreign


def test_reader_checks_the_dataset_version_and_features(tmp_path, synthetic_episode):
    from pam_engine.dataset.format import dataset_description, features
    from pam_engine.dataset.reader import read_description
    from pam_engine.dataset.validate import validate_dataset

    root = tmp_path / "ds"
    EpisodeWriter(root).write(synthetic_episode())
    good = dataset_description({}, 1, features(5, 48, 64, 1, False))
    (root / "dataset.json").write_text(json.dumps(good))
    assert read_description(root)["features"]["labels.joint_3d"]["shape"] == [5, 21, 3]
    assert len(list_episodes(root)) == 1 and validate_dataset(root).ok
    (root / "dataset.json").write_text(json.dumps(dict(good, format_version=99)))
    with pytest.raises(ConfigError, match="format version 99"):
        list_episodes(root)
    assert any("format version 99" in p for p in validate_dataset(root).dataset)
    bad = json.loads(json.dumps(good))
    bad["features"]["depth"]["dtype"] = "float32"
    (root / "dataset.json").write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="feature 'depth' is float32"):
        read_description(root)


def test_videos_and_depth_encode_to_the_same_bytes_whatever_the_heap(tmp_path):
    """The same frames give the same files in fresh processes whose uninitialised memory differs
    (MALLOC_PERTURB_): x264 read its row padding and its macroblock tree read garbage, and
    Matroska wrote a random segment UID."""
    import hashlib
    import os
    import subprocess
    import sys
    from pathlib import Path

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (9, 64, 96, 3), dtype=np.uint8)
    frames[:, 20:40, 30:60] = 200  # some structure for the motion search
    depth = rng.uniform(0.3, 0.9, (9, 64, 96)).astype(np.float32)
    np.savez(tmp_path / "in.npz", frames=frames, depth=depth)
    script = (
        "import sys, numpy as np\n"
        "from pam_engine.dataset.videoio import write_video, write_depth\n"
        "d = np.load(sys.argv[1])\n"
        "write_video(sys.argv[2] + '.mp4', d['frames'], 15.0)\n"
        "write_depth(sys.argv[2] + '.mkv', d['depth'], 15.0)\n"
    )
    repo = Path(__file__).resolve().parents[2]
    digests = set()
    for perturb in ("165", "77", "3"):
        env = dict(os.environ, MALLOC_PERTURB_=perturb,
                   PYTHONPATH=os.pathsep.join([str(repo / "source"), str(repo / "diffusion")]))
        out = tmp_path / f"run{perturb}"
        subprocess.run([sys.executable, "-c", script, str(tmp_path / "in.npz"), str(out)], env=env, check=True)
        digests.add(tuple(hashlib.sha256(Path(f"{out}{ext}").read_bytes()).hexdigest() for ext in (".mp4", ".mkv")))
    assert len(digests) == 1


@pytest.mark.parametrize("video", [False, True])
def test_parallel_write_gives_the_serial_bytes(tmp_path, synthetic_episode, video):
    """Encoding the files side by side changes nothing on disk: every file is byte for byte the
    one a one-at-a-time write gives."""
    ep = synthetic_episode(video=video)
    serial = EpisodeWriter(tmp_path / "serial", jobs=1).write(ep, index=0)
    parallel = EpisodeWriter(tmp_path / "parallel", jobs=4).write(ep, index=0)
    names = sorted(p.name for p in serial.iterdir())
    assert names == sorted(p.name for p in parallel.iterdir()) and len(names) >= 9
    for name in names:
        assert (serial / name).read_bytes() == (parallel / name).read_bytes(), name


def test_parallel_write_failure_waits_for_the_other_files_then_leaves_nothing(tmp_path, synthetic_episode, monkeypatch):
    started, finished = [], []
    real = writer_module.write_video

    def slow_or_failing(path, frames, *args, **kwargs):
        started.append(path)
        if Path(path).name == "seg.mp4":
            raise OSError("disk on fire")
        time.sleep(0.05)
        out = real(path, frames, *args, **kwargs)
        finished.append(path)
        return out

    monkeypatch.setattr(writer_module, "write_video", slow_or_failing)
    root = tmp_path / "ds"
    with pytest.raises(OSError, match="disk on fire"):
        EpisodeWriter(root, jobs=3).write(synthetic_episode())
    assert len(finished) == len(started) - 1  # every write that started ran to its end before cleanup
    assert list(root.iterdir()) == []


def test_video_bytes_equal_those_of_the_copying_frame_conversion(tmp_path, monkeypatch):
    """The frame conversion refills one RGB frame and zeroes the row padding in place; it used
    to convert a fresh frame each time and copy every plane into a zero-padded one. Both give
    the same mp4, byte for byte."""
    import av

    from pam_engine.dataset import videoio

    def copying(rgb, index, time_base):
        converted = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        out = av.VideoFrame(converted.width, converted.height, "yuv420p")
        for src, dst in zip(converted.planes, out.planes):
            rows = np.frombuffer(src, np.uint8).reshape(-1, src.line_size)[:, : src.width]
            padded = np.zeros((rows.shape[0], dst.line_size), np.uint8)
            padded[:, : src.width] = rows
            dst.update(padded)
        out.pts = index
        if time_base is not None:
            out.time_base = time_base
        return out

    rng = np.random.default_rng(4)
    frames = np.zeros((8, 96, 180, 3), np.uint8)  # 90-wide chroma rows: padded planes
    for t in range(8):
        frames[t, 10 + t:60 + t, 20:120] = rng.integers(0, 255, (50, 100, 3))
    videoio.write_video(tmp_path / "new.mp4", frames)
    monkeypatch.setattr(videoio, "_converter", lambda width, height: copying)
    videoio.write_video(tmp_path / "old.mp4", frames)
    assert (tmp_path / "new.mp4").read_bytes() == (tmp_path / "old.mp4").read_bytes()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity (Linux)")
def test_video_bytes_do_not_depend_on_the_number_of_cores(tmp_path):
    """x264 sizes its slices by its thread count, which it takes from the CPUs it may run on
    when left automatic: a process pinned to one core wrote other bytes. The count is fixed."""
    import subprocess
    import sys

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (6, 192, 96, 3), dtype=np.uint8)  # 12 macroblock rows: room for slices
    np.save(tmp_path / "frames.npy", frames)
    from pam_engine.dataset.videoio import write_video

    write_video(tmp_path / "here.mp4", frames)
    script = ("import os, sys, numpy as np\n"
              "os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})\n"
              "from pam_engine.dataset.videoio import write_video\n"
              "write_video(sys.argv[2], np.load(sys.argv[1]))\n")
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(repo / "source"), str(repo / "diffusion")]))
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "frames.npy"), str(tmp_path / "one_core.mp4")],
                   env=env, check=True)
    assert (tmp_path / "one_core.mp4").read_bytes() == (tmp_path / "here.mp4").read_bytes()
