"""A whole episode scene as USD: the table, the objects at o0, the hand at h0, lights, camera.

The description (:class:`EpisodeScene`) holds the ``SceneSpec`` a physics backend builds its
scene from (hand model and articulation, object assets and poses, ``SceneConfig``), so the
MuJoCo scene and the USD file describe one scene. Prims: ``/World/Table``, ``/World/Objects/object_<k>``, ``/World/Hand``
(anchored at h0's wrist, whose six wrist joints are then zero), ``/World/Lights/*``,
``/World/Camera``.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
from pxr import Gf, Usd, UsdGeom, UsdLux, UsdPhysics

from pam_engine.errors import ConfigError, PoseError
from pam_engine.hand.pose import HandPose
from pam_engine.sim.base import PlacedObject, SceneConfig, SceneSpec
from pam_engine.usd.hand import HandLayout, add_hand
from pam_engine.usd.objects import add_object
from pam_engine.usd.stage import add_labels, bind_physics_material, physics_material, set_pose

TABLE_COLOR = (0.62, 0.52, 0.42)
#: Sliding friction of the objects: the MuJoCo scene leaves their geoms at MuJoCo's default.
OBJECT_FRICTION = float(mujoco.MjSpec().default.geom.friction[0])


@dataclass(frozen=True, eq=False)
class EpisodeScene:
    """What a scene file holds: the ``SceneSpec`` a physics backend builds (hand, articulation,
    objects at o0, ``SceneConfig``, MANO shape), the hand's start h0 and the episode's camera."""

    spec: SceneSpec
    hand_start: HandPose
    camera: object | None = None  # pam_engine.capture.camera.Camera
    names: tuple[str, ...] = ()  # object prim names (default object_<k>)

    @property
    def objects(self) -> tuple[PlacedObject, ...]:
        return tuple(self.spec.objects)

    @property
    def gravity(self) -> tuple[float, float, float]:
        return tuple(self.spec.config.gravity)


@dataclass(frozen=True)
class SceneLayout:
    hand: HandLayout
    objects: tuple[str, ...]
    camera: str | None
    anchor: np.ndarray  # (4, 4) the hand base's world pose


def add_table(stage: Usd.Stage, path: str, cfg) -> Usd.Prim:
    """The table of a :class:`~pam_engine.sim.base.SceneConfig`: a static box collider whose top
    is at z = 0, with the table's friction (also the Isaac Lab task's local ground)."""
    hx, hy, hz = cfg.table_half_size
    table = UsdGeom.Cube.Define(stage, path)
    table.CreateSizeAttr(2.0)
    table.AddTranslateOp(UsdGeom.XformOp.PrecisionDouble).Set(Gf.Vec3d(0.0, 0.0, -hz))
    table.AddScaleOp(UsdGeom.XformOp.PrecisionDouble).Set(Gf.Vec3d(hx, hy, hz))
    table.CreateExtentAttr([Gf.Vec3f(-1, -1, -1), Gf.Vec3f(1, 1, 1)])
    table.CreateDisplayColorAttr([Gf.Vec3f(*TABLE_COLOR)])
    UsdPhysics.CollisionAPI.Apply(table.GetPrim())
    physics_material(stage, f"{path}/physics_material", cfg.table_friction)
    bind_physics_material(table.GetPrim(), f"{path}/physics_material")
    add_labels(table.GetPrim(), **{"class": "table"})
    return table.GetPrim()


def add_scene(stage: Usd.Stage, scene: EpisodeScene, root: str = "/World") -> SceneLayout:
    cfg = scene.spec.config
    add_table(stage, f"{root}/Table", cfg)

    UsdGeom.Scope.Define(stage, f"{root}/Lights")
    key = UsdLux.DistantLight.Define(stage, f"{root}/Lights/key")
    key.CreateIntensityAttr(3000.0)
    key.CreateAngleAttr(1.0)
    # MuJoCo's key light points along (-0.2, 0.2, -1); a distant light shines down its -Z
    direction = -np.array([-0.2, 0.2, -1.0]) / np.linalg.norm([-0.2, 0.2, -1.0])
    pose = np.eye(4)
    pose[:3, :3] = _z_to(direction)
    set_pose(key, pose)
    UsdLux.DomeLight.Define(stage, f"{root}/Lights/ambient").CreateIntensityAttr(500.0)

    UsdGeom.Scope.Define(stage, f"{root}/Objects")
    names = scene.names or [f"object_{k}" for k in range(len(scene.objects))]
    if len(names) != len(scene.objects):
        raise ConfigError(f"{len(names)} object names for {len(scene.objects)} objects")
    paths = []
    for name, placed in zip(names, scene.objects):
        path = f"{root}/Objects/{name}"
        add_object(stage, path, placed.asset, placed.pose, friction=OBJECT_FRICTION)
        paths.append(path)

    anchor = np.asarray(scene.hand_start.wrist, dtype=np.float64)
    spec = scene.spec
    hand = add_hand(stage, f"{root}/Hand", spec.hand, spec.articulation, betas=spec.betas, gains=cfg.gains,
                    world_anchor=anchor, angles=scene.hand_start.angles)
    camera = None
    if scene.camera is not None:
        from pam_engine.usd.camera import add_camera

        camera = f"{root}/Camera"
        add_camera(stage, camera, scene.camera)
    return SceneLayout(hand, tuple(paths), camera, anchor)


def _z_to(direction: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    rot, _ = Rotation.align_vectors([direction], [[0.0, 0.0, 1.0]])
    return rot.as_matrix()


def scene_from_trajectory(trajectory, hand=None, articulation=None, camera=None, config=None) -> EpisodeScene:
    """The scene at a trajectory's first frame: its objects (loaded by name) at ``pose_y[0]``,
    the hand at ``wrist_pose[0]``/``joint_angles[0]``. ``hand`` defaults to the engine's
    (``$PAM_MANO_DIR`` or the built-in hand) and must have the trajectory's joints."""
    from pam_engine.objects import load_object

    if hand is None:
        from pam_engine.pose.setup import HandCache

        hand, articulation = HandCache.get(None)
    if hand.name != trajectory.hand_model:
        raise PoseError(f"the trajectory was made with the {trajectory.hand_model} hand, but the {hand.name} hand "
                        "is loaded (give --mano / $PAM_MANO_DIR to match)")
    if list(trajectory.joint_names) != list(articulation.names):
        raise PoseError(f"the trajectory's joints {trajectory.joint_names} are not the hand's {articulation.names}")
    assets = [load_object(n) for n in trajectory.object_names]
    objects = []
    for k, asset in enumerate(assets):
        pose = np.vstack([trajectory.pose_y[0, k], [0.0, 0.0, 0.0, 1.0]])
        objects.append(PlacedObject(asset, pose))
    start = HandPose(trajectory.wrist_pose[0], np.asarray(trajectory.joint_angles[0], dtype=np.float64))
    betas = np.asarray(trajectory.betas, dtype=np.float64) if trajectory.hand_model == "mano" else None
    spec = SceneSpec(hand, articulation, tuple(objects), config if config is not None else SceneConfig(), betas)
    return EpisodeScene(spec, start, camera=camera)


def scene_from_request(request, config=None, policy=None, camera=None) -> EpisodeScene:
    """The scene Stage I sets up for ``request`` (a ``Stage1Request``): objects placed and
    settled (o0), the grasp chosen and the start pose h0 drawn, exactly as ``pam simulate``
    with the same seed starts (hT is chosen by a full Stage I run of the configured length when the
    request gives none)."""
    from dataclasses import replace

    from pam_engine.pose.request import Stage1Config
    from pam_engine.pose.setup import HandCache
    from pam_engine.pose.stage import run_stage1

    full = config or Stage1Config()
    cfg = replace(full, num_frames=2)  # frame 0 is recorded before any control step
    if request.grasp is None:
        # the physical trial that picks hT plays the episode's own plan, whose length is the
        # configured one: choose hT with it, then replay that hT in the 2-frame episode
        from pam_engine.pose.stage import run_stage1 as _run

        chosen = _run(request, full, policy).grasp
        if chosen is not None:
            request = replace(request, grasp=chosen)
    run = run_stage1(request, cfg, policy)
    traj, sim = run.trajectory, run.scene
    objects = [PlacedObject(p.asset, np.vstack([traj.pose_y[0, k], [0.0, 0.0, 0.0, 1.0]]))
               for k, p in enumerate(sim.objects)]
    start = HandPose(traj.wrist_pose[0], traj.joint_angles[0])
    hand, articulation = HandCache.get(cfg.mano)
    betas = None if cfg.betas is None else np.asarray(cfg.betas, dtype=np.float64)
    return EpisodeScene(SceneSpec(hand, articulation, tuple(objects), cfg.scene, betas), start, camera=camera)


def default_camera(scene: EpisodeScene, seed: int, target: int = 0):
    """A camera drawn from the default ``CameraRange`` (as ``pam generate`` samples its cameras), aimed
    8 cm above the target object; reproducible from ``seed``."""
    from pam_engine.capture.camera import sample_camera

    aim = np.asarray(scene.objects[target].pose)[:3, 3] + np.array([0.0, 0.0, 0.08])
    return sample_camera(np.random.default_rng([seed, 1]), aim)


#: World-frame labels an episode folder must hold for its scene and animation.
EPISODE_LABELS = ("wrist_pose_world", "pose_m_world", "pose_y_world", "joint_3d_world", "contacts")


def scene_from_episode(folder, hand=None, articulation=None):
    """An episode folder of ``pam generate``: (its scene at frame 0 with its camera, its frames as a
    ``Trajectory``), from ``meta.json`` and the world-frame labels. Joint angles come back from
    ``pose_m`` unclamped (exact for the engine's own hands, whose joints made it, also where the
    simulation pressed a joint slightly past its soft limit)."""
    from pam_engine.capture.camera import Camera
    from pam_engine.dataset.reader import load_episode
    from pam_engine.trajectory import Trajectory

    episode = load_episode(folder)
    meta, labels = episode.meta, episode.labels
    missing = [k for k in EPISODE_LABELS if k not in labels]
    if missing:
        raise ConfigError(f"episode {str(folder)!r}: labels lack {missing} (expected the world-frame labels {list(EPISODE_LABELS)})")
    if hand is None:
        from pam_engine.pose.setup import HandCache

        hand, articulation = HandCache.get(None)
    wrist = np.asarray(labels["wrist_pose_world"], dtype=np.float64)
    u, _, vt = np.linalg.svd(wrist[:, :3, :3])
    wrist[:, :3, :3] = u @ vt  # float32 labels: back to exact rotations
    pose_m = np.asarray(labels["pose_m_world"], dtype=np.float64)
    trajectory = Trajectory(
        fps=float(meta.fps), pose_m=pose_m, betas=np.zeros(10), wrist_pose=wrist,
        joint_angles=articulation.hand_pose_to_raw_angles(pose_m[:, 3:48]), joint_names=list(articulation.names),
        joint_3d=np.asarray(labels["joint_3d_world"], dtype=np.float64),
        pose_y=np.asarray(labels["pose_y_world"], dtype=np.float64), object_names=list(meta.object_names),
        object_ids=list(meta.object_ids), contacts=np.asarray(labels["contacts"], dtype=bool), success=meta.success,
        failure_reason=meta.failure_reason, target_object=meta.target_object, hand_model=meta.hand_model,
        policy=meta.policy, seed=meta.seed)
    camera = Camera(np.asarray(meta.K, dtype=np.float64), np.asarray(meta.world_to_cam, dtype=np.float64),
                    meta.width, meta.height)
    return scene_from_trajectory(trajectory, hand, articulation, camera=camera), trajectory
