"""Reading :class:`~pam_engine.rl.spec.GraspState` out of a scene (any simulator backend), and driving one
episode's residual control: the code the training environment and the deployed policy share,
so an observation seen in training is bit-for-bit the one the policy sees in Stage I.

Fingertip-to-surface vectors use a fixed set of points sampled on the object's surface (seeded,
so identical everywhere) and a KD-tree: a query of six probes costs a few microseconds, against
~1 ms for the seven control steps of a decision, and a GPU task mirrors it with one ``cdist``.
At 1024 points the sampling gap is a few millimetres on DexYCB-sized objects, well below the
tens of millimetres over which the vectors matter for the policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from pam_engine.pose.grasp.plan import GraspPlan
from pam_engine.rl import spec
from pam_engine.sim.base import HandObjectEnv

#: DexYCB keypoints of the fingertips (thumb..little), the wrist and the four finger MCPs.
_TIPS = [4, 8, 12, 16, 20]
_MCPS = [5, 9, 13, 17]
#: The palm centre lies this far from the wrist towards the mean of the finger MCPs (as in
#: grasp synthesis).
PALM_FRACTION = 0.6


class SurfaceCloud:
    """Points sampled on an object's surface (object frame) with a KD-tree over them."""

    _cache: dict = {}

    def __init__(self, mesh: trimesh.Trimesh, count: int, seed: int = 0):
        points, _ = trimesh.sample.sample_surface(mesh, count, seed=seed)
        self.points = np.asarray(points, dtype=np.float64)
        self.tree = cKDTree(self.points)

    @classmethod
    def of(cls, asset, count: int) -> "SurfaceCloud":
        """The cloud of an object asset, built once per process."""
        key = (asset.source, float(asset.scale), int(count))
        if key not in cls._cache:
            cls._cache[key] = cls(asset.mesh, count)
        return cls._cache[key]

    def nearest(self, points_world: np.ndarray, object_pose: np.ndarray) -> np.ndarray:
        """Nearest surface sample (world) to each of ``points_world``."""
        rot, pos = object_pose[:3, :3], object_pose[:3, 3]
        local = (points_world - pos) @ rot
        _, index = self.tree.query(local)
        return self.points[index] @ rot.T + pos


@dataclass
class ContactReadout:
    parts: np.ndarray  # (6,) bool
    force: np.ndarray  # (6,) normal force per part (N)
    penetration: float  # deepest hand-target penetration (m)


def read_contacts(scene: HandObjectEnv, target: int) -> ContactReadout:
    """Which hand parts touch object ``target``, how hard (normal force) and how deep."""
    parts, force, depth = scene.contact_readout(target)
    return ContactReadout(parts, force, depth)


class GraspEpisode:
    """One episode of residual control over a scene and its plan.

    ``targets(step)`` gives the servo targets of every control step (the plan plus the blended
    residual); ``is_decision(step)`` says when the policy is asked; ``state(step)`` and
    ``observe(step)`` read the scene. The environment and :class:`LearnedPolicy` both call
    exactly these, in the same order.
    """

    def __init__(self, scene: HandObjectEnv, plan: GraspPlan, target: int, task: spec.TaskConfig,
                 grasp_parts: np.ndarray | None = None):
        if plan.wrist_q is None:
            raise ValueError("the plan must be anchored to the scene (GraspPlan.anchor) before an episode starts")
        self.scene, self.plan, self.target, self.task = scene, plan, target, task
        art = scene.articulation
        self.lower, self.upper = art.lower, art.upper
        self.synergies = spec.synergy_matrix(art.names)
        self.n_dof = art.size
        self.obs_size = spec.observation_size(self.n_dof)
        self.action_size = spec.action_size()
        self.substeps = scene.config.control_per_frame
        asset = scene.objects[target].asset
        self.asset = asset
        self.com = np.asarray(asset.com, dtype=np.float64)
        self.mass = float(asset.mass)
        self.surface = SurfaceCloud.of(asset, task.surface_points)
        self.grasp_parts = np.zeros(spec.NUM_PARTS, bool) if grasp_parts is None else np.asarray(grasp_parts, bool)
        scene.sync()
        start_pose = scene.object_pose(target)
        self.start_height = float((start_pose[:3, :3] @ self.com + start_pose[:3, 3])[2])
        self.grasp_in_object = np.linalg.inv(start_pose) @ plan.grasp_wrist
        self.last_step = plan.num_steps - 1
        self.action = np.zeros(self.action_size)  # the residual decided last
        self.previous = np.zeros(self.action_size)  # the one before (the ramp's start)
        self.decided_at = -1

    # -- control ---------------------------------------------------------------------------

    def is_decision(self, step: int) -> bool:
        return (step % self.substeps == 0 and step < self.last_step
                and self.plan.phase[step] >= spec.FIRST_ACTIVE_PHASE)

    def first_decision(self) -> int:
        for step in range(0, self.last_step, self.substeps):
            if self.is_decision(step):
                return step
        raise ValueError("the plan has no step at which the policy acts (too few frames?)")

    def decide(self, step: int, action: np.ndarray) -> None:
        """Take ``action`` (clipped to [-1, 1]) as the residual from control step ``step`` on."""
        self.previous = self.action
        self.action = np.clip(np.asarray(action, dtype=np.float64).reshape(self.action_size), -1.0, 1.0)
        self.decided_at = step

    def targets(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        plan = self.plan
        if self.decided_at < 0:
            return plan.wrist_q[step], plan.fingers[step]
        residual = spec.blend(self.previous, self.action, step - self.decided_at, self.substeps)
        return spec.residual_targets(residual, plan.wrist_q[step], plan.fingers[step], self.synergies,
                                     self.task.action, self.lower, self.upper)

    # -- reading the scene -----------------------------------------------------------------

    def state(self, step: int) -> spec.GraspState:
        scene = self.scene
        scene.sync()  # body poses level with the joints (as Stage I records)
        keypoints = scene.keypoints()
        probes = np.empty((spec.NUM_PROBES, 3))
        probes[:5] = keypoints[_TIPS]
        probes[5] = keypoints[0] + PALM_FRACTION * (keypoints[_MCPS].mean(axis=0) - keypoints[0])
        object_pose = scene.object_pose(self.target)
        linvel, angvel = scene.object_velocity(self.target)  # of the body origin, world
        com_linvel = linvel + np.cross(angvel, object_pose[:3, :3] @ self.com)
        wrist_linvel = scene.wrist_linvel()
        contacts = read_contacts(scene, self.target)
        plan = self.plan
        return spec.GraspState(
            wrist=scene.wrist_pose(), wrist_linvel=wrist_linvel, finger_angles=scene.finger_angles(),
            object_pose=object_pose, object_com=self.com, object_linvel=com_linvel, object_angvel=angvel,
            probes=probes, nearest=self.surface.nearest(probes, object_pose),
            contacts=contacts.parts, contact_force=contacts.force, penetration=contacts.penetration,
            plan_wrist=plan.wrist[step], plan_fingers=plan.fingers[step],
            grasp_in_object=self.grasp_in_object, grasp_angles=plan.grasp_angles, grasp_parts=self.grasp_parts,
            phase=int(plan.phase[step]), progress=step / self.last_step, start_height=self.start_height,
            object_mass=self.mass, lower=self.lower, upper=self.upper,
        )

    def observe(self, state: spec.GraspState) -> np.ndarray:
        return spec.observation(state, self.action)
