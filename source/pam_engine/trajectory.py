"""The Stage I result: a simulated grasp sampled at the capture rate, in the world frame."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from pam_engine.conventions import POSE_M_DIM

#: Fingers whose contacts are reported, in this order, then the palm.
CONTACT_PARTS: tuple[str, ...] = ("thumb", "index", "middle", "ring", "little", "palm")


@dataclass
class Trajectory:
    """Per-frame ground truth of one simulated grasp (T frames at ``fps``), world frame, metres.

    ``pose_y[t, k]`` is the 3x4 world pose of object k: it maps points of the object's mesh, in
    the frame ``pam_engine.objects`` loads it in, to world coordinates.
    """

    fps: float
    pose_m: np.ndarray  # (T, 51) MANO pose: 48 axis-angle (global + 15 joints) + 3 translation
    betas: np.ndarray  # (10,) MANO shape (zeros for the built-in hand)
    wrist_pose: np.ndarray  # (T, 4, 4) wrist frame -> world
    joint_angles: np.ndarray  # (T, n_dof) simulated finger joint angles, radians
    joint_names: list[str]  # (n_dof,) names of the simulated finger joints
    joint_3d: np.ndarray  # (T, 21, 3) keypoints, DexYCB order, world frame
    pose_y: np.ndarray  # (T, n_obj, 3, 4) object poses, world frame
    object_names: list[str]
    object_ids: list[int]  # DexYCB ids (1..21), or SEG_OTHER_OBJECT for other meshes
    contacts: np.ndarray  # (T, 6) bool: thumb, index, middle, ring, little, palm touching the target
    success: bool
    failure_reason: str = ""
    target_object: int = 0  # index into object_names of the grasped object
    hand_model: str = "builtin"  # "builtin" or "mano"
    policy: str = "scripted"
    seed: int = 0
    extras: dict = field(default_factory=dict)  # free-form per-frame arrays (e.g. contact forces)

    def __post_init__(self) -> None:
        t = self.num_frames
        expected = {
            "pose_m": (t, POSE_M_DIM),
            "wrist_pose": (t, 4, 4),
            "joint_3d": (t, 21, 3),
            "pose_y": (t, len(self.object_names), 3, 4),
            "contacts": (t, len(CONTACT_PARTS)),
        }
        for name, shape in expected.items():
            got = np.shape(getattr(self, name))
            if got != shape:
                raise ValueError(f"Trajectory.{name} has shape {got}, expected {shape}")
        if np.shape(self.joint_angles)[:1] != (t,) or np.shape(self.joint_angles)[1] != len(self.joint_names):
            raise ValueError(
                f"Trajectory.joint_angles has shape {np.shape(self.joint_angles)}, "
                f"expected ({t}, {len(self.joint_names)})"
            )
        if len(self.object_ids) != len(self.object_names):
            raise ValueError("Trajectory.object_ids and object_names differ in length")

    @property
    def num_frames(self) -> int:
        return int(np.shape(self.pose_m)[0])

    def save(self, path: str | Path) -> Path:
        """Write the trajectory as ``.npz`` (atomically: a temporary file renamed when complete)."""
        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"trajectory path {path} must end in .npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extras":
                for key, arr in value.items():
                    arrays[f"extra_{key}"] = np.asarray(arr)
            else:
                arrays[f.name] = np.asarray(value)
        tmp = path.with_name(path.name + ".partial.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Trajectory":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"trajectory file {path} does not exist")
        with np.load(path, allow_pickle=False) as data:
            kwargs = {}
            extras = {}
            for key in data.files:
                if key.startswith("extra_"):
                    extras[key[len("extra_"):]] = data[key]
                else:
                    kwargs[key] = data[key]
        for key in ("joint_names", "object_names"):
            kwargs[key] = [str(s) for s in kwargs[key]]
        kwargs["object_ids"] = [int(i) for i in kwargs["object_ids"]]
        for key in ("fps",):
            kwargs[key] = float(kwargs[key])
        for key in ("success",):
            kwargs[key] = bool(kwargs[key])
        for key in ("failure_reason", "hand_model", "policy"):
            kwargs[key] = str(kwargs[key])
        for key in ("target_object", "seed"):
            kwargs[key] = int(kwargs[key])
        return cls(**kwargs, extras=extras)
