"""Trainer configs: frozen dataclasses read from YAML by the project's typed-config loader
(``pam_diffusion.typed_config``). Every value is checked once, here; unknown keys and wrong types are
``ConfigError``s naming the dotted key, before any model is built.

A config file has three sections: ``data`` (which episodes, what size), ``model`` (which base weights,
what to start the control branch from) and ``train`` (optimiser, schedule, semantics, logging)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

from ..errors import ConfigError


class TrainingConfigError(ConfigError):
    """A trainer config value out of range, or a setting the trainer cannot honour here."""


#: Condition maps each Stage II net sees (PAM: net 1 depth+normal, net 2 hand keypoints+seg).
STAGE2_CONDITIONS: tuple[tuple[str, str], tuple[str, str]] = (("depth", "normal"), ("hand", "seg"))
#: Engine episode file of each condition slot (README, "What a run produces").
CONDITION_FILES: dict[str, str] = {
    "depth": "depth.mp4", "normal": "normal.mp4", "seg": "seg.mp4", "hand": "hand_keypoints.mp4",
    "tracking": "tracking.mp4",
}
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts")


@dataclass(frozen=True)
class DataConfig:
    """Where the episodes are and how frames are taken from them."""

    #: An engine dataset folder (episodes ``*/`` holding the video and its condition maps).
    root: str = ""
    #: The real or photoreal video each episode holds (DexYCB import: ``video.mp4``).
    video: str = "video.mp4"
    #: Training size; must be what the model's positional embeddings take (Stage III).
    height: int = 480
    width: int = 720
    #: Frames per Stage III clip, 4k+1 (CogVideoX's VAE keeps frame 0 and compresses the rest by 4).
    #: Stage II draws its frames from the same first ``num_frames``.
    num_frames: int = 49
    #: Stage II trains on frames 0, s, 2s, ... of each episode (PAM: s = 8, i.e. 0, 8, ..., 48).
    frame_stride: int = 8
    #: Resize episodes of another size to ``height x width`` (nearest for maps, area for video), as
    #: PAM's loaders stretch DexYCB's 640x480 to 720x480; when false such episodes are an error.
    resize: bool = False
    #: Episodes (by sorted name) held out for validation samples; the rest train.
    val_episodes: int = 1
    #: Episode folder names to use (default: all). ``split`` files (one name a line) also work.
    episodes: tuple[str, ...] | None = None
    split_file: str | None = None

    def __post_init__(self) -> None:
        if not self.root:
            raise TrainingConfigError("data.root: expected an engine dataset folder")
        for name in ("height", "width"):
            v = getattr(self, name)
            if v <= 0 or v % 16:
                raise TrainingConfigError(f"data.{name}: {v} is not a positive multiple of 16 (e.g. 480, 720)")
        if self.num_frames < 1 or (self.num_frames - 1) % 4:
            raise TrainingConfigError(f"data.num_frames: {self.num_frames} is not of the form 4k+1 (e.g. 9, 49)")
        if self.frame_stride < 1:
            raise TrainingConfigError(f"data.frame_stride: expected >= 1, got {self.frame_stride}")
        if self.val_episodes < 0:
            raise TrainingConfigError(f"data.val_episodes: expected >= 0, got {self.val_episodes}")


@dataclass(frozen=True)
class ModelConfig:
    """Base weights (frozen) and the control branch's starting point."""

    #: Build tiny random models (``pam_diffusion.tiny``) instead of loading weights: tests and CI.
    tiny: bool = False
    tiny_seed: int = 0
    #: Stage II: FLUX.1-dev (diffusers layout). Stage III: CogVideoX-5b-I2V (diffusers layout).
    base_path: str | None = None
    #: Start the control branch from a checkpoint in PAM's layout (``controlnet.bin`` / PAM's transformer
    #: folder, PAM's released weights included), read by the same loaders as ``pam generate``.
    init_from: str | None = None
    #: Stage III: blocks copied into the control branch (PAM: 12).
    num_control_blocks: int = 12
    local_files_only: bool = True
    max_sequence_length: int | None = None

    def __post_init__(self) -> None:
        if not self.tiny and not self.base_path:
            raise TrainingConfigError("model.base_path: expected the base model folder (or model.tiny: true)")
        if self.num_control_blocks < 1:
            raise TrainingConfigError(f"model.num_control_blocks: expected >= 1, got {self.num_control_blocks}")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, PAM's training semantics, checkpoints and logging."""

    def drop_probability(self, condition: str) -> float:
        return float((self.condition_drops or {}).get(condition, self.condition_drop))

    output_dir: str = ""
    seed: int = 42
    max_steps: int = 1000
    batch_size: int = 1
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-4
    lr_scheduler: str = "constant"
    lr_warmup_steps: int = 0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    adam_weight_decay: float = 1e-3
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    #: "adamw" or "adamw8bit" (bitsandbytes; refused before training when it is not importable).
    optimizer: Literal["adamw", "adamw8bit"] = "adamw"
    #: "auto" = bf16 on CUDA, none on CPU.
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    gradient_checkpointing: bool = False
    #: Each condition is dropped independently with this probability (PAM: 0.2); a dropped map is black
    #: (Stage II) or zero latents (Stage III), as unused conditions are at inference.
    condition_drop: float = 0.2
    #: Per-condition probabilities that replace ``condition_drop`` (PAM's Stage II: hand keypoints
    #: 0.05, normal never; depth and seg 0.2).
    condition_drops: dict[str, float] | None = None
    #: The prompt is replaced by the empty prompt with this probability.
    prompt_drop: float = 0.0
    #: Stage III: the first-frame latents (image and every slot's) are zeroed with this probability
    #: (PAM: ``--noised_image_dropout 0.05``).
    image_drop: float = 0.05
    #: Stage III: the condition slots fed to the control branch (PAM: hand keypoints, depth, seg); the
    #: other slots are zeros.
    used_conditions: tuple[str, ...] = ("hand", "depth", "seg")
    #: Stage III: VAE latents computed once and kept under ``<output_dir>/latent_cache``.
    cache_latents: bool = True
    cache_dir: str | None = None
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    validate_every: int = 0
    #: Denoising steps of the validation samples (PAM's samplers: 28 for Stage II, 50 for Stage III).
    validation_steps: int = 28
    log_every: int = 1
    #: Stop (saving a checkpoint) once this many seconds have passed; 0 = no limit.
    max_wall_s: float = 0.0
    #: "auto" resumes from the newest checkpoint in output_dir; "never" refuses a non-empty output_dir.
    resume: Literal["auto", "never"] = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.output_dir:
            raise TrainingConfigError("train.output_dir: expected a folder for checkpoints and logs")
        for name in ("max_steps", "batch_size", "gradient_accumulation_steps", "checkpoint_every",
                     "keep_checkpoints", "log_every"):
            if getattr(self, name) < 1:
                raise TrainingConfigError(f"train.{name}: expected a positive integer, got {getattr(self, name)}")
        for name in ("condition_drop", "prompt_drop", "image_drop"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise TrainingConfigError(f"train.{name}: expected a probability in [0, 1], got {p}")
        for name, p in (self.condition_drops or {}).items():
            if name not in CONDITION_FILES:
                raise TrainingConfigError(f"train.condition_drops: unknown condition {name!r}; expected some of "
                                          f"{', '.join(CONDITION_FILES)}")
            if not 0.0 <= p <= 1.0:
                raise TrainingConfigError(f"train.condition_drops.{name}: expected a probability in [0, 1], got {p}")
        bad = [c for c in self.used_conditions if c not in CONDITION_FILES]
        if bad or not self.used_conditions:
            raise TrainingConfigError(
                f"train.used_conditions: {list(self.used_conditions)}; expected some of {', '.join(CONDITION_FILES)}")
        if self.lr_scheduler not in LR_SCHEDULERS:
            raise TrainingConfigError(f"train.lr_scheduler: {self.lr_scheduler!r} is not one of {', '.join(LR_SCHEDULERS)}")
        if self.learning_rate <= 0:
            raise TrainingConfigError(f"train.learning_rate: expected > 0, got {self.learning_rate}")
        if self.validate_every < 0 or self.lr_warmup_steps < 0 or self.max_wall_s < 0:
            raise TrainingConfigError("train.validate_every, lr_warmup_steps and max_wall_s must be >= 0")


@dataclass(frozen=True)
class TrainerConfig:
    """One trainer run: ``stage`` is "appearance" (Stage II) or "motion" (Stage III)."""

    stage: Literal["appearance", "motion"]
    data: DataConfig
    model: ModelConfig = field(default_factory=lambda: ModelConfig(tiny=True))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(output_dir="runs/train"))

    def replace(self, **sections) -> "TrainerConfig":
        """A copy with some fields of some sections replaced: ``cfg.replace(train={"max_steps": 3})``."""
        new = {}
        for name, changes in sections.items():
            new[name] = dataclasses.replace(getattr(self, name), **changes)
        return dataclasses.replace(self, **new)


def load_trainer_config(path: str | Path, stage: str,
                        overrides: Sequence[str] | Mapping[str, Any] = ()) -> TrainerConfig:
    """Read a trainer YAML (``data``/``model``/``train`` sections, optional ``stage``) for ``stage``
    through the project's typed-config loader. ``overrides``: ``key.sub=value`` strings (YAML values,
    as ``--set``) or a mapping of dotted keys to values. Relative paths are from the working directory."""
    from ..typed_config import apply_overrides, from_dict, load_yaml

    raw = load_yaml(path)
    if isinstance(overrides, Mapping):
        for key, value in overrides.items():
            *parents, leaf = key.split(".")
            node = raw
            for p in parents:
                node = node.setdefault(p, {})
                if not isinstance(node, dict):
                    raise TrainingConfigError(f"override {key!r}: {p!r} is not a section")
            node[leaf] = value
    else:
        raw = apply_overrides(raw, overrides)
    declared = raw.pop("stage", stage)
    if declared != stage:
        raise TrainingConfigError(f"trainer config {str(path)!r} is for stage {declared!r}, not {stage!r}")
    return from_dict(TrainerConfig, {"stage": stage, **raw})
