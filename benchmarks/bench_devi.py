"""DeVI's Algorithm 1 against the simulator's contacts on engine episodes of successful grasps
(issue 15's bar: >= 90% of frames, contact onset within 2 frames).

Per rule variant, over the successful episodes: mean / min frame accuracy, mean / max onset
error, episodes meeting the bar. Variants, all on the same tracks of the same run:
- Algorithm 1 on the labels' tracks (projected object-surface points, ``joint_2d``);
- its forward pass alone (no backward pass);
- a proximity baseline: contact whenever a hand keypoint is within the rule's ``near`` distance
  of the object in the image (what a 2D-only rule without motion says), for the ratio;
- Algorithm 1 on hand keypoints with detector-like noise (Gaussian, px at 480 px height, and a
  fraction of frames lost), raw and with 3- and 5-frame smoothing;
- with ``--keypoints NAME``, Algorithm 1 on a real detector's keypoints (the npz of that name in
  each episode folder, e.g. mediapipe's on ``sim_rgb.mp4``), with and without gap filling.
Then time per episode: building the tracks (mesh load + projection) against the rule itself.

    python benchmarks/bench_devi.py [--episodes 6] [--dataset DIR] [--width 720 --height 480] [--keypoints NAME]
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering (EGL) unless the user chose otherwise

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from pam_engine.config import load_config
from pam_engine.dataset.reader import Episode, list_episodes
from pam_engine.devi.agreement import FRAME_ACCURACY_BAR, ONSET_BAR, compare, hand_level, summarize
from pam_engine.devi.contacts import ContactRuleConfig, contact_labels
from pam_engine.devi.tracks import episode_tracks
from pam_engine.pipeline import GenerateConfig, Generator


def generate(out: str, n: int, width: int, height: int, seed: int) -> str:
    quickstart = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"
    cfg = load_config(GenerateConfig, str(quickstart),
                      [f"episodes={n}", f"seed={seed}", f"width={width}", f"height={height}", "randomization.preview=false"])
    t0 = time.perf_counter()
    summary = Generator(cfg, out).run(progress=True)
    print(f"generated {summary.written} episodes ({width}x{height}) in {time.perf_counter() - t0:.0f} s")
    return out


def variants(tracks, rng, detector=None):
    """(name, labels) of every rule variant on one episode's tracks (``detector``: the same
    episode's tracks with a detector's keypoints)."""
    base = ContactRuleConfig().scaled(tracks.height, tracks.fps)
    out = [("algorithm 1", contact_labels(tracks.object, tracks.hand, base).contact),
           ("forward pass only", contact_labels(tracks.object, tracks.hand, replace(base, backward=False)).contact)]
    near = contact_labels(tracks.object, tracks.hand, base).distance <= base.near
    out.append(("proximity baseline", near))
    px = tracks.height / 480.0
    for sigma, lost in ((2.0, 0.0), (4.0, 0.1)):
        noisy = tracks.hand + rng.normal(scale=sigma * px, size=tracks.hand.shape)
        valid = rng.random(tracks.num_frames) >= lost
        for smooth in (1, 3, 5):
            labels = contact_labels(tracks.object, noisy, replace(base, smooth=smooth), hand_valid=valid).contact
            out.append((f"noise {sigma:g} px, {lost:.0%} lost, smooth {smooth}", labels))
    if detector is not None:
        for fill in (base.fill_gaps, 0):
            cfg = replace(base, fill_gaps=fill)
            labels = contact_labels(detector.object, detector.hand, cfg, hand_valid=detector.hand_valid).contact
            out.append((f"detector keypoints, fill gaps {fill}", labels))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", help="use this dataset instead of generating one")
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--width", type=int, default=720)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keypoints", metavar="NAME", help="also run on the detector npz of this name in each episode")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dataset or generate(f"{tmp}/data", args.episodes, args.width, args.height, args.seed)
        rng = np.random.default_rng(0)
        results: dict[str, list] = {}
        t_tracks, t_rule, used, failed = [], [], 0, 0
        for path in list_episodes(root):
            episode = Episode(path)
            if not episode.meta.success:
                failed += 1
                continue
            used += 1
            t0 = time.perf_counter()
            tracks = episode_tracks(episode)
            t1 = time.perf_counter()
            contact_labels(tracks.object, tracks.hand, ContactRuleConfig().scaled(tracks.height, tracks.fps))
            t_rule.append(time.perf_counter() - t1)
            t_tracks.append(t1 - t0)
            sim = hand_level(episode.labels["contacts"])
            detector = episode_tracks(episode, keypoints=path / args.keypoints) if args.keypoints else None
            if detector is not None:
                seen = detector.hand_valid.any(axis=1)
                print(f"{episode.name}: detector found the hand in {seen.sum()}/{len(seen)} frames, mean error "
                      f"{np.nanmean(np.linalg.norm(detector.hand - tracks.hand, axis=-1)[detector.hand_valid]):.1f} px")
            for name, labels in variants(tracks, rng, detector):
                results.setdefault(name, []).append(compare(episode.name, labels, sim))
    print(f"\n{used} successful episodes ({failed} failed grasps left out); bar: >= {FRAME_ACCURACY_BAR:.0%} of "
          f"frames and onset within {ONSET_BAR} frames; simulator contacts reduced to hand level (any part)")
    print(f"{'variant':<36} {'mean acc':>8} {'min acc':>8} {'onset mean':>10} {'onset max':>9} {'pass':>6}")
    base_acc = None
    for name, res in results.items():
        s = summarize(res)
        if name == "proximity baseline":
            base_acc = s.mean_accuracy
        print(f"{name:<36} {s.mean_accuracy:>8.3f} {s.min_accuracy:>8.3f} {s.mean_onset_error:>10.2f} "
              f"{str(s.max_onset_error):>9} {s.passed:>3}/{s.episodes}")
    if base_acc:
        s = summarize(results["algorithm 1"])
        print(f"algorithm 1 / proximity baseline, mean accuracy: {s.mean_accuracy / base_acc:.2f}x; "
              f"disagreeing frames {1 - s.mean_accuracy:.3f} vs {1 - base_acc:.3f}")
    if t_rule:
        print(f"time per episode: tracks {1e3 * np.mean(t_tracks):.1f} ms, rule {1e3 * np.mean(t_rule):.2f} ms "
              f"({np.mean(t_tracks) / np.mean(t_rule):.0f}x the rule)")


if __name__ == "__main__":
    main()
