"""Dataset checks for ``pam validate``: missing or unreadable files, shapes and dtypes, NaN, and
values that are wrong while their shapes are right (labels that disagree with each other, depth
or segmentation that cannot be), frame counts across every file and ``meta.json``, and episodes
missing from a dataset whose ``dataset.json`` says how many there are. Every episode is checked,
whatever is wrong with another: problems are reported per episode."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pam_engine.capture.labels import LABEL_DTYPES, LABEL_SHAPES
from pam_engine.conventions import SEG_HAND
from pam_engine.dataset.format import (
    CLAIMS_DIR,
    DEPTH_NPZ_FILE,
    DEPTH_RAW_FILE,
    DEPTH_UNITS_PER_METRE,
    FAILURES_FILE,
    LABELS_FILE,
    MAP_VIDEOS,
    META_FILE,
    QA_FILE,
    READABLE_VERSIONS,
    SEG_RAW_FILE,
    TMP_PREFIX,
    VIDEO_FILE,
    WORLD_MODEL_VIDEOS,
    WORLD_MODELS_KEY,
    ACTIONS_FILE,
    ACTIONS_MASK_FILE,
    EpisodeMeta,
    episode_name,
    is_allowed_root_entry,
    is_episode_name,
)
from pam_engine.dataset.reader import read_meta
from pam_engine.dataset.videoio import probe_video, read_depth_units
from pam_engine.errors import PamError

#: Tolerances of the consistency checks (labels are float32).
PROJECTION_TOL_PX = 0.05
FRAME_TOL_M = 1e-4
ROTATION_TOL = 1e-3
DATASET_FILE = "dataset.json"


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
        if entry.is_dir() and not entry.is_symlink() and is_episode_name(entry.name):
            try:
                report.episodes[entry.name] = validate_episode(entry, decode_videos)
            except Exception as exc:  # noqa: BLE001 - one episode's surprise must not hide the others
                report.episodes[entry.name] = [f"could not be checked ({type(exc).__name__}: {exc})"]
        elif entry.is_symlink():
            report.dataset.append(f"{entry.name}: a symbolic link (datasets hold real files only)")
        elif entry.is_dir() and entry.name.startswith(TMP_PREFIX):
            report.notes.append(f"{entry.name}: unfinished episode of a run that is running or was interrupted "
                                "(ignored; a later run removes it once its owner has ended)")
        elif entry.name == CLAIMS_DIR and entry.is_dir():
            claims = sorted(p.name for p in entry.glob("episode_*.json"))
            if claims:
                report.notes.append(f"{CLAIMS_DIR}: {len(claims)} episode(s) claimed by runs that are running or "
                                    "were killed (a later run clears a dead run's claims)")
        elif not is_allowed_root_entry(entry):
            report.dataset.append(f"{entry.name}: not an episode folder or a dataset file")
    failed = _failed_episodes(root, report)
    _check_description(root, report, failed)
    _note_rejected(root, report)
    if not report.episodes:
        report.dataset.append("no episodes (episode_NNNNNN folders) found")
    return report


def _note_rejected(root: Path, report: ValidationReport) -> None:
    """Episodes QA rejected (``qa.json`` "passed": false) are valid files but not good data: a note
    names them (docs/qa.md: consumers leave them out)."""
    from pam_engine.dataset.reader import is_rejected

    rejected = sorted(name for name in report.episodes if is_rejected(root / name))
    if rejected:
        shown = ", ".join(rejected[:10]) + (f" and {len(rejected) - 10} more" if len(rejected) > 10 else "")
        report.notes.append(f"{len(rejected)} episode(s) rejected by QA ({QA_FILE} 'passed': false; kept, not "
                            f"exported or trained on): {shown}")


def _check_qa_file(path: Path) -> list[str]:
    try:
        qa = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"{QA_FILE}: unreadable ({type(exc).__name__}: {exc})"]
    if not isinstance(qa, dict) or not isinstance(qa.get("passed"), bool):
        return [f"{QA_FILE}: expected a JSON object with a boolean 'passed' (written by pam qa)"]
    return []


def _failed_episodes(root: Path, report: ValidationReport) -> set[str]:
    failures = root / FAILURES_FILE
    names: set[str] = set()
    if not failures.is_file():
        return names
    for number, line in enumerate(failures.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            names.add(str(entry["episode"]))
        except (ValueError, KeyError, TypeError):
            report.dataset.append(f"{FAILURES_FILE}: line {number} is not a failure record")
    unresolved = names - set(report.episodes)  # an error retried on resume may have succeeded since
    if unresolved:
        report.notes.append(f"{FAILURES_FILE}: {len(unresolved)} episode(s) failed to be produced (see the file)")
    return names


def _check_description(root: Path, report: ValidationReport, failed: set[str]) -> None:
    """``dataset.json``: format and version, and the episodes it announces (gaps reported)."""
    path = root / DATASET_FILE
    if not path.is_file():
        return
    try:
        desc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        report.dataset.append(f"{DATASET_FILE}: unreadable ({exc})")
        return
    if not isinstance(desc, dict):
        report.dataset.append(f"{DATASET_FILE}: expected a JSON object")
        return
    from pam_engine.dataset.reader import read_description

    try:
        read_description(root)
    except PamError as exc:
        report.dataset.append(str(exc))
    count = desc.get("episodes", (desc.get("config") or {}).get("episodes"))
    if not isinstance(count, int) or count < 0:
        return
    expected = {episode_name(i) for i in range(count)}
    missing = sorted(expected - set(report.episodes) - failed)
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        report.dataset.append(f"{len(missing)} of {count} episode(s) missing, neither written nor recorded as "
                              f"failed: {shown}")
    extra = sorted(set(report.episodes) - expected)
    if extra:
        report.dataset.append(f"episode(s) beyond the {count} that {DATASET_FILE} announces: {', '.join(extra[:10])}")


def validate_episode(folder: Path, decode_videos: bool = True) -> list[str]:
    problems: list[str] = []
    if not (folder / META_FILE).is_file():
        return [f"missing {META_FILE}"]
    try:
        meta = read_meta(folder)
    except (PamError, OSError, UnicodeDecodeError) as exc:
        return [f"{META_FILE}: {exc}"]
    problems += _check_meta(meta)
    t, h, w = meta.num_frames, meta.height, meta.width

    depth_file = DEPTH_RAW_FILE if (folder / DEPTH_RAW_FILE).exists() or not (folder / DEPTH_NPZ_FILE).exists() \
        else DEPTH_NPZ_FILE
    expected = [LABELS_FILE, depth_file, SEG_RAW_FILE, *MAP_VIDEOS.values()]
    if meta.has_video:
        expected.append(VIDEO_FILE)
    elif (folder / VIDEO_FILE).exists():
        problems.append(f"{VIDEO_FILE} present but meta.has_video is false")
    world_files, found = _world_model_files(folder, meta)
    expected += world_files
    problems += found
    for name in expected:
        if (folder / name).is_symlink():
            problems.append(f"{name}: a symbolic link (episodes hold real files only)")
    missing = [name for name in expected if not (folder / name).is_file()]
    problems += [f"missing {name}" for name in missing]

    labels = depth = seg = None
    if LABELS_FILE not in missing:
        labels, found = _check_labels(folder / LABELS_FILE, t, len(meta.object_ids))
        problems += found
    if depth_file not in missing:
        depth, found = _check_depth(folder / depth_file, (t, h, w))
        problems += found
    if SEG_RAW_FILE not in missing:
        seg, found = _check_seg(folder / SEG_RAW_FILE, (t, h, w), meta)
        problems += found
    if labels is not None:
        problems += _check_label_consistency(labels, meta)
    if ACTIONS_FILE in expected and ACTIONS_FILE not in missing and ACTIONS_MASK_FILE not in missing:
        problems += _check_actions(folder, labels, meta)
    if depth is not None and seg is not None:
        holes = int(np.count_nonzero((seg > 0) & (depth == 0)))
        if holes:
            problems.append(f"{SEG_RAW_FILE}/{depth_file}: {holes} pixel(s) show an object or the hand but have "
                            "no depth")
    for name in expected:
        if name.endswith(".mp4") and name not in missing:
            problems += _check_video(folder / name, t, h, w, decode_videos)
    if (folder / QA_FILE).exists():
        problems += _check_qa_file(folder / QA_FILE)
    return problems


def _world_model_files(folder: Path, meta: EpisodeMeta) -> tuple[list[str], list[str]]:
    """The world-model files ``meta.extra["world_models"]`` names (docs/worldmodels.md), and
    problems with that entry or with such files present but not named."""
    entry = (meta.extra or {}).get(WORLD_MODELS_KEY) or {}
    known = {"actions": ACTIONS_FILE, "actions_mask": ACTIONS_MASK_FILE, **WORLD_MODEL_VIDEOS}
    if not isinstance(entry, dict):
        return [], [f"meta.extra.{WORLD_MODELS_KEY}: expected an object naming files, got {entry!r}"]
    problems = [f"meta.extra.{WORLD_MODELS_KEY}.{k}: {v!r}, expected {known[k]!r}" if k in known else
                f"meta.extra.{WORLD_MODELS_KEY}: unknown entry {k!r} (expected {', '.join(sorted(known))})"
                for k, v in entry.items() if known.get(k) != v]
    files = [known[k] for k in entry if known.get(k) == entry[k]]
    if (ACTIONS_FILE in files) != (ACTIONS_MASK_FILE in files):
        problems.append(f"meta.extra.{WORLD_MODELS_KEY}: {ACTIONS_FILE} and {ACTIONS_MASK_FILE} come together")
    for name in sorted(set(known.values()) - set(files)):
        if (folder / name).exists():
            problems.append(f"{name} present but meta.extra.{WORLD_MODELS_KEY} does not name it")
    return files, problems


def _check_actions(folder: Path, labels: dict | None, meta: EpisodeMeta) -> list[str]:
    """HandWorld's actions: dtype, shape, and the round trip to joint_3d and world_to_cam."""
    from pam_engine.dataset.actions import check_actions

    try:
        actions = np.load(folder / ACTIONS_FILE, allow_pickle=False)
        mask = np.load(folder / ACTIONS_MASK_FILE, allow_pickle=False)
    except _UNREADABLE as exc:
        return [f"{ACTIONS_FILE}/{ACTIONS_MASK_FILE}: unreadable ({type(exc).__name__}: {exc or 'empty file'})"]
    if actions.ndim != 2 or actions.shape[0] != meta.num_frames:
        return [f"{ACTIONS_FILE}: shape {actions.shape}, expected ({meta.num_frames}, 138)"]
    joint_3d = (labels or {}).get("joint_3d")
    w2c = np.asarray(meta.world_to_cam, dtype=np.float64)
    return [f"{ACTIONS_FILE}: {p}" for p in check_actions(actions, mask, joint_3d, w2c if w2c.shape == (4, 4) else None)]


def _check_meta(meta: EpisodeMeta) -> list[str]:
    out = []
    K = np.asarray(meta.K, dtype=np.float64)
    T = np.asarray(meta.world_to_cam, dtype=np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)):
        out.append(f"meta.K: expected a finite 3x3 matrix, got shape {K.shape}")
    elif not (K[0, 0] > 0 and K[1, 1] > 0 and np.allclose(K[2], [0, 0, 1])):
        out.append(f"meta.K: expected positive focal lengths and last row [0, 0, 1], got {K.tolist()}")
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        out.append(f"meta.world_to_cam: expected a finite 4x4 matrix, got shape {T.shape}")
    elif _rotation_error(T[None, :3, :3]) > ROTATION_TOL or not np.allclose(T[3], [0, 0, 0, 1]):
        out.append("meta.world_to_cam: not a rigid transform (rotation not orthonormal or last row not [0, 0, 0, 1])")
    if meta.width <= 0 or meta.height <= 0 or meta.width % 16 or meta.height % 16:
        out.append(f"meta: resolution {meta.width}x{meta.height} is not a positive multiple of 16")
    if meta.num_frames <= 0:
        out.append(f"meta.num_frames: expected > 0, got {meta.num_frames}")
    if not np.isfinite(meta.fps) or meta.fps <= 0:
        out.append(f"meta.fps: expected > 0, got {meta.fps}")
    if len(meta.object_ids) != len(meta.object_names):
        out.append(f"meta: {len(meta.object_ids)} object_ids but {len(meta.object_names)} object_names")
    if meta.format_version not in READABLE_VERSIONS:
        out.append(f"meta.format_version: {meta.format_version}, this engine reads {list(READABLE_VERSIONS)}")
    return out


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


_UNREADABLE = (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError)


def _check_labels(path: Path, t: int, n_obj: int) -> tuple[dict | None, list[str]]:
    try:
        labels = _load_npz(path)
    except _UNREADABLE as exc:
        return None, [f"{path.name}: unreadable ({type(exc).__name__}: {exc or 'empty file'})"]
    out = []
    good = {}
    for key, per_frame in LABEL_SHAPES.items():
        if key not in labels:
            out.append(f"{path.name}: missing key {key!r}")
            continue
        shape = (t,) + tuple(n_obj if d == "n" else d for d in per_frame)
        arr = labels[key]
        if arr.shape != shape:
            out.append(f"{path.name}[{key!r}]: shape {arr.shape}, expected {shape} ({t} frames)")
        elif arr.dtype != np.dtype(LABEL_DTYPES[key]):
            out.append(f"{path.name}[{key!r}]: dtype {arr.dtype}, expected {LABEL_DTYPES[key]}")
        elif arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            out.append(f"{path.name}[{key!r}]: holds {int(np.sum(~np.isfinite(arr)))} NaN/inf values")
        else:
            good[key] = arr
    return good, out


def _rotation_error(rotations: np.ndarray) -> float:
    """Largest deviation of R^T R from I, and of det R from 1, over a stack of 3x3 matrices."""
    r = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
    if not len(r):
        return 0.0
    gram = np.einsum("nji,njk->nik", r, r) - np.eye(3)
    return float(max(np.abs(gram).max(), np.abs(np.linalg.det(r) - 1).max()))


def _check_label_consistency(labels: dict, meta: EpisodeMeta) -> list[str]:
    """Labels that must agree with each other and with the camera: projection, frames, rotations."""
    out = []
    K = np.asarray(meta.K, dtype=np.float64)
    w2c = np.asarray(meta.world_to_cam, dtype=np.float64)
    if K.shape != (3, 3) or w2c.shape != (4, 4):
        return out
    j3, j2 = labels.get("joint_3d"), labels.get("joint_2d")
    if j3 is not None and j2 is not None:
        j3 = j3.astype(np.float64)
        ahead = j3[..., 2] > 1e-6
        uvw = j3 @ K.T
        with np.errstate(divide="ignore", invalid="ignore"):
            proj = uvw[..., :2] / uvw[..., 2:]
        err = np.abs(proj - j2).max(axis=-1)
        bad = ahead & ~(err <= PROJECTION_TOL_PX)
        if bad.any():
            f, k = np.argwhere(bad)[0]
            out.append(f"{LABELS_FILE}: joint_2d disagrees with the projection of joint_3d through meta.K at "
                       f"{int(bad.sum())} keypoint(s) (first: frame {f}, keypoint {k}, {float(err[f, k]):.2f} px)")
        behind = ~ahead & np.any(j2 != -1, axis=-1)
        if behind.any():
            out.append(f"{LABELS_FILE}: {int(behind.sum())} keypoint(s) behind the camera have joint_2d other than -1")
    for cam_key, world_key in (("joint_3d", "joint_3d_world"),):
        a, b = labels.get(cam_key), labels.get(world_key)
        if a is not None and b is not None:
            err = np.abs(b.astype(np.float64) @ w2c[:3, :3].T + w2c[:3, 3] - a).max(initial=0.0)
            if err > FRAME_TOL_M:
                out.append(f"{LABELS_FILE}: {cam_key} is not {world_key} in the camera frame of meta.world_to_cam "
                           f"(off by up to {err * 1000:.2f} mm)")
    for key in ("pose_y", "pose_y_world"):
        pose = labels.get(key)
        if pose is not None and _rotation_error(pose[..., :3, :3]) > ROTATION_TOL:
            out.append(f"{LABELS_FILE}[{key!r}]: rotation parts are not orthonormal (error "
                       f"{_rotation_error(pose[..., :3, :3]):.3g})")
    wrist = labels.get("wrist_pose_world")
    if wrist is not None:
        if _rotation_error(wrist[:, :3, :3]) > ROTATION_TOL:
            out.append(f"{LABELS_FILE}['wrist_pose_world']: rotation parts are not orthonormal")
        if not np.allclose(wrist[:, 3], [0, 0, 0, 1], atol=1e-6):
            out.append(f"{LABELS_FILE}['wrist_pose_world']: last rows are not [0, 0, 0, 1]")
    return out


def _check_depth(path: Path, shape: tuple) -> tuple[np.ndarray | None, list[str]]:
    try:
        if path.suffix == ".npz":  # format version 1: float32 metres
            arrays = _load_npz(path)
            if "depth" not in arrays:
                return None, [f"{path.name}: missing array 'depth'"]
            depth = arrays["depth"]
            if depth.dtype != np.float32:
                return None, [f"{path.name}: dtype {depth.dtype}, expected float32"]
        else:
            depth = read_depth_units(path).astype(np.float32) / DEPTH_UNITS_PER_METRE
    except Exception as exc:  # noqa: BLE001 - zip, npy and PyAV errors alike
        return None, [f"{path.name}: unreadable ({type(exc).__name__}: {exc or 'empty file'})"]
    if depth.shape != shape:
        return None, [f"{path.name}: shape {depth.shape}, expected {shape}"]
    if not np.all(np.isfinite(depth)):
        return None, [f"{path.name}: holds {int(np.sum(~np.isfinite(depth)))} NaN/inf depths"]
    if np.any(depth < 0):
        return None, [f"{path.name}: holds {int(np.sum(depth < 0))} negative depths"]
    return depth, []


def _check_seg(path: Path, shape: tuple, meta: EpisodeMeta) -> tuple[np.ndarray | None, list[str]]:
    try:
        arrays = _load_npz(path)
    except _UNREADABLE as exc:
        return None, [f"{path.name}: unreadable ({type(exc).__name__}: {exc or 'empty file'})"]
    if "seg" not in arrays:
        return None, [f"{path.name}: missing array 'seg'"]
    seg = arrays["seg"]
    if seg.shape != shape or seg.dtype != np.uint8:
        return None, [f"{path.name}: {seg.dtype} {seg.shape}, expected uint8 {shape}"]
    allowed = {0, SEG_HAND, *(int(i) for i in meta.object_ids)}
    bad = sorted(set(np.unique(seg).tolist()) - allowed)
    if bad:
        return seg, [f"{path.name}: segmentation ids {bad[:10]} are neither background (0), the hand ({SEG_HAND}) "
                     f"nor this episode's objects {sorted(int(i) for i in meta.object_ids)}"]
    return seg, []


def _check_video(path: Path, t: int, h: int, w: int, decode: bool) -> list[str]:
    try:
        info = probe_video(path, count_frames=decode)
    except Exception as exc:  # noqa: BLE001 - PyAV raises several error types for corrupt files
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
