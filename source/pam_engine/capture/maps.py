"""PAM-style condition maps from captures, for whole videos (T, H, W[, 3]) at once (the style:
docs/design.md, "Condition maps in PAM's style").

They reproduce how PAM drew its DexYCB training maps, so the released ControlNets see
in-distribution input (the evidence, rule by rule, is in ``docs/pam_maps.md``):
- seg colour map: ``convert_gray_to_color`` in PAM's ``hoi_utils.py`` (ADE20K palette entry k
  for object k, entry 149 = [92,0,255] for the hand, black background);
- hand-keypoint map: ``showHandJoints`` in ``hoi_utils.py`` (joint colour ``i // 4`` brightened
  ``35 * (i % 4)``, limb colour ``limb // 4`` likewise, radius 3, thumb limbs 6 px half-width,
  others 3, limbs shorter than 5 px or longer than 150 px skipped, all at 640x480 and scaled with
  resolution), with PAM's limb-ordering rule (reversed when the wrist is nearer than the little
  fingertip); on a camera with a ``canvas`` (the ``pam`` preset) drawn there and resized nearest;
- depth map: DepthCrafter's ``vis_sequence_depth`` as PAM used it: relative disparity normalised
  over the whole video to [0, 1], ``inferno``-coloured (style "pam"; "grey" is an option),
  background (seg 0) black;
- normal map: DSINE's convention (PAM's normal estimator): camera-frame normals with OpenCV axes
  (right, down, forward) pointing *away* from the camera (a wall facing the camera is
  (0, 0, 1)), colour = (n + 1) / 2 * 255 truncated, x/y/z -> R/G/B; background black.
All maps are RGB uint8.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pam_engine.capture.camera import Camera
from pam_engine.capture.style import DEPTH_STYLES, LIMB_ORDERS, MapStyle, check_choice
from pam_engine.conventions import (
    ADE20K_PALETTE,
    KEYPOINT_FINGER_COLORS,
    SEG_BACKGROUND,
    SEG_HAND,
    SEG_HAND_COLOR,
)

#: PAM's limb list (keypoint index pairs), thumb chain first; limbs 0-3 are the thumb's.
PAM_LIMBS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4),
    (0, 5), (5, 6), (6, 7), (7, 8),
    (0, 9), (9, 10), (10, 11), (11, 12),
    (0, 13), (13, 14), (14, 15), (15, 16),
    (0, 17), (17, 18), (18, 19), (19, 20),
)
#: Size at which PAM's pixel constants (radius 3, half-widths 6/3, length 5..150) apply.
PAM_REFERENCE_SIZE = (640, 480)


def _seg_lut() -> np.ndarray:
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(ADE20K_PALETTE)] = ADE20K_PALETTE
    lut[SEG_BACKGROUND] = 0
    lut[SEG_HAND] = SEG_HAND_COLOR
    return lut


SEG_COLOR_LUT = _seg_lut()


def foreground_box(mask: np.ndarray, margin: int = 2) -> tuple[slice, slice] | None:
    """Bounding box (row, column slices) of a mask, grown by ``margin`` pixels; None if empty.
    Maps that are black on the background only need computing inside it."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (slice(max(rows[0] - margin, 0), min(rows[-1] + margin + 1, h)),
            slice(max(cols[0] - margin, 0), min(cols[-1] + margin + 1, w)))


def foreground_boxes(seg: np.ndarray) -> list:
    """``foreground_box`` of every frame of a (T, H, W) segmentation."""
    return [foreground_box(seg[t] != SEG_BACKGROUND) for t in range(seg.shape[0])]


def seg_color_map(seg: np.ndarray, boxes: list | None = None) -> np.ndarray:
    """DexYCB ids (T, H, W) or (H, W) -> PAM colours (..., 3). Ids without a palette entry
    (150..254) are black. ``boxes`` (``foreground_boxes``) limits the work to the foreground."""
    seg = np.asarray(seg, dtype=np.uint8)
    if seg.ndim == 2:
        return seg_color_map(seg[None], None if boxes is None else boxes[:1])[0]
    lut = SEG_COLOR_LUT.reshape(1, 256, 3)
    out = np.zeros(seg.shape + (3,), np.uint8)
    for t in range(seg.shape[0]):
        box = (slice(None), slice(None)) if boxes is None else boxes[t]
        if box is None:
            continue
        ids = np.ascontiguousarray(seg[t][box])
        out[t][box] = cv2.LUT(cv2.merge([ids, ids, ids]), lut)
    return out


def keypoint_scale(width: int, height: int) -> float:
    """Factor applied to PAM's 640x480 pixel constants at another resolution."""
    return min(width / PAM_REFERENCE_SIZE[0], height / PAM_REFERENCE_SIZE[1])


def _colour(index: int) -> tuple[int, int, int]:
    base = KEYPOINT_FINGER_COLORS[index // 4]
    return tuple(int(c) + 35 * (index % 4) for c in base)  # cv2 saturates values above 255


def limb_order(joint_z: np.ndarray | None, order: str = "pam") -> list[int]:
    """Drawing order of ``PAM_LIMBS`` (later limbs cover earlier ones).

    "pam": PAM's ``showHandJoints`` rule with ``joint_3d``: the list order (thumb first), reversed
    (thumb last, on top) when the wrist is nearer the camera than the little fingertip
    (``z[0] < z[20]``); without depths the list order (as PAM's Stage II loader drew them).
    "forward": always the list order. "depth": far-to-near by the limbs' summed endpoint depth.
    """
    check_choice("limb order", order, LIMB_ORDERS)
    n = len(PAM_LIMBS)
    if joint_z is None or order == "forward":
        return list(range(n))
    z = np.asarray(joint_z, dtype=np.float64)
    if order == "pam":
        return list(range(n - 1, -1, -1)) if z[0] < z[20] else list(range(n))
    depth = [z[a] + z[b] for a, b in PAM_LIMBS]
    return sorted(range(n), key=lambda k: -depth[k])  # stable: ties keep PAM's order


def draw_hand_keypoints(canvas: np.ndarray, joint_2d: np.ndarray, joint_z: np.ndarray | None = None,
                        order: str = "pam") -> np.ndarray:
    """Draw 21 keypoints (DexYCB order, pixel coordinates) on an RGB uint8 canvas in place, as
    PAM's ``showHandJoints``; ``joint_z`` (camera depth per keypoint) and ``order`` choose the
    limb order (``limb_order``)."""
    h, w = canvas.shape[:2]
    s = keypoint_scale(w, h)
    pts = np.round(np.clip(np.asarray(joint_2d, dtype=np.float64), -1e5, 1e5)).astype(np.int64)
    radius = max(1, int(round(3 * s)))
    for i, (u, v) in enumerate(pts):
        cv2.circle(canvas, (int(u), int(v)), radius, _colour(i), thickness=-1)
    for k in limb_order(joint_z, order):
        a, b = PAM_LIMBS[k]
        (u1, v1), (u2, v2) = pts[a], pts[b]
        length = math.hypot(float(u1 - u2), float(v1 - v2))
        if not 5 * s < length < 150 * s:
            continue
        angle = math.degrees(math.atan2(float(v1 - v2), float(u1 - u2)))
        half_width = max(1, int(round((6 if k < 4 else 3) * s)))
        poly = cv2.ellipse2Poly((int((u1 + u2) / 2), int((v1 + v2) / 2)), (int(length / 2), half_width),
                                int(angle), 0, 360, 1)
        cv2.fillConvexPoly(canvas, poly, _colour(k))
    return canvas


def to_canvas(joint_2d: np.ndarray, size: tuple[int, int], canvas: tuple[int, int]) -> np.ndarray:
    """Pixel coordinates (..., 2) of an image of ``size`` (width, height) -> those of the
    ``canvas`` it is a resize of (pixel edges at -0.5 fixed: u_c + 0.5 = (u + 0.5) * Wc / W)."""
    scale = np.array([canvas[0] / size[0], canvas[1] / size[1]])
    return (np.asarray(joint_2d, dtype=np.float64) + 0.5) * scale - 0.5


def resize_nearest(images: np.ndarray, width: int, height: int) -> np.ndarray:
    """(T, h, w, 3) -> (T, height, width, 3), nearest: destination pixel i takes source pixel
    floor(i * w / width), as torch's ``interpolate(mode="nearest")`` behind torchvision's
    ``resize(..., NEAREST)`` in PAM's loaders (and cv2's INTER_NEAREST)."""
    t, h, w = images.shape[:3]
    if w != width:
        images = np.take(images, np.minimum((np.arange(width) * w) // width, w - 1), axis=2)
    if h != height:
        images = np.take(images, np.minimum((np.arange(height) * h) // height, h - 1), axis=1)
    return images
    if images.dtype == np.uint8 and images.ndim == 4 and images.shape[3] in (3, 4) and max(w, h, width, height) < 32768:
        # the same pixel picks as a gather, by cv2.remap on integer coordinates (exact, and
        # several times faster than np.take on (T, H, W, 3) bytes)
        grid = np.empty((height, width, 2), np.int16)
        grid[..., 0], grid[..., 1] = cols[None, :], rows[:, None]
        out = np.empty((t, height, width, images.shape[3]), np.uint8)
        for k in range(t):
            cv2.remap(images[k], grid, None, cv2.INTER_NEAREST, dst=out[k])
        return out
    if w != width:
        images = np.take(images, cols, axis=2)
    if h != height:
        images = np.take(images, rows, axis=1)
    return images


def hand_keypoint_map(joint_2d: np.ndarray, width: int, height: int, joint_z: np.ndarray | None = None,
                      canvas: tuple[int, int] | None = None, order: str = "pam") -> np.ndarray:
    """(T, 21, 2) keypoints -> (T, H, W, 3) maps on black; a frame whose keypoints are not all
    finite (no hand) stays black. With ``canvas`` (width, height), keypoints are drawn on that
    frame (PAM: DexYCB's 640x480) and the maps resized nearest to ``width`` x ``height``."""
    joint_2d = np.asarray(joint_2d, dtype=np.float64)
    size = (int(width), int(height))
    canvas = size if canvas is None else (int(canvas[0]), int(canvas[1]))
    if canvas != size:
        joint_2d = to_canvas(joint_2d, size, canvas)
    out = np.zeros((joint_2d.shape[0], size[1], size[0], 3), np.uint8)
    # on a canvas, each frame is drawn on one reused canvas image and resized into its slot
    # (no second whole video in memory)
    scratch = None if canvas == size else np.zeros((canvas[1], canvas[0], 3), np.uint8)
    for t in range(joint_2d.shape[0]):
        if not np.all(np.isfinite(joint_2d[t])):
            continue
        z = None
        if joint_z is not None and np.all(np.isfinite(joint_z[t])):
            z = joint_z[t]
        if scratch is None:
            draw_hand_keypoints(out[t], joint_2d[t], z, order)
        else:
            scratch.fill(0)
            draw_hand_keypoints(scratch, joint_2d[t], z, order)
            out[t] = resize_nearest(scratch[None], *size)[0]
    return out


def canvas_keypoint_frame(joint_2d: np.ndarray, width: int, height: int, canvas: tuple[int, int],
                          order: str = "forward") -> np.ndarray:
    """One keypoint map (canvas H, W, 3) drawn on ``canvas`` from keypoints in ``width`` x
    ``height`` pixels (DexYCB's -1 = missing), as PAM's Stage II loader drew them: without
    ``joint_3d``, so in list order by default."""
    uv = np.asarray(joint_2d, dtype=np.float64)
    uv = np.where(np.all(uv == -1, axis=-1, keepdims=True), np.nan, uv)
    if (int(width), int(height)) != tuple(canvas):
        uv = to_canvas(uv, (int(width), int(height)), canvas)
    return hand_keypoint_map(uv[None], canvas[0], canvas[1], order=order)[0]


def disparity_range(depth: np.ndarray, seg: np.ndarray | None = None, foreground_only: bool = False) -> tuple[float, float]:
    """(min, max) of 1/depth over the video's valid pixels (depth > 0), optionally over
    foreground (seg > 0) only; (0, 0) when there is none."""
    valid = depth > 0
    if foreground_only and seg is not None:
        valid &= seg > 0
    if not valid.any():
        return 0.0, 0.0
    values = depth[valid] if foreground_only else None
    far = float(values.max() if values is not None else depth.max())
    near = float(values.min() if values is not None else np.min(depth, where=valid, initial=np.inf))
    return 1.0 / far, 1.0 / near


def inferno_lut() -> np.ndarray:
    """(256, 3) uint8: DepthCrafter's colours, ``floor(255 * inferno.colors[i])`` (its
    ``save_video`` truncates ``colours * 255`` to uint8)."""
    global _INFERNO
    if _INFERNO is None:
        from matplotlib import colormaps  # only the colour table is needed: no pyplot, no backend

        colours = np.asarray(colormaps["inferno"].colors, dtype=np.float64)
        _INFERNO = (colours * 255).astype(np.uint8)
    return _INFERNO


_INFERNO: np.ndarray | None = None


def depth_map(depth: np.ndarray, seg: np.ndarray, foreground_only: bool = False, boxes: list | None = None,
              style: str = "pam") -> np.ndarray:
    """Metric depth (T, H, W) -> PAM depth map (T, H, W, 3): disparity normalised to [0, 1] over
    the whole video (near = 1), background (seg 0) and missing depth black.

    ``style`` "pam" colours it as DepthCrafter's ``vis_sequence_depth``: inferno entry
    ``floor(255 x)`` (near = bright yellow); "grey" writes ``round(255 x)`` in three channels.
    By default the range spans every pixel with depth, like DepthCrafter run on the full frames
    before PAM masked the background; ``foreground_only`` uses hand and object pixels only.
    """
    check_choice("depth style", style, DEPTH_STYLES)
    lo, hi = disparity_range(depth, seg, foreground_only)
    boxes = foreground_boxes(seg) if boxes is None else boxes
    out = np.zeros(depth.shape + (3,), np.uint8)
    span = hi - lo
    scale = 255.0 / span if span > 0 else 0.0
    for t in range(depth.shape[0]):
        if boxes[t] is None:
            continue
        d = np.asarray(depth[t][boxes[t]], dtype=np.float32)
        keep = (d > 0) & (seg[t][boxes[t]] != SEG_BACKGROUND)
        if style == "grey":
            with np.errstate(divide="ignore"):
                disp = np.reciprocal(d)
            # round(255 * (disp - lo) / span), saturated to 0..255; a constant-depth video is white
            grey = cv2.convertScaleAbs(disp, alpha=scale, beta=-lo * scale if span > 0 else 255.0)
            grey[~keep] = 0
            out[t][boxes[t]] = grey[..., None]
            continue
        # DepthCrafter: index = clamp(long(255 * x)), truncation; a constant-depth video is the top.
        # Only the kept pixels are computed (the rest stays black): d > 0 there, so x is finite
        values = d[keep].astype(np.float64)
        with np.errstate(over="ignore"):
            x = (1.0 / values - lo) * scale if span > 0 else np.full(values.shape, 255.0)
        index = np.clip(np.floor(x), 0, 255).astype(np.uint8)
        out[t][boxes[t]][keep] = inferno_lut()[index]
    return out


def normals_from_depth(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Unit surface normals (H, W, 3) of one depth image, camera frame (OpenCV axes), pointing
    towards the camera; 0 where depth is missing or a pixel has no valid neighbour on an axis.

    Each pixel uses, per image axis, the one-sided difference with the smaller depth jump, so
    normals at silhouettes come from the surface the pixel belongs to, not from the edge.
    """
    nx, ny, nz, inv = _normal_terms(depth, K)
    return np.stack([nx * inv, ny * inv, nz * inv], axis=-1)


def _one_sided(d: np.ndarray, use_bwd: np.ndarray, axis: int) -> np.ndarray:
    """Per pixel along ``axis``, the backward (p[i] - p[i-1]) or forward (p[i+1] - p[i])
    difference from ``d = diff(p)``; edge pixels take the one difference they have."""
    n = d.shape[axis] + 1
    out = np.empty(d.shape[:axis] + (n,) + d.shape[axis + 1:], d.dtype)
    inner = [slice(None)] * 2
    inner[axis] = slice(1, n - 1)
    lo, hi = [slice(None)] * 2, [slice(None)] * 2
    lo[axis], hi[axis] = slice(0, n - 2), slice(1, n - 1)
    np.copyto(out[tuple(inner)], np.where(use_bwd, d[tuple(lo)], d[tuple(hi)]))
    first, last = [slice(None)] * 2, [slice(None)] * 2
    first[axis], last[axis] = slice(0, 1), slice(n - 1, n)
    out[tuple(first)] = d[tuple(first)]
    d_last = [slice(None)] * 2
    d_last[axis] = slice(n - 2, n - 1)
    out[tuple(last)] = d[tuple(d_last)]
    return out


def _normal_terms(depth: np.ndarray, K: np.ndarray):
    """The un-normalised normal (nx, ny, nz) and 1/|n| (0 where there is no normal), float32,
    (H, W) each: :func:`normals_from_depth` before the product, without padded copies."""
    h, w = depth.shape
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    valid = depth > 0
    big = np.float32(1e6)  # missing depth -> far away: never the smaller jump
    z = np.where(valid, depth, big).astype(np.float32)
    x = z * ((np.arange(w, dtype=np.float32) - np.float32(cx)) / np.float32(fx))[None, :]
    y = z * ((np.arange(h, dtype=np.float32) - np.float32(cy)) / np.float32(fy))[:, None]

    def derivative(axis: int):
        """Per-pixel (dx, dy, dz) along ``axis`` and whether it joins two valid pixels."""
        if z.shape[axis] < 2:  # one pixel along the axis: no neighbour (as numpy's edge padding gave)
            zero = np.zeros_like(z)
            return zero, zero, zero, np.ones(z.shape, bool)
        dz = np.diff(z, axis=axis)
        inner = [slice(None)] * 2
        nxt = [slice(None)] * 2
        inner[axis], nxt[axis] = slice(0, -1), slice(1, None)
        # backward when |p[i] - p[i-1]| < |p[i+1] - p[i]| (interior pixels only)
        use_bwd = np.abs(dz[tuple(inner)]) < np.abs(dz[tuple(nxt)])
        dx_, dy_, dz_ = (_one_sided(np.diff(p, axis=axis), use_bwd, axis) for p in (x, y, z))
        return dx_, dy_, dz_, np.abs(dz_) < big / 2

    ux, uy, uz, ok_u = derivative(1)
    vx, vy, vz, ok_v = derivative(0)
    # (du x dv) points away from the camera; negate it to face the camera
    nx = uz * vy - uy * vz
    ny = ux * vz - uz * vx
    nz = uy * vx - ux * vy
    norm = np.sqrt(nx * nx + ny * ny + nz * nz)
    good = valid & ok_u & ok_v & (norm > 0)
    inv = np.where(good, 1.0 / np.where(norm > 0, norm, 1), 0).astype(np.float32)
    return nx, ny, nz, inv


def normal_map(depth: np.ndarray, seg: np.ndarray, K: np.ndarray, normals: np.ndarray | None = None,
               boxes: list | None = None) -> np.ndarray:
    """(T, H, W) depth -> (T, H, W, 3) normal map in DSINE's colours, foreground only; uses
    ``normals`` (camera frame, facing the camera, e.g. from a renderer) when given.
    Normals are computed inside the foreground's bounding box only (the rest is black)."""
    K = np.asarray(K, dtype=np.float64)
    boxes = foreground_boxes(seg) if boxes is None else boxes
    out = np.zeros(depth.shape + (3,), np.uint8)
    for t in range(depth.shape[0]):
        box = boxes[t]
        if box is None:
            continue
        keep = seg[t][box] != SEG_BACKGROUND
        if normals is not None:
            n = normals[t][box]
            components = (n[..., 0], n[..., 1], n[..., 2])
        else:
            crop_K = K.copy()
            crop_K[0, 2] -= box[1].start
            crop_K[1, 2] -= box[0].start
            nx, ny, nz, inv = _normal_terms(depth[t][box], crop_K)
            components = (nx * inv, ny * inv, nz * inv)
        # DSINE's outward normal is -n; colour = (-n + 1) / 2 * 255, truncated like DSINE
        keep &= (components[0] != 0) | (components[1] != 0) | (components[2] != 0)
        target = out[t][box]
        for c, n_c in enumerate(components):
            channel = ((1.0 - n_c) * 127.5).astype(np.uint8)
            channel[~keep] = 0
            target[..., c] = channel
    return out


def project_keypoints(joint_3d_world: np.ndarray, camera: Camera, depth: np.ndarray, seg: np.ndarray,
                      tolerance: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """(T, 21, 3) world keypoints -> pixel coordinates (T, 21, 2) and visibility (T, 21).

    Visible: in front of the camera, inside the image, and at its nearest pixel either the hand
    is seen, nothing is (depth 0), or the surface seen is not nearer than the keypoint by more
    than ``tolerance`` metres. (Self-occlusion by the hand counts as visible.)
    """
    joint_3d_world = np.asarray(joint_3d_world, dtype=np.float64)
    uv, z = camera.project(joint_3d_world)
    t_idx = np.broadcast_to(np.arange(uv.shape[0])[:, None], z.shape)
    finite = np.all(np.isfinite(uv), axis=-1) & (z > 0)
    px = np.where(finite, np.round(uv[..., 0]), -1).astype(np.int64)
    py = np.where(finite, np.round(uv[..., 1]), -1).astype(np.int64)
    inside = finite & (px >= 0) & (px < camera.width) & (py >= 0) & (py < camera.height)
    pxc, pyc = np.clip(px, 0, camera.width - 1), np.clip(py, 0, camera.height - 1)
    d = depth[t_idx, pyc, pxc]
    s = seg[t_idx, pyc, pxc]
    unoccluded = (s == SEG_HAND) | (d <= 0) | (d >= z - tolerance)
    return uv, inside & unoccluded


@dataclass
class ConditionMaps:
    """PAM-style condition videos, each (T, H, W, 3) RGB uint8."""

    depth: np.ndarray
    seg: np.ndarray
    hand_keypoints: np.ndarray
    hand_mesh: np.ndarray
    normal: np.ndarray

    def items(self):
        return (("depth", self.depth), ("seg", self.seg), ("hand_keypoints", self.hand_keypoints),
                ("hand_mesh", self.hand_mesh), ("normal", self.normal))


def condition_maps(depth: np.ndarray, seg: np.ndarray, hand_mesh: np.ndarray, joint_2d: np.ndarray,
                   camera: Camera, joint_z: np.ndarray | None = None, normals: np.ndarray | None = None,
                   style: MapStyle | None = None) -> ConditionMaps:
    """All condition maps of one video from its raw captures and projected keypoints; keypoint
    maps are drawn on ``camera.canvas`` when it has one (the ``pam`` preset)."""
    style = MapStyle() if style is None else style
    boxes = foreground_boxes(seg)
    return ConditionMaps(
        depth=depth_map(depth, seg, boxes=boxes, style=style.depth),
        seg=seg_color_map(seg, boxes),
        hand_keypoints=hand_keypoint_map(joint_2d, camera.width, camera.height, joint_z, camera.canvas,
                                         style.limb_order),
        hand_mesh=np.asarray(hand_mesh, dtype=np.uint8),
        normal=normal_map(depth, seg, camera.K, normals, boxes),
    )
