"""``pam export cosmos DATASET OUT``: engine episodes as Cosmos Transfer inputs, an alternative
to Stages II-III for painting photoreal video over the simulation.

Each episode becomes one clip laid out like Replicator's ``CosmosWriter`` output (one folder per
modality, one PNG per frame named ``<modality>_<frame>.png``), plus one control video per
modality and the control spec Cosmos Transfer 2.5's inference takes::

    OUT/clips.json                      clip -> episode, fps, weights, colour table
    OUT/clip_0000/rgb/rgb_00000.png     the photoreal video if the episode has one, else sim_rgb
                 /depth/depth_00000.png uint16 millimetres along the optical axis (0 = no surface)
                 /segmentation/...      the DexYCB ids in PAM's colours (hand [92,0,255], objects
                                        ADE20K), exactly invertible (``clips.json`` holds the table)
                 /shaded_seg/...        the segmentation colours shaded by the sim preview's luminance
                 /edges/edges_00000.png Canny edges of the RGB frame (0/255)
                 /rgb.mp4 depth.mp4 segmentation.mp4 shaded_seg.mp4 edges.mp4
                                        control videos (depth: disparity normalised per clip, near
                                        bright, as Cosmos's depth control is drawn)
                 /prompt.txt  /spec.json   Cosmos Transfer 2.5 spec: ``video_path``, ``prompt_path``,
                                        ``depth``/``seg``/``edge`` with ``control_path`` and
                                        ``control_weight`` (paths relative to the clip folder)

Clips are written to a ``.tmp-*`` folder and renamed when complete; re-running skips clips that
exist, so an interrupted export resumes.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pam_engine.conventions import ADE20K_PALETTE, SEG_BACKGROUND, SEG_HAND, SEG_HAND_COLOR, SEG_OTHER_OBJECT
from pam_engine.errors import ConfigError, OutputError

#: Modalities in CosmosWriter's folder names.
MODALITIES: tuple[str, ...] = ("rgb", "depth", "segmentation", "shaded_seg", "edges")
#: Cosmos Transfer 2.5 control names -> our modality whose video feeds them.
CONTROLS: dict[str, str] = {"depth": "depth", "seg": "segmentation", "edge": "edges"}
CLIPS_FILE = "clips.json"
SPEC_FILE = "spec.json"
PROMPT_FILE = "prompt.txt"
#: DexYCB ids an episode's segmentation holds: background, the 21 objects, other objects, hand.
SEG_IDS: tuple[int, ...] = (SEG_BACKGROUND, *range(1, SEG_OTHER_OBJECT + 1), SEG_HAND)


def seg_colours() -> dict[int, tuple[int, int, int]]:
    """Colour of each segmentation id (PAM's: ADE20K entry k for object k, the hand's own)."""
    table = {i: tuple(int(c) for c in ADE20K_PALETTE[i]) for i in SEG_IDS if i not in (SEG_BACKGROUND, SEG_HAND)}
    table[SEG_BACKGROUND] = (0, 0, 0)
    table[SEG_HAND] = tuple(int(c) for c in SEG_HAND_COLOR)
    if len(set(table.values())) != len(table):  # pragma: no cover - a palette edit would break decoding
        raise AssertionError("segmentation colours are not distinct")
    return table


def colour_segmentation(seg: np.ndarray) -> np.ndarray:
    """(..., H, W) uint8 ids -> (..., H, W, 3) uint8 colours."""
    lut = np.zeros((256, 3), np.uint8)
    for i, colour in seg_colours().items():
        lut[i] = colour
    return lut[np.asarray(seg, dtype=np.uint8)]


def decode_segmentation(rgb: np.ndarray) -> np.ndarray:
    """Inverse of ``colour_segmentation`` (ConfigError on a colour not in the table)."""
    rgb = np.asarray(rgb, dtype=np.uint8)
    key = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    out = np.zeros(rgb.shape[:-1], np.uint8)
    known = np.zeros(rgb.shape[:-1], bool)
    for i, (r, g, b) in seg_colours().items():
        hit = key == ((r << 16) | (g << 8) | b)
        out[hit] = i
        known |= hit
    if not known.all():
        raise ConfigError(f"segmentation image holds {int((~known).sum())} pixels of colours outside the id table")
    return out


def depth_control(depth: np.ndarray) -> np.ndarray:
    """(T, H, W) metres -> (T, H, W, 3) uint8: disparity normalised over the clip, near bright,
    no surface black."""
    valid = depth > 0
    out = np.zeros(depth.shape + (3,), np.uint8)
    if not valid.any():
        return out
    disp = np.zeros(depth.shape, np.float64)
    disp[valid] = 1.0 / depth[valid]
    lo, hi = disp[valid].min(), disp[valid].max()
    grey = np.where(valid, 255.0 * (disp - lo) / (hi - lo) if hi > lo else 255.0, 0.0)
    out[:] = np.clip(np.rint(grey), 0, 255).astype(np.uint8)[..., None]
    return out


def edges(rgb: np.ndarray, low: int = 100, high: int = 200) -> np.ndarray:
    """(T, H, W, 3) -> (T, H, W) uint8 Canny edges (0/255) of each frame's grey image."""
    return np.stack([cv2.Canny(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), low, high) for f in rgb])


def shaded_segmentation(seg_rgb: np.ndarray, sim_rgb: np.ndarray) -> np.ndarray:
    """Segmentation colours shaded by the sim preview's luminance (shape cues, flat labels)."""
    grey = cv2.cvtColor(sim_rgb.reshape(-1, sim_rgb.shape[-2], 3), cv2.COLOR_RGB2GRAY).reshape(sim_rgb.shape[:-1])
    shade = 0.3 + 0.7 * grey.astype(np.float32)[..., None] / 255.0
    return np.clip(np.rint(seg_rgb.astype(np.float32) * shade), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class CosmosExportConfig:
    """Control weights of the spec (Cosmos Transfer blends the controls it is given) and the
    spec's guidance; edge thresholds of the Canny pass."""

    depth_weight: float = 0.4
    seg_weight: float = 0.3
    edge_weight: float = 0.3
    guidance: float = 3.0
    canny_low: int = 100
    canny_high: int = 200

    def __post_init__(self) -> None:
        for name in ("depth_weight", "seg_weight", "edge_weight"):
            value = getattr(self, name)
            if not (np.isfinite(value) and 0 <= value <= 1):
                raise ConfigError(f"cosmos export {name}: expected a weight in [0, 1], got {value}")
        if self.depth_weight + self.seg_weight + self.edge_weight <= 0:
            raise ConfigError("cosmos export: at least one control weight must be positive")
        if not 0 <= self.canny_low < self.canny_high:
            raise ConfigError(f"cosmos export canny thresholds: expected 0 <= low < high, got {self.canny_low}, {self.canny_high}")


def _write_png(path: Path, image: np.ndarray) -> None:
    img = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), img):
        raise OutputError(f"cannot write {path}")


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError(f"output {out} exists and is not a folder")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir()
                         if not (p.name == CLIPS_FILE or p.name.startswith(".tmp-") or (p.is_dir() and p.name.startswith("clip_"))))
        if foreign:
            raise OutputError(f"output folder {out} holds files that are not Cosmos clips ({', '.join(foreign[:5])}); "
                              "expected an empty folder or a previous export")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"output folder {out} cannot be created: {exc.strerror or exc}") from exc


def export_episode(episode, folder: Path, config: CosmosExportConfig) -> None:
    """Write one episode's clip into ``folder`` (which must not exist yet)."""
    from pam_engine.dataset.videoio import write_video

    fps = episode.meta.fps
    rgb = episode.video("video") if episode.has_video else episode.video("sim_rgb")
    sim = episode.video("sim_rgb")
    depth, seg = episode.depth, episode.seg
    seg_rgb = colour_segmentation(seg)
    frames = {
        "rgb": rgb,
        "depth": np.clip(np.rint(depth.astype(np.float64) * 1000.0), 0, 65535).astype(np.uint16),
        "segmentation": seg_rgb,
        "shaded_seg": shaded_segmentation(seg_rgb, sim),
        "edges": edges(rgb, config.canny_low, config.canny_high),
    }
    videos = {"rgb": rgb, "depth": depth_control(depth), "segmentation": seg_rgb, "shaded_seg": frames["shaded_seg"],
              "edges": np.repeat(frames["edges"][..., None], 3, axis=-1)}
    folder.mkdir(parents=True)
    for name in MODALITIES:
        sub = folder / name
        sub.mkdir()
        for t, image in enumerate(frames[name]):
            _write_png(sub / f"{name}_{t:05d}.png", image)
        write_video(folder / f"{name}.mp4", videos[name], fps)
    (folder / PROMPT_FILE).write_text(episode.meta.prompt or "a photorealistic video of a hand grasping an object",
                                      encoding="utf-8")
    weights = {"depth": config.depth_weight, "seg": config.seg_weight, "edge": config.edge_weight}
    spec = {"name": f"{folder.name}_{episode.name}", "video_path": "rgb.mp4", "prompt_path": PROMPT_FILE,
            "guidance": config.guidance, "seed": int(episode.meta.seed)}
    for control, modality in CONTROLS.items():
        if weights[control] > 0:
            spec[control] = {"control_path": f"{modality}.mp4", "control_weight": weights[control]}
    (folder / SPEC_FILE).write_text(json.dumps(spec, indent=2), encoding="utf-8")


def export_cosmos(dataset: str | Path, out: str | Path, config: CosmosExportConfig | None = None) -> list[Path]:
    """Export every episode of ``dataset`` into ``out``; returns the clip folders (existing ones
    are kept: a re-run resumes)."""
    from pam_engine.dataset.reader import list_good_episodes, load_episode

    config = config or CosmosExportConfig()
    dataset, out = Path(dataset), Path(out)
    if not dataset.is_dir():
        raise ConfigError(f"dataset {dataset} is not a folder")
    episodes = list_good_episodes(dataset)  # episodes QA rejected are never exported (docs/qa.md)
    if not episodes:
        raise ConfigError(f"dataset {dataset} holds no episodes (episode_NNNNNN folders) that QA did not reject")
    if out.resolve() == dataset.resolve() or dataset.resolve() in out.resolve().parents:
        raise OutputError(f"output {out} must lie outside the dataset {dataset}")
    _check_out(out)
    clips, index = [], []
    for k, path in enumerate(episodes):
        episode = load_episode(path)
        final = out / f"clip_{k:04d}"
        if not final.exists():
            tmp = out / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
            try:
                export_episode(episode, tmp, config)
                tmp.rename(final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        clips.append(final)
        index.append({"clip": final.name, "episode": str(path.resolve()), "frames": episode.num_frames,
                      "fps": episode.meta.fps, "prompt": episode.meta.prompt})
    listing = {"clips": index, "modalities": list(MODALITIES), "depth_png": "uint16 millimetres, 0 = no surface",
               "segmentation_colours": {str(i): list(c) for i, c in seg_colours().items()},
               "weights": {"depth": config.depth_weight, "seg": config.seg_weight, "edge": config.edge_weight}}
    tmp = out / f".tmp-{CLIPS_FILE}"
    tmp.write_text(json.dumps(listing, indent=2), encoding="utf-8")
    tmp.replace(out / CLIPS_FILE)
    return clips
