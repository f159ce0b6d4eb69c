"""DeVI's hybrid imitation reward: follow a video's hand in 3D and its object in 2D, with the
contacts the video implies (Kim et al., 2026, "hybrid tracking reward").

A generated video gives a 3D hand track (a hand pose estimator lifts it; for an engine episode,
``joint_3d_world``), but only a 2D track of the object (a point tracker on the video; for an engine
episode, the object's surface points projected with ``pose_y`` and ``K``): the object's depth is
not in the video, so the reward compares the simulated object where the video can see it, in the
image. Contacts come from Algorithm 1 (:mod:`pam_engine.devi.contacts`). The terms multiply:

    r = exp(-e_hand / sigma_hand) * exp(-e_object / sigma_object) * exp(-e_contact / sigma_contact)

- ``e_hand``: mean distance (m) of the 21 simulated keypoints from the reference's, world frame;
- ``e_object``: mean distance (px) of the simulated object's surface points, projected through the
  episode's camera, from the reference track's (``sigma_object`` is in pixels at 480 px image height
  and scales with the reference's height, as :mod:`pam_engine.devi.contacts` thresholds do);
- ``e_contact``: 1 where the simulated hand-level contact (any part touches the object) differs
  from the reference label, else 0.

A product rewards nothing unless every term is tracked at once: a hand that follows perfectly
while the object stays on the table earns little, as does an object carried without the contacts
the video shows. Pure numpy here; :mod:`pam_engine.rl.imitation_torch` is the batched torch form,
equal to 1e-6 (``tests/rl/test_rl_imitation.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pam_engine.errors import ConfigError

#: Names of the reward's terms (and of the errors they come from).
TERMS = ("hand", "object", "contact")


@dataclass(frozen=True)
class ImitationRewardConfig:
    """Scales of the hybrid reward's exponentials."""

    sigma_hand: float = 0.02  # m, mean keypoint distance at which the hand term is 1/e
    sigma_object: float = 10.0  # px at reference_height, mean object-point distance for 1/e
    sigma_contact: float = 1.0  # a contact mismatch multiplies the reward by exp(-1 / sigma_contact)
    reference_height: float = 480.0

    def __post_init__(self) -> None:
        for name in ("sigma_hand", "sigma_object", "sigma_contact", "reference_height"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ConfigError(f"imitation reward: {name} must be a positive number, got {value!r}")

    def object_sigma_px(self, height: float) -> float:
        """``sigma_object`` for images ``height`` pixels tall."""
        return self.sigma_object * float(height) / self.reference_height


@dataclass(frozen=True)
class ImitationReference:
    """What to imitate, per frame (T frames at ``fps``), and the camera the 2D track is seen in.

    ``wrist`` and ``angles`` are the reference hand in the simulator's terms (the servo targets
    an environment follows before its residual); ``object_start`` is the object's 3D pose at
    the first frame (DeVI knows it: the video is generated from that rendered scene).
    """

    joints: np.ndarray  # (T, 21, 3) hand keypoints, world frame (m)
    object_uv: np.ndarray  # (T, V, 2) object-surface points in the image (px)
    contact: np.ndarray  # (T,) bool, hand-level contact labels
    points: np.ndarray  # (V, 3) the tracked object-surface points, object (mesh) frame
    K: np.ndarray  # (3, 3)
    world_to_cam: np.ndarray  # (4, 4)
    height: int
    fps: float
    wrist: np.ndarray  # (T, 4, 4) reference wrist pose, world
    angles: np.ndarray  # (T, n_dof) reference finger joint angles (rad)
    object_start: np.ndarray  # (4, 4) object pose at frame 0, world
    object_name: str

    def __post_init__(self) -> None:
        t = self.joints.shape[0]
        shapes = {"joints": (t, 21, 3), "object_uv": (t, self.points.shape[0], 2), "contact": (t,),
                  "K": (3, 3), "world_to_cam": (4, 4), "wrist": (t, 4, 4), "object_start": (4, 4)}
        for name, shape in shapes.items():
            if np.shape(getattr(self, name)) != shape:
                raise ConfigError(f"imitation reference: {name} has shape {np.shape(getattr(self, name))}, expected {shape}")
        if np.shape(self.angles)[:1] != (t,):
            raise ConfigError(f"imitation reference: angles has shape {np.shape(self.angles)}, expected ({t}, n_dof)")
        if t < 2:
            raise ConfigError(f"imitation reference: {t} frames, at least 2 are needed")

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])

    def window(self, start: int, stop: int) -> "ImitationReference":
        """Frames [start, stop) as a reference of their own. The object's 3D pose is only known at
        frame 0, so a window keeps it and must start before the object has moved (its 2D track
        within ``1 px`` of frame 0's)."""
        if not 0 <= start < stop <= self.num_frames or stop - start < 2:
            raise ConfigError(f"imitation reference: window [{start}, {stop}) does not fit {self.num_frames} frames")
        moved = float(np.linalg.norm(self.object_uv[start] - self.object_uv[0], axis=-1).mean())
        if moved > 1.0:
            raise ConfigError(f"imitation reference: window [{start}, {stop}) starts after the object moved "
                              f"({moved:.1f} px from frame 0); its 3D start pose is only known at frame 0")
        s = slice(start, stop)
        return ImitationReference(self.joints[s], self.object_uv[s], self.contact[s], self.points, self.K,
                                  self.world_to_cam, self.height, self.fps, self.wrist[s], self.angles[s],
                                  self.object_start, self.object_name)


def project(points_world: np.ndarray, world_to_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """World points (..., 3) -> pixels (..., 2), pinhole, OpenCV convention."""
    cam = points_world @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    uv = cam @ K.T
    return uv[..., :2] / uv[..., 2:3]


def errors(joints: np.ndarray, object_pose: np.ndarray, contact: bool, ref: ImitationReference,
           t: int) -> dict[str, float]:
    """The three tracking errors of a simulated state against reference frame ``t``: hand (m),
    object (px), contact (0 or 1)."""
    placed = ref.points @ object_pose[:3, :3].T + object_pose[:3, 3]
    uv = project(placed, ref.world_to_cam, ref.K)
    return {
        "hand": float(np.linalg.norm(joints - ref.joints[t], axis=-1).mean()),
        "object": float(np.linalg.norm(uv - ref.object_uv[t], axis=-1).mean()),
        "contact": float(bool(contact) != bool(ref.contact[t])),
    }


def reward_terms(err: dict[str, float], cfg: ImitationRewardConfig, height: float) -> dict[str, float]:
    """The reward's factors and their product (``total``) from :func:`errors`."""
    out = {
        "hand": float(np.exp(-err["hand"] / cfg.sigma_hand)),
        "object": float(np.exp(-err["object"] / cfg.object_sigma_px(height))),
        "contact": float(np.exp(-err["contact"] / cfg.sigma_contact)),
    }
    out["total"] = out["hand"] * out["object"] * out["contact"]
    return out


def imitation_reward(joints: np.ndarray, object_pose: np.ndarray, contact: bool, ref: ImitationReference, t: int,
                     cfg: ImitationRewardConfig | None = None) -> tuple[float, dict[str, float], dict[str, float]]:
    """The hybrid reward at reference frame ``t``: (reward, its factors, the errors)."""
    err = errors(joints, object_pose, contact, ref, t)
    terms = reward_terms(err, cfg or ImitationRewardConfig(), ref.height)
    return terms["total"], terms, err
