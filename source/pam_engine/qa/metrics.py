"""QA figures from detections and labels (pure numpy; docs/qa.md): detection rate, 2D keypoint
error and PCK on visible joints, the worst frames, the temporal alignment (error at the labels'
frame against the best lag), a mirror check, and the flicker of the hand region."""

from __future__ import annotations

import numpy as np

from pam_engine.conventions import SEG_HAND

PCK_THRESHOLDS_PX = (5, 10, 20)
NUM_WORST = 5


def in_image(joint_2d: np.ndarray, width: int, height: int) -> np.ndarray:
    """(T, 21) bool: a projected keypoint (not DexYCB's -1 mark) inside the image."""
    u, v = joint_2d[..., 0], joint_2d[..., 1]
    missing = (u == -1) & (v == -1)
    return ~missing & (u >= 0) & (u < width) & (v >= 0) & (v < height)


def match_hands(keypoints: np.ndarray, present: np.ndarray, joint_2d: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Index (T,) of the detected hand closest to the labels in each frame (-1: none): the scene
    holds one hand, so a second detection is a false one and must not decide the error."""
    t, h = present.shape
    out = np.full(t, -1, int)
    for f in range(t):
        best = np.inf
        for k in range(h):
            if not present[f, k]:
                continue
            d = np.linalg.norm(keypoints[f, k] - joint_2d[f], axis=-1)
            m = d[usable[f]].mean() if usable[f].any() else 0.0
            if m < best:
                best, out[f] = m, k
    return out


def _errors(pred: np.ndarray, ok: np.ndarray, joint_2d: np.ndarray, visible: np.ndarray, lag: int) -> np.ndarray:
    """Distances between the detection of frame f and the labels of frame f + lag, on visible joints."""
    t = pred.shape[0]
    frames = np.arange(max(0, -lag), min(t, t - lag))
    frames = frames[ok[frames]]
    if not len(frames):
        return np.zeros(0)
    gt, vis = joint_2d[frames + lag], visible[frames + lag]
    d = np.linalg.norm(pred[frames] - gt, axis=-1)
    return d[vis]


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def keypoint_figures(keypoints: np.ndarray, present: np.ndarray, is_right: np.ndarray, joint_2d: np.ndarray,
                     joint_visible: np.ndarray, width: int, height: int, max_lag: int = 6,
                     min_joints_in_view: int = 15) -> dict:
    """Every keypoint figure of one episode (JSON data; None where nothing could be measured).

    ``keypoints`` (T, H, 21, 2) detections in px, ``present`` (T, H), ``is_right`` (T, H);
    ``joint_2d`` (T, 21, 2) and ``joint_visible`` (T, 21) the labels."""
    joint_2d = np.asarray(joint_2d, np.float64)
    inside = in_image(joint_2d, width, height)
    visible = np.asarray(joint_visible, bool) & inside
    t = joint_2d.shape[0]
    in_view = inside.sum(axis=1) >= min_joints_in_view
    chosen = match_hands(keypoints, present, joint_2d, inside)
    detected = chosen >= 0
    pred = np.full((t, 21, 2), np.nan)
    pred[detected] = keypoints[np.flatnonzero(detected), chosen[detected]]
    right = np.zeros(t, bool)
    right[detected] = is_right[np.flatnonzero(detected), chosen[detected]]

    per_frame: list[float | None] = [None] * t
    for f in np.flatnonzero(detected):
        if visible[f].any():
            per_frame[f] = float(np.linalg.norm(pred[f] - joint_2d[f], axis=-1)[visible[f]].mean())
    dists = _errors(pred, detected, joint_2d, visible, 0)
    worst = sorted((f for f in range(t) if per_frame[f] is not None), key=lambda f: -per_frame[f])[:NUM_WORST]

    lags = {}
    for lag in range(-max_lag, max_lag + 1):
        lags[lag] = _mean(_errors(pred, detected, joint_2d, visible, lag))
    measured = {k: v for k, v in lags.items() if v is not None}
    best_lag = min(measured, key=lambda k: (measured[k], abs(k))) if measured else None

    mirrored_gt = joint_2d.copy()
    mirrored_gt[..., 0] = np.where(joint_2d[..., 0] == -1, -1, width - joint_2d[..., 0])
    mirror_dists = _errors(pred, detected, mirrored_gt, in_image(mirrored_gt, width, height) & visible, 0)

    n_view = int(in_view.sum())
    return {
        "frames": t,
        "frames_hand_in_view": n_view,
        "frames_detected": int(detected.sum()),
        "frames_detected_in_view": int((detected & in_view).sum()),
        "detection_rate": float((detected & in_view).sum() / n_view) if n_view else None,
        "false_detections": int((detected & (inside.sum(axis=1) == 0)).sum()),
        "keypoint_error_px": _mean(dists),
        "keypoint_median_px": float(np.median(dists)) if dists.size else None,
        "joints_compared": int(dists.size),
        "pck": {str(k): (float((dists <= k).mean()) if dists.size else None) for k in PCK_THRESHOLDS_PX},
        "per_frame_error_px": per_frame,
        "worst_frames": [{"frame": int(f), "error_px": per_frame[f]} for f in worst],
        "temporal": {"lag_error_px": {str(k): v for k, v in lags.items()}, "best_lag": best_lag,
                     "error_at_labels_px": lags.get(0), "error_at_best_lag_px": measured.get(best_lag)},
        "mirror": {"error_mirrored_px": _mean(mirror_dists),
                   "right_hand_rate": float(right[detected].mean()) if detected.any() else None},
    }


def flicker(frames: np.ndarray, seg: np.ndarray) -> dict:
    """Temporal flicker: mean absolute frame-to-frame change of the grey level (0-255) inside the
    labelled hand mask (the hand in both frames) against the background (no hand or object in
    either frame). A generated video whose hand shimmers scores a high ``ratio``; the hand's own
    motion raises it too, so compare episodes of one dataset rather than read it alone."""
    grey = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    hand = seg == SEG_HAND
    empty = seg == 0
    inside = outside = 0.0
    n_in = n_out = 0
    for f in range(1, len(grey)):
        diff = np.abs(grey[f] - grey[f - 1])
        m_in = hand[f] & hand[f - 1]
        m_out = empty[f] & empty[f - 1]
        inside += float(diff[m_in].sum())
        outside += float(diff[m_out].sum())
        n_in += int(m_in.sum())
        n_out += int(m_out.sum())
    hand_change = inside / n_in if n_in else None
    background_change = outside / n_out if n_out else None
    ratio = (hand_change / background_change if hand_change is not None and background_change
             else None)
    return {"hand": hand_change, "background": background_change, "ratio": ratio}
