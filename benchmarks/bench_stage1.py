"""Stage I benchmark: scripted grasp success on the 21 DexYCB objects, and simulation speed
against bare ``mj_step`` of the same model in the same run.

    python benchmarks/bench_stage1.py success --seeds 5 --jobs 2
    python benchmarks/bench_stage1.py speed
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering (EGL) unless the user chose otherwise

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import mujoco
import numpy as np


def _episode(args):
    name, seed, policy_path = args
    from pam_engine.pose import ObjectSpec, Stage1Request, simulate

    policy = None
    if policy_path:
        from pam_engine.policy.loading import load_policy

        policy = load_policy(policy_path)
    t0 = time.perf_counter()
    try:
        t = simulate(Stage1Request([ObjectSpec(name)], seed=seed), policy=policy)
        return name, seed, t.success, t.failure_reason, time.perf_counter() - t0
    except Exception as exc:  # a failed synthesis counts as a failed episode
        return name, seed, False, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0


def success(seeds: int, jobs: int, objects: list[str], policy: str | None) -> None:
    from tqdm import tqdm

    tasks = [(name, seed, policy) for name in objects for seed in range(seeds)]
    results = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for r in tqdm(pool.map(_episode, tasks), total=len(tasks), desc="episodes"):
            results.append(r)
    print(f"\nScripted grasp success, synthesized targets, {seeds} seeds per object")
    print(f"{'object':26s} success  mean time  failures")
    total = 0
    for name in objects:
        rows = [r for r in results if r[0] == name]
        ok = sum(r[2] for r in rows)
        total += ok
        reasons = "; ".join(sorted({r[3][:60] for r in rows if not r[2]}))
        print(f"{name:26s} {ok}/{len(rows)}     {np.mean([r[4] for r in rows]):5.1f} s   {reasons}")
    print(f"\noverall: {total}/{len(results)} = {100 * total / len(results):.1f}%")


def speed(object_name: str, repeats: int) -> None:
    """Control steps per second of a whole Stage I rollout (policy, targets, recording, checks)
    vs. the same model stepped bare with the same controls, one core."""
    import pam_engine.pose.stage as stage1
    from pam_engine.pose import ObjectSpec, Stage1Request, simulate

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    captured = {}
    original_run = stage1.rollout

    def timed_run(scene, policy, plan, target, cfg, hand_name, seed):
        captured["state"] = (scene.model, mujoco.MjData(scene.model))
        mujoco.mj_copyData(captured["state"][1], scene.model, scene.data)
        t0 = time.perf_counter()
        out = original_run(scene, policy, plan, target, cfg, hand_name, seed)
        captured.setdefault("engine", []).append(time.perf_counter() - t0)
        captured["steps"] = plan.num_steps - 1
        captured["ctrl"] = np.array([np.concatenate(policy.act(s)) for s in range(plan.num_steps - 1)])
        captured["order"] = np.concatenate([scene.wrist_act, scene.finger_act])
        captured["substeps"] = cfg.scene.substeps
        return out

    stage1.rollout = timed_run
    try:
        for seed in range(repeats):
            simulate(Stage1Request([ObjectSpec(object_name)], seed=0))
    finally:
        stage1.rollout = original_run
    model, start = captured["state"]
    bare = []
    for _ in range(repeats):
        data = mujoco.MjData(model)
        mujoco.mj_copyData(data, model, start)
        ctrl, order, sub = captured["ctrl"], captured["order"], captured["substeps"]
        t0 = time.perf_counter()
        for k in range(captured["steps"]):
            data.ctrl[order] = ctrl[k]
            mujoco.mj_step(model, data, nstep=sub)
        bare.append(time.perf_counter() - t0)
    steps = captured["steps"]
    engine, bare_t = np.median(captured["engine"]), np.median(bare)
    print(f"\nStage I speed, {object_name}, {steps} control steps x {captured['substeps']} physics steps, one core")
    print(f"  engine rollout : {steps / engine:8.0f} control steps/s ({steps * captured['substeps'] / engine:8.0f} physics steps/s)")
    print(f"  bare mj_step   : {steps / bare_t:8.0f} control steps/s ({steps * captured['substeps'] / bare_t:8.0f} physics steps/s)")
    print(f"  overhead ratio : {engine / bare_t:.2f}x (target <= 1.3x)")


def main() -> None:
    from pam_engine.objects import dexycb_object_names

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("success")
    s.add_argument("--seeds", type=int, default=5)
    s.add_argument("--jobs", type=int, default=2)
    s.add_argument("--objects", nargs="*", default=None)
    s.add_argument("--policy", default=None, help="trained policy checkpoint instead of the scripted controller")
    v = sub.add_parser("speed")
    v.add_argument("--object", default="006_mustard_bottle")
    v.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.mode == "success":
        success(args.seeds, args.jobs, args.objects or dexycb_object_names(), args.policy)
    else:
        speed(args.object, args.repeats)


if __name__ == "__main__":
    main()
