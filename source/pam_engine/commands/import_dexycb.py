"""``pam import-dexycb``: DexYCB sequences as engine episodes, maps rendered from its ground truth."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "import-dexycb", help="turn DexYCB sequences into engine episodes (real video + rendered GT maps)",
        description="Import DexYCB: each (sequence, camera) becomes an episode whose video.mp4 is the real colour "
        "frames and whose depth, seg, hand-keypoint, hand-mesh and normal maps are rendered by the engine from "
        "DexYCB's MANO, object-pose and camera ground truth (the same renderer as simulated data). Needs the "
        "real MANO model. Writes s0_train.txt / s0_val.txt (PAM's s0 split) for the trainers' data.split_file.")
    p.add_argument("root", help="DexYCB root (holding <date>-subject-NN/, calibration/, optionally models/)")
    p.add_argument("--out", required=True, help="engine dataset folder to write episodes into")
    p.add_argument("--subjects", nargs="+", default=None, help="only these subjects (folder names)")
    p.add_argument("--serials", nargs="+", default=None, help="only these cameras (serial numbers)")
    p.add_argument("--mano", default=None, help="MANO_RIGHT.pkl or its folder (default: $PAM_MANO_DIR)")
    p.add_argument("--prompts", default=None,
                   help="JSON file mapping sequence folder names (e.g. 20200709_141754) to captions (meta.json prompt)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pam_engine.dataset.dexycb import DexYCBError, import_dexycb

    prompts = None
    if args.prompts:
        try:
            prompts = json.loads(open(args.prompts, encoding="utf-8").read())
        except (OSError, json.JSONDecodeError) as e:
            raise DexYCBError(f"--prompts {args.prompts}: not a readable JSON mapping ({e})") from None
        if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
            raise DexYCBError(f"--prompts {args.prompts}: expected a JSON object of sequence name -> caption")
    s = import_dexycb(args.root, args.out, args.mano, args.subjects, args.serials, prompts,
                      progress=not args.no_progress)
    print(f"imported {len(s.written)} episode(s), skipped {len(s.skipped)} already present, "
          f"{len(s.unsupported)} left-hand view(s) not imported (right hands only), {len(s.failed)} failed")
    for key, reason in s.failed:
        print(f"  failed {key}: {reason}")
    return 0 if not s.failed else 1
