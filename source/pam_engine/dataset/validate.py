"""Dataset checks for ``pam validate``: missing files, unreadable files, shape mismatches, NaN,
and frame counts that disagree between videos, raw arrays and labels — reported per episode."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pam_engine.capture.labels import LABEL_SHAPES
from pam_engine.conventions import SEG_HAND, SEG_OTHER_OBJECT
from pam_engine.dataset.format import (
    DEPTH_RAW_FILE,
    FAILURES_FILE,
    LABELS_FILE,
    MAP_VIDEOS,
    META_FILE,
    SEG_RAW_FILE,
    TMP_PREFIX,
    VIDEO_FILE,
    EpisodeMeta,
    is_allowed_root_entry,
    is_episode_name,
)
from pam_engine.dataset.reader import read_meta
from pam_engine.dataset.videoio import probe_video
from pam_engine.errors import PamError

VALID_SEG_IDS = frozenset(range(0, SEG_OTHER_OBJECT + 1)) | {SEG_HAND}


@dataclass
class ValidationReport:
    """Problems per episode (an empty list = valid), dataset-level problems and notes."""

    episodes: dict[str, list[str]] = field(default_factory=dict)
    dataset: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.dataset and not any(self.episodes.values())

    @property
    def num_problems(self) -> int:
        return len(self.dataset) + sum(len(p) for p in self.episodes.values())


def validate_dataset(root: str | Path, decode_videos: bool = True) -> ValidationReport:
    """Check every episode of dataset folder ``root``. ``decode_videos`` counts frames by
    decoding (exact) rather than trusting container headers."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist or is not a folder")
    report = ValidationReport()
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and is_episode_name(entry.name):
            report.episodes[entry.name] = validate_episode(entry, decode_videos)
        elif entry.is_dir() and entry.name.startswith(TMP_PREFIX):
            report.notes.append(f"{entry.name}: unfinished episode left by an interrupted run (ignored; safe to delete)")
        elif not is_allowed_root_entry(entry):
            report.dataset.append(f"{entry.name}: not an episode folder or a dataset file")
    failures = root / FAILURES_FILE
    if failures.is_file():
        count = sum(1 for line in failures.read_text(encoding="utf-8").splitlines() if line.strip())
        report.notes.append(f"{FAILURES_FILE}: {count} episode(s) failed to be produced (see the file)")
    if not report.episodes:
        report.dataset.append("no episodes (episode_NNNNNN folders) found")
    return report


def validate_episode(folder: Path, decode_videos: bool = True) -> list[str]:
    problems: list[str] = []
    if not (folder / META_FILE).is_file():
        return [f"missing {META_FILE}"]
    try:
        meta = read_meta(folder)
    except PamError as exc:
        return [f"{META_FILE}: {exc}"]
    problems += _check_meta(meta)
    t, h, w = meta.num_frames, meta.height, meta.width

    expected = [LABELS_FILE, DEPTH_RAW_FILE, SEG_RAW_FILE, *MAP_VIDEOS.values()]
    if meta.has_video:
        expected.append(VIDEO_FILE)
    elif (folder / VIDEO_FILE).exists():
        problems.append(f"{VIDEO_FILE} present but meta.has_video is false")
    missing = [name for name in expected if not (folder / name).is_file()]
    problems += [f"missing {name}" for name in missing]

    if LABELS_FILE not in missing:
        problems += _check_labels(folder / LABELS_FILE, t, len(meta.object_ids))
    if DEPTH_RAW_FILE not in missing:
        problems += _check_raw(folder / DEPTH_RAW_FILE, "depth", (t, h, w), np.float32)
    if SEG_RAW_FILE not in missing:
        problems += _check_raw(folder / SEG_RAW_FILE, "seg", (t, h, w), np.uint8)
    for name in expected:
        if name.endswith(".mp4") and name not in missing:
            problems += _check_video(folder / name, t, h, w, decode_videos)
    return problems


def _check_meta(meta: EpisodeMeta) -> list[str]:
    out = []
    K = np.asarray(meta.K, dtype=np.float64)
    T = np.asarray(meta.world_to_cam, dtype=np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)):
        out.append(f"meta.K: expected a finite 3x3 matrix, got shape {K.shape}")
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        out.append(f"meta.world_to_cam: expected a finite 4x4 matrix, got shape {T.shape}")
    if meta.width <= 0 or meta.height <= 0 or meta.width % 16 or meta.height % 16:
        out.append(f"meta: resolution {meta.width}x{meta.height} is not a positive multiple of 16")
    if meta.num_frames <= 0:
        out.append(f"meta.num_frames: expected > 0, got {meta.num_frames}")
    if not np.isfinite(meta.fps) or meta.fps <= 0:
        out.append(f"meta.fps: expected > 0, got {meta.fps}")
    if len(meta.object_ids) != len(meta.object_names):
        out.append(f"meta: {len(meta.object_ids)} object_ids but {len(meta.object_names)} object_names")
    return out


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _check_labels(path: Path, t: int, n_obj: int) -> list[str]:
    try:
        labels = _load_npz(path)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        return [f"{path.name}: unreadable ({exc})"]
    out = []
    for key, per_frame in LABEL_SHAPES.items():
        if key not in labels:
            out.append(f"{path.name}: missing key {key!r}")
            continue
        shape = (t,) + tuple(n_obj if d == "n" else d for d in per_frame)
        arr = labels[key]
        if arr.shape != shape:
            out.append(f"{path.name}[{key!r}]: shape {arr.shape}, expected {shape} ({t} frames)")
        elif arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            out.append(f"{path.name}[{key!r}]: holds {int(np.sum(~np.isfinite(arr)))} NaN/inf values")
    return out


def _check_raw(path: Path, key: str, shape: tuple, dtype) -> list[str]:
    try:
        arrays = _load_npz(path)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        return [f"{path.name}: unreadable ({exc})"]
    if key not in arrays:
        return [f"{path.name}: missing array {key!r}"]
    arr = arrays[key]
    if arr.shape != shape or arr.dtype != dtype:
        return [f"{path.name}: {arr.dtype} {arr.shape}, expected {np.dtype(dtype).name} {shape}"]
    if key == "depth":
        if not np.all(np.isfinite(arr)):
            return [f"{path.name}: holds {int(np.sum(~np.isfinite(arr)))} NaN/inf depths"]
        if np.any(arr < 0):
            return [f"{path.name}: holds negative depths"]
    if key == "seg":
        bad = sorted(set(np.unique(arr).tolist()) - VALID_SEG_IDS)
        if bad:
            return [f"{path.name}: unknown segmentation ids {bad[:10]}"]
    return []


def _check_video(path: Path, t: int, h: int, w: int, decode: bool) -> list[str]:
    try:
        info = probe_video(path, count_frames=decode)
    except Exception as exc:  # PyAV raises several error types for corrupt files
        return [f"{path.name}: unreadable video ({type(exc).__name__}: {exc})"]
    out = []
    if (info["width"], info["height"]) != (w, h):
        out.append(f"{path.name}: {info['width']}x{info['height']} frames, expected {w}x{h}")
    if info["frames"] != t:
        out.append(f"{path.name}: {info['frames']} frames, expected {t}")
    return out


def format_report(report: ValidationReport) -> str:
    lines = []
    for name, problems in report.episodes.items():
        if problems:
            lines.append(f"{name}: {len(problems)} problem(s)")
            lines += [f"  - {p}" for p in problems]
        else:
            lines.append(f"{name}: ok")
    lines += [f"dataset: {p}" for p in report.dataset]
    lines += [f"note: {n}" for n in report.notes]
    bad = sum(1 for p in report.episodes.values() if p)
    lines.append(f"{len(report.episodes)} episode(s), {bad} with problems, {report.num_problems} problem(s) in total")
    return "\n".join(lines)
