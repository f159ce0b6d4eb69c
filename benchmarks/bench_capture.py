"""Capture cost per frame (every map: depth, seg, hand image, preview RGB, keypoints, condition
maps, labels) against one bare ``mujoco.Renderer`` RGB render of the same scene, measured in the
same run, at 720x480; and the writer's time per 49-frame episode.

Scene: the synthetic demo (a skinned two-bone finger standing in for the hand, one mesh object,
a textured table, a floor) until the real hand scene exists.

    MUJOCO_GL=egl PYTHONPATH=source python benchmarks/bench_capture.py [--frames 49] [--rounds 3]

Figures are medians over rounds; baselines and the capture are interleaved so that load from
other processes affects both alike. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "source"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the synthetic test scene

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from pam_engine.capture import maps  # noqa: E402
from pam_engine.capture.camera import Camera, look_at  # noqa: E402
from pam_engine.capture.frames import CaptureSequence  # noqa: E402
from pam_engine.capture.labels import episode_labels  # noqa: E402
from pam_engine.capture.renderer import MujocoCapture  # noqa: E402
from synthetic_scene import build_demo_scene, demo_labels  # noqa: E402
from pam_engine.dataset.episode import make_episode  # noqa: E402
from pam_engine.dataset.writer import EpisodeWriter  # noqa: E402
from pam_engine.trajectory import Trajectory  # noqa: E402

W, H = 720, 480


def time_bare(renderer, scene, data, num_frames):
    """One plain RGB render per frame through the model camera that reproduces the capture's."""
    t0 = time.perf_counter()
    for t in range(num_frames):
        scene.set_frame(data, t, num_frames)
        renderer.update_scene(data, camera="pam_camera")
        renderer.render()
    return (time.perf_counter() - t0) / num_frames


def time_capture(cap, scene, data, num_frames, joints, camera, seq=None):
    """Per-frame seconds of: the three render passes (into ``seq`` if given, else into fresh
    memory as a new episode would), and each per-video map (amortised)."""
    seq = seq if seq is not None else CaptureSequence.allocate(num_frames, H, W)
    cap.timings.clear()
    out = {}
    t0 = time.perf_counter()
    for t in range(num_frames):
        scene.set_frame(data, t, num_frames)
        cap.capture(data, out=seq.frame(t))
    out["render passes"] = (time.perf_counter() - t0) / num_frames
    for key, total in cap.timings.items():
        out[f"  {key} pass"] = total / num_frames

    def timed(name, fn):
        t1 = time.perf_counter()
        result = fn()
        out[name] = (time.perf_counter() - t1) / num_frames
        return result

    joint_2d, _ = timed("keypoints 2D + visibility", lambda: maps.project_keypoints(joints, camera, seq.depth, seq.seg))
    joint_z = camera.world_to_camera(joints)[..., 2]
    boxes = timed("foreground boxes", lambda: maps.foreground_boxes(seq.seg))
    timed("seg colour map", lambda: maps.seg_color_map(seq.seg, boxes))
    timed("depth map", lambda: maps.depth_map(seq.depth, seq.seg, boxes=boxes))
    timed("normal map", lambda: maps.normal_map(seq.depth, seq.seg, camera.K, None, boxes))
    timed("hand keypoint map", lambda: maps.hand_keypoint_map(joint_2d, W, H, joint_z))
    out["all maps (total)"] = sum(v for k, v in out.items() if not k.startswith(" "))
    return out, seq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=49)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    T = args.frames

    camera = Camera.from_focal(615.0, W, H, look_at([0.25, -0.45, 0.35], [-0.03, 0.0, 0.05]))
    scene = build_demo_scene(camera=camera)  # the same view for the bare renders
    model = scene.model
    data = mujoco.MjData(model)
    joints, pose_y = demo_labels(scene, data, T)

    # bare renderers: MuJoCo's defaults (shadows, reflections, the model's 4x multisampling), and
    # the capture's own preview settings (no shadows/reflections, no multisampling)
    bare_default = mujoco.Renderer(model, H, W)
    samples = model.vis.quality.offsamples
    model.vis.quality.offsamples = 0
    bare_plain = mujoco.Renderer(model, H, W)
    model.vis.quality.offsamples = samples
    for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
        bare_plain.scene.flags[flag] = 0
    cap = MujocoCapture(model, camera, scene.seg_lookup, profile=True)

    # warm up every path, including a full-size episode: the process's first large arrays cost
    # extra first-touch page faults (up to ~9 ms/frame here) that a batch run pays only once
    time_bare(bare_default, scene, data, 2)
    time_bare(bare_plain, scene, data, 2)
    for _ in range(2):
        time_capture(cap, scene, data, T, joints, camera)

    rounds = {"bare_default": [], "bare_plain": [], "fresh": [], "reused": []}
    seq = CaptureSequence.allocate(T, H, W)
    for _ in range(args.rounds):
        rounds["bare_default"].append(time_bare(bare_default, scene, data, T))
        rounds["bare_plain"].append(time_bare(bare_plain, scene, data, T))
        rounds["fresh"].append(time_capture(cap, scene, data, T, joints, camera)[0])
        rounds["reused"].append(time_capture(cap, scene, data, T, joints, camera, seq)[0])
    bare_default.close()
    bare_plain.close()
    cap.close()

    base = {k: statistics.median(rounds[k]) for k in ("bare_default", "bare_plain")}
    keys = list(rounds["fresh"][0])
    med = {mode: {k: statistics.median(r[k] for r in rounds[mode]) for k in keys} for mode in ("fresh", "reused")}

    print(f"scene: synthetic demo (skinned finger + mesh object + textured table), {W}x{H}, {T} frames, "
          f"{args.rounds} rounds, {os.cpu_count()} CPU(s), MUJOCO_GL={os.environ.get('MUJOCO_GL')}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"bare mujoco.Renderer RGB, MuJoCo defaults (shadows, reflections, {samples}x MSAA): "
          f"{base['bare_default'] * 1e3:7.2f} ms/frame")
    print(f"bare mujoco.Renderer RGB, no shadows/reflections/MSAA (= capture preview settings): "
          f"{base['bare_plain'] * 1e3:7.2f} ms/frame")
    print("capture, ms per frame (median)       fresh buffers   reused capture buffers")
    print("  (fresh: each episode allocates its arrays, as make_episode callers do by default)")
    for k in keys:
        print(f"  {k:34s} {med['fresh'][k] * 1e3:9.2f} {med['reused'][k] * 1e3:16.2f}")
    for mode, label in (("fresh", "fresh buffers (a new episode's arrays)"), ("reused", "reused capture buffers")):
        total = med[mode]["all maps (total)"]
        print(f"ratio all maps / bare render, {label}: {total / base['bare_default']:.2f}x MuJoCo defaults, "
              f"{total / base['bare_plain']:.2f}x plain")

    # writer: one full 49-frame episode (labels + maps assembly, then files)
    traj = Trajectory(fps=15.0, pose_m=np.zeros((T, 51)), betas=np.zeros(10), wrist_pose=np.tile(np.eye(4), (T, 1, 1)),
                      joint_angles=np.zeros((T, 1)), joint_names=["finger_hinge"], joint_3d=joints, pose_y=pose_y,
                      object_names=["004_sugar_box"], object_ids=[3], contacts=np.zeros((T, 6), bool), success=True)
    t0 = time.perf_counter()
    labels = episode_labels(traj, camera, seq.depth, seq.seg)
    t_labels = time.perf_counter() - t0
    t0 = time.perf_counter()
    episode = make_episode(traj, camera, seq, prompt="benchmark")
    t_assemble = time.perf_counter() - t0
    tmp = Path(tempfile.mkdtemp(prefix="pam-bench-"))
    try:
        writer = EpisodeWriter(tmp / "dataset")
        times = []
        for i in range(args.rounds):
            t0 = time.perf_counter()
            folder = writer.write(episode, index=i)
            times.append(time.perf_counter() - t0)
        size = sum(p.stat().st_size for p in folder.iterdir())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"labels (episode_labels): {t_labels * 1e3:.0f} ms per episode; make_episode (labels + all maps): "
          f"{t_assemble:.2f} s per episode")
    print(f"writer: {statistics.median(times):.2f} s per {T}-frame episode (median; 7 mp4 + 3 npz + meta), "
          f"{size / 1e6:.1f} MB on disk")
    assert len(labels["joint_2d"]) == T


if __name__ == "__main__":
    main()
