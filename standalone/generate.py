"""Generate a dataset with Stage I in Isaac Lab: the same config file and output layout as `pam
generate` (it runs `pam generate` with `backend=isaaclab`): N parallel envs per object, captured
from the Isaac camera, then Stages II-III as `pam generate` runs them. Rerunning the same command
resumes (complete episodes are skipped, nothing half-written).

    .venv-isaac/bin/python standalone/generate.py --headless --config configs/X.yaml --out data/isaac --num_envs 4
    ./isaaclab.sh -p standalone/generate.py --physics physx --device cuda:0 --num_envs 64 --out data/isaac  # Isaac Sim
"""

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="YAML config (see configs/), as for `pam generate`")
    parser.add_argument("--out", required=True, help="dataset folder (created; may hold a previous run of the same config)")
    parser.add_argument("--headless", action="store_true", help="no GUI (kit-less runs are always headless)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: the config's isaaclab.device, cpu)")
    parser.add_argument("--num_envs", type=int, default=None, help="parallel envs (default: the config's isaaclab.num_envs)")
    parser.add_argument("--physics", default=None, help="newton (kit-less) or physx (Isaac Sim); default the config's")
    parser.add_argument("--episodes", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    from pam_engine.errors import PamError
    from pam_engine.isaaclab.checks import check_device, check_num_envs, check_physics, require_isaaclab

    try:
        require_isaaclab()
        overrides = ["backend=isaaclab"]
        if args.num_envs is not None:
            overrides.append(f"isaaclab.num_envs={check_num_envs(args.num_envs)}")
        if args.device is not None:
            overrides.append(f"isaaclab.device={check_device(args.device)}")
        if args.physics is not None:
            overrides.append(f"isaaclab.physics={check_physics(args.physics)}")
    except PamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = None
    if args.physics == "physx":  # Kit must start before Isaac Lab's modules load
        from isaaclab.app import AppLauncher

        app = AppLauncher(headless=args.headless, device=args.device or "cuda:0").app
    from pam_engine.cli import main as pam_main

    pam = ["generate", "--out", args.out, *(["--config", args.config] if args.config else []),
           *(["--episodes", str(args.episodes)] if args.episodes is not None else []),
           *(["--seed", str(args.seed)] if args.seed is not None else []),
           *(["--no-progress"] if args.no_progress else []),
           *[x for o in [*overrides, *args.overrides] for x in ("--set", o)]]
    try:
        return pam_main(pam)
    finally:
        if app is not None:
            app.close()


if __name__ == "__main__":
    sys.exit(main())
