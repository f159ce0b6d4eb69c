"""A tiny engine-style dataset for the trainer tests: episodes with video.mp4, the PAM-style condition
maps and meta.json (H.264 mp4 files, as the engine writes them)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from diffusion_refs import pam_style_conditions
from pam_diffusion.training.motion import write_mp4


def write_video(path: Path, frames: np.ndarray, fps: int = 15) -> None:
    write_mp4(path, frames, fps)


def write_tiny_dataset(root: Path, episodes: int = 3, num_frames: int = 9, height: int = 32, width: int = 48,
                       prompts: tuple[str, ...] = ("a hand grasps a red can", "a hand lifts a mustard bottle")) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for e in range(episodes):
        folder = root / f"episode_{e:06d}"
        folder.mkdir()
        maps = pam_style_conditions(num_frames, height, width)
        maps = {k: np.roll(v, 2 * e, axis=2) for k, v in maps.items()}
        normal = np.full_like(maps["depth"], 128)
        normal[..., 2] = np.maximum(maps["depth"][..., 0], 128)
        # "real" frames: the seg colours over a textured background, so the video follows the maps
        yy, xx = np.mgrid[0:height, 0:width]
        background = np.stack([(xx * 4) % 256, (yy * 6) % 256, np.full_like(xx, 90)], axis=-1).astype(np.uint8)
        video = np.where(maps["seg"].any(axis=-1, keepdims=True), maps["seg"], background[None])
        for name, frames in (("video", video), ("depth", maps["depth"]), ("seg", maps["seg"]),
                             ("hand_keypoints", maps["hand"]), ("normal", normal)):
            write_video(folder / f"{name}.mp4", frames.astype(np.uint8), fps=15)
        (folder / "meta.json").write_text(json.dumps({"prompt": prompts[e % len(prompts)], "fps": 15}))
    return root
