"""Build ``source/pam_engine/assets/dexycb_grasp_bank.npz``: the default grasp bank of the 21
DexYCB objects, shipped so that training, ``bench_rl.py`` and the RL tools start without
synthesizing it.

Run from the repository root:

    PYTHONPATH=source python tools/build_grasp_bank.py [--jobs 2]

Uses the default :class:`~pam_engine.rl.bank.BankConfig` and Stage I config and the same code
path as ``load_bank`` (each object through the normal disk cache first, so an interrupted build
resumes where it stopped), then stores every object's grasps under its bank key. Synthesis and
the physical trial are seeded, so a rebuild with the same code, objects and settings gives the
same bank. Rebuild it whenever a change makes ``load_bank`` log a miss for the shipped bank
(a changed plan, synthesis or trial setting, hand, physics, or a bumped ``BANK_FORMAT``).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

from pam_engine import cache  # noqa: E402
from pam_engine.pose.request import Stage1Config  # noqa: E402
from pam_engine.rl import bank  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "source" / "pam_engine" / "assets" / bank.SHIPPED_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=None, help="objects synthesized in parallel (default: every core)")
    parser.add_argument("--work-dir", default=None, help="per-object cache (default: the grasp-bank cache)")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()

    config = bank.BankConfig(cache_dir=args.work_dir)
    stage1 = Stage1Config()
    start = time.perf_counter()
    grasps = bank.load_bank(config, stage1, progress=True, jobs=args.jobs, shipped=False)
    paths = bank.bank_paths(config, stage1)
    entries = {paths[g.name].stem: (g.name, g.grasps) for g in grasps}
    cache.write_npz_atomic(args.out, bank.pack_shipped(entries))
    print(f"{len(entries)} objects, {sum(len(g.grasps) for g in grasps)} grasps in {time.perf_counter() - start:.0f} s"
          f" -> {args.out}")


if __name__ == "__main__":
    main()
