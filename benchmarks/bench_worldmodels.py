"""What the world-model outputs (docs/worldmodels.md) cost per episode, against the episode's
own capture measured in the same run: DWM's static scene with the engine's static camera (one
render, repeated), the same with a moving camera (one render per frame), HandWorld's actions,
and the writer with and without the extra files.

    MUJOCO_GL=egl PYTHONPATH=source:diffusion python benchmarks/bench_worldmodels.py [--frames 49] [--rounds 3]

Scene: one simulated grasp of the foam brick at 720x480 (PAM's size). Figures are medians over
rounds, the baseline and the variants interleaved. Nothing here asserts a time.
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
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "source"), str(ROOT / "diffusion")]

import numpy as np  # noqa: E402

from pam_engine.capture.camera import Camera  # noqa: E402
from pam_engine.dataset.actions import handworld_actions  # noqa: E402
from pam_engine.dataset.episode import make_episode  # noqa: E402
from pam_engine.dataset.writer import EpisodeWriter  # noqa: E402
from pam_engine.pose import ObjectSpec, Stage1Config, Stage1Request  # noqa: E402
from pam_engine.pose.stage import run_stage1  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=49)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    run = run_stage1(Stage1Request([ObjectSpec("061_foam_brick")], seed=3), Stage1Config(num_frames=args.frames))
    traj, scene = run.trajectory, run.scene
    mid = (traj.pose_y[0, 0, :, 3] + traj.wrist_pose[0, :3, 3]) / 2
    camera = Camera.pam().looking_at(mid + np.array([0.5, -0.5, 0.5]), mid)
    moving = [camera.looking_at(mid + np.array([0.5, -0.5 + 0.005 * t, 0.5]), mid) for t in range(args.frames)]
    times: dict[str, list[float]] = {k: [] for k in ("capture", "static (static camera)", "static (moving camera)",
                                                     "actions", "write (PAM files)", "write (+ world-model files)")}
    out = Path(tempfile.mkdtemp(prefix="bench_wm_"))
    try:
        for r in range(args.rounds):
            t0 = time.perf_counter()
            seq = scene.capture(traj, camera, np.random.default_rng(0))
            episode = make_episode(traj, camera, seq)
            times["capture"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            static = scene.capture_static(traj, camera, np.random.default_rng(0))
            times["static (static camera)"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            scene.capture_static(traj, moving, np.random.default_rng(0))
            times["static (moving camera)"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            actions = handworld_actions(episode.labels["joint_3d"], camera.world_to_cam)
            times["actions"].append(time.perf_counter() - t0)
            writer = EpisodeWriter(out / f"r{r}")
            t0 = time.perf_counter()
            writer.write(episode, index=0)
            times["write (PAM files)"].append(time.perf_counter() - t0)
            episode.set_actions(*actions)
            episode.set_static(static.rgb)
            t0 = time.perf_counter()
            writer.write(episode, index=1)
            times["write (+ world-model files)"].append(time.perf_counter() - t0)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    base = statistics.median(times["capture"])
    print(f"{args.frames} frames at {camera.width}x{camera.height}, median of {args.rounds} rounds")
    for key, values in times.items():
        m = statistics.median(values)
        print(f"  {key:30s} {m * 1000:8.1f} ms   {m / base:6.3f} x capture")


if __name__ == "__main__":
    main()
