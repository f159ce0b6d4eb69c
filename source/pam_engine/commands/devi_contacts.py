"""``pam devi-contacts DIR``: DeVI's Algorithm 1 on every episode of a dataset, compared with the
simulator's contacts (frame accuracy and onset error, per episode and overall)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "devi-contacts", help="DeVI contact labels from 2D tracks, and their agreement with the simulator's",
        description="Run DeVI's Algorithm 1 (contact from the object's and the hand's 2D motion) on the episodes "
        "of a dataset and compare it with the simulator's hand-level contacts. Successful grasps only unless "
        "--all. See docs/devi.md.")
    parser.add_argument("dataset", metavar="DIR", help="dataset folder (holding episode_NNNNNN folders)")
    parser.add_argument("--keypoints", metavar="NAME",
                        help="use a hand detector's keypoints: the npz of this name inside each episode folder "
                        "('keypoints' (T, 21, 2), optional 'valid'); episodes without it are skipped")
    parser.add_argument("--smooth", type=int, default=1, metavar="FRAMES",
                        help="centred moving average over this many frames before the rule (odd; default 1: off)")
    parser.add_argument("--points", type=int, default=None, help="object-surface points tracked (default 256)")
    parser.add_argument("--all", action="store_true", help="include failed grasps")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 unless every episode meets the bar (>= 90%% of frames, onset within 2 frames)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import os
    import sys
    from pathlib import Path

    from pam_engine.dataset.reader import Episode, list_episodes
    from pam_engine.devi.agreement import episode_agreement, format_table, summarize
    from pam_engine.devi.contacts import ContactRuleConfig
    from pam_engine.devi.tracks import DEFAULT_POINTS
    from pam_engine.errors import ConfigError

    root = Path(args.dataset)
    if not root.is_dir():
        raise ConfigError(f"dataset {root}: not a folder")
    if args.points is not None and args.points < 1:
        raise ConfigError(f"--points must be a positive integer, got {args.points}")
    rule = ContactRuleConfig(smooth=args.smooth)
    results, skipped = [], []
    for path in list_episodes(root):
        episode = Episode(path)
        if not (args.all or episode.meta.success):
            skipped.append(f"{episode.name} (failed grasp)")
            continue
        keypoints = None
        if args.keypoints:
            keypoints = path / args.keypoints
            if not keypoints.is_file():
                skipped.append(f"{episode.name} (no {args.keypoints})")
                continue
        result, _ = episode_agreement(episode, rule, points=args.points or DEFAULT_POINTS, keypoints=keypoints)
        results.append(result)
    if skipped:
        print(f"skipped {len(skipped)}: {', '.join(skipped)}", file=sys.stderr)
    if not results:
        print(f"pam devi-contacts: no episode to compare in {root}", file=sys.stderr)
        return 1
    print(format_table(results))
    if args.json:
        out = Path(args.json)
        tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps({"summary": summarize(results).to_dict(),
                                   "episodes": [r.to_dict() for r in results], "skipped": skipped}, indent=2),
                       encoding="utf-8")
        os.replace(tmp, out)
    return 0 if not args.check or all(r.passed for r in results) else 1
