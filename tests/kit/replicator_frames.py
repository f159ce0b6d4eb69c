"""Replicator-format frames made from a MuJoCo capture (shared by the Kit-logic tests)."""

import numpy as np

from pam_engine.kitless.replicator_format import ArticulationState, ReplicatorScene, camera_params_from_camera

HAND_PRIM = "/World/PAM/Hand"
TABLE_PRIM = "/World/PAM/Table"


def object_prim(k):
    return f"/World/PAM/Objects/object_{k}"


def scene_of(run, **kw):
    traj = run.trajectory
    semantics = {HAND_PRIM: "hand", TABLE_PRIM: "table"}
    semantics.update({object_prim(k): name for k, name in enumerate(traj.object_names)})
    return ReplicatorScene(object_names=tuple(traj.object_names), semantics=semantics, fps=traj.fps,
                           target_object=traj.target_object, seed=traj.seed, prompt="a hand grasps a foam brick",
                           success=traj.success, failure_reason=traj.failure_reason, policy=traj.policy, **kw)


def replicator_frames(run, meters_per_unit=1.0, hand_prim=HAND_PRIM, object_prims=None, table_prim=TABLE_PRIM):
    """Per frame: (Replicator annotator dict, articulation state) in Replicator's conventions:
    RGBA uint8, depth in stage units with inf for misses, uint32 instance ids with idToLabels
    naming mesh prims below the labelled asset prims, row-major camera matrices."""
    traj, cap = run.trajectory, run.capture
    seg_ids = {0: None, 255: 7}
    seg_ids.update({int(i): 11 + 2 * k for k, i in enumerate(traj.object_ids)})
    objects = object_prims or [object_prim(k) for k in range(len(traj.object_ids))]
    id_to_labels = {"0": "BACKGROUND", "1": "UNLABELLED", "5": f"{table_prim}/top", "7": f"{hand_prim}/skin/mesh"}
    id_to_labels.update({str(11 + 2 * k): f"{objects[k]}/visual/mesh" for k in range(len(traj.object_ids))})
    params = camera_params_from_camera(run.camera, meters_per_unit=meters_per_unit)
    frames = []
    for t in range(traj.num_frames):
        depth = cap.depth[t].astype(np.float64) / meters_per_unit
        seg = np.zeros(cap.seg[t].shape, np.uint32)
        for engine_id, instance in seg_ids.items():
            if instance is not None:
                seg[cap.seg[t] == engine_id] = instance
        background = cap.seg[t] == 0
        seg[background & (cap.depth[t] > 0)] = 5  # the table
        data = {
            "rgb": np.concatenate([cap.rgb[t], np.full(cap.rgb[t].shape[:2] + (1,), 255, np.uint8)], axis=2),
            "distance_to_image_plane": np.where(cap.depth[t] > 0, depth, np.inf).astype(np.float32),
            "instance_id_segmentation_fast": {"data": seg, "info": {"idToLabels": dict(id_to_labels)}},
            "camera_params": {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in params.items()},
        }
        wrist = traj.wrist_pose[t].copy()
        wrist[:3, 3] /= meters_per_unit
        objects = []
        for k in range(len(traj.object_ids)):
            pose = np.vstack([traj.pose_y[t, k], [0, 0, 0, 1]])
            pose[:3, 3] /= meters_per_unit
            objects.append(pose)
        state = ArticulationState(wrist, dict(zip(traj.joint_names, traj.joint_angles[t])), objects,
                                  traj.contacts[t].tolist())
        frames.append((data, state))
    return frames
