"""Reading engine dataset folders for training, with every episode checked before training starts.

An episode folder (README, "What a run produces") holds the real or photoreal video (``video.mp4``
by default), the PAM-style condition maps (``depth.mp4``, ``normal.mp4``, ``seg.mp4``,
``hand_keypoints.mp4``) and ``meta.json`` (whose ``prompt`` is the caption). Files are read directly
with PyAV and json: this package does not import the engine.

Sampling is a pure function of (seed, position): the sample at global position ``p`` is entry
``p % n`` of epoch ``p // n``'s permutation. A resumed run therefore continues with exactly the
episodes and frames the uninterrupted run would have drawn."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import DiffusionError
from .config import CONDITION_FILES, DataConfig


class DatasetError(DiffusionError, ValueError):
    """A dataset or episode the trainer cannot use; names the episode and what was expected."""


@dataclass(frozen=True)
class EpisodeInfo:
    name: str
    path: Path
    num_frames: int
    height: int
    width: int
    prompt: str


def list_episode_dirs(root: Path) -> list[Path]:
    """Episode folders of a dataset: sub-folders with a ``meta.json`` (``.tmp-*`` are incomplete),
    without those the engine's QA rejected (never trained on)."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and (p / "meta.json").is_file() and not is_rejected(p))


def is_rejected(folder: Path) -> bool:
    """The engine's rule (its docs/qa.md), read here without importing it: ``qa.json`` says
    ``"passed": false``."""
    try:
        qa = json.loads((folder / "qa.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(qa, dict) and qa.get("passed") is False


def probe(path: Path) -> tuple[int, int, int]:
    """(frames, height, width) of a video; frames are counted by demuxing packets (headers may omit them)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            h, w = stream.codec_context.height, stream.codec_context.width
            n = stream.frames or sum(1 for p in container.demux(stream) if p.size)
    except (av.error.FFmpegError, IndexError, OSError) as e:
        raise DatasetError(f"{path}: not a readable video ({e})") from None
    return int(n), int(h), int(w)


def read_frames(path: Path, indices: Sequence[int]) -> np.ndarray:
    """RGB uint8 frames ``(len(indices), H, W, 3)`` of a video, decoding only up to the last index."""
    import av

    wanted = {int(i) for i in indices}
    last = max(wanted)
    got: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                got[i] = frame.to_ndarray(format="rgb24")
            if i >= last:
                break
    missing = sorted(wanted - set(got))
    if missing:
        raise DatasetError(f"{path}: has no frame {missing[0]} (it decoded {len(got)} of the wanted frames)")
    return np.stack([got[int(i)] for i in indices])


def resize_frames(frames: np.ndarray, height: int, width: int, nearest: bool) -> np.ndarray:
    """Resize (T, H, W, 3) uint8 frames: nearest for condition maps (ids and colours stay exact),
    area for the video."""
    if frames.shape[1:3] == (height, width):
        return frames
    import cv2

    mode = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
    return np.stack([cv2.resize(f, (width, height), interpolation=mode) for f in frames])


def clip_indices(num_frames: int, clip_frames: int) -> list[int]:
    """PAM's frame choice: every ``n // T``-th frame, the first T of them (DexYCB's 72 frames give 0..48)."""
    if num_frames < clip_frames:
        raise ValueError(f"{num_frames} frames < {clip_frames}")
    stride = num_frames // clip_frames
    return list(range(0, num_frames, stride))[:clip_frames]


class EpisodeDataset:
    """The checked episodes of a dataset and the files each sample reads."""

    def __init__(self, episodes: list[EpisodeInfo], cfg: DataConfig, conditions: Sequence[str],
                 clip_frames: int | None):
        self.episodes = episodes
        self.cfg = cfg
        self.conditions = tuple(conditions)
        self.clip_frames = clip_frames

    def __len__(self) -> int:
        return len(self.episodes)

    def read(self, index: int, frames: Sequence[int]) -> dict:
        """``{"video": (T,H,W,3), <condition>: (T,H,W,3), "prompt": str, "name": str}`` at training size."""
        ep = self.episodes[index]
        cfg = self.cfg
        out = {"name": ep.name, "prompt": ep.prompt,
               "video": resize_frames(read_frames(ep.path / cfg.video, frames), cfg.height, cfg.width, False)}
        for c in self.conditions:
            out[c] = resize_frames(read_frames(ep.path / CONDITION_FILES[c], frames), cfg.height, cfg.width, True)
        return out

    def clip(self, index: int) -> list[int]:
        return clip_indices(self.episodes[index].num_frames, self.clip_frames)


def scan_dataset(cfg: DataConfig, conditions: Iterable[str], clip_frames: int | None,
                 model_size: tuple[int, int] | None = None) -> tuple[EpisodeDataset, EpisodeDataset]:
    """Check every episode (files present, equal frame counts, enough frames, a usable size) and split
    off the validation episodes. ``clip_frames``: frames per Stage III sample (None: Stage II, one
    frame). ``model_size``: (H, W) the model's positional embeddings take, if fixed."""
    conditions = tuple(conditions)
    root = Path(cfg.root)
    if not root.is_dir():
        raise DatasetError(f"data.root {str(root)!r} is not a folder; expected an engine dataset (episode folders)")
    if model_size is not None and tuple(model_size) != (cfg.height, cfg.width):
        raise DatasetError(
            f"data.height x data.width {cfg.height}x{cfg.width}: the transformer's learned positional embeddings "
            f"take only {model_size[0]}x{model_size[1]} videos")
    dirs = list_episode_dirs(root)
    wanted = _wanted_names(cfg)
    if wanted is not None:
        known = {d.name for d in dirs}
        absent = [n for n in wanted if n not in known]
        if absent:
            rejected = [n for n in absent if is_rejected(root / n)]
            raise DatasetError(f"data.episodes/split_file names episode(s) not in {root}: {', '.join(absent[:5])}"
                               + (f" ({', '.join(rejected[:5])} rejected by QA: qa.json 'passed': false)"
                                  if rejected else ""))
        dirs = [d for d in dirs if d.name in set(wanted)]
    if not dirs:
        raise DatasetError(f"data.root {str(root)!r} holds no episodes (folders with meta.json)")
    episodes = [check_episode(d, cfg, conditions, clip_frames) for d in dirs]
    n_val = min(cfg.val_episodes, len(episodes) - 1)
    train, val = episodes[n_val:], episodes[:n_val]
    return (EpisodeDataset(train, cfg, conditions, clip_frames), EpisodeDataset(val, cfg, conditions, clip_frames))


def check_episode(folder: Path, cfg: DataConfig, conditions: Sequence[str], clip_frames: int | None) -> EpisodeInfo:
    video = folder / cfg.video
    if not video.is_file():
        raise DatasetError(
            f"episode {folder.name}: no video frames ({cfg.video} is missing); expected the real or photoreal "
            f"video to train on beside the condition maps (set data.video to its file name)")
    n, h, w = probe(video)
    if n == 0:
        raise DatasetError(f"episode {folder.name}: {cfg.video} has no frames")
    for c in conditions:
        f = folder / CONDITION_FILES[c]
        if not f.is_file():
            raise DatasetError(f"episode {folder.name}: condition map {CONDITION_FILES[c]} is missing")
        nc, hc, wc = probe(f)
        if nc != n:
            raise DatasetError(
                f"episode {folder.name}: {CONDITION_FILES[c]} has {nc} frames but {cfg.video} has {n}; "
                "expected equal frame counts")
        if (hc, wc) != (h, w):
            raise DatasetError(
                f"episode {folder.name}: {CONDITION_FILES[c]} is {hc}x{wc} but {cfg.video} is {h}x{w}; expected one size")
    if clip_frames is not None and n < clip_frames:
        raise DatasetError(
            f"episode {folder.name}: {n} frames, expected at least data.num_frames={clip_frames} (4k+1)")
    if (h, w) != (cfg.height, cfg.width) and not cfg.resize:
        raise DatasetError(
            f"episode {folder.name}: frames are {h}x{w} (HxW), expected {cfg.height}x{cfg.width} (the training "
            "size the model's positional embeddings take); set data.resize: true to stretch them as PAM does")
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DatasetError(f"episode {folder.name}: meta.json is not readable JSON ({e})") from None
    prompt = meta.get("prompt", "") if isinstance(meta, dict) else ""
    if not isinstance(prompt, str):
        raise DatasetError(f"episode {folder.name}: meta.json prompt is {type(prompt).__name__}, expected a string")
    return EpisodeInfo(folder.name, folder, n, h, w, prompt)


def _wanted_names(cfg: DataConfig) -> list[str] | None:
    names: list[str] | None = list(cfg.episodes) if cfg.episodes is not None else None
    if cfg.split_file:
        p = Path(cfg.split_file)
        if not p.is_file():
            raise DatasetError(f"data.split_file {str(p)!r} does not exist; expected episode names, one a line")
        listed = [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        names = listed if names is None else [n for n in names if n in set(listed)]
    return names


def sample_index(seed: int, position: int, n: int) -> int:
    """Dataset index of global sample ``position``: a fresh permutation per epoch, from the seed."""
    epoch, offset = divmod(int(position), n)
    return int(np.random.default_rng([int(seed), 7, epoch]).permutation(n)[offset])


def step_rng(seed: int, *keys: int) -> np.random.Generator:
    """The numpy generator for one (step, micro-step, rank, ...) — a pure function of its keys."""
    return np.random.default_rng([int(seed)] + [int(k) for k in keys])


def stable_seed(*parts) -> int:
    """A 31-bit seed from strings/ints, the same in every process and run."""
    return zlib.crc32("\x1f".join(str(p) for p in parts).encode()) & 0x7FFFFFFF
