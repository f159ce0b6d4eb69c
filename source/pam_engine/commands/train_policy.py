"""``pam train-policy``: train the Stage I grasp policy with rl-games PPO."""

from __future__ import annotations

import argparse
import shlex
import sys
import time


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train-policy",
        help="train the reinforcement-learning grasp policy (rl-games PPO) and export a checkpoint",
        description="Train the residual grasp policy on the embedded MuJoCo scene with rl-games PPO. Writes "
        "rl-games checkpoints and TensorBoard logs under <train_dir>/<name>/ and the policy that "
        "`pam simulate --policy` and `pam generate` (config key policy) load to <output> (default "
        "<train_dir>/<name>/<name>.pth). Existing outputs are never overwritten without --force; the "
        "shipped policies/ are never written.",
    )
    p.add_argument("--config", required=True, help="training YAML (see policies/*.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set ppo.max_frames=100000 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--force", action="store_true", help="overwrite an existing output policy or run folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pam_engine.training.policy import check_outputs, load_train_config, train

    cfg = load_train_config(args.config, args.overrides)
    cfg.check()
    check_outputs(cfg, args.force)
    command = "pam train-policy " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 2 else \
        f"pam train-policy --config {shlex.quote(str(args.config))}"
    t0 = time.perf_counter()
    result = train(cfg, command=command, progress=not args.no_progress, force=args.force)
    print(f"trained {result.frames} environment steps in {result.epochs} epochs, {time.perf_counter() - t0:.0f} s "
          f"({result.steps_per_second:.0f} steps/s with PPO updates); training success rate (last episodes, "
          f"exploring, curriculum-weighted) {100 * result.success_rate:.0f}%")
    print(f"policy -> {result.output}; logs and rl-games checkpoints -> {result.log_dir}")
    return 0
