"""A grasp-policy checkpoint (the engine's format, trained in MuJoCo or Isaac Lab) in Isaac Lab:
success per object over ``--episodes`` episodes, in bench_rl.py's report layout.

    .venv-isaac/bin/python standalone/play.py --headless --policy policies/grasp_residual.pth --num_envs 4
    .venv-isaac/bin/python standalone/play.py --headless --scripted --object 061_foam_brick
"""

import argparse

from pam_engine.isaaclab.scripts import add_common_flags, check_flags, engine_config, launch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_flags(parser)
    parser.add_argument("--policy", default="policies/grasp_residual.pth")
    parser.add_argument("--scripted", action="store_true", help="the scripted plan (zero residual) instead")
    parser.add_argument("--objects", nargs="*", default=None, help="several objects, one task each (default --object)")
    parser.add_argument("--episodes", type=int, default=None, help="per object (default num_envs)")
    args = parser.parse_args()
    check_flags(args)
    from pam_engine.policy.loading import load_policy

    network = None if args.scripted else load_policy(args.policy).network  # checked before the sim starts
    app = launch(args)
    import torch

    from pam_engine.isaaclab.scripts import success_report
    from pam_engine.isaaclab.task import PamGraspEnv, make_env_cfg

    results = []
    for name in args.objects or [args.object]:
        env = PamGraspEnv(make_env_cfg([name], num_envs=args.num_envs, device=args.device, physics=args.physics,
                                       engine=engine_config([name], args.bank_dir), seed=args.seed))
        want = args.episodes or args.num_envs
        obs, _ = env.reset()
        done = []
        with torch.no_grad():
            while len(done) < want:
                a = torch.zeros(env.num_envs, 13) if network is None else network(obs["policy"].float()).clamp(-1, 1)
                obs, _, _, _, extras = env.step(a)
                done += extras["episodes"]
        results += done[:want]
        env.close()
    if app is not None:
        app.close()
    label = "scripted plan" if network is None else args.policy
    print(success_report(results, f"Isaac Lab ({args.physics}, {args.device}), {label}"))


if __name__ == "__main__":
    main()
