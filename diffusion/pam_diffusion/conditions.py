"""Checking and normalising condition maps. Numpy only, so bad input is rejected before torch or
any weights are touched.

A condition is a ``uint8 (T, H, W, 3)`` RGB video in PAM's map style: depth (inferno-coloured
normalised disparity, background black), normal, segmentation colour map, hand-keypoint map,
tracking map (the style: docs/design.md, "Condition maps in PAM's style"; the evidence:
docs/pam_maps.md). Missing conditions are black (zeros). PAM feeds every map to its networks as
``x / 127.5 - 1`` (range [-1, 1])."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .config import CONDITION_ALIASES, CONDITION_KEYS, check_geometry
from .errors import ConditionError

#: Probability that PAM's Stage II training loader (``appearance_gen/src/dataset/hoivideodataset.py``)
#: replaces a map by black (-1). Normal is always black there: ``get_train_set`` does not use it.
PAM_STAGE2_DROPOUT: dict[str, float] = {"depth": 0.2, "normal": 1.0, "seg": 0.2, "hand": 0.05}
#: Probability that PAM's Stage III loader (``training/dataset.py``, ``--random_mask``) replaces a
#: map's latents by zeros; PAM's released weights use only hand, depth and seg.
PAM_STAGE3_DROPOUT: dict[str, float] = {"tracking": 0.2, "normal": 0.3, "depth": 0.2, "seg": 0.2, "hand": 0.2}


def validate_conditions(
    conditions: Mapping[str, np.ndarray], num_frames: int, height: int, width: int
) -> dict[str, np.ndarray]:
    """Return the conditions keyed by canonical name after checking kind, dtype, shape and frame
    count; raise ``ConditionError`` naming the first bad one."""
    check_geometry(num_frames, height, width, error=ConditionError, what="requested video")
    if not isinstance(conditions, Mapping):
        raise ConditionError(f"conditions: expected a dict of name -> uint8 (T, H, W, 3) array, got "
                             f"{type(conditions).__name__}")
    out: dict[str, np.ndarray] = {}
    for raw_key, value in conditions.items():
        key = CONDITION_ALIASES.get(str(raw_key), str(raw_key))
        if key not in CONDITION_KEYS:
            raise ConditionError(
                f"conditions: unknown key {raw_key!r}; expected some of {', '.join(CONDITION_KEYS)}")
        if key in out:
            raise ConditionError(f"conditions: {key!r} given twice (as {raw_key!r} and its alias)")
        out[key] = _check_map(key, value, num_frames, height, width)
    return out


def _check_map(key: str, value, num_frames: int, height: int, width: int) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise ConditionError(f"condition {key!r}: expected a numpy array, got {type(value).__name__}")
    if value.dtype != np.uint8:
        raise ConditionError(f"condition {key!r}: expected dtype uint8 (RGB 0..255), got {value.dtype}")
    if value.ndim != 4 or value.shape[-1] != 3:
        raise ConditionError(
            f"condition {key!r}: expected shape (T, H, W, 3) = ({num_frames}, {height}, {width}, 3), "
            f"got {tuple(value.shape)}")
    t, h, w, _ = value.shape
    if (t - 1) % 4 != 0:
        raise ConditionError(f"condition {key!r}: {t} frames is not of the form 4k+1 (e.g. 49)")
    if t != num_frames:
        raise ConditionError(f"condition {key!r}: has {t} frames, expected {num_frames} (the configured num_frames)")
    if (h, w) != (height, width):
        raise ConditionError(
            f"condition {key!r}: frames are {h}x{w} (HxW), expected {height}x{width} (the configured size)")
    return value


def condition_or_zeros(conditions: Mapping[str, np.ndarray], key: str, num_frames: int, height: int,
                       width: int) -> np.ndarray:
    """The map for ``key``, or a black video when it was not given."""
    got = conditions.get(key)
    return got if got is not None else np.zeros((num_frames, height, width, 3), np.uint8)


def image_to_unit(image: np.ndarray) -> np.ndarray:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [-1, 1], PAM's normalisation."""
    x = image.astype(np.float32) / 127.5 - 1.0
    return np.moveaxis(x, -1, -3)


#: Maps drawn on a canvas and resized nearest (their stretch can be undone exactly); the others are
#: smooth images, resized by area.
NEAREST_MAPS: tuple[str, ...] = ("seg", "hand")


def resize_map(image: np.ndarray, width: int, height: int, nearest: bool) -> np.ndarray:
    """uint8 (H, W, 3) -> (height, width, 3). ``nearest``: pixel j takes source pixel
    ceil(j * W / width), which undoes a nearest enlargement (i -> floor(i * w / W), PAM's loaders)
    exactly; otherwise area-averaged."""
    import cv2

    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    if nearest:
        cols = np.minimum(-((-np.arange(width) * w) // width), w - 1)
        rows = np.minimum(-((-np.arange(height) * h) // height), h - 1)
        return np.ascontiguousarray(image[rows[:, None], cols[None, :]])
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def stage2_maps(frame0: Mapping[str, np.ndarray], width: int, height: int) -> dict[str, np.ndarray]:
    """First-frame maps at Stage II's size (``Stage2Config.size``)."""
    return {k: resize_map(v, width, height, k in NEAREST_MAPS) for k, v in frame0.items()}
