"""``pam train-appearance`` and ``pam train-motion``: thin wrappers over ``pam_diffusion.training``
(Stage II's two Flux ControlNets, Stage III's CogVideoX control branch)."""

from __future__ import annotations

import argparse

STAGES = {"train-appearance": "appearance", "train-motion": "motion"}
_HELP = {
    "appearance": "train PAM's two Stage II Flux ControlNets on an engine dataset (controlnet.bin out)",
    "motion": "train PAM's Stage III CogVideoX control branch on an engine dataset (sharded transformer out)",
}


def register_stage(subparsers, command: str) -> None:
    stage = STAGES[command]
    p = subparsers.add_parser(
        command, help=_HELP[stage],
        description=_HELP[stage] + ". Base models stay frozen; checkpoints go to train.output_dir in PAM's layout "
        "and load with `pam generate`. One GPU by default; `accelerate launch -m pam_engine.cli "
        f"{command} ...` for several.")
    p.add_argument("--config", required=True, help=f"trainer YAML (see configs/train_{stage}_tiny.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.max_steps=100 (repeatable; YAML values)")
    p.set_defaults(func=lambda args: run(args, stage))


def run(args: argparse.Namespace, stage: str) -> int:
    from pam_diffusion.training import load_trainer_config, train

    cfg = load_trainer_config(args.config, stage, args.overrides)
    result = train(cfg)
    last = f"{result.losses[-1]:.4f}" if result.losses else "n/a"
    print(f"{stage}: {result.steps} steps (resumed at {result.resumed_from}), stopped by {result.stopped}, "
          f"last loss {last}, fixed-batch loss {result.fixed_loss_start:.4f} -> {result.fixed_loss_end:.4f}")
    print(f"checkpoint -> {result.checkpoint}; TensorBoard logs -> {result.output_dir / 'logs'}")
    return 0
