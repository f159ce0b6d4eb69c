"""``pam validate DIR``: check a dataset and report problems per episode (exit 1 if any)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate", help="check a dataset for missing files, shape mismatches, NaN and frame-count mismatches",
        description="Check every episode of a dataset folder; exits with 1 when any problem is found.")
    parser.add_argument("dataset", metavar="DIR", help="dataset folder (holding episode_NNNNNN folders)")
    parser.add_argument("--quick", action="store_true",
                        help="trust video headers for frame counts instead of decoding every video")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pam_engine.dataset.validate import format_report, validate_dataset

    report = validate_dataset(args.dataset, decode_videos=not args.quick)
    print(format_report(report))
    return 0 if report.ok else 1
