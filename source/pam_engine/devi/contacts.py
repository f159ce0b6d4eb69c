"""DeVI's Algorithm 1: hand-object contact labels from 2D tracks alone.

A generated video has no contact sensor; what it shows is motion. The rule reads contact off
the 2D tracks of the object (projected object-surface points, T x V x 2) and of the hand
(21 keypoints, T x 21 x 2):

- **contact** when the object moves and the hand is at it (the object moves *with* the hand);
- **no contact** when only the hand moves (the hand moves, the object stays still);
- otherwise (both still, or motion too small to call) the previous frame's state is **carried**;
- then a **backward pass**: a grasp is made before the object first moves (fingers close on a
  still object), so from every contact onset the labels are extended back over the frames that
  carried a state without evidence of their own while the hand was at the object, up to the last
  frame where the hand moved alone.

Motion at frame t is the forward displacement from t to t+1 (the contact present at t is what
moves the object during the next interval). The object's is the median over its points of their
displacement (a turn in place counts; a few badly tracked points do not decide it); the hand's is
the length of the median displacement vector over its keypoints, the motion of the hand as a
whole: a detector's independent per-keypoint jitter averages down in it, and fingers closing
around a still wrist do not read as the hand moving away. The object's motion has two
thresholds (moving / still) and the band between them gives no evidence: a finger nudging the
object by a pixel neither starts nor ends a contact.

Hand keypoints a detector lost for a few frames between two detections are interpolated
linearly (``fill_gaps``); longer gaps, and frames before the first or after the last detection,
stay unknown and give no evidence.

The labels are hand-level (one bool per frame: the hand touches the object), as the rule sees
the whole object's motion and cannot tell which finger moved it; compare them with the
simulator's per-part contacts reduced with ``any`` (:mod:`pam_engine.devi.agreement`).

Thresholds are in pixels per frame at a reference image height of 480 px and 15 fps (PAM's
video size and rate); :meth:`ContactRuleConfig.scaled` converts them: displacement thresholds
scale with ``height / 480`` (the same motion spans proportionally more pixels in a larger image
of the same field of view) and with ``15 / fps`` (a frame spans less motion at a higher rate);
the proximity threshold scales with height only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.ndimage import uniform_filter1d

from pam_engine.errors import ConfigError

#: Evidence of a frame: the object moved with the hand, no evidence (carry), the hand moved alone.
CONTACT, CARRY, NO_CONTACT = 1, 0, -1


@dataclass(frozen=True)
class ContactRuleConfig:
    """Thresholds of Algorithm 1, in pixels (per frame for displacements) at
    ``reference_height`` and ``reference_fps`` (see the module docstring for the scaling)."""

    object_moving: float = 2.0  # median object-point displacement above this: the object moves
    object_still: float = 1.0  # below this: the object is still (between the two: no evidence)
    hand_moving: float = 2.0  # the hand's displacement (median vector) above this: the hand moves
    near: float = 40.0  # nearest hand keypoint to nearest object point at most this: hand at the object
    smooth: int = 1  # centred moving average over this many frames before differencing (odd; 1 = off)
    fill_gaps: int = 8  # hand keypoints lost for at most this many frames between two detections are interpolated
    backward: bool = True  # run the backward pass
    reference_height: float = 480.0
    reference_fps: float = 15.0

    def __post_init__(self) -> None:
        for name in ("object_moving", "object_still", "hand_moving", "near", "reference_height", "reference_fps"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ConfigError(f"devi contact rule: {name} must be a positive number, got {value!r}")
        if self.object_still > self.object_moving:
            raise ConfigError(f"devi contact rule: object_still ({self.object_still}) must not exceed "
                              f"object_moving ({self.object_moving})")
        if int(self.fill_gaps) != self.fill_gaps or self.fill_gaps < 0:
            raise ConfigError(f"devi contact rule: fill_gaps must be a whole number of frames >= 0, got {self.fill_gaps!r}")
        if int(self.smooth) != self.smooth or self.smooth < 1 or self.smooth % 2 == 0:
            raise ConfigError(f"devi contact rule: smooth must be an odd number of frames >= 1, got {self.smooth!r}")

    def scaled(self, height: float, fps: float) -> "ContactRuleConfig":
        """The thresholds for images ``height`` pixels tall at ``fps`` (reference size and rate
        set to those)."""
        if not height > 0 or not fps > 0:
            raise ConfigError(f"devi contact rule: image height and fps must be positive, got {height!r}, {fps!r}")
        size = height / self.reference_height
        speed = size * self.reference_fps / fps
        return replace(self, object_moving=self.object_moving * speed, object_still=self.object_still * speed,
                       hand_moving=self.hand_moving * speed, near=self.near * size,
                       reference_height=float(height), reference_fps=float(fps))


@dataclass(frozen=True)
class ContactLabels:
    """Algorithm 1's output and what it decided on, per frame."""

    contact: np.ndarray  # (T,) bool, after the backward pass
    forward: np.ndarray  # (T,) bool, the forward pass alone
    evidence: np.ndarray  # (T,) int8: CONTACT, CARRY or NO_CONTACT
    object_motion: np.ndarray  # (T,) px, median object-point displacement t -> t+1 (NaN: unknown)
    hand_motion: np.ndarray  # (T,) px, length of the median keypoint displacement t -> t+1 (NaN: unknown)
    distance: np.ndarray  # (T,) px, nearest hand keypoint to nearest object point (NaN: unknown)


def _check_track(name: str, track, points: int | None = None) -> np.ndarray:
    arr = np.asarray(track, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[-1] != 2 or (points is not None and arr.shape[1] != points):
        want = f"(T, {points}, 2)" if points is not None else "(T, V, 2)"
        raise ConfigError(f"devi contacts: {name} has shape {arr.shape}, expected {want}")
    if arr.shape[0] < 2:
        raise ConfigError(f"devi contacts: {name} has {arr.shape[0]} frames, at least 2 are needed")
    return arr


def _check_valid(name: str, valid, shape: tuple[int, int]) -> np.ndarray:
    if valid is None:
        return np.ones(shape, bool)
    v = np.asarray(valid, dtype=bool)
    if v.shape == shape[:1]:
        v = np.repeat(v[:, None], shape[1], axis=1)
    if v.shape != shape:
        raise ConfigError(f"devi contacts: {name} has shape {v.shape}, expected {shape[:1]} or {shape}")
    return v


def _fill_gaps(track: np.ndarray, valid: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation of each point over runs of at most ``max_gap`` invalid frames between
    two valid ones (never before the first or after the last detection)."""
    if max_gap == 0 or valid.all():
        return track, valid
    track, valid = track.copy(), valid.copy()
    frames = np.arange(track.shape[0])
    for j in range(track.shape[1]):
        seen = np.flatnonzero(valid[:, j])
        for a, b in zip(seen[:-1], seen[1:]):
            if 1 < b - a <= max_gap + 1:
                w = (frames[a + 1:b] - a) / (b - a)
                track[a + 1:b, j] = (1 - w)[:, None] * track[a, j] + w[:, None] * track[b, j]
                valid[a + 1:b, j] = True
    return track, valid


def _smooth(track: np.ndarray, valid: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over valid samples only (invalid ones neither count nor change)."""
    if window == 1:
        return track
    w = valid[..., None].astype(np.float64)
    total = uniform_filter1d(np.where(valid[..., None], track, 0.0), window, axis=0, mode="nearest")
    weight = uniform_filter1d(w, window, axis=0, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / weight
    return np.where(valid[..., None], out, track)


def _median_motion(track: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(T,) median displacement t -> t+1 over points valid at both; NaN where none (and at T-1)."""
    step = np.linalg.norm(track[1:] - track[:-1], axis=-1)
    both = valid[1:] & valid[:-1]
    out = np.full(track.shape[0], np.nan)
    masked = np.where(both, step, np.nan)
    has = both.any(axis=1)
    out[:-1][has] = np.nanmedian(masked[has], axis=1)
    return out


def _vector_median_motion(track: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(T,) length of the per-axis median displacement t -> t+1 over points valid at both: how
    the set moves as a whole (independent per-point jitter averages down); NaN where none."""
    step = np.where((valid[1:] & valid[:-1])[..., None], track[1:] - track[:-1], np.nan)
    has = (valid[1:] & valid[:-1]).any(axis=1)
    out = np.full(track.shape[0], np.nan)
    out[:-1][has] = np.linalg.norm(np.nanmedian(step[has], axis=1), axis=-1)
    return out


def _nearest_distance(hand: np.ndarray, hand_valid: np.ndarray, obj: np.ndarray, obj_valid: np.ndarray) -> np.ndarray:
    """(T,) distance from the nearest valid hand keypoint to the nearest valid object point."""
    d = np.linalg.norm(hand[:, :, None, :] - obj[:, None, :, :], axis=-1)  # (T, 21, V)
    d = np.where(hand_valid[:, :, None] & obj_valid[:, None, :], d, np.inf)
    out = d.min(axis=(1, 2))
    out[~np.isfinite(out)] = np.nan
    return out


def contact_labels(object_track, hand_track, config: ContactRuleConfig | None = None, *,
                   hand_valid=None, object_valid=None, initial: bool = False) -> ContactLabels:
    """Algorithm 1 on an object track (T, V, 2) and hand keypoints (T, 21, 2), pixels.

    ``config`` holds thresholds for *these* images (use :meth:`ContactRuleConfig.scaled`);
    ``hand_valid`` ((T,) or (T, 21)) and ``object_valid`` ((T,) or (T, V)) mark detections to
    use (default: all); ``initial`` is the state before the first frame with evidence.
    """
    cfg = config or ContactRuleConfig()
    obj = _check_track("object track", object_track)
    hand = _check_track("hand keypoints", hand_track, 21)
    if obj.shape[0] != hand.shape[0]:
        raise ConfigError(f"devi contacts: object track has {obj.shape[0]} frames, hand keypoints {hand.shape[0]}")
    hv = _check_valid("hand_valid", hand_valid, hand.shape[:2]) & np.isfinite(hand).all(axis=-1)
    ov = _check_valid("object_valid", object_valid, obj.shape[:2]) & np.isfinite(obj).all(axis=-1)
    hand, hv = _fill_gaps(np.where(hv[..., None], hand, 0.0), hv, int(cfg.fill_gaps))
    hand, obj = _smooth(hand, hv, int(cfg.smooth)), _smooth(obj, ov, int(cfg.smooth))

    object_motion = _median_motion(obj, ov)
    hand_motion = _vector_median_motion(hand, hv)
    distance = _nearest_distance(hand, hv, obj, ov)
    with np.errstate(invalid="ignore"):  # NaN compares False: unknown motion is no evidence
        moves_with_hand = (object_motion > cfg.object_moving) & (distance <= cfg.near)
        hand_alone = (hand_motion > cfg.hand_moving) & (object_motion < cfg.object_still)
    evidence = np.where(moves_with_hand, CONTACT, np.where(hand_alone, NO_CONTACT, CARRY)).astype(np.int8)

    forward = np.empty(len(evidence), bool)
    state = bool(initial)
    for t, e in enumerate(evidence):
        if e == CONTACT:
            state = True
        elif e == NO_CONTACT:
            state = False
        forward[t] = state

    contact = forward.copy()
    if cfg.backward:
        for t in range(1, len(contact)):
            if forward[t] and not forward[t - 1]:  # an onset: reach back over frames without evidence
                k = t - 1
                while k >= 0 and evidence[k] == CARRY and not contact[k] and not distance[k] > cfg.near:
                    contact[k] = True
                    k -= 1
    return ContactLabels(contact, forward, evidence, object_motion, hand_motion, distance)
