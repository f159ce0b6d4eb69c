"""``pam export FORMAT DATASET OUT``: a dataset in another tool's input format (``cosmos``:
Cosmos Transfer 2.5 clips and control specs; ``lerobot``: the LeRobot dataset format v3.0)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="export a dataset for another tool (cosmos: Cosmos Transfer clips; lerobot: LeRobot v3.0)",
        description="Export a dataset's episodes in another tool's input format.")
    formats = p.add_subparsers(dest="format", metavar="FORMAT", required=True)

    cosmos = formats.add_parser(
        "cosmos", help="Cosmos Transfer 2.5 clips and control specs",
        description="One CosmosWriter-style clip per episode (rgb, depth, segmentation, shaded_seg, edges; PNGs "
        "and control videos) and the control spec Cosmos Transfer 2.5 takes.")
    cosmos.add_argument("dataset", metavar="DATASET", help="dataset folder (holding episode_NNNNNN folders)")
    cosmos.add_argument("out", metavar="OUT", help="output folder (created; a previous export resumes)")
    cosmos.add_argument("--depth-weight", type=float, default=0.4, help="control weight of depth in the spec (default 0.4)")
    cosmos.add_argument("--seg-weight", type=float, default=0.3, help="control weight of segmentation (default 0.3)")
    cosmos.add_argument("--edge-weight", type=float, default=0.3, help="control weight of edges (default 0.3)")
    cosmos.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance in the spec (default 3)")
    cosmos.set_defaults(func=run_cosmos)

    lerobot = formats.add_parser(
        "lerobot", help="the LeRobot dataset format (v3.0)",
        description="Write the episodes of DATASET as a LeRobot v3.0 dataset in OUT (a new folder): "
        "meta/info.json, parquet frames and episode metadata, and the mp4 videos. Load it with "
        "lerobot's LeRobotDataset(repo_id, root=OUT). Needs pyarrow (pip install pam-engine[lerobot]).")
    lerobot.add_argument("dataset", metavar="DATASET", help="PAM dataset folder (holding episode_NNNNNN folders)")
    lerobot.add_argument("out", metavar="OUT", help="new folder for the LeRobot dataset")
    lerobot.add_argument("--repo-id", default=None, help="name recorded in info.json (default: the OUT folder's name)")
    lerobot.set_defaults(func=run_lerobot)


def run_cosmos(args: argparse.Namespace) -> int:
    from pam_engine.dataset.cosmos import CosmosExportConfig, export_cosmos

    config = CosmosExportConfig(depth_weight=args.depth_weight, seg_weight=args.seg_weight,
                                edge_weight=args.edge_weight, guidance=args.guidance)
    clips = export_cosmos(args.dataset, args.out, config)
    print(f"wrote {len(clips)} Cosmos clip(s) to {args.out} (run Cosmos Transfer on each clip's spec.json)")
    return 0


def run_lerobot(args: argparse.Namespace) -> int:
    from pam_engine.dataset.lerobot import export_lerobot

    out = export_lerobot(args.dataset, args.out, repo_id=args.repo_id)
    print(f"wrote a LeRobot v3.0 dataset -> {out}")
    return 0
