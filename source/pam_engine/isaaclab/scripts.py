"""What the ``standalone/`` scripts run (kept here so tests can call it): common flags, the app
launch (Kit only for the PhysX preset inside Isaac Sim), rl-games training through Isaac Lab's
wrapper with the engine's checkpoint export, and the per-object success report."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from pam_engine.isaaclab.checks import check_device, check_num_envs, check_physics, require_isaaclab


def add_common_flags(parser: argparse.ArgumentParser, num_envs: int = 4) -> None:
    parser.add_argument("--headless", action="store_true", help="no GUI (kit-less runs are always headless)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--num_envs", type=int, default=num_envs)
    parser.add_argument("--physics", default="newton", help="newton (default, kit-less) or physx (Isaac Sim)")
    parser.add_argument("--object", default="006_mustard_bottle", help="the object (newton: one per task)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bank-dir", default=None, help="grasp bank cache (default: the engine's cache)")


def check_flags(args) -> None:
    """Every flag checked before anything is imported or launched."""
    require_isaaclab()
    check_num_envs(args.num_envs)
    check_physics(args.physics)
    check_device(args.device)


def launch(args):
    """Isaac Sim's app for the PhysX preset (Kit must start before Isaac Lab's modules load);
    kit-less Newton needs none. Returns the app or None."""
    if args.physics != "physx":
        return None
    from isaaclab.app import AppLauncher

    return AppLauncher(headless=args.headless, device=args.device).app


def engine_config(objects, bank_dir=None, synthesis_seeds=None):
    from pam_engine.rl.bank import BankConfig
    from pam_engine.rl.env import EnvConfig

    return EnvConfig(bank=BankConfig(objects=list(objects), cache_dir=bank_dir,
                                     **({"synthesis_seeds": list(synthesis_seeds)} if synthesis_seeds else {})))


def rl_games_config(num_envs: int, device: str, seed: int, max_epochs: int, train_dir: str,
                    horizon: int | None = None, minibatch: int | None = None) -> dict:
    """The task's ``agents/rl_games_ppo_cfg.yaml`` with the run's settings."""
    import yaml

    path = Path(__file__).with_name("agents") / "rl_games_ppo_cfg.yaml"
    cfg = yaml.safe_load(path.read_text())
    c = cfg["params"]["config"]
    cfg["params"]["seed"] = seed
    c.update(device=device, device_name=device, num_actors=num_envs, max_epochs=max_epochs, train_dir=train_dir,
             full_experiment_name=c["name"])
    if horizon:
        c["horizon_length"] = horizon
    c["minibatch_size"] = minibatch or min(c["minibatch_size"], num_envs * c["horizon_length"])
    return cfg


class _LossLog:
    """Records the scalars rl-games writes under ``losses/`` (the smoke test's finite losses)."""

    def __init__(self, writer):
        self.writer, self.values = writer, {}
        self._add = writer.add_scalar if writer is not None else None

    def add_scalar(self, tag, value, *args, **kwargs):
        if str(tag).startswith("losses/"):
            self.values.setdefault(tag, []).append(float(value))
        if self._add is not None:
            return self._add(tag, value, *args, **kwargs)


def train(env, n_dof: int, task, out: str, max_epochs: int, seed: int = 0, train_dir: str = "runs/isaaclab",
          horizon: int | None = None, minibatch: int | None = None) -> dict:
    """PPO with rl-games on an Isaac Lab ``PamGraspEnv`` through ``isaaclab_rl``'s wrapper; the
    final actor is exported in the engine's checkpoint format (runs in MuJoCo as well)."""
    from isaaclab_rl.rl_games import RlGamesVecEnvWrapper, register_rl_games_env
    from rl_games.torch_runner import Runner

    from pam_engine.policy.loading import export_rl_games, save_policy
    from pam_engine.training.rlgames import GraspObserver

    cfg = rl_games_config(env.num_envs, str(env.device), seed, max_epochs, train_dir, horizon, minibatch)
    wrapped = RlGamesVecEnvWrapper.from_agent_cfg(env, cfg)
    register_rl_games_env(wrapped)
    observer = GraspObserver()
    losses: dict = {}
    after_init = observer.after_init

    def hooked(algo):
        after_init(algo)
        log = _LossLog(algo.writer)
        algo.writer = log
        losses["log"] = log

    observer.after_init = hooked
    t0 = time.perf_counter()
    runner = Runner(algo_observer=observer)
    runner.load(cfg)
    runner.reset()
    runner.run({"train": True, "play": False})
    algo = observer.algo
    # rl-games' torch.compile wraps modules (keys "..._orig_mod..."): the exporter reads plain names
    state = {k.replace("_orig_mod.", ""): v for k, v in algo.model.state_dict().items()}
    net = export_rl_games(state, cfg["params"]["network"]["mlp"]["units"],
                          cfg["params"]["network"]["mlp"]["activation"])
    path = save_policy(out, net, task, n_dof, {"backend": "isaaclab", "physics": env.cfg.physics_preset,
                                               "objects": list(env.cfg.objects), "epochs": int(algo.epoch_num),
                                               "frames": int(algo.frame)})
    return {"checkpoint": str(path), "frames": int(algo.frame), "epochs": int(algo.epoch_num),
            "seconds": time.perf_counter() - t0, "history": observer.history,
            "losses": losses["log"].values if "log" in losses else {}}


def success_report(results: list[dict], title: str) -> str:
    """Per-object success in ``bench_rl.py``'s layout (object, successes/episodes), overall last."""
    lines = [f"{title}: grasp success (GraspXL rule)", f"{'object':24s} {'success':>9s}"]
    names = sorted({r["object"] for r in results})
    for name in names:
        rows = [r for r in results if r["object"] == name]
        lines.append(f"{name:24s} {sum(r['success'] for r in rows):>4d}/{len(rows):<4d}")
    rate = 100 * np.mean([r["success"] for r in results]) if results else float("nan")
    lines.append(f"{'overall':24s} {rate:8.1f}%")
    return "\n".join(lines)
