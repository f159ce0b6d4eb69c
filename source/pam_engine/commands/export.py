"""``pam export FORMAT DATASET OUT``: a dataset in another tool's input format (``cosmos``:
Cosmos Transfer 2.5 clips and control specs)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="export a dataset for another tool (cosmos: Cosmos Transfer clips and control specs)",
        description="Export a dataset's episodes in another tool's input format. 'cosmos' writes one CosmosWriter-style "
        "clip per episode (rgb, depth, segmentation, shaded_seg, edges; PNGs and control videos) and the control spec "
        "Cosmos Transfer 2.5 takes.")
    p.add_argument("format", choices=["cosmos"], help="the target format")
    p.add_argument("dataset", metavar="DATASET", help="dataset folder (holding episode_NNNNNN folders)")
    p.add_argument("out", metavar="OUT", help="output folder (created; a previous export resumes)")
    p.add_argument("--depth-weight", type=float, default=0.4, help="control weight of depth in the spec (default 0.4)")
    p.add_argument("--seg-weight", type=float, default=0.3, help="control weight of segmentation (default 0.3)")
    p.add_argument("--edge-weight", type=float, default=0.3, help="control weight of edges (default 0.3)")
    p.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance in the spec (default 3)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pam_engine.dataset.cosmos import CosmosExportConfig, export_cosmos

    config = CosmosExportConfig(depth_weight=args.depth_weight, seg_weight=args.seg_weight,
                                edge_weight=args.edge_weight, guidance=args.guidance)
    clips = export_cosmos(args.dataset, args.out, config)
    print(f"wrote {len(clips)} Cosmos clip(s) to {args.out} (run Cosmos Transfer on each clip's spec.json)")
    return 0
