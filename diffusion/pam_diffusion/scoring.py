"""Choosing among Stage II candidates. A scorer maps ``(candidate uint8 (H, W, 3), first-frame
conditions {name: uint8 (H, W, 3)})`` to a number; the highest-scoring candidate becomes the first frame.
Pass any such callable to ``PamVideoGenerator(scorer=...)`` or name one from ``SCORERS`` in the config.

Default, ``hand_edges``: the agreement of the candidate's edges with the edges the conditions predict
around the hand. PAM picked first frames by eye; what it looked for is a hand whose outline and
fingers sit where the maps put them. With no hand model at hand (none may be downloaded), the
model-free proxy is: inside the hand's bounding box (from the seg map's hand colour and the
keypoint map, padded by 1/8 of the image), the Pearson correlation between the candidate's gradient
magnitude and that of the conditions (hand silhouette + depth discontinuities + keypoint skeleton),
both lightly blurred to tolerate a few pixels of misalignment. Range [-1, 1]; higher is better."""

from __future__ import annotations

from typing import Callable, Mapping

import cv2
import numpy as np

#: The hand's colour in PAM's segmentation maps (see docs/design.md, "Condition maps in PAM's style");
#: the engine draws its maps with the same value (a test checks they agree).
SEG_HAND_COLOR = np.array([92, 0, 255], dtype=np.uint8)

Scorer = Callable[[np.ndarray, Mapping[str, np.ndarray]], float]


def hand_mask(frame0: Mapping[str, np.ndarray], tolerance: int = 24) -> np.ndarray:
    """Pixels PAM's seg map paints in the hand colour ``[92, 0, 255]`` (bool (H, W))."""
    seg = frame0.get("seg")
    if seg is None:
        return np.zeros((0, 0), bool)
    return np.abs(seg.astype(np.int16) - SEG_HAND_COLOR.astype(np.int16)).sum(-1) <= tolerance


def _edges(gray: np.ndarray, blur: float) -> np.ndarray:
    g = cv2.GaussianBlur(gray.astype(np.float32), (0, 0), blur) if blur > 0 else gray.astype(np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    return np.hypot(gx, gy)


def condition_edges(frame0: Mapping[str, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Where the conditions say the image should have edges: hand silhouette, depth steps, skeleton."""
    h, w = shape
    out = np.zeros((h, w), np.float32)
    mask = hand_mask(frame0)
    if mask.size:
        out += _edges(mask.astype(np.float32), 1.0)
    for key in ("depth", "hand"):
        m = frame0.get(key)
        if m is not None:
            e = _edges(m.astype(np.float32).mean(-1) / 255.0, 1.0)
            out += e / (e.max() + 1e-6)
    return out


def hand_region(frame0: Mapping[str, np.ndarray], shape: tuple[int, int]) -> tuple[slice, slice]:
    """Bounding box of the hand (seg colour or keypoint strokes), padded; the whole image if none."""
    h, w = shape
    mask = hand_mask(frame0)
    if not mask.size:
        mask = np.zeros((h, w), bool)
    hand = frame0.get("hand")
    if hand is not None:
        mask = mask | (hand.max(-1) > 0)
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return slice(0, h), slice(0, w)
    pad_y, pad_x = max(h // 8, 4), max(w // 8, 4)
    return (slice(max(ys.min() - pad_y, 0), min(ys.max() + pad_y + 1, h)),
            slice(max(xs.min() - pad_x, 0), min(xs.max() + pad_x + 1, w)))


def hand_edges(candidate: np.ndarray, frame0: Mapping[str, np.ndarray]) -> float:
    """Default scorer (see the module docstring)."""
    shape = candidate.shape[:2]
    target = cv2.GaussianBlur(condition_edges(frame0, shape), (0, 0), 2.0)
    edges = cv2.GaussianBlur(_edges(cv2.cvtColor(candidate, cv2.COLOR_RGB2GRAY), 1.0), (0, 0), 2.0)
    rows, cols = hand_region(frame0, shape)
    a, b = edges[rows, cols].ravel(), target[rows, cols].ravel()
    if a.std() < 1e-6 or b.std() < 1e-6:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


SCORERS: dict[str, Scorer] = {"hand_edges": hand_edges}


def get_scorer(name_or_fn: str | Scorer) -> Scorer:
    from pam_diffusion.errors import ConfigError

    if callable(name_or_fn):
        return name_or_fn
    try:
        return SCORERS[name_or_fn]
    except KeyError:
        raise ConfigError(
            f"stage2.scorer: unknown scorer {name_or_fn!r}; expected one of {', '.join(SCORERS)}") from None
