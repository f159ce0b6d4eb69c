"""The hand's collision geometry in batches: forward kinematics of many hand configurations at
once (numpy, from the MuJoCo model's own body, joint and geom arrays), and contact of the finger
capsules and the palm with an object's signed-distance grid and the table top.

Grasp synthesis uses it to evaluate all its candidates together instead of one MuJoCo collision
call per candidate per step. Kinematics follow ``mj_kinematics`` exactly (``tests/pose/
test_grasp_fast.py`` compares them); contact is approximate: a capsule touches the object when
the grid's distance at points along its axis (at most ``axis_step`` apart) falls below its
radius, the palm (a convex mesh) when the grid's distance at its hull's vertices and face
samples falls below zero; the table is the plane z = 0 (exact: a capsule touches it when an end
dips below its radius, the palm when a hull vertex dips below it).
"""

from __future__ import annotations

import mujoco
import numpy as np
from scipy.spatial import ConvexHull

from pam_engine.pose.grasp.sdf import SignedDistanceGrid, surface_samples


def _quat_mat(q) -> np.ndarray:
    out = np.zeros(9)
    mujoco.mju_quat2Mat(out, np.asarray(q, dtype=np.float64))
    return out.reshape(3, 3)


def rotation_quat(rot: np.ndarray) -> np.ndarray:
    """MuJoCo's quaternion (w, x, y, z) of a 3x3 rotation."""
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(rot, dtype=np.float64).reshape(9))
    return q


def _patches(points: np.ndarray, per_axis: int = 4) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Points grouped into patches (a grid over their two widest principal axes): each patch's
    centre, radius (its farthest point) and member indices."""
    c = points - points.mean(axis=0)
    _, _, vt = np.linalg.svd(c, full_matrices=False)
    coords = c @ vt[:2].T
    cells = []
    for d in range(2):
        edges = np.linspace(coords[:, d].min(), coords[:, d].max(), per_axis + 1)[1:-1]
        cells.append(np.digitize(coords[:, d], edges))
    label = cells[0] * per_axis + cells[1]
    members = [np.flatnonzero(label == v) for v in np.unique(label)]
    centres = np.array([points[mm].mean(axis=0) for mm in members])
    radii = np.array([np.linalg.norm(points[mm] - ce, axis=1).max() for mm, ce in zip(members, centres)])
    return centres, radii, members


class HandGeometry:
    """Batched kinematics and table/object contact of a scene's hand collision geoms.

    Frames are the hand base's (the mocap body), with the wrist joints at zero, as grasp
    synthesis places the hand; the finger angles are the scene's finger DoFs in order.
    """

    #: how much nearer than its bounding radius (m, grid distance at its centre) a geom must be
    #: for its axis or surface to be sampled
    near_margin = 0.002

    def __init__(self, scene, axis_step: float = 0.006, palm_step: float = 0.008):
        m = scene.model
        self.model = m
        base = int(np.flatnonzero(m.body_mocapid == scene.base_mocap)[0])
        self.base_body = base
        self.geoms = np.flatnonzero(scene.geom_part >= 0)
        self.part = scene.geom_part[self.geoms]
        # bodies from the base down to every body carrying a hand geom, parents first
        needed = set()
        for g in self.geoms:
            b = int(m.geom_bodyid[g])
            while b != base:
                needed.add(b)
                b = int(m.body_parentid[b])
        self.bodies = sorted(needed)
        finger_qpos = np.asarray(scene.finger_qpos)
        self._qpos_to_angle = {int(a): i for i, a in enumerate(finger_qpos)}
        self._joints = {b: [(int(j), int(m.jnt_type[j]), self._qpos_to_angle.get(int(m.jnt_qposadr[j])),
                             float(m.qpos0[m.jnt_qposadr[j]])) for j in range(m.body_jntadr[b], m.body_jntadr[b] + m.body_jntnum[b])]
                        for b in self.bodies}
        for b, joints in self._joints.items():
            for j, kind, _, _ in joints:
                if kind not in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE):
                    raise ValueError(f"hand joint {mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, j)!r}: "
                                     "expected hinge or slide joints below the hand base")
        self._body_mat = {b: _quat_mat(m.body_quat[b]) for b in self.bodies}
        # per joint: (id, type, angle index, qpos0, B K, B K^2, anchored) with K the cross-product
        # matrix of its axis and B the body's quaternion for its first joint (identity after)
        self._joint_terms = {}
        for b in self.bodies:
            terms, first = [], True
            for j, kind, idx, q0 in self._joints[b]:
                ax = m.jnt_axis[j]
                k = np.array([[0.0, -ax[2], ax[1]], [ax[2], 0.0, -ax[0]], [-ax[1], ax[0], 0.0]])
                lead = self._body_mat[b] if first and kind == mujoco.mjtJoint.mjJNT_HINGE else np.eye(3)
                anchored = bool(np.any(m.jnt_pos[j] != 0.0))
                if anchored:
                    raise ValueError(f"hand joint {mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, j)!r}: "
                                     "expected joints anchored at their body's origin")
                terms.append((j, kind, idx, q0, lead @ k, lead @ k @ k, anchored))
                first = first and kind != mujoco.mjtJoint.mjJNT_HINGE
            self._joint_terms[b] = terms
        self._geom_mat = np.stack([_quat_mat(m.geom_quat[g]) for g in self.geoms])
        types = m.geom_type[self.geoms]
        self.capsules = np.flatnonzero(types == mujoco.mjtGeom.mjGEOM_CAPSULE)  # indices into self.geoms
        palms = np.flatnonzero(types == mujoco.mjtGeom.mjGEOM_MESH)
        if len(self.capsules) + len(palms) != len(self.geoms):
            raise ValueError("hand collision geoms must be capsules and convex meshes")
        self.radius = m.geom_size[self.geoms[self.capsules], 0].copy()
        self.rbound = m.geom_rbound[self.geoms].copy()  # bounding sphere about each geom's centre
        halflen = m.geom_size[self.geoms[self.capsules], 1]
        # axis sample offsets (local z) per capsule, flattened with an owner index
        offs, owner = [], []
        for k, hl in enumerate(halflen):
            n = int(np.ceil(2 * hl / axis_step)) + 1
            offs.append(np.linspace(-hl, hl, n))
            owner += [k] * n
        self._axis_offsets = np.concatenate(offs)
        self._axis_owner = np.array(owner)
        self._axis_starts = np.r_[0, np.flatnonzero(np.diff(self._axis_owner)) + 1]
        self._axis_counts = np.diff(np.r_[self._axis_starts, len(self._axis_offsets)])
        self._capsule_of = np.full(len(self.geoms), -1)
        self._capsule_of[self.capsules] = np.arange(len(self.capsules))
        self.halflen = halflen.copy()
        # the palm: hull vertices (exact for the table) and points on its hull faces (object)
        self.meshes = palms
        self._mesh_vertices, self._mesh_points, self._mesh_clusters = [], [], []
        for k in palms:
            g = self.geoms[k]
            mid = m.geom_dataid[g]
            v = m.mesh_vert[m.mesh_vertadr[mid]:m.mesh_vertadr[mid] + m.mesh_vertnum[mid]].astype(np.float64)
            hull = ConvexHull(v)
            hv = v[hull.vertices]
            self._mesh_vertices.append(hv)
            pts = surface_samples(v, hull.simplices, palm_step)
            pts = pts[::max(1, len(pts) // 150)]
            self._mesh_points.append(pts)
            self._mesh_clusters.append(_patches(pts))

    # -- kinematics ---------------------------------------------------------------------------

    def geom_frames(self, angles: np.ndarray, geoms: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Positions (N, G, 3) and rotations (N, G, 3, 3) of the hand geoms (``geoms``: indices
        into :attr:`geoms`, default all) in the base frame, for finger angles (N, n_dof)."""
        q = np.atleast_2d(np.asarray(angles, dtype=np.float64))
        n = len(q)
        m = self.model
        xpos = {self.base_body: np.zeros((n, 3))}
        xmat = {self.base_body: np.broadcast_to(np.eye(3), (n, 3, 3))}
        for b in self.bodies:
            p = int(m.body_parentid[b])
            pos = xpos[p] + xmat[p] @ m.body_pos[b]
            local = None  # the body's rotation in its parent: its quaternion, then its joints
            for j, kind, idx, q0, bk, bk2, anchored in self._joint_terms[b]:
                value = (q[:, idx] if idx is not None else np.zeros(n)) - q0
                if kind == mujoco.mjtJoint.mjJNT_HINGE:
                    s, c = np.sin(value)[:, None, None], 1.0 - np.cos(value)[:, None, None]
                    if local is None:  # B @ R(axis, angle) = B + sin B K + (1 - cos) B K^2
                        local = self._body_mat[b] + s * bk + c * bk2
                    else:
                        local = local @ (np.eye(3) + s * bk + c * bk2)
                    if anchored:
                        raise NotImplementedError  # checked in __init__
                else:
                    base_mat = xmat[p] @ (self._body_mat[b] if local is None else local)
                    pos = pos + (base_mat @ m.jnt_axis[j]) * value[:, None]
            mat = xmat[p] @ self._body_mat[b] if local is None else xmat[p] @ local
            xpos[b], xmat[b] = pos, mat
        sel = np.arange(len(self.geoms)) if geoms is None else np.asarray(geoms)
        bodies = m.geom_bodyid[self.geoms[sel]]
        P = np.stack([xpos[int(b)] for b in bodies], axis=1)
        R = np.stack([xmat[int(b)] for b in bodies], axis=1)
        gp = m.geom_pos[self.geoms[sel]]
        return P + (R @ gp[:, :, None])[..., 0], R @ self._geom_mat[sel]

    def world(self, frames, rot: np.ndarray, pos: np.ndarray):
        """World positions (N, G, 3) and rotations (N, G, 3, 3) of the geoms whose base-frame
        ``frames`` (:meth:`geom_frames`, N or 1 configurations) are carried by base rotations
        ``rot`` (N, 3, 3) and positions ``pos`` (N, 3)."""
        gpos, gmat = frames
        return ((gpos @ rot.transpose(0, 2, 1)) + pos[:, None, :], rot[:, None] @ gmat)

    def touch_object(self, world, sdf: SignedDistanceGrid, object_pose: np.ndarray,
                     mask: np.ndarray | None = None) -> np.ndarray:
        """(N, G) bool: which hand geoms (at :meth:`world` poses) touch the object whose grid is
        ``sdf`` and whose world pose is ``object_pose``; only where ``mask`` (N, G) is set, when
        given (False elsewhere). A geom's axis or surface is sampled only where the grid at its
        centre is nearer than its bounding radius plus ``near_margin``."""
        wpos, wmat = world
        inv = np.linalg.inv(object_pose)
        n = len(wpos)
        out = np.zeros((n, len(self.geoms)), bool)
        rows, cols = np.nonzero(np.ones((n, len(self.geoms)), bool) if mask is None else mask)
        if not len(rows):
            return out
        centre = sdf(wpos[rows, cols] @ inv[:3, :3].T + inv[:3, 3])
        near = centre < self.rbound[cols] + self.near_margin
        rows, cols = rows[near], cols[near]
        is_cap = self._capsule_of[cols] >= 0
        cr, cc = rows[is_cap], self._capsule_of[cols[is_cap]]  # rows, capsule numbers
        if len(cr):
            offs, starts, counts = self._axis_offsets, self._axis_starts, self._axis_counts
            sample = np.repeat(np.arange(len(cr)), counts[cc])
            seg_start = np.r_[0, np.cumsum(counts[cc])[:-1]]
            k = np.repeat(starts[cc] - seg_start, counts[cc]) + np.arange(len(sample))  # flat axis-sample index
            r, g = cr[sample], self.capsules[cc[sample]]
            pts = wpos[r, g] + wmat[r, g][:, :, 2] * offs[k][:, None]
            d = sdf(pts @ inv[:3, :3].T + inv[:3, 3]) - self.radius[cc[sample]]
            out[cr, self.capsules[cc]] = np.minimum.reduceat(d, seg_start) < 0
        for k, points, (centres, radii, members) in zip(self.meshes, self._mesh_points, self._mesh_clusters):
            r = rows[cols == k]
            if not len(r):
                continue
            # patches of the palm's surface first (centre and radius), then the points of the near ones
            wc = np.einsum("nij,cj->nci", wmat[r, k], centres) + wpos[r, k][:, None]
            dc = sdf(wc @ inv[:3, :3].T + inv[:3, 3]) - radii
            rr, cc = np.nonzero(dc < self.near_margin)
            if not len(rr):
                continue
            sizes = np.array([len(mm) for mm in members])
            flat = np.concatenate([members[c] for c in cc])
            owner = np.repeat(np.arange(len(rr)), sizes[cc])
            wp = np.einsum("pij,pj->pi", wmat[r[rr[owner]], k], points[flat]) + wpos[r[rr[owner]], k]
            inside = sdf(wp @ inv[:3, :3].T + inv[:3, 3]) < 0.0
            hit = np.zeros(len(r), bool)
            np.logical_or.at(hit, rr[owner], inside)
            out[r, k] = hit
        return out

    def touch_table(self, world, mask: np.ndarray | None = None) -> np.ndarray:
        """(N, G) bool: which hand geoms (at :meth:`world` poses) dip below the table top z = 0
        (only those set in ``mask`` (N, G), when given)."""
        wpos, wmat = world
        out = np.zeros(wpos.shape[:2], bool)
        caps = self.capsules
        out[:, caps] = wpos[:, caps, 2] - np.abs(wmat[:, caps, 2, 2]) * self.halflen < self.radius
        for k, verts in zip(self.meshes, self._mesh_vertices):
            low = wpos[:, k, 2] < self.rbound[k]  # only a palm within its bounding radius of the table can touch it
            rows = np.flatnonzero(low if mask is None else low & mask[:, k])
            if len(rows):
                z = np.ascontiguousarray(wmat[rows, k, 2]) @ verts.T  # (n, V) heights of the hull's vertices
                out[rows, k] = z.min(axis=1) + wpos[rows, k, 2] < 0.0
        return out if mask is None else out & mask
