"""Whole CPU episodes on the embedded default, as ``pam generate`` makes them: time per 49-frame
720x480 episode for Stage I, capture (+ labels and condition maps) and writing; and, on the same
real hand-object scene, capture cost per frame for all maps against one bare
``mujoco.Renderer`` RGB render of the same view (MuJoCo's default look, and the preview's look:
no shadows, reflections or multisampling), measured in the same run.

    python benchmarks/bench_episode.py [--episodes 4] [--object 006_mustard_bottle]
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering (EGL) unless the user chose otherwise

import argparse
import statistics
import tempfile
import time

import mujoco
import numpy as np

from pam_engine.capture.camera import CameraRange, sample_camera
from pam_engine.capture.frames import CaptureSequence
from pam_engine.capture.maps import condition_maps
from pam_engine.capture.labels import episode_labels
from pam_engine.capture.renderer import MujocoCapture, SegLookup
from pam_engine.config import load_config
from pam_engine.pipeline import GenerateConfig, Generator
from pam_engine.pose import ObjectSpec, Stage1Request, run_stage1


#: the issue's targets per 49-frame 720x480 episode on 2 cores (s)
TARGETS = {"stage1": 1.5, "capture": 1.5, "write": 0.5, "total": 4.0}


def episodes(n: int, objects: list[str]) -> None:
    """``n`` episodes through the pipeline, then the last written one written again one file
    at a time (the writer before it encoded files side by side) and side by side, in the same
    run."""
    cfg = load_config(GenerateConfig, None, [f"episodes={n}", "seed=7", f"randomization.objects=[{','.join(objects)}]"])
    with tempfile.TemporaryDirectory() as out:
        generator = Generator(cfg, f"{out}/data")
        handed = []  # the episodes as the pipeline hands them to the writer
        write = generator.writer.write
        generator.writer.write = lambda episode, **kw: (handed.append(episode), write(episode, **kw))[1]
        cpu_stages = _count_cpu(generator)
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            summary = generator.run(progress=True)
        finally:
            cpu_stages.restore()
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
        writes = {}
        if handed:
            from pam_engine.dataset.writer import EpisodeWriter

            for rounds in range(2):  # interleaved, so that load from other processes hits both alike
                for jobs in (1, None):
                    writer = EpisodeWriter(f"{out}/rewrite-{jobs}-{rounds}", jobs=jobs)
                    t1 = time.perf_counter()
                    writer.write(handed[-1], index=0)
                    writes.setdefault(writer.jobs if jobs else "parallel", []).append(time.perf_counter() - t1)
    print(f"\nWhole episodes, {cfg.width}x{cfg.height}, {cfg.stage1.num_frames} frames, no diffusion, {os.cpu_count()} cores")
    print(summary.report())
    sec = summary.stage_seconds
    per = {"stage1": sec["stage1"] / max(summary.attempted, 1),
           "capture": sec["capture"] / max(summary.written, 1), "write": sec["write"] / max(summary.written, 1)}
    per["total"] = sum(per.values())
    print("per written episode (s, wall): " + ", ".join(
        f"{k} {v:.2f} (target {TARGETS[k]:.1f}, x{v / TARGETS[k]:.2f})" for k, v in per.items()))
    cpu_per = {"stage1": cpu_stages.seconds["stage1"] / max(summary.attempted, 1),
               **{k: cpu_stages.seconds[k] / max(summary.written, 1) for k in ("capture", "write")}}
    print("process CPU per written episode (s; every thread of this process: the renderer's, the "
          "writer's): " + ", ".join(f"{k} {v:.2f}" for k, v in cpu_per.items()))
    print(f"wall time {total:.1f} s ({cpu:.1f} s CPU in this process) for {summary.attempted} episodes; "
          f"{total / max(summary.written, 1):.1f} s per written episode")
    if writes:
        serial, parallel = min(writes[1]), min(writes["parallel"])
        print(f"write of the last episode, same run (best of 2): one file at a time {serial:.2f} s, "
              f"side by side {parallel:.2f} s: x{serial / parallel:.2f}")


class _count_cpu:
    """Process CPU seconds per pipeline stage (wall figures swing with the machine's load):
    Stage I (``run_stage1``), capture (``scene.capture`` and ``make_episode``), write."""

    def __init__(self, generator):
        import pam_engine.dataset.episode as episode_module
        import pam_engine.pipeline as pipeline_module
        from pam_engine.sim.mujoco.scene import HandObjectScene

        self.seconds = {"stage1": 0.0, "capture": 0.0, "write": 0.0}
        self._undo = []
        for owner, name, stage in ((pipeline_module, "run_stage1", "stage1"), (HandObjectScene, "capture", "capture"),
                                   (episode_module, "make_episode", "capture"), (generator.writer, "write", "write")):
            self._wrap(owner, name, stage)

    def _wrap(self, owner, name, stage):
        real = getattr(owner, name)
        seconds = self.seconds

        def timed(*args, **kwargs):
            c0 = time.process_time()
            try:
                return real(*args, **kwargs)
            finally:
                seconds[stage] += time.process_time() - c0

        setattr(owner, name, timed)
        self._undo.append((owner, name, real))

    def restore(self):
        for owner, name, real in reversed(self._undo):
            setattr(owner, name, real)


def capture_ratio(object_name: str, frames: int) -> None:
    run = run_stage1(Stage1Request([ObjectSpec(object_name)], seed=0))
    scene, traj = run.scene, run.trajectory
    camera = sample_camera(np.random.default_rng(0), traj.pose_y[0, 0, :, 3] + [0, 0, 0.08], CameraRange())
    geoms, skins = scene.segmentation_ids()
    model, data = scene.model, scene.data
    plain, default = mujoco.Renderer(model, camera.height, camera.width), mujoco.Renderer(model, camera.height, camera.width)
    for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
        plain.scene.flags[flag] = False
    mjcam = mujoco.MjvCamera()
    mjcam.type = mujoco.mjtCamera.mjCAMERA_FREE
    mjcam.lookat[:] = traj.pose_y[0, 0, :, 3]
    mjcam.distance, mjcam.elevation = 0.6, -40.0
    times = {k: [] for k in ("bare default", "bare plain", "render passes", "labels + maps")}
    seq = CaptureSequence.allocate(1, camera.height, camera.width)
    # as the pipeline captures (sim.mujoco.capture): a buffer the camera's size
    with MujocoCapture(model, camera, SegLookup(geoms=geoms, skins=skins), buffer=(camera.width, camera.height)) as cap:
        for t in range(min(frames, traj.num_frames)):
            scene.pose_frame(traj, t)
            for name, renderer in (("bare default", default), ("bare plain", plain)):
                t0 = time.perf_counter()
                renderer.update_scene(data, mjcam)
                renderer.render()
                times[name].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            cap.capture(data, out=seq.frame(0))
            times["render passes"].append(time.perf_counter() - t0)
            sub = traj_slice(traj, t)
            t0 = time.perf_counter()
            labels = episode_labels(sub, camera, seq.depth, seq.seg)
            condition_maps(seq.depth, seq.seg, seq.hand_mesh, labels["joint_2d"], camera,
                           labels["joint_3d"][..., 2], seq.normal)
            times["labels + maps"].append(time.perf_counter() - t0)
    plain.close()
    default.close()
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    total = med["render passes"] + med["labels + maps"]
    print(f"\nCapture per frame on the real scene ({object_name}), {camera.width}x{camera.height}, median ms")
    for k, v in med.items():
        print(f"  {k:15s} {v:7.2f}")
    print(f"  all maps        {total:7.2f}")
    print(f"ratio all maps / bare render: {total / med['bare default']:.2f}x MuJoCo defaults, "
          f"{total / med['bare plain']:.2f}x plain (target <= 3x)")


def traj_slice(traj, t: int):
    """Frame t of a trajectory as a one-frame trajectory (labels work per video)."""
    from dataclasses import replace

    sl = slice(t, t + 1)
    return replace(traj, pose_m=traj.pose_m[sl], wrist_pose=traj.wrist_pose[sl], joint_angles=traj.joint_angles[sl],
                   joint_3d=traj.joint_3d[sl], pose_y=traj.pose_y[sl], contacts=traj.contacts[sl])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--object", default="006_mustard_bottle")
    parser.add_argument("--frames", type=int, default=49)
    args = parser.parse_args()
    capture_ratio(args.object, args.frames)
    episodes(args.episodes, [args.object, "005_tomato_soup_can", "004_sugar_box", "025_mug"])


if __name__ == "__main__":
    main()
