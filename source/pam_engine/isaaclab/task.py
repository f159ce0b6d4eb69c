"""The grasp task as an Isaac Lab 3.0 ``DirectRLEnv`` (needs ``isaaclab``; see the package doc).

Scene (one per env, cloned by Isaac Lab): the hand articulation from the engine's hand USD
(implicit actuators at the gains written in it, the engine's), the grasped object as a rigid body
from its USD (env ``i`` gets object ``i % len(objects)``, Isaac Lab's multi-asset spawning), the
table as a local USD, a dome light and, when asked, a camera (depth along the optical axis and
instance segmentation; Newton's Warp renderer kit-less, RTX in Kit).

The task is :mod:`pam_engine.rl.spec` batched in torch (:mod:`pam_engine.rl.spec_torch`):
observation, residual action on the scripted plan, reward, GraspXL success. Episodes are set up
by the engine's pose stage exactly as the MuJoCo ``GraspVecEnv`` sets them up (same rng streams
per env and seed): placement, settling, a grasp from the bank, h0, the plan, and the scripted
approach up to the first decision, run on the embedded scene. Its state at that decision (hand
joints, object pose) is then written into the Isaac env, so both backends start every decision
phase from the same state and only the physics of the decisions differs.

One env step is one decision: ``control_per_frame`` control steps whose servo targets follow the
plan plus the ramped residual, ``substeps`` physics steps each (``decimation = substeps``, so the
targets change every control step as in MuJoCo).
"""

from __future__ import annotations

from dataclasses import MISSING, replace
from typing import Sequence

import numpy as np
import torch

import isaaclab.sim as sim_utils
from isaaclab.actuators import ImplicitActuatorCfg
from isaaclab.assets import ArticulationCfg, AssetBaseCfg, RigidObjectCfg
from isaaclab.envs import DirectRLEnv, DirectRLEnvCfg
from isaaclab.scene import InteractiveSceneCfg
from isaaclab.sim import SimulationCfg
from isaaclab.utils import configclass

from pam_engine.errors import ConfigError
from pam_engine.isaaclab.checks import check_device, check_joint_names, check_num_envs, check_physics
from pam_engine.isaaclab.episodes import EpisodeSource
from pam_engine.conventions import MANO_JOINT_NAMES
from pam_engine.rl import spec, spec_torch

#: Bones whose link poses give the keypoints (``hand_<MANO joint>``, MANO order).
BONE_LINKS = tuple(f"hand_{n}" for n in MANO_JOINT_NAMES)


def _bone_parts() -> tuple[int, ...]:
    """Contact part (thumb, index, middle, ring, little, palm) of each bone link, MANO order:
    the wrist link carries the palm, each finger's three links its finger (as the MuJoCo hand's
    collision geoms are assigned)."""
    from pam_engine.conventions import MANO_FINGERS

    part = {0: 5}
    for p, finger in enumerate(("thumb", "index", "middle", "ring", "pinky")):
        part.update({j: p for j in MANO_FINGERS[finger]})
    return tuple(part[j] for j in range(len(MANO_JOINT_NAMES)))


#: Contact part of each link in BONE_LINKS.
BONE_PARTS = _bone_parts()
_TIPS = [4, 8, 12, 16, 20]
_MCPS = [5, 9, 13, 17]


def physics_cfg(preset: str, njmax: int = 1200, nconmax: int = 600, solver: dict | None = None):
    """Newton/MuJoCo-Warp (default) or PhysX (Isaac Sim), with the engine's solver settings;
    ``solver`` overrides ``MJWarpSolverCfg`` fields (iterations, cone, save_to_mjcf, ...)."""
    preset = check_physics(preset)
    if preset == "physx":
        from isaaclab_physx.physics import PhysxCfg

        return PhysxCfg(bounce_threshold_velocity=0.2)
    # contact and constraint capacity per world: the DexYCB objects' hull sets reach ~200 contacts
    # with the hand and table (the tuna can overflowed nconmax 200: dropped contacts, wrong physics)
    from isaaclab_newton.physics import MJWarpSolverCfg, NewtonCfg

    from pam_engine.sim.base import SceneConfig

    settings = dict(integrator="implicitfast", cone="elliptic", impratio=SceneConfig().impratio, njmax=njmax,
                    nconmax=nconmax)
    unknown = sorted(set(solver or {}) - set(MJWarpSolverCfg.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"solver settings {unknown}: not MJWarpSolverCfg fields")
    settings.update(solver or {})
    return NewtonCfg(solver_cfg=MJWarpSolverCfg(**settings), use_cuda_graph=False)


def renderer_cfg(kit: bool):
    if kit:
        from isaaclab_physx.renderers import IsaacRtxRendererCfg  # Isaac Sim only

        return IsaacRtxRendererCfg()
    from isaaclab_newton.renderers import NewtonWarpRendererCfg

    return NewtonWarpRendererCfg(use_cuda_graph=False, colorize_instance_segmentation=False)


@configclass
class PamGraspSceneCfg(InteractiveSceneCfg):
    robot: ArticulationCfg = MISSING
    object: RigidObjectCfg = MISSING
    table: AssetBaseCfg = MISSING
    light: AssetBaseCfg = AssetBaseCfg(prim_path="/World/Light", spawn=sim_utils.DomeLightCfg(intensity=2000.0))
    camera: object = None  # a CameraCfg (make_env_cfg(camera=(w, h))), None: no camera
    contacts: object = None  # a ContactSensorCfg on the hand's links, filtered on the object; None: geometric


@configclass
class PamGraspEnvCfg(DirectRLEnvCfg):
    """The Isaac Lab form of the engine's grasp task; build it with :func:`make_env_cfg`."""

    decimation: int = 4  # physics steps per control step (SceneConfig.substeps)
    control_per_frame: int = 7  # control steps per decision
    episode_length_s: float = 1e6  # episodes end with their plan (spec), never by time
    action_space: int = spec.action_size()
    observation_space: int = 119
    state_space: int = 0
    sim: SimulationCfg = SimulationCfg(dt=1.0 / 420.0)
    scene: PamGraspSceneCfg = MISSING
    objects: list = ["006_mustard_bottle"]
    seed_episodes: int = 0  # episode draws: env i uses default_rng([seed_episodes, i]) as GraspVecEnv slot i
    physics_preset: str = "newton"
    asset_dir: str = ""
    #: the engine's EnvConfig (task, reward, bank, Stage I settings) in an :class:`EngineConfigRef`
    #: (a frozen dataclass that configclass must not walk into); None: the default one
    engine: object = None
    #: set episodes up from the RL episode source (GraspVecEnv slots, grasp bank) on reset; False:
    #: the caller writes every env's state (``write_scene_states``; the pipeline's Stage I)
    episode_source: bool = True


class EngineConfigRef:
    """Holds the engine's frozen ``EnvConfig`` inside the configclass: Isaac Lab's post-init walks
    (and assigns into) nested dataclasses, which a frozen one refuses."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __repr__(self) -> str:
        return f"EngineConfigRef({self.value!r})"


def make_env_cfg(objects: Sequence[str] = ("006_mustard_bottle",), num_envs: int = 4, device: str = "cpu",
                 physics: str = "newton", engine=None, camera: tuple[int, int] | None = None,
                 asset_dir: str | None = None, seed: int = 0, env_spacing: float = 1.5, camera_rgb: bool = False,
                 episode_source: bool = True, contact_sensor: bool = True, solver: dict | None = None) -> PamGraspEnvCfg:
    """The task's config: validates the inputs, writes the USD assets, wires the scene.
    ``camera_rgb`` adds the colour image (the sim preview of generated episodes);
    ``contact_sensor`` reads the hand parts' contacts with the object from a contact sensor
    (else geometrically, from probes near the object's surface)."""
    from pam_engine import cache
    from pam_engine.isaaclab.assets import write_task_assets
    from pam_engine.objects import load_object
    from pam_engine.pose.setup import HandCache
    from pam_engine.rl.env import EnvConfig

    check_num_envs(num_envs)
    device = check_device(device)
    preset = check_physics(physics)
    engine = engine or EnvConfig()
    stage1 = engine.stage1
    hand, art = HandCache.get(stage1.mano)
    assets = [load_object(o) for o in objects]
    folder = asset_dir or str(cache.cache_dir("isaaclab_usd"))
    files = write_task_assets(folder, hand, art, assets, stage1.scene)  # checks the hand USD's joints
    sc = stage1.scene
    labels = lambda name: [("class", name)]  # noqa: E731  instance segmentation needs semantic tags
    robot = ArticulationCfg(
        prim_path="{ENV_REGEX_NS}/Hand",
        spawn=sim_utils.UsdFileCfg(usd_path=files.hand, semantic_tags=labels("hand"),
                                   activate_contact_sensors=contact_sensor and preset == "physx"),
        init_state=ArticulationCfg.InitialStateCfg(pos=(0.0, 0.0, 2.0)),
        # stiffness/damping None: the USD drives' gains, which are the engine's (sim.rig)
        actuators={"hand": ImplicitActuatorCfg(joint_names_expr=[".*"], stiffness=None, damping=None)})
    if len(files.objects) == 1:
        object_spawn = sim_utils.UsdFileCfg(usd_path=files.objects[0], semantic_tags=labels(files.names[0]))
    elif preset == "newton":
        raise ConfigError(
            f"objects {list(files.names)}: the newton preset takes one object per task (Newton's MuJoCo-Warp solver "
            "steps identical worlds only: 'SolverMuJoCo requires homogeneous worlds', and the objects' collision "
            "hulls differ); build one task per object, or use the physx preset (Isaac Sim) for multi-asset envs")
    else:  # PhysX: env i gets object i % len(objects) (Isaac Lab's sequential clone strategy)
        object_spawn = sim_utils.MultiUsdFileCfg(usd_path=list(files.objects), random_choice=False)
    obj = RigidObjectCfg(prim_path="{ENV_REGEX_NS}/Object", spawn=object_spawn,
                         init_state=RigidObjectCfg.InitialStateCfg(pos=(0.0, 0.0, 0.1)))
    table = AssetBaseCfg(prim_path="{ENV_REGEX_NS}/Table",
                         spawn=sim_utils.UsdFileCfg(usd_path=files.table, semantic_tags=labels("table")))
    scene = PamGraspSceneCfg(num_envs=num_envs, env_spacing=env_spacing, replicate_physics=True,
                             robot=robot, object=obj, table=table)
    cfg = PamGraspEnvCfg(scene=scene, objects=list(files.names), physics_preset=preset, asset_dir=folder,
                         engine=EngineConfigRef(engine), seed_episodes=seed, episode_source=episode_source)
    cfg.decimation = sc.substeps
    cfg.control_per_frame = sc.control_per_frame
    cfg.observation_space = spec.observation_size(art.size)
    cfg.sim = SimulationCfg(dt=sc.timestep, device=device, gravity=tuple(sc.gravity), render_interval=sc.substeps,
                            physics=physics_cfg(preset, solver=solver))
    if camera is not None:
        cfg.scene.camera = camera_cfg(*camera, kit=preset == "physx", rgb=camera_rgb)
    if contact_sensor:
        cfg.scene.contacts = contact_sensor_cfg()
    return cfg


def contact_sensor_cfg():
    """One contact sensor over the hand's bone links (wrist = palm, finger links), filtered on the
    object: the normal force between each link and the object (``normal_force_matrix_w``)."""
    from isaaclab.sensors import ContactSensorCfg

    return ContactSensorCfg(prim_path="{ENV_REGEX_NS}/Hand/(" + "|".join(BONE_LINKS) + ")",
                            filter_prim_paths_expr=["{ENV_REGEX_NS}/Object"], update_period=0.0, history_length=0)


def default_env_cfg() -> PamGraspEnvCfg:
    """The registered task's config: 64 envs on the CPU with Newton physics and the engine's
    default training settings, on the mustard bottle (Newton takes one object per task; inside
    Isaac Sim, ``make_env_cfg(dexycb_object_names(), physics="physx")`` spreads the 21 objects)."""
    return make_env_cfg(["006_mustard_bottle"], num_envs=64)


def camera_cfg(width: int, height: int, kit: bool = False, rgb: bool = False):
    """A pinhole camera per env (posed per episode from the engine's camera), depth along the
    optical axis and instance segmentation (and the colour image when ``rgb``)."""
    from isaaclab.sensors import CameraCfg

    return CameraCfg(
        prim_path="{ENV_REGEX_NS}/Camera", width=width, height=height, update_period=0.0,
        data_types=["distance_to_image_plane", "instance_segmentation", *(["rgb"] if rgb else [])],
        spawn=sim_utils.PinholeCameraCfg(focal_length=24.0, horizontal_aperture=20.955, clipping_range=(0.01, 10.0)),
        # 0.6 m in front of the table centre, 0.5 m up, looking back at it 40 degrees down
        offset=CameraCfg.OffsetCfg(pos=(0.6, 0.0, 0.5), rot=(-0.34202, 0.0, 0.93969, 0.0), convention="world"),
        renderer_cfg=renderer_cfg(kit))


def _pose7_to_matrix(pose: torch.Tensor) -> torch.Tensor:
    """(..., 7) position + quaternion (x, y, z, w) -> (..., 4, 4)."""
    p, q = pose[..., :3], pose[..., 3:7]
    x, y, z, w = q.unbind(-1)
    rot = torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1).reshape(*q.shape[:-1], 3, 3)
    out = torch.zeros(*pose.shape[:-1], 4, 4, dtype=pose.dtype, device=pose.device)
    out[..., :3, :3] = rot
    out[..., :3, 3] = p
    out[..., 3, 3] = 1.0
    return out


def _matrix_to_pose7(m: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return np.concatenate([m[:3, 3], Rotation.from_matrix(m[:3, :3]).as_quat()])  # scipy: (x, y, z, w)


class PamGraspEnv(DirectRLEnv):
    """The engine's grasp task on Isaac Lab (see the module doc)."""

    cfg: PamGraspEnvCfg

    def __init__(self, cfg: PamGraspEnvCfg, render_mode: str | None = None, **kwargs):
        from pam_engine.isaaclab.assets import expected_joint_names
        from pam_engine.pose.setup import HandCache
        from pam_engine.rl.bank import load_bank
        from pam_engine.rl.env import EnvConfig
        from pam_engine.sim.rig import build_rig

        check_num_envs(cfg.scene.num_envs)
        engine = cfg.engine.value if isinstance(cfg.engine, EngineConfigRef) else (cfg.engine or EnvConfig())
        # episode source: the MuJoCo GraspVecEnv's slots, pinned to each env's object
        engine = replace(engine, bank=replace(engine.bank, objects=list(cfg.objects)))
        self.engine_config = engine
        self.hand_model, self.articulation = HandCache.get(engine.stage1.mano)
        self.source = None
        if cfg.episode_source:
            bank = load_bank(engine.bank, engine.stage1, progress=False)
            self.source = EpisodeSource(engine, cfg.scene.num_envs, cfg.seed_episodes, bank, len(cfg.objects))
        super().__init__(cfg, render_mode, **kwargs)
        self.hand, self.object = self.scene["robot"], self.scene["object"]
        self.camera = self.scene.sensors.get("camera")
        self.contact_sensor = self.scene.sensors.get("contacts")
        if self.contact_sensor is not None:  # sensor row -> contact part, by link name
            names = list(self.contact_sensor.body_names if hasattr(self.contact_sensor, "body_names")
                         else self.contact_sensor.sensor_names)
            unknown = [n for n in names if n not in BONE_LINKS]
            if unknown:
                raise ConfigError(f"contact sensor: links {unknown} are not the hand's bone links {list(BONE_LINKS)}")
            self.sensor_parts = torch.tensor([BONE_PARTS[BONE_LINKS.index(n)] for n in names], device=self.device)
        check_joint_names(self.hand.joint_names, expected_joint_names(self.articulation), source="hand articulation")
        dev, n = self.device, self.num_envs
        art = self.articulation
        self.n_dof = art.size
        self.bone_ids = torch.tensor([self.hand.body_names.index(b) for b in BONE_LINKS], device=dev)
        self.wrist_id = self.hand.body_names.index("hand_wrist")
        f64 = torch.float64
        self.lower = torch.as_tensor(art.lower, dtype=f64, device=dev).expand(n, -1)
        self.upper = torch.as_tensor(art.upper, dtype=f64, device=dev).expand(n, -1)
        self.synergies = torch.as_tensor(spec.synergy_matrix(art.names), dtype=f64, device=dev)
        self._tip_terms(build_rig(self.hand_model, art, betas=engine.stage1.betas))
        steps = engine.stage1.num_steps
        self.num_steps, self.last_step = steps, steps - 1
        self.plan_wrist_q = torch.zeros(n, steps, 6, dtype=f64, device=dev)
        self.plan_fingers = torch.zeros(n, steps, self.n_dof, dtype=f64, device=dev)
        self.plan_wrist = torch.zeros(n, steps, 4, 4, dtype=f64, device=dev)
        self.plan_phase = torch.zeros(n, steps, dtype=torch.long, device=dev)
        self.grasp_angles = torch.zeros(n, self.n_dof, dtype=f64, device=dev)
        self.grasp_in_object = torch.eye(4, dtype=f64, device=dev).repeat(n, 1, 1)
        self.grasp_parts = torch.zeros(n, spec.NUM_PARTS, dtype=torch.bool, device=dev)
        self.start_height = torch.zeros(n, dtype=f64, device=dev)
        self.com = torch.zeros(n, 3, dtype=f64, device=dev)
        self.mass = torch.ones(n, dtype=f64, device=dev)
        self.surface = torch.zeros(n, engine.task.surface_points, 3, dtype=f64, device=dev)
        self.base = torch.eye(4, dtype=f64, device=dev).repeat(n, 1, 1)  # env frame
        self.step_index = torch.zeros(n, dtype=torch.long, device=dev)
        self.action = torch.zeros(n, spec.action_size(), dtype=f64, device=dev)
        self.previous = torch.zeros_like(self.action)
        self.diverged_buf = torch.zeros(n, dtype=torch.bool, device=dev)
        self.totals = {k: torch.zeros(n, dtype=f64, device=dev) for k in spec.REWARD_TERMS}
        self.object_index = torch.tensor([i % len(cfg.objects) for i in range(n)], device=dev)
        self.finished: list[dict] = []  # every finished episode: object, success, rise, hand error, diverged, reward
        self._state: spec_torch.GraspStateBatch | None = None

    # -- set-up ---------------------------------------------------------------------------

    def _tip_terms(self, rig) -> None:
        """Fingertip keypoints as the skin places them: a weighted sum over bones of bone pose
        applied to the tip vertex in that bone's rest frame (``sim.rig.keypoints_from_bones``)."""
        hand = self.hand_model
        weights = np.zeros((5, 16))
        local = np.zeros((5, 16, 3))
        for k, vid in enumerate(hand.tip_vertex_ids):
            bones = np.flatnonzero(hand.weights[vid] > 0)
            weights[k, bones] = hand.weights[vid, bones]
            local[k, bones] = rig.rest_vertices[vid] - rig.rest_joints[bones]
        self.tip_weights = torch.as_tensor(weights, device=self.device)
        self.tip_local = torch.as_tensor(local, device=self.device)
        from pam_engine.conventions import KEYPOINT_FROM_MANO

        self.keypoint_order = torch.as_tensor(list(KEYPOINT_FROM_MANO), device=self.device)

    # -- state ----------------------------------------------------------------------------

    def env_frame(self) -> torch.Tensor:
        """(N, 3) world position of each env's origin (its table centre)."""
        return self.scene.env_origins.to(torch.float64)

    def bone_poses(self) -> torch.Tensor:
        """(N, 16, 4, 4) bone poses in each env's frame."""
        poses = self.hand.data.body_link_pose_w.torch[:, self.bone_ids].to(torch.float64)
        m = _pose7_to_matrix(poses)
        m[..., :3, 3] -= self.env_frame()[:, None]
        return m

    def keypoints(self) -> torch.Tensor:
        """(N, 21, 3) DexYCB keypoints, env frame: bone origins and skinned fingertips."""
        bones = self.bone_poses()
        tips = torch.einsum("nbij,kbj->nkbi", bones[..., :3, :3], self.tip_local) + bones[:, None, :, :3, 3]
        tips = (self.tip_weights[None, :, :, None] * tips).sum(2)
        return torch.cat([bones[..., :3, 3], tips], 1)[:, self.keypoint_order]

    def wrist_pose(self) -> torch.Tensor:
        m = _pose7_to_matrix(self.hand.data.body_link_pose_w.torch[:, self.wrist_id].to(torch.float64))
        m[:, :3, 3] -= self.env_frame()
        return m

    def object_pose(self) -> torch.Tensor:
        m = _pose7_to_matrix(self.object.data.root_link_pose_w.torch.to(torch.float64))
        m[:, :3, 3] -= self.env_frame()
        return m

    def joint_pos(self) -> torch.Tensor:
        return self.hand.data.joint_pos.torch.to(torch.float64)

    def finger_angles(self) -> torch.Tensor:
        return self.joint_pos()[:, 6:]

    def contacts(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per hand part (thumb..little, palm): touching the object, normal force (N), deepest
        penetration (m). From the contact sensor (the links' normal force against the object,
        summed per part; a part touches when its force is > 0), else approximated geometrically
        from the probes (tip / palm) and the object's surface samples: a part touches when its
        probe is within ``CONTACT_DISTANCE`` of the surface, the force is not measured (0). The
        penetration is not reported by either (0)."""
        n = self.num_envs
        if self.contact_sensor is not None:
            forces = self.contact_sensor.data.normal_force_matrix_w
            forces = (forces.torch if hasattr(forces, "torch") else forces).to(torch.float64)  # (N, links, 1, 3)
            per_link = torch.linalg.norm(forces, dim=-1).sum(-1)
            per_part = torch.zeros(n, spec.NUM_PARTS, dtype=torch.float64, device=self.device)
            per_part.index_add_(1, self.sensor_parts, per_link)
            return per_part > 0, per_part, torch.zeros(n, dtype=torch.float64, device=self.device)
        probes, nearest = self._probes()
        gap = torch.linalg.norm(nearest - probes, dim=-1)
        parts = gap < CONTACT_DISTANCE
        return parts, torch.zeros(n, spec.NUM_PARTS, dtype=torch.float64, device=self.device), \
            torch.zeros(n, dtype=torch.float64, device=self.device)

    def _probes(self) -> tuple[torch.Tensor, torch.Tensor]:
        kp = self.keypoints()
        probes = torch.cat([kp[:, _TIPS], (kp[:, 0] + 0.6 * (kp[:, _MCPS].mean(1) - kp[:, 0]))[:, None]], 1)
        obj = self.object_pose()
        surface = self.surface @ obj[:, :3, :3].transpose(-1, -2) + obj[:, None, :3, 3]
        index = torch.cdist(probes, surface).argmin(-1)
        nearest = torch.gather(surface, 1, index[..., None].expand(-1, -1, 3))
        return probes, nearest

    def grasp_state(self) -> spec_torch.GraspStateBatch:
        """The batched :class:`~pam_engine.rl.spec.GraspState` at each env's current step."""
        dev, f64 = self.device, torch.float64
        step = self.step_index.clamp(max=self.last_step)
        rows = torch.arange(self.num_envs, device=dev)
        wrist_lin = self.hand.data.body_link_lin_vel_w.torch[:, self.wrist_id].to(f64)
        probes, nearest = self._probes()
        parts, force, depth = self.contacts()
        return spec_torch.GraspStateBatch(
            wrist=self.wrist_pose(), wrist_linvel=wrist_lin, finger_angles=self.finger_angles(),
            object_pose=self.object_pose(), object_com=self.com,
            object_linvel=self.object.data.root_com_lin_vel_w.torch.to(f64),
            object_angvel=self.object.data.root_com_ang_vel_w.torch.to(f64),
            probes=probes, nearest=nearest, contacts=parts, contact_force=force, penetration=depth,
            plan_wrist=self.plan_wrist[rows, step], plan_fingers=self.plan_fingers[rows, step],
            grasp_in_object=self.grasp_in_object, grasp_angles=self.grasp_angles, grasp_parts=self.grasp_parts,
            phase=self.plan_phase[rows, step], progress=step.to(f64) / self.last_step,
            start_height=self.start_height, object_mass=self.mass, lower=self.lower, upper=self.upper)

    # -- control --------------------------------------------------------------------------

    def targets(self, substep: int) -> torch.Tensor:
        """(N, 6 + n_dof) servo targets at control step ``step_index + substep``."""
        rows = torch.arange(self.num_envs, device=self.device)
        step = (self.step_index + substep).clamp(max=self.last_step)
        residual = spec_torch.blend(self.previous, self.action, substep, self.cfg.control_per_frame)
        wrist, fingers = spec_torch.residual_targets(residual, self.plan_wrist_q[rows, step], self.plan_fingers[rows, step],
                                                     self.synergies, self.engine_config.task.action, self.lower, self.upper)
        return torch.cat([wrist, fingers], -1)

    def set_joint_targets(self, targets: torch.Tensor, env_ids=None) -> None:
        self.hand.set_joint_position_target_index(target=targets.to(torch.float32), env_ids=env_ids)

    def physics_control_step(self) -> None:
        """One control step: ``decimation`` physics steps at the current targets."""
        per_call = self.cfg.decimation if self._physics_handles_decimation else 1
        for _ in range(self.cfg.decimation // per_call):
            self._sim_step_counter += per_call
            self.scene.write_data_to_sim()
            self.sim.step(render=False)
            self.scene.update(dt=self.physics_dt * per_call)

    def diverged(self) -> torch.Tensor:
        """(N,) non-finite or flown-off state (the seam's ``diverged``)."""
        q = self.hand.data.joint_pos.torch
        obj = self.object.data.root_link_pose_w.torch
        far = (obj[:, :3] - self.scene.env_origins).abs().amax(-1) > 5.0
        return ~torch.isfinite(q).all(-1) | ~torch.isfinite(obj).all(-1) | far

    def step(self, action: torch.Tensor):
        """One decision for every env (see the module doc); finished envs start their next
        episode in the same call (``extras["episodes"]`` lists how the finished ones went)."""
        from pam_engine.rl.env import EpisodeInfo

        action = torch.as_tensor(action, device=self.device).to(torch.float64).reshape(self.num_envs, -1)
        self._pre_physics_step(action)
        self.diverged_buf[:] = False
        for c in range(self.cfg.control_per_frame):
            self.set_joint_targets(self.targets(c))
            self.physics_control_step()
            self.diverged_buf |= self.diverged()
        self.step_index += self.cfg.control_per_frame
        self.episode_length_buf += 1
        self.common_step_counter += 1
        final = self.step_index >= self.last_step
        state = self.grasp_state()
        terms = spec_torch.reward_terms(state, self.action, self.previous, self.engine_config.reward,
                                        final=final, diverged=self.diverged_buf)
        reward = sum(terms.values())
        for k, v in terms.items():
            self.totals[k] += v
        done = final | self.diverged_buf
        self.reset_terminated[:] = done
        self.reset_time_outs[:] = False
        self.reward_buf = reward.to(torch.float32)
        self.extras = {"episodes": [], "episode": []}  # "episode": EpisodeInfo, as GraspVecEnv's infos
        ids = done.nonzero().flatten()
        if len(ids):
            success = spec_torch.graspxl_rule(state.rise(), state.hand_error()) & ~self.diverged_buf
            for i in ids.tolist():
                record = {"env": i, "object": self.cfg.objects[int(self.object_index[i])], "success": bool(success[i]),
                          "rise": float(state.rise()[i]), "hand_error": float(state.hand_error()[i]),
                          "diverged": bool(self.diverged_buf[i]),
                          "reward": float(sum(t[i] for t in self.totals.values()))}
                self.extras["episodes"].append(record)
                self.extras["episode"].append(EpisodeInfo(
                    object=record["object"], success=record["success"], rise=record["rise"],
                    hand_error=record["hand_error"], diverged=record["diverged"], reward=record["reward"],
                    terms={k: float(t[i]) for k, t in self.totals.items()}))
                self.finished.append(record)
                self.source.record(int(self.object_index[i]), record["success"])
            self._reset_idx(ids)
        self.obs_buf = self._get_observations()
        return self.obs_buf, self.reward_buf, self.reset_terminated, self.reset_time_outs, self.extras

    # -- DirectRLEnv hooks ----------------------------------------------------------------

    def _pre_physics_step(self, actions: torch.Tensor) -> None:
        self.previous = self.action
        self.action = actions.to(torch.float64).clamp(-1.0, 1.0)

    def _apply_action(self) -> None:  # the control loop lives in step()
        self.set_joint_targets(self.targets(0))

    def _get_observations(self) -> dict:
        obs = spec_torch.observation(self.grasp_state(), self.action)
        return {"policy": torch.nan_to_num(obs)}

    def _get_rewards(self) -> torch.Tensor:
        return self.reward_buf

    def _get_dones(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.reset_terminated, self.reset_time_outs

    def _reset_idx(self, env_ids: Sequence[int] | torch.Tensor | None) -> None:
        """Start each env's next episode: set up on the embedded scene (the MuJoCo env's slot
        ``i``), then write its state at the first decision into Isaac env ``i``."""
        if env_ids is None:
            env_ids = torch.arange(self.num_envs, device=self.device)
        ids = torch.as_tensor(env_ids, device=self.device).long().flatten()
        super()._reset_idx(ids)
        if self.source is None:  # the caller writes the states (write_scene_states)
            return
        f64 = torch.float64
        scenes = []
        for i in ids.tolist():
            ep, first = self.source.start(i, int(self.object_index[i]))
            scene, plan = ep.scene, ep.plan
            scenes.append(scene)
            self.plan_wrist_q[i] = torch.as_tensor(plan.wrist_q, dtype=f64)
            self.plan_fingers[i] = torch.as_tensor(plan.fingers, dtype=f64)
            self.plan_wrist[i] = torch.as_tensor(plan.wrist, dtype=f64)
            self.plan_phase[i] = torch.as_tensor(plan.phase, dtype=torch.long)
            self.grasp_angles[i] = torch.as_tensor(plan.grasp_angles, dtype=f64)
            self.grasp_in_object[i] = torch.as_tensor(ep.grasp_in_object, dtype=f64)
            self.grasp_parts[i] = torch.as_tensor(ep.grasp_parts)
            self.start_height[i] = ep.start_height
            self.com[i] = torch.as_tensor(ep.com, dtype=f64)
            self.mass[i] = ep.mass
            self.surface[i] = torch.as_tensor(ep.surface.points, dtype=f64)
            self.step_index[i] = first
        self.write_scene_states(ids, scenes)

    def write_scene_states(self, env_ids, scenes) -> None:
        """Put Isaac env ``env_ids[k]`` in embedded scene ``scenes[k]``'s state: hand base pose,
        joint positions and velocities (the servo targets hold them), object pose at rest."""
        ids = torch.as_tensor(env_ids, device=self.device).long().flatten()
        dev, f64 = self.device, torch.float64
        origins = self.scene.env_origins[ids].cpu().numpy().astype(np.float64)
        roots, joints, joint_vel, objects = [], [], [], []
        for row, (i, scene) in enumerate(zip(ids.tolist(), scenes)):
            scene.sync()
            base = scene.base_pose()
            roots.append(_matrix_to_pose7(base) + np.r_[origins[row], np.zeros(4)])
            joints.append(np.concatenate([scene.data.qpos[scene.wrist_qpos], scene.finger_angles()]))
            joint_vel.append(np.concatenate([scene.data.qvel[scene.wrist_dof], scene.data.qvel[scene.finger_dof]]))
            objects.append(_matrix_to_pose7(scene.object_pose(0)) + np.r_[origins[row], np.zeros(4)])
            self.base[i] = torch.as_tensor(base, dtype=f64)
        tensor = lambda x: torch.as_tensor(np.array(x), dtype=torch.float32, device=dev)  # noqa: E731
        self.hand.write_root_pose_to_sim_index(root_pose=tensor(roots), env_ids=ids)
        self.hand.write_joint_state_to_sim_index(position=tensor(joints), velocity=tensor(joint_vel), env_ids=ids)
        self.object.write_root_pose_to_sim_index(root_pose=tensor(objects), env_ids=ids)
        self.object.write_root_com_velocity_to_sim_index(root_velocity=torch.zeros(len(ids), 6, device=dev), env_ids=ids)
        self.action[ids] = 0.0
        self.previous[ids] = 0.0
        for t in self.totals.values():
            t[ids] = 0.0
        self.set_joint_targets(tensor(joints), env_ids=ids)
        self.scene.write_data_to_sim()
        self.sim.forward()
        self.scene.update(dt=0.0)


#: A part touches the object when its probe is this close to the surface samples (m).
CONTACT_DISTANCE = 0.012
