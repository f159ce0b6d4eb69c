"""``pam view DIR``: write a self-contained HTML page to browse a dataset's episodes."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "view", help="write an HTML page showing each episode's video, condition maps and keypoints",
        description="Write a self-contained HTML page (videos embedded) for a dataset folder.")
    parser.add_argument("dataset", metavar="DIR", help="dataset folder (holding episode_NNNNNN folders)")
    parser.add_argument("-o", "--out", help="output HTML file (default: DIR/index.html)")
    parser.add_argument("--max-episodes", type=int, default=20, help="show at most this many episodes (default 20)")
    parser.add_argument("--link", action="store_true",
                        help="reference the videos by relative path instead of embedding them")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pam_engine.dataset.viewer import write_viewer

    out, shown = write_viewer(args.dataset, args.out, args.max_episodes, embed=not args.link)
    print(f"wrote {out} ({shown} episode(s), {out.stat().st_size / 1e6:.1f} MB)")
    return 0
