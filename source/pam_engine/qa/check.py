"""QA of episodes and datasets: detect, measure, judge, and write ``qa.json`` per episode and
``qa_summary.json`` per dataset, atomically (docs/qa.md)."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pam_engine.dataset.format import QA_FILE, QA_SUMMARY_FILE, TMP_PREFIX
from pam_engine.dataset.reader import Episode, list_episodes, read_qa
from pam_engine.dataset.videoio import read_video
from pam_engine.qa.config import QaConfig
from pam_engine.qa.detector import detector_version, find_detector_python, run_detector
from pam_engine.qa.metrics import flicker, keypoint_figures

QA_VERSION = 1


def write_json_atomic(path: Path, data: dict) -> Path:
    """``data`` as JSON at ``path``, written to a temporary sibling and renamed (never half a file)."""
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_text(json.dumps(data, indent=1, allow_nan=False), encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def judge(figures: dict, cfg: QaConfig) -> tuple[dict, list[str]]:
    """Pass/fail of each check (None: not judged) and the reasons of the failures."""
    checks: dict[str, bool | None] = {}
    reasons: list[str] = []
    rate = figures["detection_rate"]
    if rate is None:
        checks["hand_in_view"] = False
        reasons.append(f"the labels show the hand ({cfg.min_joints_in_view}+ joints in the image) in no frame")
    else:
        checks["detection_rate"] = rate >= cfg.min_detection_rate
        if not checks["detection_rate"]:
            reasons.append(f"detector found the hand in {rate:.0%} of the frames showing it "
                           f"(minimum {cfg.min_detection_rate:.0%})")
    error = figures["keypoint_error_px"]
    if cfg.max_keypoint_error is not None:
        checks["keypoint_error"] = error is not None and error <= cfg.max_keypoint_error
        if not checks["keypoint_error"]:
            reasons.append("no visible joint could be compared" if error is None else
                           f"keypoint error {error:.1f} px > {cfg.max_keypoint_error:g} px")
    temporal = figures["temporal"]
    at0, best, lag = temporal["error_at_labels_px"], temporal["error_at_best_lag_px"], temporal["best_lag"]
    if at0 is not None and best is not None:
        gain = at0 - best
        shifted = lag != 0 and gain > max(cfg.shift_min_gain_px, cfg.shift_rel_gain * at0)
        checks["temporal_alignment"] = not shifted
        if shifted:
            reasons.append(f"video is {abs(lag)} frame(s) {'ahead of' if lag > 0 else 'behind'} the labels "
                           f"(error {best:.1f} px at lag {lag:+d} against {at0:.1f} px at the labels' frame)")
    mirror = figures["mirror"]
    if at0 is not None:
        mirrored_error, right_rate = mirror["error_mirrored_px"], mirror["right_hand_rate"]
        closer_mirrored = mirrored_error is not None and mirrored_error < 0.7 * at0
        left_hand = right_rate is not None and right_rate < 0.5
        checks["not_mirrored"] = not (closer_mirrored or left_hand)
        if closer_mirrored:
            reasons.append(f"video looks mirrored: error {mirrored_error:.1f} px against the mirrored labels, "
                           f"{at0:.1f} px against the labels")
        if left_hand:
            reasons.append(f"detector sees a left hand in {1 - right_rate:.0%} of the detected frames "
                           "(the engine's hand is a right hand: mirrored video?)")
    return checks, reasons


def check_episode(path: str | Path, cfg: QaConfig, python: str | Path | None = None, write: bool = True,
                  version: str | None = None) -> dict:
    """QA of one episode's ``cfg.video``: the figures, the checks, ``passed``; written to its
    ``qa.json`` when ``write``. FileNotFoundError naming the video when the episode lacks it."""
    ep = Episode(path)
    video = ep.video_path(cfg.video)
    if not video.is_file():
        raise FileNotFoundError(f"{ep.name} has no {video.name}")
    python = python or cfg.detector_python
    det = run_detector(video, python)
    meta = ep.meta
    if (det.width, det.height) != (meta.width, meta.height) or det.num_frames != meta.num_frames:
        raise ValueError(f"{ep.name}/{video.name}: {det.num_frames} frames of {det.width}x{det.height}, "
                         f"meta.json says {meta.num_frames} of {meta.width}x{meta.height}")
    labels = ep.labels
    figures = keypoint_figures(det.keypoints, det.present, det.is_right, labels["joint_2d"], labels["joint_visible"],
                               meta.width, meta.height, cfg.max_lag, cfg.min_joints_in_view)
    figures["flicker"] = flicker(read_video(video), ep.seg)
    checks, reasons = judge(figures, cfg)
    result = {"qa_version": QA_VERSION, "video": video.name, "detector": version or detector_version(python),
              "width": meta.width, "height": meta.height,
              "thresholds": {"max_keypoint_error_px": cfg.max_keypoint_error,
                             "min_detection_rate": cfg.min_detection_rate, "max_lag": cfg.max_lag,
                             "min_joints_in_view": cfg.min_joints_in_view},
              **figures, "checks": checks, "failures": reasons, "passed": not reasons}
    if write:
        write_json_atomic(ep.path / QA_FILE, result)
    return result


@dataclass
class DatasetQa:
    """One ``pam qa`` run: results of the checked episodes, and those skipped with the reason."""

    results: dict[str, dict] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return [name for name, r in self.results.items() if not r["passed"]]


def check_dataset(root: str | Path, cfg: QaConfig, progress: bool = True, only_missing: bool = False) -> DatasetQa:
    """QA of every episode of ``root`` that has ``cfg.video`` (the others are skipped and listed);
    ``only_missing`` leaves episodes that already have a ``qa.json``. Writes ``qa_summary.json``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist or is not a folder")
    cfg.check()
    python = find_detector_python(cfg.detector_python)  # a missing environment fails before any work
    version = detector_version(python)
    run = DatasetQa()
    paths = list_episodes(root)
    for path in tqdm(paths, desc="qa", disable=not progress):
        if only_missing and read_qa(path) is not None:
            continue
        try:
            run.results[path.name] = check_episode(path, cfg, python, version=version)
        except FileNotFoundError as exc:
            run.skipped[path.name] = str(exc)
        except (ValueError, OSError, KeyError) as exc:  # unreadable labels or video: named, the rest go on
            run.skipped[path.name] = f"could not be checked ({type(exc).__name__}: {exc})"
    run.summary = write_summary(root, skipped=run.skipped)
    return run


def write_summary(root: str | Path, skipped: dict[str, str] | None = None) -> dict:
    """Rebuild ``qa_summary.json`` from every episode's ``qa.json`` (the source of truth: runs that
    share the folder, or resume, agree on it): figures per episode, means, the ``rejected`` list."""
    root = Path(root)
    episodes = {}
    for path in list_episodes(root):
        qa = read_qa(path)
        if qa is None or "passed" not in qa:
            continue
        episodes[path.name] = {k: qa.get(k) for k in ("video", "passed", "detection_rate", "keypoint_error_px",
                                                        "pck", "failures")}
        episodes[path.name]["best_lag"] = (qa.get("temporal") or {}).get("best_lag")
        episodes[path.name]["flicker_ratio"] = (qa.get("flicker") or {}).get("ratio")
    errors = [e["keypoint_error_px"] for e in episodes.values() if e["keypoint_error_px"] is not None]
    rates = [e["detection_rate"] for e in episodes.values() if e["detection_rate"] is not None]
    summary = {
        "checked": len(episodes),
        "passed": sum(1 for e in episodes.values() if e["passed"]),
        "rejected": sorted(n for n, e in episodes.items() if not e["passed"]),
        "mean_keypoint_error_px": float(np.mean(errors)) if errors else None,
        "mean_detection_rate": float(np.mean(rates)) if rates else None,
        "skipped": dict(skipped or {}),
        "episodes": episodes,
    }
    write_json_atomic(root / QA_SUMMARY_FILE, summary)
    return summary


def format_summary(run: DatasetQa) -> str:
    lines = []
    for name, r in run.results.items():
        err = r["keypoint_error_px"]
        pck = r["pck"]
        rate = r["detection_rate"]
        lines.append(f"{name}: {'passed' if r['passed'] else 'REJECTED'}  detection "
                     f"{'-' if rate is None else f'{rate:.0%}'}  error "
                     f"{'-' if err is None else f'{err:.1f} px'}  PCK@5/10/20 "
                     + "/".join("-" if pck[k] is None else f"{pck[k]:.2f}" for k in ("5", "10", "20"))
                     + f"  best lag {r['temporal']['best_lag']}"
                     + ("  worst frames " + ", ".join(f"{w['frame']} ({w['error_px']:.1f} px)" for w in r["worst_frames"][:3])
                        if r["worst_frames"] else ""))
        lines += [f"  - {reason}" for reason in r["failures"]]
    for name, why in run.skipped.items():
        lines.append(f"{name}: skipped ({why})")
    s = run.summary
    lines.append(f"{len(run.results)} episode(s) checked, {len(run.failed)} rejected, {len(run.skipped)} skipped; "
                 f"dataset: {s.get('passed', 0)} of {s.get('checked', 0)} passed"
                 + (f", mean error {s['mean_keypoint_error_px']:.1f} px" if s.get("mean_keypoint_error_px") is not None
                    else ""))
    return "\n".join(lines)
