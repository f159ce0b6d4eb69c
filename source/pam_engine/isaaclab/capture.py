"""Capture from the Isaac Lab camera in the engine's conventions: metric depth along the optical
axis, segmentation in DexYCB ids (0 background, the object's YCB id, 255 hand) through the
semantic labels of the spawned prims (the code base's one label -> id mapping,
:mod:`pam_engine.capture.segmentation`), K and world->camera from the camera's data. The engine's
:class:`~pam_engine.capture.camera.Camera` poses it (OpenCV axes = Isaac Lab's "ros" convention).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch



@dataclass
class IsaacFrame:
    depth: np.ndarray  # (H, W) float32 metres along the optical axis, 0 where nothing is hit
    seg: np.ndarray  # (H, W) uint8 DexYCB ids
    K: np.ndarray  # (3, 3)
    world_to_cam: np.ndarray  # (4, 4), the env's frame as world
    rgb: np.ndarray | None = None  # (H, W, 3) uint8 where the camera renders colour


def pose_cameras(env, cameras, env_ids=None) -> None:
    """Put env ``i``'s camera where ``cameras[i]`` (engine cameras, env frame) is, with its K."""
    from scipy.spatial.transform import Rotation

    ids = list(range(env.num_envs)) if env_ids is None else list(env_ids)
    K = torch.as_tensor(np.stack([c.K for c in cameras]), dtype=torch.float32, device=env.device)
    env.camera.set_intrinsic_matrices(K, env_ids=ids)
    origins = env.scene.env_origins[ids].cpu().numpy()
    cam_to_world = [np.linalg.inv(np.asarray(c.world_to_cam, dtype=np.float64)) for c in cameras]
    pos = np.stack([m[:3, 3] for m in cam_to_world]) + origins
    quat = np.stack([Rotation.from_matrix(m[:3, :3]).as_quat() for m in cam_to_world])  # (x, y, z, w)
    env.camera.set_world_poses(torch.as_tensor(pos, dtype=torch.float32, device=env.device),
                               torch.as_tensor(quat, dtype=torch.float32, device=env.device), env_ids=ids,
                               convention="ros")


def _tensor(x):
    """A camera data field as a torch tensor (Isaac Lab 3 hands out Warp arrays with ``.torch``)."""
    return x.torch if hasattr(x, "torch") else x


def seg_table(info, object_names) -> np.ndarray:
    """Instance id -> DexYCB id of the camera's ``instance_segmentation`` info, through the
    semantic labels (``idToSemantics``: id -> ``{"class": label}``, the spawned prims' tags) and
    the code base's one label -> id mapping (:mod:`pam_engine.capture.segmentation`)."""
    from pam_engine.capture.segmentation import segmentation_lookup

    info = info or {}
    labels = info.get("idToSemantics") or info.get("idToLabels") or {}
    return segmentation_lookup(labels, {}, list(object_names))


def read_frames(env, object_names) -> list[IsaacFrame]:
    """This moment's image of every env's camera (rendered on access): metric depth along the
    optical axis (0 where nothing is hit), DexYCB ids, K and world->camera (env frame) from the
    camera's data, and the colour image where the camera has one."""
    from scipy.spatial.transform import Rotation

    from pam_engine.errors import ConfigError

    data = env.camera.data
    depth = _tensor(data.output["distance_to_image_plane"]).cpu().numpy()[..., 0]
    seg = _tensor(data.output["instance_segmentation"]).cpu().numpy()[..., 0]
    rgb = data.output.get("rgb") if hasattr(data.output, "get") else None
    rgb = None if rgb is None else _tensor(rgb).cpu().numpy()[..., :3].astype(np.uint8)
    K = _tensor(data.intrinsic_matrices).cpu().numpy()
    pos, quat = _tensor(data.pos_w).cpu().numpy(), _tensor(data.quat_w_ros).cpu().numpy()
    origins = env.scene.env_origins.cpu().numpy()
    info = data.info if isinstance(data.info, list) else [data.info] * env.num_envs
    out = []
    for i in range(env.num_envs):
        table = seg_table((info[i] or {}).get("instance_segmentation"), object_names)
        raw = seg[i].astype(np.int64)
        unknown = np.unique(raw[(raw < 0) | (raw >= len(table))])
        if unknown.size:
            raise ConfigError(f"Isaac camera of env {i}: instance ids {unknown.tolist()} are not in the camera's "
                              "instance_segmentation info")
        cam_to_world = np.eye(4)
        cam_to_world[:3, :3] = Rotation.from_quat(quat[i]).as_matrix()  # (x, y, z, w), "ros" = OpenCV axes
        cam_to_world[:3, 3] = pos[i] - origins[i]
        d = np.where(np.isfinite(depth[i]) & (depth[i] > 0), depth[i], 0.0).astype(np.float32)
        out.append(IsaacFrame(d, table[raw], K[i].astype(np.float64), np.linalg.inv(cam_to_world),
                              None if rgb is None else rgb[i]))
    return out


def mujoco_twin(env, i: int):
    """Env ``i``'s embedded MuJoCo scene (its episode source) put in the Isaac env's current
    state: joints and object pose, kinematics recomputed. The embedded renderer then draws the
    same state the Isaac camera sees (capture comparison, labels)."""
    import mujoco
    from scipy.spatial.transform import Rotation

    scene = env.source.vec.slots[i].episode.scene
    q = env.joint_pos()[i].cpu().numpy()
    scene.data.qpos[scene.wrist_qpos] = q[:6]
    scene.data.qpos[scene.finger_qpos] = q[6:]
    obj = env.object_pose()[i].cpu().numpy()
    a = scene.object_qpos[0]
    scene.data.qpos[a:a + 3] = obj[:3, 3]
    scene.data.qpos[a + 3:a + 7] = Rotation.from_matrix(obj[:3, :3]).as_quat(scalar_first=True)
    mujoco.mj_kinematics(scene.model, scene.data)
    return scene
