"""The Isaac Lab backend next to the embedded MuJoCo one, in the same run (kit-less Isaac Lab 3.0
environment, ``tools/make_isaac_env.sh``; MuJoCo there is Newton's pinned 3.12).

    python benchmarks/bench_isaaclab.py success --policy policies/grasp_residual.pth --seeds 1
    python benchmarks/bench_isaaclab.py throughput --envs 4 64 --steps 20

``success`` (sim-to-sim): per object (the 21 DexYCB objects by default) one Isaac task whose env
pairs play each episode with the scripted plan (zero residual) and with the policy; MuJoCo plays
the very same episodes (same slot rng streams: placement, bank grasp, h0, plan, and the same
state at the first decision). Success is GraspXL's rule, as in ``bench_rl.py``.

``throughput``: env steps (decisions) per second for the Isaac task with and without a camera
(depth + instance segmentation read every decision) and for MuJoCo's ``GraspVecEnv``, zero
residuals, after one warm-up episode's worth of steps. Never asserts timings.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering (EGL) unless the user chose otherwise

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402


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


def run_isaac(env, act, rounds: int) -> list[dict]:
    """``rounds`` episodes in every env (all envs end together: one plan length);
    ``act(obs (N, obs_size)) -> (N, 13)``."""
    obs, _ = env.reset()
    out = []
    while len(out) < rounds * env.num_envs:
        obs, _, _, _, extras = env.step(act(obs["policy"]))
        out += extras["episodes"]
    return out


def success(objects, policy, seeds: int, seed: int, bank_dir: str, asset_dir: str, solver: dict | None = None) -> None:
    """Per object one Isaac task of ``2 * seeds`` envs: env ``2k`` plays episode k with the
    scripted plan, env ``2k + 1`` the same episode with the policy (paired slots); MuJoCo plays
    the same episodes. Objects go one at a time (Newton steps identical worlds only)."""
    from pam_engine.isaaclab.episodes import EpisodeSource, play_mujoco
    from pam_engine.isaaclab.task import PamGraspEnv, make_env_cfg
    from pam_engine.rl.bank import load_bank

    network = _actor(policy)
    n = 2 * seeds
    pairs = [k // 2 for k in range(n)]
    learned = torch.tensor([k % 2 == 1 for k in range(n)])

    def act_isaac(obs):
        a = _act(network, obs)
        return torch.where(learned[:, None], a, torch.zeros_like(a))

    def act_mujoco(obs, i):
        return _act(network if i % 2 else None, torch.as_tensor(obs)).numpy()

    print(f"sim-to-sim: grasp success (GraspXL rule), bank grasps (synthesis seed 100), {seeds} episode(s) per "
          f"object, seed {seed}; Isaac Lab (Newton, kit-less CPU{', solver ' + str(solver) if solver else ''}) | MuJoCo "
          "(same venv), the same episodes", flush=True)
    print(f"{'object':24s} {'scripted I|M':>13s} {'learned I|M':>13s}   scripted: rise I|M (m), hand error I|M (m)   s (build, run)", flush=True)
    rows = []
    for name in objects:
        t0 = time.perf_counter()
        engine = _engine([name], bank_dir)
        bank = load_bank(engine.bank, engine.stage1, progress=False)
        env = PamGraspEnv(make_env_cfg([name], num_envs=n, engine=engine, asset_dir=asset_dir, seed=seed, solver=solver))
        env.source = EpisodeSource(engine, n, seed, bank, 1, slot_seeds=pairs)
        t1 = time.perf_counter()
        isaac = sorted(run_isaac(env, act_isaac, 1), key=lambda r: r["env"])
        env.close()
        mujoco = play_mujoco(engine, n, seed, act_mujoco, 1, bank, slot_seeds=pairs)
        t2 = time.perf_counter()
        rows.append({"object": name, "isaac": isaac, "mujoco": mujoco})
        cell = lambda rs, k: f"{sum(r['success'] for r in rs[k::2]):d}/{len(rs[k::2])}"  # noqa: E731
        rise = lambda rs: np.mean([r["rise"] for r in rs[0::2]])  # noqa: E731
        herr = lambda rs: np.mean([r["hand_error"] for r in rs[0::2]])  # noqa: E731
        print(f"{name:24s} {cell(isaac, 0) + '|' + cell(mujoco, 0):>13s} {cell(isaac, 1) + '|' + cell(mujoco, 1):>13s}"
              f"   {rise(isaac):7.3f}|{rise(mujoco):7.3f}  hand error {herr(isaac):.3f}|{herr(mujoco):.3f}"
              f"   {t1 - t0:4.0f}, {t2 - t1:4.0f}", flush=True)
    for k, label in ((0, "scripted"), (1, "learned")):
        i = [r for row in rows for r in row["isaac"][k::2]]
        m = [r for row in rows for r in row["mujoco"][k::2]]
        si, sm = 100 * np.mean([r["success"] for r in i]), 100 * np.mean([r["success"] for r in m])
        agree = 100 * np.mean([a["success"] == b["success"] for a, b in zip(i, m)])
        print(f"overall {label}: Isaac {si:.1f}% | MuJoCo {sm:.1f}% (gap {si - sm:+.1f} points; same outcome in "
              f"{agree:.0f}% of the {len(i)} episodes)", flush=True)


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
    s.add_argument("--seeds", type=int, default=1, help="episodes per object")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--objects", nargs="*", default=None)
    s.add_argument("--solver", action="append", default=[], metavar="KEY=VALUE",
                   help="an MJWarpSolverCfg override for the Isaac side (repeatable), e.g. enable_multiccd=false")
    t = sub.add_parser("throughput")
    t.add_argument("--envs", type=int, nargs="+", default=[4, 64])
    t.add_argument("--steps", type=int, default=20)
    t.add_argument("--camera", type=int, nargs=2, default=[320, 240])
    args = parser.parse_args()
    if args.mode == "success":
        import yaml

        solver = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.solver)}
        success(args.objects or list(dexycb_object_names()), args.policy, args.seeds, args.seed, args.bank_dir,
                args.asset_dir, solver or None)
    else:
        throughput(args.envs, args.steps, args.bank_dir, args.asset_dir, tuple(args.camera))


if __name__ == "__main__":
    main()
