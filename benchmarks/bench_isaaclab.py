"""The Isaac Lab backend next to the embedded MuJoCo one, in the same run (kit-less Isaac Lab 3.0
environment, ``tools/make_isaac_env.sh``; MuJoCo there is Newton's pinned 3.12).

    python benchmarks/bench_isaaclab.py success --policy policies/grasp_residual.pth --rounds 1
    python benchmarks/bench_isaaclab.py throughput --envs 4 64 --steps 20

``success`` (sim-to-sim): one Isaac env per object (the 21 DexYCB objects by default), each
playing ``rounds`` episodes with the scripted plan (zero residual) and with the policy; MuJoCo
plays the very same episodes (same slot rng streams: placement, bank grasp, h0, plan, and the
same state at the first decision). Success is GraspXL's rule, as in ``bench_rl.py``.

``throughput``: env steps (decisions) per second for the Isaac task with and without a camera
(depth + instance segmentation read every decision) and for MuJoCo's ``GraspVecEnv``, zero
residuals, after one warm-up episode's worth of steps. Never asserts timings.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch


def _engine(objects, bank_dir):
    from pam_engine.rl.bank import BankConfig
    from pam_engine.rl.env import EnvConfig, GraspNoiseConfig

    return EnvConfig(bank=BankConfig(objects=list(objects), synthesis_seeds=[100], grasps_per_seed=1, cache_dir=bank_dir),
                     grasp_noise=GraspNoiseConfig(0.0, 0.0))


def _actor(policy_path):
    if policy_path is None:
        return None
    from pam_engine.policy.loading import load_policy

    return load_policy(policy_path).network


def _act(network, obs: torch.Tensor) -> torch.Tensor:
    if network is None:
        return torch.zeros(obs.shape[0], 13)
    with torch.no_grad():
        return network(obs.float()).clamp(-1.0, 1.0)


def run_isaac(env, network, rounds: int) -> list[dict]:
    """``rounds`` episodes in every env (all envs end together: one plan length)."""
    obs, _ = env.reset()
    out = []
    while len(out) < rounds * env.num_envs:
        obs, _, _, _, extras = env.step(_act(network, obs["policy"]))
        out += extras["episodes"]
    return out


def run_mujoco(engine, objects, seed: int, network, rounds: int, bank) -> list[dict]:
    from pam_engine.isaaclab.task import _EpisodeSource

    n = len(objects)
    source = _EpisodeSource(engine, n, seed, bank, n)
    out = []
    for _ in range(rounds):
        for i in range(n):
            slot = source.vec.slots[i]
            source.pinned = i if n > 1 else None
            obs = slot.reset()
            source.pinned = None
            while True:
                a = _act(network, torch.as_tensor(obs)[None])[0].numpy().astype(np.float64)
                obs, _, done, info = slot.step(a)
                if done:
                    out.append({"env": i, "object": info.object, "success": info.success, "rise": info.rise,
                                "hand_error": info.hand_error, "diverged": info.diverged})
                    break
    return out


def success(objects, policy, rounds: int, seed: int, bank_dir: str, asset_dir: str) -> None:
    from pam_engine.isaaclab.task import PamGraspEnv, make_env_cfg
    from pam_engine.rl.bank import load_bank

    engine = _engine(objects, bank_dir)
    bank = load_bank(engine.bank, engine.stage1, progress=False)
    network = _actor(policy)
    t0 = time.perf_counter()
    env = PamGraspEnv(make_env_cfg(objects, num_envs=len(objects), engine=engine, asset_dir=asset_dir, seed=seed))
    print(f"Isaac Lab env ({len(objects)} envs) built in {time.perf_counter() - t0:.0f} s", flush=True)
    results = {}
    for label, net in (("scripted", None), ("learned", network)):
        if label == "learned" and net is None:
            continue
        t0 = time.perf_counter()
        env.source = type(env.source)(engine, env.num_envs, seed, bank, len(objects))  # the same draws again
        results[("isaac", label)] = run_isaac(env, net, rounds)
        t1 = time.perf_counter()
        results[("mujoco", label)] = run_mujoco(engine, objects, seed, net, rounds, bank)
        print(f"{label}: Isaac {t1 - t0:.0f} s, MuJoCo {time.perf_counter() - t1:.0f} s", flush=True)
    labels = [lab for lab in ("scripted", "learned") if ("isaac", lab) in results]
    print(f"\nsim-to-sim: grasp success (GraspXL rule), bank grasps (synthesis seed 100), {rounds} episode(s) per "
          f"object, seed {seed}; Isaac Lab (Newton, kit-less CPU) | MuJoCo, same episodes")
    print(f"{'object':24s} " + " ".join(f"{lab + ' I|M':>14s}" for lab in labels) + "   rise I|M (m, " + labels[-1] + ")")
    for name in objects:
        cells = []
        for lab in labels:
            i = [r for r in results[("isaac", lab)] if r["object"] == name]
            m = [r for r in results[("mujoco", lab)] if r["object"] == name]
            cells.append(f"{sum(r['success'] for r in i):>3d}/{len(i):<2d}|{sum(r['success'] for r in m):>3d}/{len(m):<2d}")
        ri = np.mean([r["rise"] for r in results[("isaac", labels[-1])] if r["object"] == name])
        rm = np.mean([r["rise"] for r in results[("mujoco", labels[-1])] if r["object"] == name])
        print(f"{name:24s} " + " ".join(f"{c:>14s}" for c in cells) + f"   {ri:6.3f}|{rm:6.3f}")
    line = []
    for lab in labels:
        i, m = results[("isaac", lab)], results[("mujoco", lab)]
        si, sm = 100 * np.mean([r["success"] for r in i]), 100 * np.mean([r["success"] for r in m])
        line.append(f"{lab}: Isaac {si:.1f}% | MuJoCo {sm:.1f}% (gap {si - sm:+.1f} points)")
        agree = np.mean([a["success"] == b["success"] for a, b in zip(sorted(i, key=lambda r: (r['env'])),
                                                                         sorted(m, key=lambda r: (r['env'])))])
        line[-1] += f", per-episode agreement {100 * agree:.0f}%"
    print("overall: " + "; ".join(line))
    env.close()


def throughput(env_counts, steps: int, bank_dir: str, asset_dir: str, camera: tuple[int, int]) -> None:
    from pam_engine.isaaclab.task import PamGraspEnv, make_env_cfg
    from pam_engine.rl.bank import load_bank
    from pam_engine.rl.env import GraspVecEnv

    objects = ["006_mustard_bottle"]
    engine = _engine(objects, bank_dir)
    bank = load_bank(engine.bank, engine.stage1, progress=False)
    print(f"\nthroughput: env steps (decisions, 28 physics steps each) per second, zero residuals, {steps} timed steps "
          f"after {steps // 2} warm-up steps, {os.cpu_count()} cores (shared), CPU")
    for n in env_counts:
        rates = {}
        vec = GraspVecEnv(engine, num_envs=n, seed=0, bank=bank, progress=False)
        vec.reset(seed=0)
        zero = np.zeros((n, 13))
        for _ in range(steps // 2):
            vec.step(zero)
        t0 = time.perf_counter()
        for _ in range(steps):
            vec.step(zero)
        rates["MuJoCo GraspVecEnv"] = n * steps / (time.perf_counter() - t0)
        for cam in (None, camera):
            env = PamGraspEnv(make_env_cfg(objects, num_envs=n, engine=engine, asset_dir=asset_dir, camera=cam))
            env.reset()
            action = torch.zeros(n, 13)

            def one():
                env.step(action)
                if env.camera is not None:
                    out = env.camera.data.output
                    float(out["distance_to_image_plane"].torch.sum()) if hasattr(out["distance_to_image_plane"], "torch") \
                        else float(out["distance_to_image_plane"].sum())

            for _ in range(steps // 2):
                one()
            t0 = time.perf_counter()
            for _ in range(steps):
                one()
            label = "Isaac Lab, no camera" if cam is None else f"Isaac Lab, camera {cam[0]}x{cam[1]}"
            rates[label] = n * steps / (time.perf_counter() - t0)
            env.close()
        print(f"  {n:3d} envs: " + "; ".join(f"{k} {v:7.1f}/s" for k, v in rates.items()), flush=True)


def main() -> None:
    from pam_engine.objects import dexycb_object_names

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bank-dir", default=None, help="grasp bank cache (default: the engine's cache)")
    parser.add_argument("--asset-dir", default=None, help="USD asset folder (default: the engine's cache)")
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("success")
    s.add_argument("--policy", default=None)
    s.add_argument("--rounds", type=int, default=1)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--objects", nargs="*", default=None)
    t = sub.add_parser("throughput")
    t.add_argument("--envs", type=int, nargs="+", default=[4, 64])
    t.add_argument("--steps", type=int, default=20)
    t.add_argument("--camera", type=int, nargs=2, default=[320, 240])
    args = parser.parse_args()
    if args.mode == "success":
        success(args.objects or list(dexycb_object_names()), args.policy, args.rounds, args.seed, args.bank_dir,
                args.asset_dir)
    else:
        throughput(args.envs, args.steps, args.bank_dir, args.asset_dir, tuple(args.camera))


if __name__ == "__main__":
    main()
