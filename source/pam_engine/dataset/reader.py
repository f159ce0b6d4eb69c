"""Reading episodes back: metadata eagerly, arrays and videos only when asked for."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import numpy as np

from pam_engine.config import from_dict
from pam_engine.capture.labels import LABEL_DTYPES
from pam_engine.dataset.format import (
    ACTIONS_FILE,
    ACTIONS_MASK_FILE,
    DATASET_FORMAT,
    READABLE_VERSIONS,
    DEPTH_NPZ_FILE,
    DEPTH_RAW_FILE,
    DEPTH_UNITS_PER_METRE,
    LABELS_FILE,
    MAP_VIDEOS,
    META_FILE,
    QA_FILE,
    SEG_RAW_FILE,
    VIDEO_FILE,
    WORLD_MODEL_VIDEOS,
    EpisodeMeta,
    is_episode_name,
)
from pam_engine.dataset.videoio import read_depth, read_video
from pam_engine.errors import ConfigError

DATASET_FILE = "dataset.json"


def read_description(root: str | Path) -> dict | None:
    """``dataset.json`` of a dataset folder, checked as LeRobot checks ``info.json``: a format
    and version this engine reads, and a features schema whose known entries have the file,
    dtype and shape layout this reader decodes. None for a folder without one (episodes written
    directly with ``EpisodeWriter``). ConfigError naming what does not fit."""
    path = Path(root) / DATASET_FILE
    if not path.is_file():
        return None
    try:
        desc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(desc, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    if desc.get("format", DATASET_FORMAT) != DATASET_FORMAT:
        raise ConfigError(f"{path}: format {desc['format']!r}, expected {DATASET_FORMAT!r}")
    version = desc.get("format_version", 1)  # version 1 wrote only the config
    if version not in READABLE_VERSIONS:
        raise ConfigError(f"{path}: dataset format version {version!r}; this engine reads versions "
                          f"{list(READABLE_VERSIONS)} (a newer engine wrote it?)")
    features = desc.get("features") or {}
    if not isinstance(features, dict):
        raise ConfigError(f"{path}: 'features' must be an object")
    known = {"depth": ("uint16", DEPTH_RAW_FILE), "seg": ("uint8", SEG_RAW_FILE)}
    known.update({f"labels.{k}": (d, LABELS_FILE) for k, d in LABEL_DTYPES.items()})
    known.update({"actions": ("float32", ACTIONS_FILE), "actions_mask": ("bool", ACTIONS_MASK_FILE)})
    for name, entry in features.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("shape"), list) or "dtype" not in entry:
            raise ConfigError(f"{path}: feature {name!r} needs a dtype and a shape list")
        if name in known and (entry["dtype"], entry.get("file")) != known[name]:
            raise ConfigError(f"{path}: feature {name!r} is {entry['dtype']} in {entry.get('file')}; this reader "
                              f"decodes {known[name][0]} in {known[name][1]}")
    return desc


def read_meta(folder: str | Path) -> EpisodeMeta:
    """Parse and type-check ``meta.json`` (ConfigError naming the bad key)."""
    path = Path(folder) / META_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    meta = from_dict(EpisodeMeta, data)
    if meta.format_version not in READABLE_VERSIONS:
        raise ConfigError(f"{path}: episode format version {meta.format_version}; this engine reads versions "
                          f"{list(READABLE_VERSIONS)}")
    return meta


class Episode:
    """One episode folder. ``meta`` is read on creation; ``labels``, ``depth``, ``seg`` and
    videos are loaded on first access (``video(name)`` decodes each time it is called)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not (self.path / META_FILE).is_file():
            raise FileNotFoundError(f"{self.path} is not an episode (no {META_FILE})")
        self.meta = read_meta(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def num_frames(self) -> int:
        return self.meta.num_frames

    @property
    def K(self) -> np.ndarray:
        return np.asarray(self.meta.K, dtype=np.float64)

    @property
    def world_to_cam(self) -> np.ndarray:
        return np.asarray(self.meta.world_to_cam, dtype=np.float64)

    @cached_property
    def labels(self) -> dict[str, np.ndarray]:
        with np.load(self.path / LABELS_FILE, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    @cached_property
    def depth(self) -> np.ndarray:
        """(T, H, W) float32 metres along the optical axis, 0 = no surface (format 2: exact to
        0.05 mm; format 1's float32 npz is read as it was written)."""
        if not (self.path / DEPTH_RAW_FILE).is_file() and (self.path / DEPTH_NPZ_FILE).is_file():
            with np.load(self.path / DEPTH_NPZ_FILE, allow_pickle=False) as data:
                return data["depth"]
        return read_depth(self.path / DEPTH_RAW_FILE, DEPTH_UNITS_PER_METRE)

    @cached_property
    def seg(self) -> np.ndarray:
        """(T, H, W) uint8 DexYCB ids."""
        with np.load(self.path / SEG_RAW_FILE, allow_pickle=False) as data:
            return data["seg"]

    @property
    def has_video(self) -> bool:
        return (self.path / VIDEO_FILE).is_file()

    def video_path(self, name: str) -> Path:
        """Path of ``video`` or of a map video (``sim_rgb``, ``depth``, ``seg``, ...)."""
        if name == "video":
            return self.path / VIDEO_FILE
        if name in WORLD_MODEL_VIDEOS:
            return self.path / WORLD_MODEL_VIDEOS[name]
        if name not in MAP_VIDEOS:
            raise KeyError(f"unknown video {name!r}; expected 'video' or one of "
                           f"{sorted(MAP_VIDEOS) + sorted(WORLD_MODEL_VIDEOS)}")
        return self.path / MAP_VIDEOS[name]

    def video(self, name: str) -> np.ndarray:
        """Decoded RGB frames (T, H, W, 3) of a video of this episode."""
        return read_video(self.video_path(name))

    @property
    def has_actions(self) -> bool:
        return (self.path / ACTIONS_FILE).is_file()

    @cached_property
    def actions(self) -> np.ndarray:
        """HandWorld's action rows (T, 138) float32 (layout: ``dataset.actions``)."""
        return np.load(self.path / ACTIONS_FILE, allow_pickle=False)

    @cached_property
    def actions_mask(self) -> np.ndarray:
        """(T, 2) bool: right, left hand present."""
        return np.load(self.path / ACTIONS_MASK_FILE, allow_pickle=False)

    def decoded_actions(self, frame: str = "camera") -> dict[str, np.ndarray]:
        """``actions`` decoded (``dataset.actions.decode_actions``): ``world_to_cam`` (T, 4, 4) and
        the ``right``/``left`` keypoints (T, 21, 3) in ``frame`` ("camera" or "world"), masked."""
        from pam_engine.dataset.actions import decode_actions

        return decode_actions(self.actions, self.actions_mask, frame)


def load_episode(path: str | Path) -> Episode:
    return Episode(path)


def list_episodes(root: str | Path) -> list[Path]:
    """Episode folders of a dataset, sorted by name (temporary ``.tmp-*`` folders excluded); its
    ``dataset.json``, when present, must be a version this engine reads (``read_description``)."""
    root = Path(root)
    read_description(root)
    return sorted(p for p in root.iterdir() if p.is_dir() and is_episode_name(p.name))


def read_qa(folder: str | Path) -> dict | None:
    """An episode's ``qa.json`` (None when it was never checked or the file is not a JSON object)."""
    path = Path(folder) / QA_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_rejected(folder: str | Path) -> bool:
    """The one rule for rejected episodes (docs/qa.md): its ``qa.json`` says ``"passed": false``.
    Rejected episodes stay in the dataset, flagged, and are never consumed as good data."""
    qa = read_qa(folder)
    return qa is not None and qa.get("passed") is False


def list_good_episodes(root: str | Path) -> list[Path]:
    """``list_episodes`` without the episodes QA rejected: what exports and training consume."""
    return [p for p in list_episodes(root) if not is_rejected(p)]
