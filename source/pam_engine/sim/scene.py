"""The embedded Stage I scene: a table, objects at 6D poses and the floating hand, built with
MuJoCo's MjSpec, plus the state accessors every controller, policy and recorder uses.

Timing is chosen so that capture frames fall exactly on control steps: physics runs at
``fps * control_per_frame * substeps`` Hz (420 Hz by default), control at
``fps * control_per_frame`` Hz (105 Hz), capture at ``fps`` (15 Hz).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from pam_engine.conventions import SEG_HAND
from pam_engine.errors import PoseError
from pam_engine.hand.articulation import HandArticulation
from pam_engine.hand.model import HandModel
from pam_engine.hand.pose import HandPose, make_transform
from pam_engine.sim.hand_builder import (
    COLLISION_GROUP, WORLD_CONAFFINITY, WORLD_CONTYPE, WRIST_JOINTS, HandGains, add_hand,
)
from pam_engine.trajectory import CONTACT_PARTS

TABLE_GEOM = "table"
_log = logging.getLogger("pam_engine.mujoco")


def _route_mujoco_warnings() -> None:
    """MuJoCo writes its warnings to MUJOCO_LOG.TXT in the working directory; the engine reports
    instabilities itself (a failed episode with a reason), so send them to logging instead."""
    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(lambda message: _log.warning("MuJoCo: %s", message))


_route_mujoco_warnings()


@dataclass
class SceneConfig:
    """Physics and timing of the embedded scene."""

    fps: float = 15.0
    control_per_frame: int = 7
    substeps: int = 4
    table_half_size: tuple[float, float, float] = (0.6, 0.6, 0.02)  # top surface at z = 0
    table_friction: float = 0.8
    impratio: float = 10.0
    gravity: tuple[float, float, float] = (0.0, 0.0, -9.81)
    render_width: int = 1280  # largest offscreen render the model allows
    render_height: int = 720
    gains: HandGains = field(default_factory=HandGains)

    @property
    def control_dt(self) -> float:
        return 1.0 / (self.fps * self.control_per_frame)

    @property
    def timestep(self) -> float:
        return self.control_dt / self.substeps


@dataclass(frozen=True)
class PlacedObject:
    """An object asset (``pam_engine.objects.ObjectAsset``) and its world pose (4x4)."""

    asset: object
    pose: np.ndarray


class HandObjectScene:
    """A compiled scene: model, data and the index maps of the hand and objects."""

    def __init__(self, hand: HandModel, articulation: HandArticulation, objects: Sequence[PlacedObject],
                 config: SceneConfig | None = None, betas: np.ndarray | None = None):
        from pam_engine.objects import add_object_to_spec

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
        rel = np.linalg.inv(self.base_pose()) @ wrist_world
        euler = Rotation.from_matrix(rel[..., :3, :3]).as_euler("XYZ")
        return np.concatenate([rel[..., :3, 3], euler], axis=-1)

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
        from pam_engine.conventions import KEYPOINT_FROM_MANO

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
