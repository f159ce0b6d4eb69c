"""Capture from the Isaac Lab camera in the engine's conventions: metric depth along the optical
axis, segmentation in DexYCB ids (0 background, the object's YCB id, 255 hand) through the
semantic labels of the spawned prims, K and world->camera from the camera's data. The engine's
:class:`~pam_engine.capture.camera.Camera` poses it (OpenCV axes = Isaac Lab's "ros" convention).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pam_engine.conventions import SEG_HAND


@dataclass
class IsaacFrame:
    depth: np.ndarray  # (H, W) float32 metres along the optical axis, 0 where nothing is hit
    seg: np.ndarray  # (H, W) uint8 DexYCB ids
    K: np.ndarray  # (3, 3)
    world_to_cam: np.ndarray  # (4, 4), the env's frame as world


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


def _label_to_id(label: str, object_ids: dict[str, int]) -> int:
    if "/Hand" in label or label == "hand":
        return SEG_HAND
    for name, seg in object_ids.items():
        if "/Object" in label or label == name:
            return seg
    return 0


def _tensor(x):
    """A camera data field as a torch tensor (Isaac Lab 3 hands out Warp arrays with ``.torch``)."""
    return x.torch if hasattr(x, "torch") else x


def read_frames(env, object_ids: dict[str, int]) -> list[IsaacFrame]:
    """This moment's image of every env's camera (rendered on access)."""
    data = env.camera.data
    depth = data.output["distance_to_image_plane"]
    seg = data.output["instance_segmentation"]
    depth = _tensor(depth).cpu().numpy()[..., 0]
    seg = _tensor(seg).cpu().numpy()[..., 0]
    K = _tensor(data.intrinsic_matrices).cpu().numpy()
    pos, quat = _tensor(data.pos_w), _tensor(data.quat_w_ros)
    origins = env.scene.env_origins.cpu().numpy()
    out = []
    from scipy.spatial.transform import Rotation

    info = data.info if isinstance(data.info, list) else [data.info] * env.num_envs
    for i in range(env.num_envs):
        labels = info[i].get("instance_segmentation", {}).get("idToLabels", {}) if info[i] else {}
        lut = {int(k): _label_to_id(str(v), object_ids) for k, v in labels.items()}
        ids = np.zeros(seg[i].shape, np.uint8)
        for raw, mapped in lut.items():
            ids[seg[i] == raw] = mapped
        cam_to_world = np.eye(4)
        cam_to_world[:3, :3] = Rotation.from_quat(quat[i].cpu().numpy()).as_matrix()
        cam_to_world[:3, 3] = pos[i].cpu().numpy() - origins[i]
        d = np.where(np.isfinite(depth[i]), depth[i], 0.0).astype(np.float32)
        out.append(IsaacFrame(d, ids, K[i].astype(np.float64), np.linalg.inv(cam_to_world)))
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
