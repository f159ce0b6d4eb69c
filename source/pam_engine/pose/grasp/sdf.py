"""A signed-distance grid of an object's collision geometry, for cheap contact tests.

Grasp synthesis asks, for thousands of hand configurations, whether a finger segment touches the
object. The hand meets the object's convex decomposition (the collision hulls MuJoCo collides
with), so the grid is the signed distance to the union of those hulls, sampled once per object on
a regular grid in the object's own frame and cached on disk (:mod:`pam_engine.cache`), keyed by
the hulls' vertices and the grid settings.

How it is built (no per-point Python):

- inside: a grid point inside a hull gets minus its depth in the deepest hull (the largest
  violated face plane, exact for a convex hull), so values there are an upper bound on the
  signed distance, never above 0;
- outside: dense samples of every hull's faces (each triangle sampled on a barycentric grid whose
  cells have edges of at most ``sample`` metres, so every surface point lies within
  ``sample / sqrt(3)`` of a sample, its *cover*) seed their nearest grid points; scipy's
  Euclidean distance transform gives every grid point its nearest seed, and the value is the
  exact distance to that seed's sample (at least the true distance, at most it plus
  ``sqrt(3) * spacing + cover``); values are capped at ``band``.

Tolerance. For a query point ``p`` outside the object and closer than ``band - tolerance`` to
it, trilinear interpolation of the grid gives the distance to the hulls within

    tolerance = 3 * sqrt(3) / 2 * spacing + cover

(the distance is 1-Lipschitz, so each corner's value is off by at most its distance to ``p``
plus the seed error ``sqrt(3) * spacing + cover``, and the trilinear weights average those
distances to at most half the cell's diagonal). That is a worst case (5.8 mm at the default
2 mm spacing); measured errors are a few tenths of a millimetre. ``tests/pose/test_grasp_fast.py`` checks the bound against trimesh's exact distance.
Points outside the grid read ``band``: the grid extends ``band`` beyond the hulls' box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull

from pam_engine import cache

#: Bump when the way the grid is built changes.
SDF_FORMAT = 1


@dataclass(frozen=True)
class SDFConfig:
    """Grid spacing, surface sample spacing and how far out distances are kept (metres)."""

    spacing: float = 0.002
    sample: float = 0.001
    band: float = 0.03

    def __post_init__(self):
        for name in ("spacing", "sample", "band"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
                raise ValueError(f"SDFConfig.{name} must be a positive number of metres, got {v!r}")
        if self.band <= 2 * self.spacing:
            raise ValueError(f"SDFConfig.band ({self.band}) must exceed twice the spacing ({self.spacing})")


@dataclass(frozen=True)
class SignedDistanceGrid:
    """Signed distance (m) to a union of convex hulls, on a grid in the hulls' frame."""

    origin: np.ndarray  # (3,) position of grid point (0, 0, 0)
    spacing: float
    values: np.ndarray  # (nx, ny, nz) float32
    band: float
    cover: float

    @property
    def tolerance(self) -> float:
        """Bound on |interpolated - exact| distance for points outside the hulls within the band."""
        return float(1.5 * np.sqrt(3.0) * self.spacing + self.cover + 1e-6)  # + float32 rounding

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Trilinearly interpolated signed distance at ``points`` (..., 3), hulls' frame; points
        outside the grid read ``band``."""
        p = np.asarray(points, dtype=np.float64)
        shape = p.shape[:-1]
        u = (p.reshape(-1, 3) - self.origin) * (1.0 / self.spacing)
        n = self.values.shape
        i = np.floor(u).astype(np.intp)
        outside = ((i < 0) | (i >= np.array(n) - 1)).any(axis=1)
        f = u - i
        if outside.any():
            i[outside], f[outside] = 0, 0.0
        strides = np.array([n[1] * n[2], n[2], 1])
        corners = (np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)]) @ strides)
        vals = self.values.reshape(-1)[(i @ strides)[:, None] + corners]  # (M, 8), corner order xyz
        fx, fy, fz = f[:, 0:1], f[:, 1:2], f[:, 2:3]
        wx = np.concatenate([1 - fx, fx], axis=1)
        wy = np.concatenate([1 - fy, fy], axis=1)
        wz = np.concatenate([1 - fz, fz], axis=1)
        w = (wx[:, :, None, None] * wy[:, None, :, None] * wz[:, None, None, :]).reshape(-1, 8)
        out = np.einsum("mk,mk->m", vals, w)
        out[outside] = self.band
        return out.reshape(shape)

def surface_samples(vertices: np.ndarray, faces: np.ndarray, sample: float) -> np.ndarray:
    """Points on every triangle, on a barycentric grid whose cells' edges are <= ``sample``."""
    out = [vertices]
    tri = vertices[faces]  # (F, 3, 3)
    edges = np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2).max(axis=1)
    divisions = np.maximum(1, np.ceil(edges / sample).astype(int))
    for n in np.unique(divisions):
        sel = tri[divisions == n]
        a, b = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
        keep = a + b <= n
        wa, wb = a[keep] / n, b[keep] / n
        w = np.stack([wa, wb, 1.0 - wa - wb], axis=1)  # (S, 3)
        out.append(np.einsum("sk,fkd->fsd", w, sel).reshape(-1, 3))
    return np.concatenate(out)


def build_sdf(parts: list[np.ndarray], config: SDFConfig | None = None) -> SignedDistanceGrid:
    """The grid of the union of the convex hulls of ``parts`` (each an (n, 3) vertex array)."""
    cfg = config or SDFConfig()
    if not parts:
        raise ValueError("build_sdf needs at least one collision part")
    hulls = []
    for k, v in enumerate(parts):
        v = np.asarray(v, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != 3 or len(v) < 4 or not np.all(np.isfinite(v)):
            raise ValueError(f"collision part {k}: expected an (n >= 4, 3) array of finite vertices, got {v.shape}")
        hulls.append(ConvexHull(v))
    allv = np.concatenate([h.points[h.vertices] for h in hulls])
    h = cfg.spacing
    lo = allv.min(axis=0) - cfg.band
    n = np.ceil((allv.max(axis=0) + cfg.band - lo) / h).astype(int) + 1
    axes = [lo[d] + h * np.arange(n[d]) for d in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)  # (nx, ny, nz, 3)
    # outside: the distance to a surface sample near the nearest one. Every sample seeds its
    # nearest grid point; the Euclidean distance transform finds each grid point's nearest seed
    # (no per-point Python); the value is the exact distance to that seed's sample.
    samples = np.concatenate([surface_samples(hl.points, hl.simplices, cfg.sample) for hl in hulls])
    cells = np.clip(np.rint((samples - lo) / h).astype(np.intp), 0, n - 1)
    flat = np.ravel_multi_index(cells.T, tuple(n))
    seed_of = np.full(int(np.prod(n)), -1, dtype=np.intp)
    seed_of[flat] = np.arange(len(samples))
    free = (seed_of < 0).reshape(tuple(n))
    nearest = ndimage.distance_transform_edt(free, return_distances=False, return_indices=True)
    owner = seed_of[np.ravel_multi_index(tuple(nearest.reshape(3, -1)), tuple(n))]
    dist = np.linalg.norm(grid.reshape(-1, 3) - samples[owner], axis=1)
    values = np.minimum(dist, cfg.band).reshape(tuple(n))
    # inside: minus the depth in the deepest hull (only the grid points in each hull's box)
    for hl in hulls:
        pv = hl.points[hl.vertices]
        i0 = np.maximum(np.floor((pv.min(axis=0) - lo) / h).astype(int), 0)
        i1 = np.minimum(np.ceil((pv.max(axis=0) - lo) / h).astype(int) + 1, n)
        block = grid[i0[0]:i1[0], i0[1]:i1[1], i0[2]:i1[2]]
        eq = hl.equations  # unit outward normals: n.x + d <= 0 inside
        signed = (block @ eq[:, :3].T + eq[:, 3]).max(axis=-1)
        view = values[i0[0]:i1[0], i0[1]:i1[1], i0[2]:i1[2]]
        inside = signed <= 0
        current = np.where(view <= 0, view, 0.0)
        view[inside] = np.minimum(current, signed)[inside]
    return SignedDistanceGrid(origin=lo, spacing=float(h), values=values.astype(np.float32), band=float(cfg.band),
                              cover=float(cfg.sample / np.sqrt(3.0)))


def cached_sdf(parts: list[np.ndarray], config: SDFConfig | None = None, what: str = "object",
               cache_dir=None) -> SignedDistanceGrid:
    """:func:`build_sdf`, through the disk cache (``$PAM_CACHE_DIR/sdf``), keyed by the parts'
    vertices, the settings and :data:`SDF_FORMAT`."""
    cfg = config or SDFConfig()
    folder = cache.cache_dir("sdf", cache_dir)
    key = cache.cache_key(parts=[np.ascontiguousarray(p, dtype=np.float64) for p in parts], config=cfg,
                          format=SDF_FORMAT)
    path = folder / f"{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                return SignedDistanceGrid(origin=data["origin"], spacing=float(data["spacing"]),
                                          values=data["values"], band=float(data["band"]), cover=float(data["cover"]))
        except cache.UNREADABLE as exc:
            cache.log_unreadable("signed-distance grid", what, path, exc)
    else:
        cache.log_miss("signed-distance grid", what, path)
    grid = build_sdf(parts, cfg)
    cache.write_npz_atomic(path, {"origin": grid.origin, "spacing": np.array(grid.spacing), "values": grid.values,
                                  "band": np.array(grid.band), "cover": np.array(grid.cover)})
    return grid
