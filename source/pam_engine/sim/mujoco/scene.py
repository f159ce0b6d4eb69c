"""The embedded MuJoCo scene: a table, objects at 6D poses and the floating hand, built with
MuJoCo's MjSpec; one ``MjData`` per environment. It implements the single-environment view of
the simulator seam (:class:`pam_engine.sim.base.HandObjectEnv`) directly on ``MjData``: the
fast path, as cheap as bare ``mj_step``.

Timing: see :class:`~pam_engine.sim.base.SceneConfig`.
"""

from __future__ import annotations

import copy
import logging
from typing import Sequence

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from pam_engine.conventions import KEYPOINT_FROM_MANO, SEG_HAND
from pam_engine.errors import PoseError
from pam_engine.hand.articulation import HandArticulation
from pam_engine.hand.model import HandModel
from pam_engine.hand.pose import HandPose, make_transform
from pam_engine.sim.base import PlacedObject, SceneConfig
from pam_engine.sim.mujoco.hand_builder import (
    COLLISION_GROUP, WORLD_CONAFFINITY, WORLD_CONTYPE, WRIST_JOINTS, add_hand,
)
from pam_engine.sim.mujoco.objects import add_object_to_spec
from pam_engine.sim.rig import wrist_joint_values
from pam_engine.trajectory import CONTACT_PARTS

TABLE_GEOM = "table"
_log = logging.getLogger("pam_engine.mujoco")
_BAD_STATE_WARNINGS = (mujoco.mjtWarning.mjWARN_BADQACC, mujoco.mjtWarning.mjWARN_BADQPOS,
                       mujoco.mjtWarning.mjWARN_BADQVEL)


def route_mujoco_warnings() -> None:
    """MuJoCo writes its warnings to MUJOCO_LOG.TXT in the working directory; the engine reports
    instabilities itself (a failed episode with a reason), so send them to logging instead.
    Installed when the first scene is built (never at import: inside another host, such as
    Isaac Sim's Kit, the engine must not take over MuJoCo's global hooks unasked)."""
    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(lambda message: _log.warning("MuJoCo: %s", message))


class HandObjectScene:
    """A compiled scene: model, data and the index maps of the hand and objects."""

    def __init__(self, hand: HandModel, articulation: HandArticulation, objects: Sequence[PlacedObject],
                 config: SceneConfig | None = None, betas: np.ndarray | None = None):
        route_mujoco_warnings()
        self.config = config or SceneConfig()
        self.hand = hand
        self.articulation = articulation
        self.objects = list(objects)
        for k, placed in enumerate(self.objects):
            _check_pose(placed.pose, f"pose of object {k} ({placed.asset.name})")
        spec = self._base_spec()
        self.hand_info = add_hand(spec, hand, articulation, betas=betas, gains=self.config.gains)
        for k, placed in enumerate(self.objects):
            pos = placed.pose[:3, 3]
            quat = Rotation.from_matrix(placed.pose[:3, :3]).as_quat(scalar_first=True)
            add_object_to_spec(spec, placed.asset, f"object_{k}", pos.tolist(), quat.tolist(), free=True)
        self.spec = spec
        self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        self._index()
        mujoco.mj_forward(self.model, self.data)

    # -- construction ------------------------------------------------------------------------

    def _base_spec(self) -> mujoco.MjSpec:
        cfg = self.config
        spec = mujoco.MjSpec()
        spec.modelname = "pam_scene"
        spec.compiler.degree = False  # every angle in the engine is in radians
        spec.option.timestep = cfg.timestep
        spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
        spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
        spec.option.impratio = cfg.impratio
        spec.option.gravity = list(cfg.gravity)
        spec.visual.global_.offwidth = cfg.render_width
        spec.visual.global_.offheight = cfg.render_height
        hx, hy, hz = cfg.table_half_size
        # the preview repaints textures named pam_random* with random patterns
        texture = spec.add_texture(name="pam_random_table", type=mujoco.mjtTexture.mjTEXTURE_2D,
                                   builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER, width=256, height=256,
                                   rgb1=[0.62, 0.52, 0.42], rgb2=[0.55, 0.45, 0.35])
        material = spec.add_material(name="table_material")
        material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = texture.name
        material.texrepeat = [4, 4]
        table = spec.worldbody.add_geom(
            name=TABLE_GEOM, type=mujoco.mjtGeom.mjGEOM_BOX, size=[hx, hy, hz], pos=[0, 0, -hz],
            rgba=[1.0, 1.0, 1.0, 1.0], friction=[cfg.table_friction, 0.005, 0.0001], material="table_material",
        )
        table.contype, table.conaffinity, table.group = WORLD_CONTYPE, WORLD_CONAFFINITY, 0
        light = spec.worldbody.add_light(name="key_light", pos=[0.3, -0.3, 1.5], dir=[-0.2, 0.2, -1.0])
        light.castshadow = False
        return spec

    def _index(self) -> None:
        m = self.model
        name = lambda kind, n: mujoco.mj_name2id(m, kind, n)  # noqa: E731
        J, B, G, A = mujoco.mjtObj.mjOBJ_JOINT, mujoco.mjtObj.mjOBJ_BODY, mujoco.mjtObj.mjOBJ_GEOM, mujoco.mjtObj.mjOBJ_ACTUATOR
        info = self.hand_info
        self.wrist_qpos = np.array([m.jnt_qposadr[name(J, n)] for n in WRIST_JOINTS])
        self.wrist_dof = np.array([m.jnt_dofadr[name(J, n)] for n in WRIST_JOINTS])
        self.finger_qpos = np.array([m.jnt_qposadr[name(J, n)] for n in info.finger_joints])
        self.finger_dof = np.array([m.jnt_dofadr[name(J, n)] for n in info.finger_joints])
        self.wrist_act = np.array([name(A, n) for n in WRIST_JOINTS])
        self.finger_act = np.array([name(A, n) for n in info.finger_joints])
        self.base_mocap = m.body_mocapid[name(B, "hand_base")]
        self.wrist_body = name(B, "hand_wrist")
        self.joint_bodies = np.array([name(B, n) for n in info.joint_bodies])
        self.object_bodies = np.array([name(B, f"object_{k}") for k in range(len(self.objects))])
        self.object_qpos = np.array([m.jnt_qposadr[m.body_jntadr[b]] for b in self.object_bodies], dtype=int)
        self.object_dof = np.array([m.jnt_dofadr[m.body_jntadr[b]] for b in self.object_bodies], dtype=int)
        self.table_geom = name(G, TABLE_GEOM)
        self.skin_id = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SKIN, info.skin)
        # geom -> contact part of the hand (-1: not hand) and geom -> object index (-1: none)
        self.geom_part = np.full(m.ngeom, -1)
        for geom_name, part in info.geom_parts.items():
            self.geom_part[name(G, geom_name)] = part
        body_to_object = {int(b): k for k, b in enumerate(self.object_bodies)}
        self.geom_object = np.array([body_to_object.get(int(b), -1) for b in m.geom_bodyid])
        self.hand_geoms = np.flatnonzero(self.geom_part >= 0)
        # fingertip skin vertices, as (body, weight, offset in body frame) for cheap keypoints
        rest, vertices = info.rest_joints, info.rest_vertices
        self._tip_terms = []
        for vid in self.hand.tip_vertex_ids:
            joints = np.flatnonzero(self.hand.weights[vid] > 0)
            self._tip_terms.append((self.joint_bodies[joints], self.hand.weights[vid, joints],
                                    vertices[vid] - rest[joints]))

    # -- control -----------------------------------------------------------------------------

    @property
    def rest_wrist(self) -> np.ndarray:
        """The hand's rest wrist joint (MANO's J0): ``pose_m`` translation = wrist - rest_wrist."""
        return self.hand_info.rest_joints[0]

    def base_pose(self) -> np.ndarray:
        return make_transform(Rotation.from_quat(self.data.mocap_quat[self.base_mocap], scalar_first=True),
                              self.data.mocap_pos[self.base_mocap])

    def set_base_pose(self, pose: np.ndarray) -> None:
        """Anchor the hand's six wrist joints at ``pose`` (world); their zero is this pose."""
        self.data.mocap_pos[self.base_mocap] = pose[:3, 3]
        self.data.mocap_quat[self.base_mocap] = Rotation.from_matrix(pose[:3, :3]).as_quat(scalar_first=True)

    def wrist_to_joints(self, wrist_world: np.ndarray) -> np.ndarray:
        """The six wrist joint values (x, y, z, rx, ry, rz) that put the wrist at ``wrist_world``
        ((4, 4) or a batch (n, 4, 4))."""
        return wrist_joint_values(self.base_pose(), wrist_world)

    def set_hand_state(self, pose: HandPose) -> None:
        """Teleport the hand (positions and targets) to ``pose``, at rest."""
        q = self.wrist_to_joints(pose.wrist)
        self.data.qpos[self.wrist_qpos] = q
        self.data.qpos[self.finger_qpos] = pose.angles
        self.data.qvel[self.wrist_dof] = 0.0
        self.data.qvel[self.finger_dof] = 0.0
        self.set_targets(q, pose.angles)

    def set_targets(self, wrist_q: np.ndarray, finger_q: np.ndarray) -> None:
        self.data.ctrl[self.wrist_act] = wrist_q
        self.data.ctrl[self.finger_act] = finger_q

    def set_object_pose(self, k: int, pose: np.ndarray) -> None:
        adr = self.object_qpos[k]
        self.data.qpos[adr:adr + 3] = pose[:3, 3]
        self.data.qpos[adr + 3:adr + 7] = Rotation.from_matrix(pose[:3, :3]).as_quat(scalar_first=True)
        self.data.qvel[self.object_dof[k]:self.object_dof[k] + 6] = 0.0

    def pose_frame(self, trajectory, t: int) -> None:
        """Put the scene in frame ``t`` of a recorded trajectory (positions only, for capture):
        the hand's base carries the wrist, the objects take their recorded poses."""
        wrist = trajectory.wrist_pose[t]
        self.set_base_pose(wrist)
        self.data.qpos[self.wrist_qpos] = 0.0
        self.data.qpos[self.finger_qpos] = trajectory.joint_angles[t]
        for k in range(len(self.objects)):
            pose = np.vstack([trajectory.pose_y[t, k], [0.0, 0.0, 0.0, 1.0]])
            self.set_object_pose(k, pose)
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)

    def step(self, control_steps: int = 1) -> None:
        mujoco.mj_step(self.model, self.data, nstep=self.config.substeps * control_steps)

    def forward(self) -> None:
        mujoco.mj_forward(self.model, self.data)

    def sync(self) -> None:
        """Body poses level with qpos (``mj_step`` leaves them one integration step behind)."""
        mujoco.mj_kinematics(self.model, self.data)

    # -- state -------------------------------------------------------------------------------

    def is_finite(self) -> bool:
        return bool(np.isfinite(self.data.qpos).all() and np.isfinite(self.data.qvel).all())

    def wrist_pose(self) -> np.ndarray:
        return make_transform(self.data.xmat[self.wrist_body].reshape(3, 3), self.data.xpos[self.wrist_body])

    def finger_angles(self) -> np.ndarray:
        return self.data.qpos[self.finger_qpos].copy()

    def hand_pose(self) -> HandPose:
        return HandPose(self.wrist_pose(), self.finger_angles())

    def keypoints(self) -> np.ndarray:
        """The 21 DexYCB keypoints in the world frame: joint bodies and skinned fingertips."""
        joints = self.data.xpos[self.joint_bodies]
        tips = np.empty((5, 3))
        for k, (bodies, weights, offsets) in enumerate(self._tip_terms):
            xmat = self.data.xmat[bodies].reshape(-1, 3, 3)
            tips[k] = weights @ (self.data.xpos[bodies] + np.einsum("bij,bj->bi", xmat, offsets))
        return np.concatenate([joints, tips])[list(KEYPOINT_FROM_MANO)]

    def object_pose(self, k: int) -> np.ndarray:
        b = self.object_bodies[k]
        return make_transform(self.data.xmat[b].reshape(3, 3), self.data.xpos[b])

    def object_poses(self) -> np.ndarray:
        """(n_obj, 3, 4) world poses of the objects (their mesh frames)."""
        b = self.object_bodies
        return np.concatenate([self.data.xmat[b].reshape(-1, 3, 3), self.data.xpos[b][:, :, None]], axis=2)

    def contacts(self, target: int) -> np.ndarray:
        """(6,) bool: which hand parts (CONTACT_PARTS order) touch object ``target``."""
        touching = np.zeros(len(CONTACT_PARTS), dtype=bool)
        n = self.data.ncon
        if n == 0:
            return touching
        geoms = self.data.contact.geom[:n]
        for a, b in ((0, 1), (1, 0)):
            mask = (self.geom_object[geoms[:, a]] == target) & (self.geom_part[geoms[:, b]] >= 0)
            touching[self.geom_part[geoms[mask, b]]] = True
        return touching

    def object_velocity(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Object ``k``'s free-joint velocity: linear (world, of the body origin) and angular
        (world)."""
        dof = self.object_dof[k]
        linvel = self.data.qvel[dof:dof + 3]
        angvel = self.object_pose(k)[:3, :3] @ self.data.qvel[dof + 3:dof + 6]  # body frame -> world
        return linvel, angvel

    def wrist_linvel(self) -> np.ndarray:
        """Linear velocity of the wrist slides, in world axes."""
        out = np.zeros(3)
        mujoco.mju_rotVecQuat(out, np.asarray(self.data.qvel[self.wrist_dof[:3]], dtype=np.float64),
                              np.asarray(self.data.mocap_quat[self.base_mocap], dtype=np.float64))
        return out

    def contact_readout(self, target: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Which hand parts touch object ``target`` (6,) bool, their summed normal force (6,) N,
        and the deepest hand-target penetration (m)."""
        parts = np.zeros(len(CONTACT_PARTS), dtype=bool)
        force = np.zeros(len(CONTACT_PARTS))
        depth = 0.0
        data = self.data
        n = data.ncon
        if n:
            geoms = data.contact.geom[:n]
            part_a, part_b = self.geom_part[geoms[:, 0]], self.geom_part[geoms[:, 1]]
            obj_a, obj_b = self.geom_object[geoms[:, 0]], self.geom_object[geoms[:, 1]]
            hand_part = np.where(part_a >= 0, part_a, part_b)
            hits = np.flatnonzero(((part_a >= 0) & (obj_b == target)) | ((part_b >= 0) & (obj_a == target)))
            wrench = np.zeros(6)
            for i in hits:
                p = hand_part[i]
                parts[p] = True
                mujoco.mj_contactForce(self.model, data, int(i), wrench)
                force[p] += wrench[0]
                depth = max(depth, -float(data.contact.dist[i]))
        return parts, force, depth

    def penetration(self, pose: HandPose) -> tuple[float, str]:
        """Deepest penetration of the hand at ``pose`` into the table or an object, and what it
        sinks into; the state is restored."""
        saved = self.data.qpos.copy()
        self.set_hand_state(pose)
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_collision(self.model, self.data)
        depth, what = 0.0, ""
        for i in range(self.data.ncon):
            g1, g2 = self.data.contact.geom[i]
            if (self.geom_part[g1] >= 0) == (self.geom_part[g2] >= 0):
                continue
            other = g2 if self.geom_part[g1] >= 0 else g1
            d = -float(self.data.contact.dist[i])
            if d > depth:
                depth = d
                what = "table" if other == self.table_geom else f"object {self.objects[self.geom_object[other]].asset.name!r}"
        self.data.qpos[:] = saved
        self.forward()
        return depth, what

    def stop_objects(self) -> None:
        """Zero every object's velocity (after settling), leaving positions as they are."""
        for k in range(len(self.objects)):
            self.data.qvel[self.object_dof[k]:self.object_dof[k] + 6] = 0.0

    def sim_time(self) -> float:
        return float(self.data.time)

    def diverged(self) -> bool:
        """True when MuJoCo flagged a bad state (QACC/QPOS/QVEL) or the state is not finite."""
        return any(self.data.warning[w].number for w in _BAD_STATE_WARNINGS) or not self.is_finite()

    def fork(self) -> "HandObjectScene":
        """A view on the same model with its own copy of the current state."""
        view = copy.copy(self)
        view.data = mujoco.MjData(self.model)
        mujoco.mj_copyData(view.data, self.model, self.data)
        return view

    def fresh(self) -> "HandObjectScene":
        """A view on the same model with a fresh initial state (half a millisecond, against
        ~14 ms to compile a model)."""
        view = copy.copy(self)
        view.data = mujoco.MjData(self.model)
        mujoco.mj_forward(self.model, view.data)
        return view

    def capture(self, trajectory, camera, rng=None, out=None, on_frame=None):
        """Render a trajectory recorded in this scene (see :mod:`pam_engine.sim.mujoco.capture`)."""
        from pam_engine.sim.mujoco.capture import capture_trajectory

        return capture_trajectory(self, trajectory, camera, rng, out, on_frame)

    def capture_static(self, trajectory, cameras, rng=None):
        """DWM's static-scene render of a trajectory recorded here: objects at their initial poses,
        no hand (see :func:`pam_engine.sim.mujoco.capture.capture_static_scene`)."""
        from pam_engine.sim.mujoco.capture import capture_static_scene

        return capture_static_scene(self, trajectory, cameras, rng)

    def segmentation_ids(self) -> tuple[dict[int, int], dict[int, int]]:
        """Geom id -> segmentation id for object visual geoms, and skin id -> hand id."""
        geoms = {}
        for g in range(self.model.ngeom):
            k = self.geom_object[g]
            if k >= 0 and self.model.geom_group[g] != COLLISION_GROUP:
                geoms[g] = int(self.objects[k].asset.seg_id)
        return geoms, {self.skin_id: SEG_HAND}


def _check_pose(pose: np.ndarray, what: str) -> None:
    pose = np.asarray(pose)
    if pose.shape != (4, 4):
        raise PoseError(f"{what} has shape {pose.shape}, expected (4, 4)")
    if not np.all(np.isfinite(pose)):
        raise PoseError(f"{what} contains NaN or inf")
    r = pose[:3, :3]
    if not np.allclose(r @ r.T, np.eye(3), atol=1e-5) or np.linalg.det(r) < 0:
        raise PoseError(f"{what} has a rotation that is not a proper rotation matrix")
