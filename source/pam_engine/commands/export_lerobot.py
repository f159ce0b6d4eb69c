"""``pam export-lerobot DIR OUT``: a dataset in the LeRobot v3.0 format."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export-lerobot", help="export a dataset to the LeRobot dataset format (v3.0)",
        description="Write the episodes of DIR as a LeRobot v3.0 dataset in OUT (a new folder): "
        "meta/info.json, parquet frames and episode metadata, and the mp4 videos. Load it with "
        "lerobot's LeRobotDataset(repo_id, root=OUT). Needs pyarrow (pip install pam-engine[lerobot]).")
    p.add_argument("dataset", metavar="DIR", help="PAM dataset folder (holding episode_NNNNNN folders)")
    p.add_argument("out", metavar="OUT", help="new folder for the LeRobot dataset")
    p.add_argument("--repo-id", default=None, help="name recorded in info.json (default: the OUT folder's name)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pam_engine.dataset.lerobot import export_lerobot

    out = export_lerobot(args.dataset, args.out, repo_id=args.repo_id)
    print(f"wrote a LeRobot v3.0 dataset -> {out}")
    return 0
