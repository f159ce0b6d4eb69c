"""Configuration of the diffusion backend: where the weights are, how Stages II and III sample, and
how memory is managed. Plain dataclasses, no torch import: ``pam generate`` reads this before it
knows whether diffusion will run at all."""

from __future__ import annotations

import dataclasses
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Mapping

from pam_diffusion.errors import ConfigError
from pam_diffusion.typed_config import from_dict

#: The control transformer's five condition slots, in PAM's order (``initial_combine_linear``
#: concatenates them in this order).
SLOTS: tuple[str, ...] = ("tracking", "normal", "depth", "seg", "hand")
#: Condition names accepted as keys of ``generate(conditions=...)``.
CONDITION_KEYS: tuple[str, ...] = SLOTS
#: The slots PAM's released Stage III weights were trained with (``--used_conditions
#: hand_keypoints,depth,seg_mask``).
PAM_USED_CONDITIONS: tuple[str, ...] = ("hand", "depth", "seg")
#: PAM's own names for the slots, accepted in configs.
CONDITION_ALIASES: dict[str, str] = {
    "hand_keypoints": "hand",
    "seg_mask": "seg",
    "segmentation": "seg",
    "tracking_map": "tracking",
    "depth_map": "depth",
    "normal_map": "normal",
}
#: The negative prompt PAM's evaluation scripts use for Stage III.
PAM_NEGATIVE_PROMPT = (
    "The video is not of a high quality, it has a low resolution. Watermark present in each frame. "
    "The background is solid. Strange body and strange trajectory. Distortion."
)
OFFLOAD_MODES: tuple[str, ...] = ("none", "model", "sequential")
_DTYPES = {
    "auto": "auto",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16",
    "float32": "float32", "fp32": "float32", "float": "float32",
}


def check_geometry(num_frames: int, height: int, width: int, error: type[Exception] = ConfigError,
                   what: str = "diffusion config") -> None:
    """Raise ``error`` unless the frame count is 4k+1 (CogVideoX's VAE compresses time by 4 and
    keeps the first frame) and both sides are positive multiples of 16 (VAE /8, then 2x2 patches)."""
    if not isinstance(num_frames, int) or num_frames < 1 or (num_frames - 1) % 4 != 0:
        raise error(f"{what}: frame count {num_frames!r} is not of the form 4k+1 (e.g. 9, 13, 49)")
    for name, side in (("height", height), ("width", width)):
        if not isinstance(side, int) or side <= 0 or side % 16 != 0:
            raise error(f"{what}: {name} {side!r} is not a positive multiple of 16 (e.g. 480, 720)")


def normalize_condition_name(name: str, what: str = "used_conditions") -> str:
    """Map PAM's slot names (``hand_keypoints``, ``seg_mask``, ...) onto ours; reject unknown ones."""
    key = CONDITION_ALIASES.get(str(name), str(name))
    if key not in SLOTS:
        raise ConfigError(f"{what}: unknown condition {name!r}; expected one of {', '.join(SLOTS)}")
    return key


def hub_offline_from_env() -> bool:
    """True when the Hugging Face offline switches are set in the environment."""
    truthy = {"1", "true", "yes", "on"}
    return any(os.environ.get(v, "").strip().lower() in truthy for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def network_available(host: str = "huggingface.co", port: int = 443, timeout: float = 1.5) -> bool:
    """One short TCP connection attempt; only called when the environment does not say offline."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class Stage2Config:
    """Stage II, appearance: Flux.1-dev with PAM's two ControlNets makes candidate first frames."""

    #: Flux.1-dev in diffusers layout: a local folder or a Hub repo id found in the HF cache.
    flux_path: str | None = None
    #: PAM's ``controlnet.bin`` (x-flux naming), a folder holding it, or a folder written by
    #: ``python -m pam_diffusion.convert`` (``controlnet1/`` and ``controlnet2/``).
    controlnet_path: str | None = None
    steps: int = 28  # PAM's sampler
    guidance: float = 4.0  # Flux's distilled guidance embedding, as PAM samples
    #: Scales of net 1 (depth, normal) and net 2 (hand keypoints, seg); PAM uses (1, 1).
    conditioning_scales: tuple[float, float] = (1.0, 1.0)
    num_candidates: int = 4
    #: Explicit candidate seeds; by default ``seed, seed+1, ...`` (PAM: 42, 43, ...).
    seeds: tuple[int, ...] | None = None
    max_sequence_length: int = 512  # T5 tokens, as x-flux
    #: Name of the candidate scorer (see ``pam_diffusion.scoring.SCORERS``).
    scorer: str = "hand_edges"
    #: Offload mode for this stage only; ``None`` uses the top-level ``offload``. Flux.1-dev (22 GiB in
    #: bf16) plus the two nets does not fit a 24 GB GPU with "model" offload: use "sequential" there.
    offload: str | None = None
    #: (width, height) Stage II paints at; ``None``: the video size. PAM's Stage II was trained on
    #: unstretched 640x480 DexYCB frames: with maps of the engine's "pam" camera preset (720x480,
    #: stretched from 640x480) use (640, 480); the maps are unstretched for it and the chosen frame
    #: stretched back to the video size (docs/pam_maps.md).
    size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.size is not None:
            self.size = tuple(self.size)
            if len(self.size) != 2 or not all(isinstance(v, int) and v > 0 and v % 16 == 0 for v in self.size):
                raise ConfigError(f"stage2.size: expected null or [width, height], positive multiples of 16 "
                                  f"(e.g. [640, 480]), got {list(self.size)}")
        self.conditioning_scales = tuple(float(s) for s in self.conditioning_scales)
        if len(self.conditioning_scales) != 2:
            raise ConfigError(
                f"stage2.conditioning_scales: expected two numbers (net 1 depth+normal, net 2 hand+seg), "
                f"got {list(self.conditioning_scales)}")
        _check_offload("stage2.offload", self.offload, allow_none=True)
        _positive_int("stage2.steps", self.steps)
        _positive_int("stage2.num_candidates", self.num_candidates)
        _positive_int("stage2.max_sequence_length", self.max_sequence_length)
        if self.seeds is not None:
            self.seeds = tuple(int(s) for s in self.seeds)
            if not self.seeds:
                raise ConfigError("stage2.seeds: expected at least one seed or null")


@dataclass
class Stage3Config:
    """Stage III, motion: CogVideoX-5B-I2V with PAM's control transformer animates the first frame."""

    #: CogVideoX-5B-I2V in diffusers layout (its VAE, T5 and scheduler are used): a local folder or a
    #: Hub repo id found in the HF cache.
    cogvideox_path: str | None = None
    #: PAM's transformer folder: ``config.json`` plus (sharded) weights.
    transformer_path: str | None = None
    steps: int = 50
    guidance: float = 6.0
    dynamic_guidance: bool = True  # PAM samples with use_dynamic_cfg=True
    negative_prompt: str = PAM_NEGATIVE_PROMPT
    #: Copied blocks of the control branch; ``None`` reads them from the checkpoint (PAM: 12).
    num_control_blocks: int | None = None
    max_sequence_length: int = 226
    #: Offload mode for this stage only; ``None`` uses the top-level ``offload``.
    offload: str | None = None

    def __post_init__(self) -> None:
        _check_offload("stage3.offload", self.offload, allow_none=True)
        _positive_int("stage3.steps", self.steps)
        _positive_int("stage3.max_sequence_length", self.max_sequence_length)
        if self.num_control_blocks is not None:
            _positive_int("stage3.num_control_blocks", self.num_control_blocks)


@dataclass
class DiffusionConfig:
    """Everything the diffusion backend needs; ``from_dict`` reads it from a YAML/JSON section."""

    stage2: Stage2Config = field(default_factory=Stage2Config)
    stage3: Stage3Config = field(default_factory=Stage3Config)
    num_frames: int = 49
    height: int = 480
    width: int = 720
    fps: int = 15
    #: Slots fed to the control transformer; the others get zero latents, as in PAM's training.
    used_conditions: tuple[str, ...] = PAM_USED_CONDITIONS
    seed: int = 42
    #: "auto" = bfloat16 on CUDA, float32 on CPU.
    dtype: str = "auto"
    #: "auto" = "cuda" when available, else "cpu".
    device: str = "auto"
    #: "none" | "model" (whole models move to the GPU in turn) | "sequential" (layer by layer).
    offload: str = "model"
    vae_tiling: bool = True
    vae_slicing: bool = True
    #: ``None`` = auto: true when HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE is set or the Hub is not
    #: reachable. When true, nothing is downloaded and no connection is attempted while loading.
    local_files_only: bool | None = None

    def __post_init__(self) -> None:
        if isinstance(self.stage2, Mapping):
            self.stage2 = from_dict(Stage2Config, dict(self.stage2), path="stage2")
        if isinstance(self.stage3, Mapping):
            self.stage3 = from_dict(Stage3Config, dict(self.stage3), path="stage3")
        check_geometry(self.num_frames, self.height, self.width)
        _positive_int("fps", self.fps)
        if isinstance(self.used_conditions, str):
            self.used_conditions = (self.used_conditions,)
        used = tuple(normalize_condition_name(c) for c in self.used_conditions)
        self.used_conditions = tuple(s for s in SLOTS if s in used)  # PAM's slot order, no repeats
        if self.dtype not in _DTYPES:
            raise ConfigError(f"dtype: {self.dtype!r} is not one of {', '.join(sorted(set(_DTYPES)))}")
        self.dtype = _DTYPES[self.dtype]
        _check_offload("offload", self.offload)
        if not isinstance(self.device, str) or not self.device:
            raise ConfigError(f"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")

    # --- reading --------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "DiffusionConfig":
        """Build from a plain mapping (a config file's ``diffusion`` section). Unknown keys, at any
        level, are rejected by name."""
        return from_dict(cls, dict(d or {}), path="diffusion")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # --- weights --------------------------------------------------------------------------------

    def missing_weights(self) -> list[str]:
        """Names of the weight settings still unset (empty when both stages can load)."""
        wanted = {
            "stage2.flux_path": self.stage2.flux_path,
            "stage2.controlnet_path": self.stage2.controlnet_path,
            "stage3.cogvideox_path": self.stage3.cogvideox_path,
            "stage3.transformer_path": self.stage3.transformer_path,
        }
        return [k for k, v in wanted.items() if not v]

    def is_configured(self) -> bool:
        """True when every weight path is set (they are checked on disk by the loader)."""
        return not self.missing_weights()

    def skip_message(self) -> str:
        """Why diffusion is skipped and how to enable it, for ``pam generate``."""
        missing = self.missing_weights()
        if not missing:
            return ""
        return (
            "diffusion stages II and III skipped: no weights configured for " + ", ".join(missing)
            + ". Set them in the config's `diffusion` section: stage2.flux_path (FLUX.1-dev, diffusers "
            "layout), stage2.controlnet_path (PAM's controlnet.bin), stage3.cogvideox_path "
            "(CogVideoX-5b-I2V, diffusers layout), stage3.transformer_path (PAM's transformer folder); "
            "local folders or Hub repo ids already in the Hugging Face cache."
        )

    # --- runtime --------------------------------------------------------------------------------

    def resolve_local_files_only(self) -> bool:
        if self.local_files_only is not None:
            return bool(self.local_files_only)
        return hub_offline_from_env() or not network_available()

    def resolve_device(self):
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(self.device)
        except (RuntimeError, ValueError) as e:
            raise ConfigError(f"device: {self.device!r} is not a torch device ({e})") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device: {self.device!r} requested but CUDA is not available")
        return device

    def resolve_dtype(self, device=None):
        import torch

        if self.dtype == "auto":
            device = device if device is not None else self.resolve_device()
            return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
        return getattr(torch, self.dtype)

    @property
    def stage2_offload(self) -> str:
        return self.stage2.offload or self.offload

    @property
    def stage3_offload(self) -> str:
        return self.stage3.offload or self.offload

    def candidate_seeds(self, seed: int | None = None) -> tuple[int, ...]:
        if self.stage2.seeds is not None:
            return tuple(self.stage2.seeds)
        base = self.seed if seed is None else int(seed)
        return tuple(base + j for j in range(self.stage2.num_candidates))


def _check_offload(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value not in OFFLOAD_MODES:
        raise ConfigError(f"{name}: {value!r} is not one of {', '.join(OFFLOAD_MODES)}")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}: expected a positive integer, got {value!r}")


