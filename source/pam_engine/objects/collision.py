"""Convex decomposition of object meshes for contact (CoACD), and clean-up of its hulls.

One convex hull per object would fill a mug's handle hole and a bowl's inside, so fingers could
never enter them; CoACD splits the mesh into near-convex parts instead. Its raw hulls are then
made safe for MuJoCo here: each is rebuilt with qhull, reduced to at most
``max_hull_vertices`` vertices (fewer vertices, faster contacts) while staying close to the
full hull, and dropped if degenerate.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.spatial import ConvexHull

from pam_engine.errors import AssetError, ConfigError

#: Hulls smaller than this (m^3, a 0.46 mm cube) are slivers CoACD leaves at seams; they carry
#: no useful contact and qhull/MuJoCo handle such near-flat point sets badly.
MIN_HULL_VOLUME = 1e-10


@dataclass(frozen=True)
class CollisionConfig:
    """Parameters of the CoACD decomposition; every field is part of the cache key.

    threshold: CoACD's concavity tolerance, relative to the object's size (its default, 0.05,
        keeps a mug's handle hole and a bowl's cavity open on the YCB scans).
    max_hulls: upper bound on parts after CoACD's merge step (keeps contact cost bounded).
    preprocess: CoACD's manifold pre-pass: "auto" (only for non-manifold input), "on", "off".
    preprocess_resolution, resolution: CoACD's voxel and sampling resolutions.
    seed: CoACD's random seed (its tree search is stochastic); fixed for reproducible hulls.
    max_hull_vertices: cap on vertices per hull (MuJoCo's collision cost grows with it).
    """

    threshold: float = 0.05
    max_hulls: int = 32
    preprocess: str = "auto"
    preprocess_resolution: int = 50
    resolution: int = 2000
    seed: int = 0
    max_hull_vertices: int = 64

    def __post_init__(self) -> None:
        if not (0.01 <= self.threshold <= 1.0):
            raise ConfigError(f"CollisionConfig.threshold={self.threshold!r}: expected a value in [0.01, 1]")
        if int(self.max_hulls) != self.max_hulls or not (1 <= self.max_hulls <= 256):
            raise ConfigError(f"CollisionConfig.max_hulls={self.max_hulls!r}: expected an integer in [1, 256]")
        if self.preprocess not in ("auto", "on", "off"):
            raise ConfigError(f"CollisionConfig.preprocess={self.preprocess!r}: expected 'auto', 'on' or 'off'")
        if int(self.max_hull_vertices) != self.max_hull_vertices or not (8 <= self.max_hull_vertices <= 1000):
            raise ConfigError(
                f"CollisionConfig.max_hull_vertices={self.max_hull_vertices!r}: expected an integer in [8, 1000]"
            )
        for name in ("preprocess_resolution", "resolution"):
            value = getattr(self, name)
            if int(value) != value or value < 10:
                raise ConfigError(f"CollisionConfig.{name}={value!r}: expected an integer >= 10")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def run_coacd(mesh: trimesh.Trimesh, config: CollisionConfig) -> list[np.ndarray]:
    """CoACD on ``mesh``; returns each part's vertices (faces are rebuilt by :func:`clean_hulls`)."""
    import coacd

    coacd.set_log_level("error")
    parts = coacd.run_coacd(
        coacd.Mesh(np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int32)),
        threshold=config.threshold,
        max_convex_hull=config.max_hulls,
        preprocess_mode=config.preprocess,
        preprocess_resolution=config.preprocess_resolution,
        resolution=config.resolution,
        seed=config.seed,
        decimate=False,  # CoACD's decimation cuts corners; see reduce_points
    )
    return [np.asarray(vertices, dtype=np.float64) for vertices, _faces in parts]


def reduce_points(points: np.ndarray, count: int) -> np.ndarray:
    """At most ``count`` of ``points`` whose hull stays close to theirs: starting from a
    tetrahedron of extreme points, repeatedly add the point farthest outside the current hull
    (quickhull's greedy order). On YCB parts 64 vertices stay within ~0.5 mm of the full hull,
    where evenly spread or decimated vertices cut corners by up to 10 mm."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) <= count:
        return points
    pts = points[ConvexHull(points).vertices]
    if len(pts) <= count:
        return pts
    first = int(np.argmax(np.linalg.norm(pts - pts.mean(axis=0), axis=1)))
    second = int(np.argmax(np.linalg.norm(pts - pts[first], axis=1)))
    axis = pts[second] - pts[first]
    third = int(np.argmax(np.linalg.norm(np.cross(pts - pts[first], axis), axis=1)))
    normal = np.cross(axis, pts[third] - pts[first])
    fourth = int(np.argmax(np.abs((pts - pts[first]) @ normal)))
    chosen = [first, second, third, fourth]
    while len(chosen) < count:
        planes = ConvexHull(pts[chosen]).equations  # outward unit normals and offsets
        outside = (pts @ planes[:, :3].T + planes[:, 3]).max(axis=1)
        best = int(np.argmax(outside))
        if outside[best] <= 0:
            break
        chosen.append(best)
    return pts[chosen]


def hull_of(points: np.ndarray, max_vertices: int) -> trimesh.Trimesh | None:
    """Convex hull of ``points`` with at most ``max_vertices`` vertices, or None if degenerate."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) < 4 or not np.isfinite(points).all():
        return None
    try:
        with np.errstate(all="ignore"):  # flat input divides by a zero volume
            hull = trimesh.convex.convex_hull(reduce_points(points, max_vertices))
            ok = len(hull.vertices) >= 4 and hull.is_volume and hull.volume >= MIN_HULL_VOLUME
    except Exception:  # qhull raises on coplanar / collinear input
        return None
    return hull if ok else None


def clean_hulls(parts: list[np.ndarray], max_vertices: int, what: str) -> tuple[trimesh.Trimesh, ...]:
    """Rebuild each part as a MuJoCo-safe hull; ``what`` names the object in the error."""
    hulls = tuple(h for h in (hull_of(p, max_vertices) for p in parts) if h is not None)
    if not hulls:
        raise AssetError(f"{what}: convex decomposition produced no usable (non-degenerate) hull")
    return hulls


def decompose(mesh: trimesh.Trimesh, config: CollisionConfig, what: str) -> tuple[trimesh.Trimesh, ...]:
    """Convex parts of ``mesh`` (its own frame and units) ready for MuJoCo."""
    return clean_hulls(run_coacd(mesh, config), config.max_hull_vertices, what)
