"""The engine's built-in open right hand, used when no MANO model is supplied.

MANO may not be redistributed, so the engine builds a hand with MANO's kinematic tree,
keypoints and frame (fingers along -x, palm facing -y, thumb towards +z, wrist at MANO's mean
wrist position) from adult anthropometry. The skin is the zero level set of a smooth union of
tapered finger segments and a rounded palm slab, meshed by marching cubes: closed and
watertight by construction. Skinning weights come from the nearest bone, diffused over the
mesh so that the surface bends smoothly at the joints.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import trimesh
from skimage.measure import marching_cubes

from pam_engine import cache
from pam_engine.conventions import MANO_FINGERS
from pam_engine.hand.model import NUM_JOINTS, HandModel

#: MANO's mean right-hand wrist joint, so the built-in hand sits where MANO's template does.
MANO_TEMPLATE_WRIST = np.array([0.0957, 0.0064, 0.0062])


@dataclass(frozen=True)
class FingerDims:
    """One finger, relative to the wrist: base joint, rest direction, segment lengths and radii.

    ``lengths`` run joint-to-joint, the last from the distal joint to the centre of the
    fingertip's rounded end; ``radii`` are the segment radii at their proximal ends.
    """

    base: tuple[float, float, float]
    direction: tuple[float, float, float]
    lengths: tuple[float, float, float]
    radii: tuple[float, float, float]


#: An average adult hand (hand length about 0.19 m, palm width about 0.085 m).
DEFAULT_FINGERS: dict[str, FingerDims] = {
    "index": FingerDims((-0.086, 0.000, 0.025), (-1.0, 0.0, 0.05), (0.040, 0.024, 0.018), (0.0095, 0.0085, 0.0076)),
    "middle": FingerDims((-0.090, 0.000, 0.004), (-1.0, 0.0, 0.00), (0.045, 0.028, 0.019), (0.0098, 0.0088, 0.0078)),
    "ring": FingerDims((-0.085, -0.001, -0.015), (-1.0, 0.0, -0.04), (0.041, 0.026, 0.019), (0.0093, 0.0083, 0.0074)),
    "pinky": FingerDims((-0.076, -0.003, -0.032), (-1.0, 0.0, -0.12), (0.032, 0.020, 0.017), (0.0082, 0.0074, 0.0066)),
    "thumb": FingerDims((-0.020, -0.010, 0.018), (-0.62, -0.10, 0.78), (0.044, 0.032, 0.024), (0.0135, 0.0108, 0.0096)),
}

#: Palm outline in the x-z plane (wrist end first), its half thickness and edge rounding.
PALM_OUTLINE = np.array(
    [[0.024, -0.018], [0.024, 0.012], [-0.030, 0.026], [-0.084, 0.026], [-0.090, 0.004],
     [-0.084, -0.016], [-0.074, -0.032], [-0.030, -0.036]]
)
PALM_HALF_THICKNESS = 0.008
PALM_ROUNDING = 0.007
GRID_SPACING = 0.002
TARGET_FACES = 9000  # about 4.5k vertices after decimation
BLEND = 0.006  # smooth-union radius where fingers meet the palm


def finger_joint_positions(fingers: dict[str, FingerDims] = DEFAULT_FINGERS) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The 16 MANO joints (wrist at the origin) and each finger's tip-end point."""
    joints = np.zeros((NUM_JOINTS, 3))
    tip_ends = {}
    for name, (j1, j2, j3) in MANO_FINGERS.items():
        dims = fingers[name]
        d = np.asarray(dims.direction, float)
        d /= np.linalg.norm(d)
        joints[j1] = dims.base
        joints[j2] = joints[j1] + d * dims.lengths[0]
        joints[j3] = joints[j2] + d * dims.lengths[1]
        tip_ends[name] = joints[j3] + d * dims.lengths[2]
    return joints, tip_ends


def build_builtin_hand(spacing: float = GRID_SPACING) -> HandModel:
    """The built-in hand (a few thousand vertices; deterministic). Building takes seconds, so
    the result is kept per process and on disk (:mod:`pam_engine.cache`, ``hand/``)."""
    return _cached(float(spacing))


def _cache_file(spacing: float) -> Path:
    """Keyed by the hand's whole description (the recipe's numbers), not by this file's text."""
    recipe = repr((spacing, TARGET_FACES, sorted(DEFAULT_FINGERS.items()), PALM_OUTLINE.tolist(),
                   PALM_HALF_THICKNESS, PALM_ROUNDING, BLEND, MANO_TEMPLATE_WRIST.tolist()))
    key = hashlib.sha256(recipe.encode()).hexdigest()[:16]
    return cache.cache_dir("hand") / f"builtin-{key}.npz"


@lru_cache(maxsize=4)
def _cached(spacing: float) -> HandModel:
    path = _cache_file(spacing)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                return HandModel(name="builtin", v_template=data["v_template"], faces=data["faces"],
                                 weights=data["weights"], j_template=data["j_template"],
                                 tip_vertex_ids=tuple(int(i) for i in data["tip_vertex_ids"]))
        except cache.UNREADABLE as exc:
            cache.log_unreadable("hand", "the built-in hand", path, exc)
    else:
        cache.log_miss("hand", "the built-in hand", path)
    hand = _build(spacing)
    try:
        cache.write_npz_atomic(path, dict(v_template=hand.v_template, faces=hand.faces, weights=hand.weights,
                                          j_template=hand.j_template, tip_vertex_ids=np.array(hand.tip_vertex_ids)),
                               compressed=False)
    except OSError as exc:  # a read-only cache only costs the rebuild
        cache.log.warning("could not write the built-in hand's cache file %s: %s", path, exc)
    return hand


def _build(spacing: float) -> HandModel:
    joints, tip_ends = finger_joint_positions()
    bones = _bones(joints, tip_ends)
    vertices, faces = _mesh_surface(bones, spacing)
    mesh = trimesh.Trimesh(vertices, faces, process=True)
    trimesh.smoothing.filter_taubin(mesh, lamb=0.5, nu=-0.53, iterations=5)
    mesh = mesh.simplify_quadric_decimation(face_count=TARGET_FACES)
    if mesh.volume < 0:
        mesh.invert()
    weights = _skinning_weights(mesh, bones)
    tips = _tip_vertices(mesh.vertices, weights, joints, tip_ends)
    offset = MANO_TEMPLATE_WRIST
    return HandModel(
        name="builtin",
        v_template=np.asarray(mesh.vertices) + offset,
        faces=np.asarray(mesh.faces, dtype=np.int64),
        weights=weights,
        j_template=joints + offset,
        tip_vertex_ids=tips,
    )


@dataclass(frozen=True)
class _Bone:
    owner: int  # MANO joint whose rotation moves this part
    a: np.ndarray
    b: np.ndarray
    ra: float
    rb: float
    palm: bool = False


def _bones(joints: np.ndarray, tip_ends: dict[str, np.ndarray]) -> list[_Bone]:
    bones = [_Bone(0, np.zeros(3), np.zeros(3), 0.0, 0.0, palm=True)]
    for name, chain in MANO_FINGERS.items():
        radii = DEFAULT_FINGERS[name].radii
        ends = [joints[chain[1]], joints[chain[2]], tip_ends[name]]
        starts = [joints[chain[0]], joints[chain[1]], joints[chain[2]]]
        next_radii = [radii[1], radii[2], radii[2] * 0.92]
        for k in range(3):
            bones.append(_Bone(chain[k], starts[k], ends[k], radii[k], next_radii[k]))
    return bones


def _tapered_capsule(p: np.ndarray, bone: _Bone) -> np.ndarray:
    ab = bone.b - bone.a
    t = np.clip((p - bone.a) @ ab / (ab @ ab), 0.0, 1.0)
    closest = bone.a + t[:, None] * ab
    return np.linalg.norm(p - closest, axis=1) - (bone.ra + (bone.rb - bone.ra) * t)


def _palm(p: np.ndarray) -> np.ndarray:
    """Rounded slab over the convex palm outline (x-z), centred on y = 0."""
    xz = p[:, [0, 2]]
    poly = PALM_OUTLINE
    edges = np.roll(poly, -1, axis=0) - poly
    rel = xz[:, None, :] - poly[None]
    t = np.clip(np.einsum("nkd,kd->nk", rel, edges) / np.einsum("kd,kd->k", edges, edges), 0, 1)
    dist = np.linalg.norm(rel - t[..., None] * edges[None], axis=2).min(axis=1)
    # outline is counter-clockwise in (x, z): inside means left of every edge
    cross = edges[None, :, 0] * rel[..., 1] - edges[None, :, 1] * rel[..., 0]
    inside = np.all(cross >= 0, axis=1) | np.all(cross <= 0, axis=1)
    d2 = np.where(inside, -dist, dist)
    q = np.stack([d2, np.abs(p[:, 1]) - PALM_HALF_THICKNESS], axis=1)
    return np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0) - PALM_ROUNDING


def _smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    h = np.maximum(k - np.abs(a - b), 0.0) / k
    return np.minimum(a, b) - h * h * k * 0.25


def _bone_distances(p: np.ndarray, bones: list[_Bone]) -> np.ndarray:
    return np.stack([_palm(p) if b.palm else _tapered_capsule(p, b) for b in bones], axis=1)


def _mesh_surface(bones: list[_Bone], spacing: float) -> tuple[np.ndarray, np.ndarray]:
    pts = np.concatenate([np.stack([b.a, b.b]) for b in bones if not b.palm])
    lo = np.minimum(pts.min(0), [PALM_OUTLINE[:, 0].min(), 0, PALM_OUTLINE[:, 1].min()]) - 0.03
    hi = np.maximum(pts.max(0), [PALM_OUTLINE[:, 0].max(), 0, PALM_OUTLINE[:, 1].max()]) + 0.03
    axes = [np.arange(lo[i], hi[i] + spacing, spacing) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    d = _bone_distances(grid, bones)
    # palm and finger bases blend smoothly; segments of one finger meet as plain unions
    sdf = d[:, 0]
    for i in range(1, d.shape[1]):
        sdf = _smooth_min(sdf, d[:, i], BLEND)
    volume = sdf.reshape([len(a) for a in axes])
    verts, faces, _, _ = marching_cubes(volume, level=0.0, spacing=(spacing,) * 3)
    return verts + lo, faces


def _skinning_weights(mesh: trimesh.Trimesh, bones: list[_Bone], iterations: int = 6) -> np.ndarray:
    """Nearest-bone ownership, diffused along the surface so each joint bends smoothly."""
    d = _bone_distances(np.asarray(mesh.vertices), bones)
    owners = np.array([b.owner for b in bones])
    weights = np.zeros((len(mesh.vertices), NUM_JOINTS))
    weights[np.arange(len(mesh.vertices)), owners[np.argmin(d, axis=1)]] = 1.0
    edges = mesh.edges_unique
    n = len(mesh.vertices)
    adj = sp.coo_matrix((np.ones(len(edges) * 2), (np.r_[edges[:, 0], edges[:, 1]], np.r_[edges[:, 1], edges[:, 0]])), shape=(n, n))
    adj = (adj + sp.identity(n)).tocsr()
    adj = sp.diags(1.0 / np.asarray(adj.sum(axis=1)).ravel()) @ adj
    for _ in range(iterations):
        weights = adj @ weights
    weights[weights < 1e-3] = 0.0
    return weights / weights.sum(axis=1, keepdims=True)


def _tip_vertices(vertices: np.ndarray, weights: np.ndarray, joints: np.ndarray, tip_ends: dict[str, np.ndarray]) -> tuple[int, ...]:
    """For each finger (thumb, index, middle, ring, pinky), the skin vertex at the very tip."""
    ids = []
    for name in ("thumb", "index", "middle", "ring", "pinky"):
        distal = MANO_FINGERS[name][2]
        direction = tip_ends[name] - joints[distal]
        direction /= np.linalg.norm(direction)
        candidates = np.flatnonzero(weights[:, distal] > 0.5)
        ids.append(int(candidates[np.argmax(vertices[candidates] @ direction)]))
    return tuple(ids)
