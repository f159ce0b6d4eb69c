"""How close the engine's condition maps are to what PAM's released weights were trained on.

Generates one episode on the embedded default (720x480, 49 frames, the ``pam`` camera preset and
map style, i.e. the defaults) and measures:
- depth: median RGB distance of the foreground pixels to matplotlib's ``inferno`` palette and to a
  grey ramp, for our maps in memory, as written to ``depth.mp4``, and in the "grey" style; and where
  along inferno the foreground lies (percentiles);
- seg: the colours of the hand pixels (seg id 255) in our map;
- keypoints: overlap (IoU of the drawn pixels, and the share of pixels of identical colour) of our
  keypoint map with an independent drawing of PAM's rule (``showHandJoints`` on the 640x480
  DexYCB canvas with its ``joint_3d`` limb order, then a nearest resize to 720x480, written here
  from the rule's description), and of the old square-pixel drawing (720x480 canvas, far-to-near
  limbs) with the same reference.
Given ``--pam-val DIR`` (PAM's ``val_resources/comb_val``: ``val_depth.mp4``, ``val_seg_mask.mp4``),
the same depth and seg figures are measured on PAM's shipped validation videos.

    MUJOCO_GL=egl PYTHONPATH=source:diffusion python benchmarks/bench_maps.py [--pam-val DIR] [--seed 3]

Nothing here asserts anything; it prints figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "source"), str(ROOT / "diffusion"), str(ROOT / "tests" / "capture")]  # + the reference drawing

import numpy as np  # noqa: E402
from matplotlib import colormaps  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

from pam_engine.capture import maps  # noqa: E402
from pam_reference import pam_rule_drawing  # noqa: E402
from pam_engine.config import load_config  # noqa: E402
from pam_engine.dataset.reader import list_episodes, load_episode  # noqa: E402
from pam_engine.dataset.videoio import read_video  # noqa: E402
from pam_engine.pipeline import GenerateConfig, Generator  # noqa: E402

INFERNO = np.asarray(colormaps["inferno"].colors) * 255.0
GREY = np.repeat(np.arange(256.0)[:, None], 3, axis=1)
#: Pixels of a decoded map darker than this in every channel count as background.
BLACK = 30


def inferno_positions(rgb: np.ndarray) -> np.ndarray:
    """Position in [0, 1] along inferno of each non-black pixel (nearest palette entry / 255)."""
    px = rgb.reshape(-1, 3).astype(np.float64)
    fg = px[px.max(axis=1) > BLACK]
    if len(fg) > 400_000:
        fg = fg[np.random.default_rng(0).choice(len(fg), 400_000, replace=False)]
    return cKDTree(INFERNO).query(fg)[1] / 255.0


def palette_distances(rgb: np.ndarray) -> tuple[float, float, int]:
    """Median distance of the non-black pixels of (..., 3) to inferno and to the grey ramp."""
    px = rgb.reshape(-1, 3).astype(np.float64)
    fg = px[px.max(axis=1) > BLACK]
    if len(fg) > 400_000:
        fg = fg[np.random.default_rng(0).choice(len(fg), 400_000, replace=False)]
    return (float(np.median(cKDTree(INFERNO).query(fg)[0])), float(np.median(cKDTree(GREY).query(fg)[0])),
            len(fg))


def top_colours(rgb: np.ndarray, mask: np.ndarray | None = None, n: int = 3, quantum: int = 1):
    px = rgb.reshape(-1, 3) if mask is None else rgb[mask]
    px = (px.astype(int) + quantum // 2) // quantum * quantum
    colours, counts = np.unique(px, axis=0, return_counts=True)
    order = np.argsort(-counts)[:n]
    total = counts.sum()
    return ", ".join(f"{colours[i].tolist()} {float(counts[i]) / total:.3f}" for i in order)


def overlap(ours: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """IoU of the drawn (non-black) pixels, and the share of drawn pixels whose colour is equal."""
    a, b = ours.any(-1), ref.any(-1)
    union = np.logical_or(a, b)
    same = np.logical_and(union, np.all(ours == ref, axis=-1))
    return float(np.logical_and(a, b).sum() / union.sum()), float(same.sum() / union.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pam-val", type=Path, help="folder with PAM's val_depth.mp4 and val_seg_mask.mp4")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--object", default="025_mug")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "data"
        cfg = load_config(GenerateConfig, None, [
            "episodes=1", f"seed={args.seed}", "keep_failed=true", f"randomization.objects=[{args.object}]"])
        Generator(cfg, out).run(progress=False)
        ep = load_episode(list_episodes(out)[0])
        depth, seg, labels = ep.depth, ep.seg, ep.labels
        depth_mp4, seg_mp4, kp_mp4 = ep.video("depth"), ep.video("seg"), ep.video("hand_keypoints")
        canvas = tuple(ep.meta.extra["maps"]["keypoint_canvas"])
        K, w, h = ep.K, ep.meta.width, ep.meta.height

    print(f"episode: {args.object}, seed {args.seed}, {w}x{h}, keypoint canvas {canvas}, "
          f"fx/fy = {K[0, 0] / K[1, 1]:.4f}")
    print("\n# depth: median RGB distance of foreground pixels (to inferno | to grey ramp)")
    ours = maps.depth_map(depth, seg)
    grey = maps.depth_map(depth, seg, style="grey")
    rows = [("ours, pam style (memory)", ours), ("ours, pam style (depth.mp4)", depth_mp4),
            ("ours, grey style (memory)", grey)]
    if args.pam_val:
        rows.append(("PAM val_depth.mp4", read_video(args.pam_val / "val_depth.mp4")))
    for name, video in rows:
        d_inf, d_grey, n = palette_distances(video)
        print(f"  {name:30s} {d_inf:7.1f} | {d_grey:7.1f}   ({n} px)")
    print("  position along inferno of the foreground pixels (10th / 50th / 90th percentile):")
    for name, video in rows:
        if "grey" not in name:
            q = np.percentile(inferno_positions(video), [10, 50, 90])
            print(f"  {name:30s} {q[0]:.2f} / {q[1]:.2f} / {q[2]:.2f}")

    print("\n# seg: colours of the hand")
    hand = seg == 255
    print(f"  ours (memory), hand pixels:   {top_colours(maps.seg_color_map(seg), hand)}")
    print(f"  ours (seg.mp4), hand pixels:  {top_colours(seg_mp4, hand)}")
    if args.pam_val:
        val = read_video(args.pam_val / "val_seg_mask.mp4")
        fg = val.max(-1) > BLACK
        print(f"  PAM val_seg_mask.mp4, all foreground (quantised to 8): {top_colours(val, fg, 4, 8)}")
        for name, colour in (("[92,0,255] (entry 149)", (92, 0, 255)), ("[184,0,255] (entry 107)", (184, 0, 255))):
            near = (np.abs(val.astype(int) - colour).sum(-1) < 40) & fg
            print(f"  PAM val_seg_mask.mp4 pixels within L1 40 of {name}: {near.sum() / fg.sum():.3f} of foreground")

    if args.pam_val and (args.pam_val / "val_hand_keypoints.mp4").is_file():
        kp_val = read_video(args.pam_val / "val_hand_keypoints.mp4")
        hand_val = np.abs(val.astype(int) - (184, 0, 255)).sum(-1) < 60
        ratios, dys = [], []
        for t in range(min(len(kp_val), len(hand_val))):
            ky, kx = np.nonzero(kp_val[t].max(-1) > BLACK)
            hy, hx = np.nonzero(hand_val[t])
            if len(kx) > 200 and len(hx) > 200:
                ratios.append(kx.mean() / hx.mean())
                dys.append(ky.mean() - hy.mean())
        print(f"  PAM val_hand_keypoints.mp4 vs its seg: keypoint centroid x / hand centroid x = "
              f"{np.median(ratios):.3f} (median of {len(ratios)} frames), y offset {np.median(dys):+.1f} px")

    print("\n# keypoints: overlap with PAM's rule at 640x480, resized nearest (IoU | equal colour)")
    j2, j3 = labels["joint_2d"].astype(np.float64), labels["joint_3d"].astype(np.float64)
    ok = [t for t in range(len(j2)) if not np.any(np.all(j2[t] == -1, axis=-1))]  # -1: not projected
    ref = np.zeros((len(ok), h, w, 3), np.uint8)
    cols = (np.arange(w) * canvas[0]) // w
    for i, t in enumerate(ok):
        on_canvas = (j2[t] + 0.5) * [canvas[0] / w, canvas[1] / h] - 0.5
        ref[i] = pam_rule_drawing(on_canvas, j3[t, :, 2])[:, cols] if canvas == (640, 480) else 0
    new = maps.hand_keypoint_map(j2[ok], w, h, j3[ok, :, 2], canvas=canvas)
    old = maps.hand_keypoint_map(j2[ok], w, h, j3[ok, :, 2], order="depth")
    for name, video in (("ours (memory)", new), ("ours (hand_keypoints.mp4)", kp_mp4[ok]),
                        ("old: 720x480 canvas, far-to-near", old)):
        iou, same = overlap(video if "mp4" not in name else np.where(video.max(-1, keepdims=True) > BLACK, video, 0),
                            ref)
        print(f"  {name:34s} {iou:.3f} | {same:.3f}")
    print(f"  ({len(ok)} of {len(j2)} frames have all 21 keypoints projected)")


if __name__ == "__main__":
    main()
