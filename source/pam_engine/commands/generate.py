"""``pam generate``: the main job, N randomised episodes into a dataset folder."""

from __future__ import annotations

import argparse
import signal
import sys
import time


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "generate",
        help="generate a dataset of episodes (Stage I, capture, and diffusion when configured)",
        description="Generate N domain-randomised episodes: simulated grasp, condition maps, ground truth, "
        "and the photoreal video when diffusion weights are configured. Re-running with the same "
        "config resumes an interrupted batch.",
    )
    p.add_argument("--config", default=None, help="YAML config (see configs/); defaults apply without one")
    p.add_argument("--out", required=True, help="dataset folder (created; may hold a previous run of the same config)")
    p.add_argument("--episodes", type=int, default=None, help="number of episodes (overrides the config)")
    p.add_argument("--seed", type=int, default=None, help="batch seed (overrides the config)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set randomization.distractors=1 (repeatable)")
    p.add_argument("--workers", type=int, default=None, help="run episodes on this many Ray workers (default: in this process)")
    p.add_argument("--ray-address", default=None, help="join a Ray cluster ('auto' or ray://host:10001) instead of a local Ray")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pam_engine.config import apply_overrides, from_dict, load_yaml
    from pam_engine.pipeline import GenerateConfig, Generator

    overrides = list(args.overrides)
    if args.episodes is not None:
        overrides.append(f"episodes={args.episodes}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.workers is not None:
        overrides.append(f"ray.workers={args.workers}")
    if args.ray_address is not None:
        overrides.append(f"ray.address={args.ray_address}")
    given = apply_overrides(load_yaml(args.config) if args.config else {}, overrides)
    generator = Generator(from_dict(GenerateConfig, given), args.out, given=given)
    cfg = generator.cfg
    if not generator.diffusion_enabled:
        print(cfg.diffusion.skip_message())
    t0 = time.perf_counter()
    stopped = {}

    def stop(signum, frame):
        # The flag makes the generator stop at its next check even where a library swallows the
        # KeyboardInterrupt (trimesh's optional imports catch BaseException).
        stopped["signal"] = signum
        generator.stop_requested = True
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not break the clean-up
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        summary = generator.run(progress=not args.no_progress)
    except KeyboardInterrupt:
        # the episode in flight was discarded (its temporary folder removed, its claim released)
        name = "SIGTERM" if stopped.get("signal") == signal.SIGTERM else "interrupted"
        print(f"pam generate: {name}: stopped; finished episodes are kept, run the same command to resume",
              file=sys.stderr)
        return 143 if stopped.get("signal") == signal.SIGTERM else 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(summary.report())
    print(f"total {time.perf_counter() - t0:.1f} s -> {args.out}")
    return 0
