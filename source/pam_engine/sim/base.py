"""The simulator seam: what Stage I, the RL environment and capture need from a physics backend.

Two backends implement it: the embedded MuJoCo one (:mod:`pam_engine.sim.mujoco`, CPU, one
``MjData`` per environment) and, next, Isaac Lab (GPU, thousands of environments in one call).
The interface is shaped after Isaac Lab's ``DirectRLEnv`` / ``Articulation`` data API so that
backend does not need a second seam:

- every state read returns arrays with a leading environment axis ``(num_envs, ...)`` (Isaac
  Lab: ``robot.data.joint_pos`` is ``(num_instances, num_joints)``, ``body_link_pose_w`` is
  ``(num_instances, num_bodies, 7)``); commands take the same shapes, optionally for a subset
  ``env_ids`` (Isaac Lab: ``set_joint_position_target(target, joint_ids, env_ids)``);
- the hand is one articulation: six wrist joints (x, y, z slides, then intrinsic X-Y-Z hinges,
  relative to a per-episode *base* pose, Isaac Lab's root pose) and the finger joints in
  :class:`~pam_engine.hand.articulation.HandArticulation` order, all position servos;
- contacts are per hand part (``CONTACT_PARTS``: thumb, index, middle, ring, little, palm) with
  one object, as an Isaac Lab ``ContactSensor`` with ``filter_prim_paths_expr`` reports them;
- poses are 4x4 matrices (world frame, metres); Isaac Lab's ``(pos, quat xyzw)`` converts at the
  backend's edge, never in the engine.

A backend also gives single-environment *views* (:class:`HandObjectEnv`): Stage I runs one
episode at a time and the MuJoCo fast path steps one ``MjData`` per view with no batching cost.
Code in ``pose/``, ``policy/``, ``rl/`` and ``capture/`` is written against these protocols, never
against MuJoCo types. Conventions (units, frames, joint orders): docs/design.md, "Conventions".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class HandGains:
    """Position-servo gains of the hand's actuators and the contact properties of its skin."""

    wrist_kp_linear: float = 2000.0  # N/m
    wrist_kv_linear: float = 120.0
    wrist_kp_angular: float = 60.0  # N m / rad
    wrist_kv_angular: float = 4.0
    finger_kp: float = 1.2  # N m / rad at the MCP; distal joints get less (finger_kp_scale)
    finger_kp_scale: tuple[float, float, float] = (1.0, 0.6, 0.4)
    finger_damping: float = 0.03
    finger_armature: float = 0.002
    friction: tuple[float, float, float] = (1.2, 0.01, 0.0001)  # slide, torsion, roll
    wrist_force: float = 60.0  # N, actuator force limit
    wrist_torque: float = 8.0  # N m
    finger_torque: float = 1.5  # N m


@dataclass(frozen=True)
class SceneConfig:
    """Physics and timing of a hand-object scene (any backend).

    Capture frames fall exactly on control steps: physics runs at ``fps * control_per_frame *
    substeps`` Hz (420 Hz by default), control at ``fps * control_per_frame`` Hz (105 Hz), capture
    at ``fps`` (15 Hz). Isaac Lab's ``decimation`` is ``substeps``.
    """

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


@dataclass(frozen=True)
class SceneSpec:
    """Everything a backend needs to build a hand-object scene: the hand model and its
    articulation, the objects at their initial poses, physics settings, MANO shape."""

    hand: object  # pam_engine.hand.model.HandModel
    articulation: object  # pam_engine.hand.articulation.HandArticulation
    objects: tuple[PlacedObject, ...]
    config: SceneConfig = field(default_factory=SceneConfig)
    betas: np.ndarray | None = None


@runtime_checkable
class HandObjectEnv(Protocol):
    """One environment of a scene: the single-episode view that Stage I's set-up and rollout,
    the physical trial, the RL task's features, the policies and capture use (grasp synthesis,
    a kinematic collision search, takes the MuJoCo scene). Arrays have no environment axis."""

    config: SceneConfig
    articulation: object
    objects: list[PlacedObject]

    # commands
    def set_base_pose(self, pose: np.ndarray) -> None:
        """Anchor the six wrist joints at ``pose`` (world 4x4); their zero is this pose."""

    def wrist_to_joints(self, wrist_world: np.ndarray) -> np.ndarray:
        """Wrist joint values (..., 6) that put the wrist at ``wrist_world`` (..., 4, 4)."""

    def set_hand_state(self, pose) -> None:
        """Teleport the hand (positions and servo targets) to a ``HandPose``, at rest."""

    def set_targets(self, wrist_q: np.ndarray, finger_q: np.ndarray) -> None:
        """Servo targets: wrist joints (6,), finger joints (n_dof,)."""

    def set_object_pose(self, k: int, pose: np.ndarray) -> None:
        """Teleport object ``k`` to ``pose`` (world 4x4), at rest."""

    def step(self, control_steps: int = 1) -> None:
        """Advance ``control_steps`` control periods (``substeps`` physics steps each)."""

    def forward(self) -> None:
        """Recompute derived state (body poses, contacts) after teleports."""

    def stop_objects(self) -> None:
        """Zero every object's velocity, keeping positions (after settling)."""

    def sync(self) -> None:
        """Bring body poses level with the joint state (positions only), as the recorder does."""

    # state
    def diverged(self) -> bool:
        """True when the physics blew up (non-finite state or the solver's bad-state flags)."""

    def is_finite(self) -> bool: ...

    def sim_time(self) -> float: ...

    @property
    def rest_wrist(self) -> np.ndarray:
        """The hand's rest wrist joint (MANO's J0): ``pose_m`` translation = wrist - rest_wrist."""

    def base_pose(self) -> np.ndarray: ...

    def wrist_pose(self) -> np.ndarray: ...

    def finger_angles(self) -> np.ndarray: ...

    def keypoints(self) -> np.ndarray:
        """(21, 3) DexYCB keypoints, world frame."""

    def object_pose(self, k: int) -> np.ndarray: ...

    def object_poses(self) -> np.ndarray:
        """(n_obj, 3, 4) world poses of the objects' mesh frames."""

    def object_velocity(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Linear velocity of object ``k``'s frame origin and its angular velocity, world."""

    def contacts(self, target: int) -> np.ndarray:
        """(6,) bool: which hand parts touch object ``target``."""

    def contact_readout(self, target: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Contacts with object ``target``: parts (6,) bool, summed normal force per part (6,) N,
        deepest hand-target penetration (m)."""

    def wrist_linvel(self) -> np.ndarray:
        """(3,) linear velocity of the wrist, world axes."""

    def penetration(self, pose) -> tuple[float, str]:
        """Deepest penetration (m) of the hand at ``pose`` into the table or an object, and what
        it sinks into; the state is left as it was."""

    def capture(self, trajectory, camera, rng: np.random.Generator | None = None, out=None, on_frame=None):
        """Render ``trajectory`` (recorded in this scene) through ``camera`` into a
        ``CaptureSequence``: metric depth, segmentation ids, the hand-only pass, normals and the
        RGB preview, whose random look ``rng`` draws (None: the plain look); ``out`` is reused
        when it fits. ``on_frame(t)`` runs before frame ``t`` (progress; it may raise to stop)."""

    def fork(self) -> "HandObjectEnv":
        """A view with its own copy of the state (same built model): scratch trials."""

    def fresh(self) -> "HandObjectEnv":
        """A view with a fresh initial state (same built model): a new episode."""


@runtime_checkable
class HandObjectSim(Protocol):
    """A batch of ``num_envs`` identical scenes stepped together (Isaac Lab's layout). Reads
    return ``(num_envs, ...)`` arrays; commands take them, for all envs or ``env_ids``."""

    num_envs: int

    def env(self, i: int) -> HandObjectEnv:
        """Environment ``i`` as a single-episode view."""

    def set_targets(self, wrist_q: np.ndarray, finger_q: np.ndarray, env_ids: Sequence[int] | None = None) -> None: ...

    def step(self, control_steps: int = 1) -> None: ...

    def sync(self) -> None:
        """Body poses level with the joint state, in every env."""

    def wrist_pose(self) -> np.ndarray:
        """(num_envs, 4, 4)."""

    def finger_angles(self) -> np.ndarray:
        """(num_envs, n_dof)."""

    def keypoints(self) -> np.ndarray:
        """(num_envs, 21, 3)."""

    def object_poses(self) -> np.ndarray:
        """(num_envs, n_obj, 3, 4)."""

    def contacts(self, target: int) -> np.ndarray:
        """(num_envs, 6) bool."""

    def diverged(self) -> np.ndarray:
        """(num_envs,) bool."""


class SimBackend(Protocol):
    """Builds scenes: ``build(spec, num_envs)`` -> :class:`HandObjectSim`; ``build_env(spec)``
    -> one :class:`HandObjectEnv` (the common Stage I case)."""

    name: str

    def build(self, spec: SceneSpec, num_envs: int = 1) -> HandObjectSim: ...

    def build_env(self, spec: SceneSpec) -> HandObjectEnv: ...
