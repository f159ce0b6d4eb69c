"""HandWorld's per-frame hand action: 138 numbers per frame (docs/worldmodels.md, "HandWorld's
138-D action").

Layout of one row of ``actions.npy`` (float32, (T, 138)):

=========  =====  ==============================================================================
columns    size   content
=========  =====  ==============================================================================
0:9        9      rotation of the camera extrinsics, world -> camera (``meta.world_to_cam[:3, :3]``,
                  the SPEC's extrinsics), flattened row-major: R00 R01 R02 R10 ... R22
9:12       3      translation of the same extrinsics (``meta.world_to_cam[:3, 3]``), metres
12:75      63     right hand: 21 keypoints x (x, y, z) in the camera frame (``labels.joint_3d``,
                  DexYCB order), metres
75:138     63     left hand, same layout; zeros (the engine simulates one right hand)
=========  =====  ==============================================================================

``actions_mask.npy`` (bool, (T, 2)) says which hand is present per frame: column 0 the right
hand (always true: the simulated hand exists in every frame, in view or not), column 1 the left
(always false). A reader multiplies a hand's 63 values by its mask.

Why camera-frame joints with world->camera extrinsics: HandWorld conditions its video branch on
MANO hands rendered into the frame, which is the camera frame; the extrinsics carry the camera's
own motion, and the world-frame joints follow from the two (``decode_actions(..., frame="world")``).

Precision: float32 keeps the round trip to ``joint_3d`` exact (the labels are float32 too) and to
``world_to_cam`` within 1e-6: a rotation entry is at most 1 (rounding <= 6e-8) and the camera's
translation is well under 8 m (rounding <= 2.4e-7, half a float32 step there); float64 would only
double the file for precision the format does not need. :func:`handworld_actions` refuses
translations of 8 m or more rather than come near that bound.
"""

from __future__ import annotations

import numpy as np

from pam_engine.errors import ConfigError

#: Size of one action row and the slices of its parts.
ACTION_DIM = 138
ROTATION = slice(0, 9)
TRANSLATION = slice(9, 12)
RIGHT_HAND = slice(12, 75)
LEFT_HAND = slice(75, 138)
NUM_JOINTS = 21
#: Columns of ``actions_mask.npy``.
MASK_HANDS = ("right", "left")
#: Largest camera translation (m) float32 stores within 1e-6.
MAX_TRANSLATION_M = 8.0
#: Round-trip tolerance the format promises (and ``pam validate`` checks).
ROUND_TRIP_TOL = 1e-6


def per_frame_extrinsics(world_to_cam: np.ndarray, num_frames: int) -> np.ndarray:
    """(T, 4, 4) world -> camera transforms from one (4, 4) (a static camera) or (T, 4, 4)."""
    w2c = np.asarray(world_to_cam, dtype=np.float64)
    if w2c.shape == (4, 4):
        return np.broadcast_to(w2c, (num_frames, 4, 4))
    if w2c.shape != (num_frames, 4, 4):
        raise ConfigError(f"world_to_cam: expected (4, 4) or ({num_frames}, 4, 4), got {w2c.shape}")
    return w2c


def handworld_actions(joint_3d: np.ndarray, world_to_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The action rows (T, 138) float32 and the hand mask (T, 2) bool of a right hand's camera-frame
    keypoints ``joint_3d`` (T, 21, 3) seen by a camera with extrinsics ``world_to_cam`` ((4, 4) for a
    static camera, or (T, 4, 4))."""
    joints = np.asarray(joint_3d)
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3):
        raise ConfigError(f"joint_3d: expected (T, {NUM_JOINTS}, 3), got {joints.shape}")
    t = joints.shape[0]
    w2c = per_frame_extrinsics(world_to_cam, t)
    if not (np.all(np.isfinite(w2c)) and np.all(np.isfinite(joints))):
        raise ConfigError("handworld_actions: joint_3d and world_to_cam must be finite")
    far = float(np.abs(w2c[:, :3, 3]).max(initial=0.0))
    if far >= MAX_TRANSLATION_M:
        raise ConfigError(f"world_to_cam translation reaches {far:.2f} m; actions.npy (float32) keeps 1e-6 only "
                          f"below {MAX_TRANSLATION_M:g} m")
    actions = np.zeros((t, ACTION_DIM), np.float32)
    actions[:, ROTATION] = w2c[:, :3, :3].reshape(t, 9)
    actions[:, TRANSLATION] = w2c[:, :3, 3]
    actions[:, RIGHT_HAND] = joints.reshape(t, 3 * NUM_JOINTS)
    mask = np.zeros((t, len(MASK_HANDS)), bool)
    mask[:, 0] = True
    return actions, mask


def decode_actions(actions: np.ndarray, mask: np.ndarray | None = None, frame: str = "camera") -> dict[str, np.ndarray]:
    """The parts of action rows (T, 138): ``world_to_cam`` (T, 4, 4) float64, ``right`` and ``left``
    keypoints (T, 21, 3) float64 in ``frame`` ("camera" as stored, or "world"), each multiplied by
    its ``mask`` column when a mask (T, 2) is given."""
    a = np.asarray(actions)
    if a.ndim != 2 or a.shape[1] != ACTION_DIM:
        raise ConfigError(f"actions: expected (T, {ACTION_DIM}), got {a.shape}")
    if frame not in ("camera", "world"):
        raise ConfigError(f"decode_actions frame {frame!r}: expected 'camera' or 'world'")
    a = a.astype(np.float64)
    t = a.shape[0]
    w2c = np.zeros((t, 4, 4))
    w2c[:, :3, :3] = a[:, ROTATION].reshape(t, 3, 3)
    w2c[:, :3, 3] = a[:, TRANSLATION]
    w2c[:, 3, 3] = 1.0
    hands = {"right": a[:, RIGHT_HAND].reshape(t, NUM_JOINTS, 3), "left": a[:, LEFT_HAND].reshape(t, NUM_JOINTS, 3)}
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != (t, len(MASK_HANDS)):
            raise ConfigError(f"actions mask: expected ({t}, {len(MASK_HANDS)}), got {m.shape}")
        for k, name in enumerate(MASK_HANDS):
            hands[name] = hands[name] * m[:, k, None, None]
    if frame == "world":  # x_world = R^T (x_cam - t)
        rot, trans = w2c[:, :3, :3], w2c[:, :3, 3]
        hands = {k: np.einsum("tji,tnj->tni", rot, v - trans[:, None, :]) for k, v in hands.items()}
    return {"world_to_cam": w2c, **hands}


def check_actions(actions: np.ndarray, mask: np.ndarray | None, joint_3d: np.ndarray | None,
                  world_to_cam: np.ndarray | None, tol: float = ROUND_TRIP_TOL) -> list[str]:
    """Problems of stored actions (for ``pam validate``): dtype and shape, finite values, and the round
    trip to the episode's ``joint_3d`` and ``world_to_cam``; [] when they hold."""
    a = np.asarray(actions)
    t = None if joint_3d is None else int(np.shape(joint_3d)[0])
    if a.dtype != np.float32 or a.ndim != 2 or a.shape[1] != ACTION_DIM or (t is not None and a.shape[0] != t):
        return [f"actions: {a.dtype} {a.shape}, expected float32 ({t if t is not None else 'T'}, {ACTION_DIM})"]
    if not np.all(np.isfinite(a)):
        return [f"actions: holds {int(np.sum(~np.isfinite(a)))} NaN/inf values"]
    out = []
    if mask is not None:
        m = np.asarray(mask)
        if m.dtype != bool or m.shape != (a.shape[0], len(MASK_HANDS)):
            out.append(f"actions mask: {m.dtype} {m.shape}, expected bool ({a.shape[0]}, {len(MASK_HANDS)})")
        elif m[:, 1].any() or np.any(a[:, LEFT_HAND]):
            out.append("actions: the left hand is not zero-padded and masked out (the engine simulates the right hand)")
    decoded = decode_actions(a)
    if joint_3d is not None:
        err = float(np.abs(decoded["right"] - np.asarray(joint_3d, dtype=np.float64)).max(initial=0.0))
        if err > tol:
            out.append(f"actions: right-hand keypoints differ from labels joint_3d by up to {err:.2e} m (tolerance {tol:g})")
    if world_to_cam is not None:
        w2c = per_frame_extrinsics(world_to_cam, a.shape[0])
        err = float(np.abs(decoded["world_to_cam"][:, :3] - w2c[:, :3]).max(initial=0.0))
        if err > tol:
            out.append(f"actions: camera extrinsics differ from meta.world_to_cam by up to {err:.2e} (tolerance {tol:g})")
    return out
