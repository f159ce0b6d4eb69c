"""The batched candidate search of grasp synthesis: every candidate placed and closed together
(docs/design.md, "Grasp synthesis speed").

The reference search (``GraspSynthesisConfig.search = "mujoco"``, Stage I's default) evaluates one candidate at a
time and asks MuJoCo for every contact: about 16 collision calls to slide a hand in (bisection on
the travel) and 40 to close it, for each of ~700 candidates. Here the same steps run for all
candidates at once, as array operations:

1. the forearm rule, as before;
2. slide in: the pre-shaped hand's geoms (kinematics once per pre-shape,
   :class:`~pam_engine.pose.grasp.hand_geometry.HandGeometry`) moved along each candidate's
   approach; contact with the object from its signed-distance grid (:mod:`~pam_engine.pose.
   grasp.sdf`, built once per object and cached), with the table from the plane z = 0; the
   same 14-step bisection as the reference, all candidates in lock-step;
3. close: the reference's closing rule (curl every finger; a finger whose segment touches stops
   that segment and those before it, the later ones curl on), all candidates in lock-step,
   batched forward kinematics of the fingers, contacts from the grid and the table plane;
4. the closed, squeezed hand of each survivor is then checked and scored with MuJoCo's own
   contacts, exactly as the reference does (one collision call per candidate).

Contacts from the grid differ from MuJoCo's by the grid's error (a few tenths of a millimetre;
see :class:`~pam_engine.pose.grasp.sdf.SignedDistanceGrid`), so hands stop within that of where
the reference stops them. Tripod candidates (placed beside thin objects, not slid in) are few and
go through the reference path.
"""

from __future__ import annotations

import mujoco
import numpy as np

from pam_engine.conventions import MANO_FINGERS, MANO_JOINT_NAMES
from pam_engine.pose.grasp.hand_geometry import HandGeometry, rotation_quat
from pam_engine.pose.grasp.sdf import SDFConfig, cached_sdf


def object_parts(model: mujoco.MjModel, geoms) -> list[np.ndarray]:
    """The vertices of an object's collision meshes in its body frame (what MuJoCo collides)."""
    parts = []
    for g in geoms:
        if model.geom_type[g] != mujoco.mjtGeom.mjGEOM_MESH:
            raise ValueError(f"object collision geom {g}: expected a mesh, got type {int(model.geom_type[g])}")
        mid = model.geom_dataid[g]
        v = model.mesh_vert[model.mesh_vertadr[mid]:model.mesh_vertadr[mid] + model.mesh_vertnum[mid]]
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, model.geom_quat[g])
        parts.append(v.astype(np.float64) @ rot.reshape(3, 3).T + model.geom_pos[g])
    return parts


class Obstacles:
    """What the hand may touch while synthesis plans: the target and other objects (grids, world
    poses) and the table top."""

    def __init__(self, synth, contype: np.ndarray, conaffinity: np.ndarray, sdf_config: SDFConfig | None = None):
        scene, m = synth.scene, synth.model
        self.hand = _hand_geometry(scene)
        self.grids, self.poses, self.is_target = [], [], []
        for k, placed in enumerate(scene.objects):
            geoms = [g for g in np.flatnonzero(scene.geom_object == k) if contype[g] or conaffinity[g]]
            if not geoms:
                continue
            self.grids.append(cached_sdf(object_parts(m, geoms), sdf_config, what=repr(placed.asset.name)))
            self.poses.append(scene.object_pose(k))
            self.is_target.append(k == synth.target)

    def touching(self, world, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(N, G) bool each: hand geoms touching the target, touching anything else (only the
        geoms set in ``mask`` (N, G), when given)."""
        target = np.zeros(world[0].shape[:2], bool)
        other = self.hand.touch_table(world, mask)
        for grid, pose, is_target in zip(self.grids, self.poses, self.is_target):
            hit = self.hand.touch_object(world, grid, pose, mask)
            if is_target:
                target |= hit
            else:
                other |= hit
        return target, other


def _hand_geometry(scene) -> HandGeometry:
    cached = getattr(scene, "_pam_hand_geometry", None)
    if cached is None or cached.model is not scene.model:
        cached = HandGeometry(scene)
        scene._pam_hand_geometry = cached
    return cached


def evaluate_batched(synth, candidates: list, object_pose: np.ndarray) -> list:
    """Records (see ``GraspSynthesizer.evaluate``) of ``candidates`` (direction, rotation, aim,
    pre-shape, stand-off, family), in order."""
    cfg = synth.config
    out: list = [None] * len(candidates)
    batch = []
    for i, (d, rot, aim, shape, standoff, family) in enumerate(candidates):
        if (rot @ synth._finger_dir)[2] > 1.0 - cfg.max_forearm_down:
            out[i] = (family, "forearm into the table")
        elif shape.startswith("tripod"):  # placed beside the object, not slid: the reference path
            out[i] = synth._evaluate(d, rot, aim, shape, standoff, family, object_pose)
        else:
            batch.append(i)
    if not batch:
        return out
    scene = synth.scene
    obstacles = Obstacles(synth, synth._saved_contype, synth._saved_conaffinity)
    hand = obstacles.hand
    D = np.array([candidates[i][0] for i in batch])
    R = np.array([candidates[i][1] for i in batch])
    aims = np.array([candidates[i][2] for i in batch])
    shapes = [candidates[i][3] for i in batch]
    standoff = np.array([candidates[i][4] for i in batch])
    aim_points = np.array([synth._aim_points[s] for s in shapes])
    start = aims - np.einsum("nij,nj->ni", R, aim_points) - 0.25 * D
    frames = {s: hand.geom_frames(synth._preshapes[s]) for s in set(shapes)}
    groups = {s: np.array([k for k, t in enumerate(shapes) if t == s]) for s in frames}

    def touches(positions: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Whether the pre-shaped hand at ``positions`` (one per row) touches anything."""
        hit = np.zeros(len(rows), bool)
        for s, members in groups.items():
            sel = np.flatnonzero(np.isin(rows, members))
            if len(sel):
                target, other = obstacles.touching(hand.world(frames[s], R[rows[sel]], positions[sel]))
                hit[sel] = (target | other).any(axis=1)
        return hit

    rows = np.arange(len(batch))
    alive = ~touches(start, rows)
    for k in np.flatnonzero(~alive):
        out[batch[k]] = (candidates[batch[k]][5], "start pose in contact")
    rows = rows[alive]
    lo, hi = np.zeros(len(rows)), np.full(len(rows), 0.5)
    for _ in range(14):
        mid = 0.5 * (lo + hi)
        hit = touches(start[rows] + mid[:, None] * D[rows], rows)
        hi = np.where(hit, mid, hi)
        lo = np.where(hit, lo, mid)
    missed = hi >= 0.5 - 1e-6
    for k in rows[missed]:
        out[batch[k]] = (candidates[batch[k]][5], "missed the object")
    rows, lo = rows[~missed], lo[~missed]
    position = start[rows] + np.maximum(lo - standoff[rows], 0.0)[:, None] * D[rows]
    other = np.zeros(len(rows), bool)
    for s, members in groups.items():
        sel = np.flatnonzero(np.isin(rows, members))
        if len(sel):
            other[sel] = obstacles.touching(hand.world(frames[s], R[rows[sel]], position[sel]))[1].any(axis=1)
    table = other | (position[:, 2] < 0.01)
    for k in rows[table]:
        out[batch[k]] = (candidates[batch[k]][5], "met the table first")
    rows, position = rows[~table], position[~table]
    if not len(rows):
        return out
    preshape = np.array([synth._preshapes[shapes[k]] for k in rows])
    angles, squeeze = close_batched(synth, obstacles, R[rows], position, preshape)
    for j, k in enumerate(rows):
        i = batch[k]
        d, rot, _, _, _, family = candidates[i]
        out[i] = synth._closed(i, position[j], rot, d, preshape[j], family, angles[j], squeeze[j], quat=rotation_quat(rot))
    return out


def close_batched(synth, obstacles: Obstacles, R: np.ndarray, position: np.ndarray,
                  preshape: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference's closing rule (``GraspSynthesizer._close``, power closing) for every hand
    at once: angles (N, n_dof) and closing directions (N, n_dof)."""
    hand, names = obstacles.hand, synth._names
    upper = synth.scene.articulation.upper
    velocity = synth._curl_direction(False)
    step = synth.config.curl_step
    fingers = list(MANO_FINGERS)
    chains = {f: [names.index(f"{MANO_JOINT_NAMES[j]}_flex") for j in MANO_FINGERS[f]] for f in fingers}
    segment = {}  # hand-geom index -> (finger, position of its DoF in the finger's chain)
    geom_names = [mujoco.mj_id2name(synth.model, mujoco.mjtObj.mjOBJ_GEOM, int(g)) for g in hand.geoms]
    for f in fingers:
        for j, dof in zip(MANO_FINGERS[f], chains[f]):
            segment[geom_names.index(f"hand_{MANO_JOINT_NAMES[j]}_col")] = (f, dof)
    chains["thumb"].insert(0, names.index("thumb1_abd"))
    chain_pos = np.full((len(fingers), len(names)), -1)
    for fi, f in enumerate(fingers):
        chain_pos[fi, chains[f]] = np.arange(len(chains[f]))
    finger_geoms = {fi: [(g, chains[f].index(dof)) for g, (ff, dof) in segment.items() if ff == f]
                    for fi, f in enumerate(fingers)}
    n = len(R)
    angles = preshape.copy()
    in_chain = (chain_pos >= 0).any(axis=0)
    active = np.broadcast_to((velocity > 0) & in_chain, angles.shape).copy()
    on_target = np.zeros((n, len(fingers)), bool)
    # A finger whose touching segment did not move in a trial touches in every later trial too:
    # it never moves again ("stuck"), yet, as in the reference, its DoFs stay active and keep
    # the loop going; it is not evaluated again (its contacts cannot change). A finger that has
    # stopped is evaluated once more, at its final angles, when the loop goes on.
    stuck = np.zeros((n, len(fingers)), bool)
    pending = np.zeros((n, len(fingers)), bool)
    geoms_of = [np.array([g for g, _ in finger_geoms[fi]]) for fi in range(len(fingers))]
    for _ in range(int(3.0 / step)):
        alive = active.any(axis=1)
        moving = np.stack([active[:, chains[f]].any(axis=1) for f in fingers], axis=1) & ~stuck
        evaluate = (moving | pending) & alive[:, None]
        run = np.flatnonzero(evaluate.any(axis=1))
        if not len(run):
            break  # nothing left that can change
        act = active[run]
        trial = angles[run].copy()
        trial[act] = np.minimum(trial + step * velocity, upper)[act]
        mask = np.zeros((len(run), len(hand.geoms)), bool)
        for fi in range(len(fingers)):
            mask[np.ix_(evaluate[run, fi], geoms_of[fi])] = True
        world = hand.world(hand.geom_frames(trial), R[run], position[run])
        target, other = obstacles.touching(world, mask)
        touching = target | other
        pending[run] = False
        for fi in range(len(fingers)):
            dofs = chains[fingers[fi]]
            stop = np.full(len(run), 99)
            for g, pos in finger_geoms[fi]:
                stop = np.where(touching[:, g], np.minimum(stop, pos), stop)
                on_target[run, fi] |= target[:, g]
            live = moving[run, fi]
            blocked = (stop < 99) & live
            sub = act[:, dofs]
            # blocked: the touching segment and those before it stop, nothing moves this step
            keep = chain_pos[fi, dofs][None, :] > stop[:, None]
            first_moving = np.where(sub, np.arange(len(dofs))[None, :], 99).min(axis=1)
            stuck[run[blocked], fi] = (stop < first_moving)[blocked] & (sub & keep)[blocked].any(axis=1)
            active[run[blocked][:, None], np.array(dofs)[None, :]] = (sub & keep)[blocked]
            free = live & ~blocked
            moved = run[free]
            block = angles[moved][:, dofs]
            block = np.where(sub[free], trial[free][:, dofs], block)
            angles[moved[:, None], np.array(dofs)[None, :]] = block
        before = np.stack([active[:, chains[f]].any(axis=1) for f in fingers], axis=1)
        active &= angles < upper - 1e-9
        after = np.stack([active[:, chains[f]].any(axis=1) for f in fingers], axis=1)
        stopped = (before | moving) & ~after & ~stuck
        pending |= stopped & active.any(axis=1)[:, None]
    squeeze = np.zeros_like(angles)
    for fi, f in enumerate(fingers):
        dofs = chains[f]
        squeeze[np.ix_(on_target[:, fi], dofs)] = velocity[dofs]
    return angles, squeeze
