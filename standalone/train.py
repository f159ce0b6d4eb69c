"""Train the grasp residual with rl-games in Isaac Lab (through isaaclab_rl's wrapper); the
actor is written in the engine's checkpoint format, so `pam simulate --policy` runs it on MuJoCo.

    .venv-isaac/bin/python standalone/train.py --headless --num_envs 4 --max_epochs 5 --out runs/isaaclab/grasp.pth
    ./isaaclab.sh -p standalone/train.py --physics physx --device cuda:0 --num_envs 1024   # inside Isaac Sim
"""

import argparse

from pam_engine.isaaclab.scripts import add_common_flags, check_flags, engine_config, launch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_flags(parser, num_envs=64)
    parser.add_argument("--max_epochs", type=int, default=1000)
    parser.add_argument("--horizon", type=int, default=None, help="rl-games horizon_length (default: the agent yaml)")
    parser.add_argument("--out", default="runs/isaaclab/grasp_residual.pth")
    parser.add_argument("--train-dir", default="runs/isaaclab")
    args = parser.parse_args()
    check_flags(args)
    app = launch(args)
    from pam_engine.isaaclab.scripts import train
    from pam_engine.isaaclab.task import PamGraspEnv, make_env_cfg

    engine = engine_config([args.object], args.bank_dir)
    env = PamGraspEnv(make_env_cfg([args.object], num_envs=args.num_envs, device=args.device, physics=args.physics,
                                   engine=engine, seed=args.seed))
    try:
        result = train(env, env.n_dof, engine.task, args.out, args.max_epochs, args.seed, args.train_dir, args.horizon)
    finally:
        env.close()
        if app is not None:
            app.close()
    last = result["history"][-1] if result["history"] else None
    print(f"trained {result['epochs']} epochs, {result['frames']} frames in {result['seconds']:.0f} s"
          + (f", train success {last.success_rate:.2f}" if last else "") + f" -> {result['checkpoint']}")


if __name__ == "__main__":
    main()
