"""Backend-agnostic capture buffers: what one camera frame yields (``FrameCapture``) and a whole
video of them (``CaptureSequence``). The MuJoCo renderer fills them; an Isaac Replicator capture
fills the same arrays with the same conventions:

- ``depth``: float32 metres along the optical axis (camera z, not ray length); **0 where no
  surface was hit** (DexYCB's convention for missing depth; keeps files and comparisons finite).
- ``seg``: uint8 DexYCB ids: 0 background (also table/floor), 1..21 YCB objects, 22 other
  objects, 255 hand.
- ``rgb``: uint8 sim preview. ``hand_mesh``: uint8, the hand surface alone, shaded, on black.
- ``normal`` (optional): float32 unit surface normals in the camera frame (OpenCV axes) pointing
  towards the camera, 0 where no surface; when absent, maps derive normals from depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FrameCapture:
    """Everything captured from one camera at one instant (arrays are (H, W[, 3]))."""

    rgb: np.ndarray
    depth: np.ndarray
    seg: np.ndarray
    hand_mesh: np.ndarray
    normal: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.depth.shape


@dataclass
class CaptureSequence:
    """T frames of captures stacked along a leading time axis."""

    rgb: np.ndarray  # (T, H, W, 3) uint8
    depth: np.ndarray  # (T, H, W) float32
    seg: np.ndarray  # (T, H, W) uint8
    hand_mesh: np.ndarray  # (T, H, W, 3) uint8
    normal: np.ndarray | None = None  # (T, H, W, 3) float32

    @classmethod
    def allocate(cls, num_frames: int, height: int, width: int, with_normal: bool = False) -> "CaptureSequence":
        return cls(
            rgb=np.zeros((num_frames, height, width, 3), np.uint8),
            depth=np.zeros((num_frames, height, width), np.float32),
            seg=np.zeros((num_frames, height, width), np.uint8),
            hand_mesh=np.zeros((num_frames, height, width, 3), np.uint8),
            normal=np.zeros((num_frames, height, width, 3), np.float32) if with_normal else None,
        )

    @property
    def num_frames(self) -> int:
        return int(self.depth.shape[0])

    @property
    def height(self) -> int:
        return int(self.depth.shape[1])

    @property
    def width(self) -> int:
        return int(self.depth.shape[2])

    def frame(self, t: int) -> FrameCapture:
        """Views (not copies) of frame t; a backend may write into them directly."""
        return FrameCapture(self.rgb[t], self.depth[t], self.seg[t], self.hand_mesh[t],
                            None if self.normal is None else self.normal[t])

    def set_frame(self, t: int, frame: FrameCapture) -> None:
        self.rgb[t] = frame.rgb
        self.depth[t] = frame.depth
        self.seg[t] = frame.seg
        self.hand_mesh[t] = frame.hand_mesh
        if self.normal is not None and frame.normal is not None:
            self.normal[t] = frame.normal
