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


def _axis_rotation(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations by ``angle`` (N,) about the unit ``axis`` (3,)."""
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3) + s * k + (1.0 - c) * (k @ k)


class HandGeometry:
    """Batched kinematics and table/object contact of a scene's hand collision geoms.

    Frames are the hand base's (the mocap body), with the wrist joints at zero, as grasp
    synthesis places the hand; the finger angles are the scene's finger DoFs in order.
    """

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
        self._geom_mat = np.stack([_quat_mat(m.geom_quat[g]) for g in self.geoms])
        types = m.geom_type[self.geoms]
        self.capsules = np.flatnonzero(types == mujoco.mjtGeom.mjGEOM_CAPSULE)  # indices into self.geoms
        palms = np.flatnonzero(types == mujoco.mjtGeom.mjGEOM_MESH)
        if len(self.capsules) + len(palms) != len(self.geoms):
            raise ValueError("hand collision geoms must be capsules and convex meshes")
        self.radius = m.geom_size[self.geoms[self.capsules], 0].copy()
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
        self.halflen = halflen.copy()
        # the palm: hull vertices (exact for the table) and points on its hull faces (object)
        self.meshes = palms
        self._mesh_vertices, self._mesh_points = [], []
        for k in palms:
            g = self.geoms[k]
            mid = m.geom_dataid[g]
            v = m.mesh_vert[m.mesh_vertadr[mid]:m.mesh_vertadr[mid] + m.mesh_vertnum[mid]].astype(np.float64)
            hull = ConvexHull(v)
            hv = v[hull.vertices]
            self._mesh_vertices.append(hv)
            pts = surface_samples(v, hull.simplices, palm_step)
            self._mesh_points.append(pts[::max(1, len(pts) // 400)])

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
            mat = xmat[p] @ self._body_mat[b]
            for j, kind, idx, q0 in self._joints[b]:
                value = (q[:, idx] if idx is not None else np.zeros(n)) - q0
                if kind == mujoco.mjtJoint.mjJNT_HINGE:
                    anchor = pos + mat @ m.jnt_pos[j]
                    mat = mat @ _axis_rotation(m.jnt_axis[j], value)
                    pos = anchor - mat @ m.jnt_pos[j]
                else:
                    pos = pos + (mat @ m.jnt_axis[j]) * value[:, None]
            xpos[b], xmat[b] = pos, mat
        sel = np.arange(len(self.geoms)) if geoms is None else np.asarray(geoms)
        bodies = m.geom_bodyid[self.geoms[sel]]
        P = np.stack([xpos[int(b)] for b in bodies], axis=1)
        R = np.stack([xmat[int(b)] for b in bodies], axis=1)
        gp = m.geom_pos[self.geoms[sel]]
        return P + np.einsum("ngij,gj->ngi", R, gp), R @ self._geom_mat[sel]

    # -- contact ------------------------------------------------------------------------------

    def world(self, frames, rot: np.ndarray, pos: np.ndarray):
        """World positions (N, G, 3) and rotations (N, G, 3, 3) of the geoms whose base-frame
        ``frames`` (:meth:`geom_frames`, N or 1 configurations) are carried by base rotations
        ``rot`` (N, 3, 3) and positions ``pos`` (N, 3)."""
        gpos, gmat = frames
        return (np.einsum("nij,ngj->ngi", rot, np.broadcast_to(gpos, (len(rot),) + gpos.shape[1:])) + pos[:, None, :],
                np.einsum("nij,ngjk->ngik", rot, np.broadcast_to(gmat, (len(rot),) + gmat.shape[1:])))

    def touch_object(self, world, sdf: SignedDistanceGrid, object_pose: np.ndarray) -> np.ndarray:
        """(N, G) bool: which hand geoms (at :meth:`world` poses) touch the object whose grid is
        ``sdf`` and whose world pose is ``object_pose``."""
        wpos, wmat = world
        inv = np.linalg.inv(object_pose)
        n = len(wpos)
        out = np.zeros((n, len(self.geoms)), bool)
        caps = self.capsules
        centres, axis = wpos[:, caps], wmat[:, caps][..., 2]
        pts = centres[:, self._axis_owner] + axis[:, self._axis_owner] * self._axis_offsets[None, :, None]
        d = sdf(pts @ inv[:3, :3].T + inv[:3, 3]) - self.radius[self._axis_owner]
        out[:, caps] = np.minimum.reduceat(d, self._axis_starts, axis=1) < 0
        for k, points in zip(self.meshes, self._mesh_points):
            wp = np.einsum("nij,vj->nvi", wmat[:, k], points) + wpos[:, k][:, None]
            out[:, k] = (sdf(wp @ inv[:3, :3].T + inv[:3, 3]) < 0.0).any(axis=1)
        return out

    def touch_table(self, world) -> np.ndarray:
        """(N, G) bool: which hand geoms (at :meth:`world` poses) dip below the table top z = 0."""
        wpos, wmat = world
        out = np.zeros(wpos.shape[:2], bool)
        caps = self.capsules
        out[:, caps] = wpos[:, caps, 2] - np.abs(wmat[:, caps, 2, 2]) * self.halflen < self.radius
        for k, verts in zip(self.meshes, self._mesh_vertices):
            out[:, k] = (np.einsum("nj,vj->nv", wmat[:, k, 2], verts) + wpos[:, k, 2][:, None]).min(axis=1) < 0.0
        return out
