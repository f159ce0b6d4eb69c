"""Look of the captured images: the randomisable sim preview (lights, colours, procedural
textures) and the fixed shading of the hand-only image (only the RGB preview and the hand image
depend on these), and the style of the condition maps (``MapStyle``: depth colouring, limb order)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pam_engine.errors import ConfigError

#: Textures whose name starts with this are repainted with procedural patterns by the preview.
RANDOM_TEXTURE_PREFIX = "pam_random"


@dataclass
class PreviewStyle:
    """Lighting and colours of the sim preview. ``light_dir`` is the world direction the key light
    shines along; a weak fill light shines from the camera."""

    light_dir: tuple[float, float, float] = (0.3, -0.2, -1.0)
    light_diffuse: float = 0.65
    ambient: float = 0.3
    specular: float = 0.2
    fill_diffuse: float = 0.25
    shadows: bool = False  # shadows cost ~5x on a CPU renderer
    reflections: bool = False
    skybox: bool = True
    geom_rgba: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)  # geom id -> rgba
    skin_rgba: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)  # skin id -> rgba
    replace_material: bool = False  # drop the material/texture of recoloured geoms
    texture_seed: int | None = None  # repaint ``pam_random*`` textures with this seed


@dataclass
class HandMeshStyle:
    """Fixed look of the hand-only image: a light-grey matte surface lit from near the camera
    (as the DWM / HandWorld hand renders), black background."""

    rgba: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 1.0)
    light_dir_camera: tuple[float, float, float] = (0.3, 0.4, 1.0)  # camera frame (OpenCV)
    ambient: float = 0.25
    diffuse: float = 0.75
    specular: float = 0.1
    shininess: float = 0.3
    emission: float = 0.0


def sample_preview_style(rng: np.random.Generator, object_geoms=(), background_geoms=(),
                         shadows: bool = False) -> PreviewStyle:
    """A random preview look: key light from a random direction 25-80 deg above the horizon,
    random intensities, random colours for the given object and background (table) geom ids,
    and a texture seed for ``pam_random*`` textures."""
    az = rng.uniform(0, 2 * math.pi)
    el = math.radians(rng.uniform(25, 80))
    light_dir = (-math.cos(el) * math.cos(az), -math.cos(el) * math.sin(az), -math.sin(el))

    def colour(lo: float, hi: float) -> tuple[float, float, float, float]:
        return (*rng.uniform(lo, hi, 3).tolist(), 1.0)

    geom_rgba = {int(g): colour(0.15, 0.95) for g in object_geoms}
    geom_rgba.update({int(g): colour(0.2, 0.8) for g in background_geoms})
    return PreviewStyle(
        light_dir=light_dir,
        light_diffuse=float(rng.uniform(0.4, 0.9)),
        ambient=float(rng.uniform(0.15, 0.4)),
        specular=float(rng.uniform(0.0, 0.4)),
        fill_diffuse=float(rng.uniform(0.1, 0.35)),
        shadows=shadows,
        geom_rgba=geom_rgba,
        texture_seed=int(rng.integers(0, 2**31 - 1)),
    )


def procedural_pattern(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random uint8 RGB pattern: checkerboard, stripes or smooth blobs, two random colours."""
    a, b = rng.uniform(0, 255, (2, 3))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    kind = rng.integers(0, 3)
    if kind == 0:
        cell = rng.integers(4, max(5, min(height, width) // 2))
        mix = ((xx // cell + yy // cell) % 2).astype(np.float32)
    elif kind == 1:
        angle = rng.uniform(0, math.pi)
        period = rng.uniform(4, max(5.0, width / 2))
        mix = (np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period) > 0).astype(np.float32)
    else:
        mix = np.zeros((height, width), np.float32)
        for _ in range(6):
            cy, cx = rng.uniform(0, height), rng.uniform(0, width)
            r = rng.uniform(0.1, 0.4) * max(height, width)
            mix += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        mix = (mix - mix.min()) / max(float(np.ptp(mix)), 1e-6)
    out = a[None, None] * (1 - mix[..., None]) + b[None, None] * mix[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def paint_random_textures(model, seed: int) -> list[int]:
    """Repaint, in ``model.tex_data``, every RGB(A) texture named ``pam_random*`` with a
    procedural pattern; returns the texture ids changed (to upload to the GPU)."""
    import mujoco

    rng = np.random.default_rng(seed)
    changed = []
    for texid in range(model.ntex):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_TEXTURE, texid) or ""
        nchannel = int(model.tex_nchannel[texid])
        if not name.startswith(RANDOM_TEXTURE_PREFIX) or nchannel not in (3, 4):
            continue
        h, w = int(model.tex_height[texid]), int(model.tex_width[texid])
        adr = int(model.tex_adr[texid])
        pixels = model.tex_data[adr: adr + h * w * nchannel].reshape(h, w, nchannel)
        pixels[..., :3] = procedural_pattern(rng, h, w)
        if nchannel == 4:
            pixels[..., 3] = 255
        changed.append(texid)
    return changed


#: Depth-map styles: "pam" (DepthCrafter's inferno colouring, what PAM's weights were trained on)
#: and "grey" (the same normalised disparity in three equal channels, for one's own models).
DEPTH_STYLES: tuple[str, ...] = ("pam", "grey")
#: Limb orders of the hand-keypoint map (see ``maps.limb_order``): "pam" (PAM's joint_3d rule),
#: "forward" (PAM's list order, as its Stage II loader drew), "depth" (far-to-near).
LIMB_ORDERS: tuple[str, ...] = ("pam", "forward", "depth")


def check_choice(what: str, value: str, valid: tuple[str, ...]) -> str:
    """``value`` if it is one of ``valid``, else a ConfigError naming the valid ones."""
    if value not in valid:
        raise ConfigError(f"{what} {value!r}: expected one of {', '.join(valid)}")
    return value


@dataclass(frozen=True)
class MapStyle:
    """How the condition maps are drawn. The defaults reproduce PAM's training maps."""

    depth: str = "pam"
    limb_order: str = "pam"

    def __post_init__(self) -> None:
        check_choice("maps.depth (depth-map style)", self.depth, DEPTH_STYLES)
        check_choice("maps.limb_order", self.limb_order, LIMB_ORDERS)
