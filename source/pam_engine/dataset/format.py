"""The on-disk episode format: file names, metadata, and lossless array files.

An episode is one folder ``episode_NNNNNN/`` holding:
- ``meta.json``: ``EpisodeMeta`` (camera K/extrinsics, size, fps, objects, seed, prompt, versions,
  success, failure reason, ...);
- ``labels.npz``: ground truth in DexYCB's layout (``capture.labels.LABEL_SHAPES``), camera frame,
  plus ``*_world`` copies;
- ``depth_raw.mkv``: metric depth as FFV1 (lossless) gray16le video in Matroska, one frame per
  frame, value = depth in units of 0.1 mm (``depth_m = value / 10000``; 0 = no surface), exact to
  0.05 mm; format version 1 stored float32 metres in ``depth_raw.npz`` (still read);
- ``seg_raw.npz`` (``seg``: uint8 (T, H, W) DexYCB ids), lossless;
- ``sim_rgb.mp4`` and one mp4 per condition map (``depth``, ``seg``, ``hand_keypoints``,
  ``hand_mesh``, ``normal``), H.264 yuv420p; ``video.mp4`` only when the diffusion stages ran;
- for the world models next to PAM (docs/worldmodels.md), when ``meta.extra["world_models"]``
  names them: ``actions.npy``/``actions_mask.npy`` (HandWorld's 138-D action, ``dataset.actions``)
  and ``static.mp4`` (DWM's static-scene video: the objects at their initial poses, no hand).
- ``qa.json`` once the video was checked against the labels (``pam_engine.qa``).
Episodes are written to a ``.tmp-<owner>-*`` sibling and renamed when complete; runs sharing a
folder claim episodes in ``.claims/`` (``dataset.claims``).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Version of the episode and dataset layout (1: depth as float32 npz; 2: depth as FFV1 uint16).
FORMAT_VERSION = 2
#: Versions this engine reads.
READABLE_VERSIONS = (1, 2)
DATASET_FORMAT = "pam-engine-dataset"
EPISODE_PREFIX = "episode_"
EPISODE_RE = re.compile(r"^episode_\d{6,}$")
TMP_PREFIX = ".tmp-"

META_FILE = "meta.json"
LABELS_FILE = "labels.npz"
DEPTH_RAW_FILE = "depth_raw.mkv"
#: Format version 1's depth file (float32 metres, ``depth`` array).
DEPTH_NPZ_FILE = "depth_raw.npz"
#: Stored depth value per metre: uint16 in 0.1 mm units, so at most 6.5535 m.
DEPTH_UNITS_PER_METRE = 10000
DEPTH_MAX_M = 65535 / DEPTH_UNITS_PER_METRE
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
#: Optional videos for the world models (not condition maps: the diffusion stages never read them).
WORLD_MODEL_VIDEOS: dict[str, str] = {"static": "static.mp4"}
#: HandWorld's per-frame action (float32 (T, 138)) and its hand mask (bool (T, 2)).
ACTIONS_FILE = "actions.npy"
ACTIONS_MASK_FILE = "actions_mask.npy"
#: Key of ``meta.extra`` naming the world-model files an episode holds.
WORLD_MODELS_KEY = "world_models"
#: The ranking ``pam score-actions`` writes into its output folder.
SCORE_ACTIONS_FILE = "score_actions.json"
#: One JSON line per episode that failed to be produced (written by ``EpisodeWriter.record_failure``).
FAILURES_FILE = "failures.jsonl"
#: Label-consistency check of an episode's video (``pam qa``, or ``pam generate`` with
#: ``qa.max_keypoint_error`` set); ``"passed": false`` marks the episode rejected (``is_rejected``).
QA_FILE = "qa.json"
#: The dataset's QA summary (figures per episode, the ``rejected`` list), rebuilt from every ``qa.json``.
QA_SUMMARY_FILE = "qa_summary.json"
#: Folder of traceback files of episodes that failed with an unexpected error.
FAILURES_DIR = "failures"
#: Folder of the claims of runs making episodes (``dataset.claims``); empty when none runs.
CLAIMS_DIR = ".claims"
#: Files a dataset folder may hold besides episodes (viewer page, dataset index, failure log, the s0
#: split lists ``pam import-dexycb`` writes).
ROOT_FILES = frozenset({"index.html", "dataset.json", FAILURES_FILE, "s0_train.txt", "s0_val.txt", SCORE_ACTIONS_FILE,
                        QA_SUMMARY_FILE})
ROOT_DIRS = frozenset({FAILURES_DIR, CLAIMS_DIR})


def features(num_frames: int, height: int, width: int, num_objects: int, has_video: bool,
             actions: bool = False, static_video: bool = False) -> dict:
    """The features schema of ``dataset.json`` (as LeRobot's ``info.json``): every stored array
    and video of an episode with its file, dtype and shape (``actions``, ``static_video``: the
    world-model files, docs/worldmodels.md)."""
    from pam_engine.capture.labels import LABEL_DTYPES, LABEL_SHAPES

    t, h, w = num_frames, height, width
    out = {
        "depth": {"file": DEPTH_RAW_FILE, "dtype": "uint16", "shape": [t, h, w], "codec": "ffv1",
                  "unit": f"1/{DEPTH_UNITS_PER_METRE} m", "zero": "no surface"},
        "seg": {"file": SEG_RAW_FILE, "key": "seg", "dtype": "uint8", "shape": [t, h, w]},
    }
    for key, per_frame in LABEL_SHAPES.items():
        shape = [t] + [num_objects if d == "n" else d for d in per_frame]
        out[f"labels.{key}"] = {"file": LABELS_FILE, "key": key, "dtype": LABEL_DTYPES[key], "shape": shape}
    if actions:
        from pam_engine.dataset.actions import ACTION_DIM, MASK_HANDS

        out["actions"] = {"file": ACTIONS_FILE, "dtype": "float32", "shape": [t, ACTION_DIM],
                          "layout": "handworld-138: rotation 9 (world->camera, row-major), translation 3, "
                                    "right hand 21x3 (camera frame), left hand 21x3 (zeros)"}
        out["actions_mask"] = {"file": ACTIONS_MASK_FILE, "dtype": "bool", "shape": [t, len(MASK_HANDS)],
                               "names": list(MASK_HANDS)}
    videos = dict(MAP_VIDEOS, **({"video": VIDEO_FILE} if has_video else {}),
                  **(WORLD_MODEL_VIDEOS if static_video else {}))
    for name, file in videos.items():
        out[f"video.{name}"] = {"file": file, "dtype": "video", "shape": [t, h, w, 3], "codec": "h264"}
    return out


def dataset_description(config: dict, episodes: int, feature_schema: dict | None = None) -> dict:
    """The content of ``dataset.json``."""
    return {"format": DATASET_FORMAT, "format_version": FORMAT_VERSION, "episodes": int(episodes),
            "features": feature_schema or {}, "config": config}


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
        return is_episode_name(name) or name in ROOT_DIRS
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
