"""The on-disk episode format: file names, metadata, and lossless array files.

An episode is one folder ``episode_NNNNNN/`` holding:
- ``meta.json``: ``EpisodeMeta`` (camera K/extrinsics, size, fps, objects, seed, prompt, versions,
  success, failure reason, ...);
- ``labels.npz``: ground truth in DexYCB's layout (``capture.labels.LABEL_SHAPES``), camera frame,
  plus ``*_world`` copies;
- ``depth_raw.npz`` (``depth``: float32 (T, H, W) metres, 0 = no surface) and ``seg_raw.npz``
  (``seg``: uint8 (T, H, W) DexYCB ids), both lossless;
- ``sim_rgb.mp4`` and one mp4 per condition map (``depth``, ``seg``, ``hand_keypoints``,
  ``hand_mesh``, ``normal``), H.264 yuv420p; ``video.mp4`` only when the diffusion stages ran.
Episodes are written to a ``.tmp-*`` sibling and renamed when complete.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
EPISODE_PREFIX = "episode_"
EPISODE_RE = re.compile(r"^episode_\d{6,}$")
TMP_PREFIX = ".tmp-"

META_FILE = "meta.json"
LABELS_FILE = "labels.npz"
DEPTH_RAW_FILE = "depth_raw.npz"
SEG_RAW_FILE = "seg_raw.npz"
#: The photoreal video (present only when the diffusion stages ran).
VIDEO_FILE = "video.mp4"
#: Videos always written: name -> file.
MAP_VIDEOS: dict[str, str] = {
    "sim_rgb": "sim_rgb.mp4",
    "depth": "depth.mp4",
    "seg": "seg.mp4",
    "hand_keypoints": "hand_keypoints.mp4",
    "hand_mesh": "hand_mesh.mp4",
    "normal": "normal.mp4",
}
#: One JSON line per episode that failed to be produced (written by ``EpisodeWriter.record_failure``).
FAILURES_FILE = "failures.jsonl"
#: Files a dataset folder may hold besides episodes (viewer page, dataset index, failure log, the s0
#: split lists ``pam import-dexycb`` writes).
ROOT_FILES = frozenset({"index.html", "dataset.json", FAILURES_FILE, "s0_train.txt", "s0_val.txt"})


def episode_name(index: int) -> str:
    if index < 0:
        raise ValueError(f"episode index must be >= 0, got {index}")
    return f"{EPISODE_PREFIX}{index:06d}"


def is_episode_name(name: str) -> bool:
    return bool(EPISODE_RE.match(name))


def is_allowed_root_entry(path: Path) -> bool:
    """Whether a dataset folder may contain this entry (episodes, temporary episodes, index files)."""
    name = path.name
    if name.startswith(TMP_PREFIX):
        return True
    if path.is_dir():
        return is_episode_name(name)
    return name in ROOT_FILES


@dataclass
class EpisodeMeta:
    """``meta.json``: everything needed to interpret an episode besides its arrays."""

    K: list[list[float]]
    world_to_cam: list[list[float]]
    width: int
    height: int
    fps: float
    num_frames: int
    object_ids: list[int]
    object_names: list[str]
    seed: int
    prompt: str = ""
    engine_version: str = ""
    policy: str = ""
    policy_version: str = ""
    hand_model: str = "builtin"
    target_object: int = 0
    success: bool = False
    failure_reason: str = ""
    has_video: bool = False
    format_version: int = FORMAT_VERSION
    extra: dict = field(default_factory=dict)  # free-form JSON data (e.g. diffusion settings)


def save_npz(path: str | Path, compresslevel: int = 1, **arrays: np.ndarray) -> Path:
    """A standard ``.npz`` (``np.load`` reads it) with a chosen deflate level: level 1 packs float
    depth nearly as well as ``savez_compressed`` in half the time."""
    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as zf:
        for name, array in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)
    return path
