"""Stage I benchmark: scripted grasp success on the 21 DexYCB objects, and simulation speed
against bare ``mj_step`` of the same model in the same run.

    python benchmarks/bench_stage1.py success --seeds 5 --jobs 2
    python benchmarks/bench_stage1.py success --seeds 5 --jobs 2 --compare mujoco   # both searches, same episodes
    python benchmarks/bench_stage1.py speed
    python benchmarks/bench_stage1.py synthesis --seeds 2     # batched vs reference search, same run
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
    name, seed, policy_path, search = args
    from dataclasses import replace

    from pam_engine.pose import ObjectSpec, Stage1Request
    from pam_engine.pose.request import Stage1Config
    from pam_engine.pose.stage import run_stage1

    policy = None
    if policy_path:
        from pam_engine.policy.loading import load_policy

        policy = load_policy(policy_path)
    cfg = Stage1Config()
    cfg = replace(cfg, synthesis=replace(cfg.synthesis, search=search))
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        run = run_stage1(Stage1Request([ObjectSpec(name)], seed=seed), cfg, policy=policy)
        t = run.trajectory
        return name, seed, t.success, t.failure_reason, time.perf_counter() - t0, time.process_time() - c0, run.timings
    except Exception as exc:  # a failed synthesis counts as a failed episode
        return name, seed, False, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0, time.process_time() - c0, {}


def success(seeds: int, jobs: int, objects: list[str], policy: str | None, compare: str | None = None) -> None:
    """Grasp success per object; with ``compare``, the same episodes with that synthesis search
    too (interleaved in one pool, so both see the same machine load)."""
    from tqdm import tqdm

    searches = ["batched"] + ([compare] if compare else [])
    tasks = [(name, seed, policy, s) for name in objects for seed in range(seeds) for s in searches]
    results = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for r in tqdm(pool.map(_episode, tasks), total=len(tasks), desc="episodes"):
            results.append(r)
    by_search = {s: [r for r, t in zip(results, tasks) if t[3] == s] for s in searches}
    print(f"\nScripted grasp success, synthesized targets, {seeds} seeds per object")
    print(f"{'object':26s} " + "  ".join(f"{s:>9s}" for s in searches) + "  failures (" + searches[0] + ")")
    for name in objects:
        cells, reasons = [], ""
        for s in searches:
            rows = [r for r in by_search[s] if r[0] == name]
            cells.append(f"{sum(r[2] for r in rows)}/{len(rows):<7d}")
            if s == searches[0]:
                reasons = "; ".join(sorted({r[3][:60] for r in rows if not r[2]}))
        print(f"{name:26s} " + "  ".join(f"{c:>9s}" for c in cells) + f"  {reasons}")
    for s in searches:
        rows = by_search[s]
        ok = sum(r[2] for r in rows)
        split = {k: np.mean([r[6].get(k, 0.0) for r in rows]) for k in ("settle", "synthesis", "trial", "rollout")}
        print(f"\n{s}: {ok}/{len(rows)} = {100 * ok / len(rows):.1f}%; per episode {np.mean([r[5] for r in rows]):.2f} s CPU, "
              f"{np.mean([r[4] for r in rows]):.2f} s wall; wall split: "
              + ", ".join(f"{k} {v:.2f} s" for k, v in split.items()))


def synthesis(objects: list[str], seeds: int) -> None:
    """Process CPU seconds per grasp synthesis call, batched search against the reference search
    ("mujoco", one collision call per step) on the same scenes and seeds, alternating in one
    process; and how alike their best grasps are."""
    from dataclasses import replace

    from pam_engine.pose import ObjectSpec
    from pam_engine.pose.grasp.synthesis import GraspSynthesisConfig, GraspSynthesizer
    from pam_engine.pose.request import Stage1Config
    from pam_engine.pose.setup import build_scene, load_objects, place_objects, settle

    cfg = Stage1Config()
    times = {"mujoco": [], "batched": []}
    print(f"{'object':26s} seed  reference s  batched s  ratio  best-grasp wrist offset")
    for name in objects:
        specs = [ObjectSpec(name)]
        assets = load_objects(specs)
        scene = build_scene(assets, place_objects(assets, specs, np.random.default_rng(0), 0.0), cfg)
        settle(scene, cfg)
        GraspSynthesizer(scene, 0, GraspSynthesisConfig(seed=99)).synthesize(1)  # builds and caches the grid
        for seed in range(1, seeds + 1):
            found = {}
            for search in ("mujoco", "batched"):
                c0 = time.process_time()
                try:
                    found[search] = GraspSynthesizer(scene, 0, replace(cfg.synthesis, seed=seed, search=search)).synthesize(12)
                except Exception:  # noqa: BLE001 - no grasp: timed all the same
                    found[search] = []
                times[search].append(time.process_time() - c0)
            a, b = found["mujoco"], found["batched"]
            offset = (f"{np.linalg.norm(a[0].wrist_in_object[:3, 3] - b[0].wrist_in_object[:3, 3]) * 1000:6.1f} mm"
                      if a and b else "n/a")
            print(f"{name:26s} {seed:4d}  {times['mujoco'][-1]:10.3f}  {times['batched'][-1]:9.3f}  "
                  f"{times['mujoco'][-1] / times['batched'][-1]:5.1f}x  {offset}")
    ref, fast = np.mean(times["mujoco"]), np.mean(times["batched"])
    print(f"\nmean CPU per call: reference {ref:.3f} s, batched {fast:.3f} s: {ref / fast:.1f}x faster")


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
    s.add_argument("--compare", default=None, choices=["mujoco"],
                   help="also run the same episodes with this synthesis search (the reference)")
    y = sub.add_parser("synthesis")
    y.add_argument("--objects", nargs="*", default=["006_mustard_bottle", "025_mug", "011_banana", "061_foam_brick"])
    y.add_argument("--seeds", type=int, default=2)
    v = sub.add_parser("speed")
    v.add_argument("--object", default="006_mustard_bottle")
    v.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.mode == "success":
        success(args.seeds, args.jobs, args.objects or dexycb_object_names(), args.policy, args.compare)
    elif args.mode == "synthesis":
        synthesis(args.objects, args.seeds)
    else:
        speed(args.object, args.repeats)


if __name__ == "__main__":
    main()
