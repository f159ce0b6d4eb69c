"""The public entry point: condition maps in, a video out (Stage II -> Stage III).

``PamVideoGenerator.from_config`` checks every weight folder, then loads both stages;
``from_components`` wraps already-built models (the tiny ones in tests). ``generate`` checks the
conditions before any model runs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from pam_diffusion.errors import ConfigError

from .conditions import condition_or_zeros, stage2_maps, validate_conditions
from .config import DiffusionConfig, SLOTS
from .errors import ConditionError, WeightsNotFoundError
from .scoring import Scorer, get_scorer


@dataclass
class VideoResult:
    """What ``generate`` returns. Images are uint8 RGB."""

    frames: np.ndarray  # (T, H, W, 3)
    first_frame: np.ndarray  # (H, W, 3), the chosen Stage II candidate (or the one given), at the video size
    candidates: list[np.ndarray] = field(default_factory=list)  # Stage II candidates (at stage2.size), one per seed
    candidate_scores: list[float] = field(default_factory=list)
    candidate_seeds: list[int] = field(default_factory=list)
    chosen: int = -1  # index of the chosen candidate, -1 when the first frame was given
    fps: int = 15
    #: seconds: stage2, stage3, total, and mean seconds per denoising step of each stage
    timings: dict[str, float] = field(default_factory=dict)


class PamVideoGenerator:
    """Stage II (Flux + PAM ControlNets) and Stage III (CogVideoX-5B-I2V + PAM control transformer)."""

    def __init__(self, config: DiffusionConfig, stage2_pipe, stage3_pipe, scorer: str | Scorer | None = None):
        from .appearance import AppearanceStage
        from .motion import MotionStage

        self.config = config
        self.scorer = get_scorer(scorer if scorer is not None else config.stage2.scorer)
        s2, s3 = config.stage2, config.stage3
        self.appearance = AppearanceStage(stage2_pipe, s2.steps, s2.guidance, s2.conditioning_scales,
                                          s2.max_sequence_length) if stage2_pipe is not None else None
        self.motion = MotionStage(stage3_pipe, s3.steps, s3.guidance, s3.dynamic_guidance, s3.negative_prompt,
                                  s3.max_sequence_length, config.used_conditions)
        check_video_size(config, stage3_pipe.transformer.config)

    # --- construction ---------------------------------------------------------------------------

    @classmethod
    def from_components(cls, config: DiffusionConfig, stage2: Mapping | None, stage3: Mapping,
                        scorer: str | Scorer | None = None) -> "PamVideoGenerator":
        """Wrap built models. ``stage2``: keyword components of ``FluxControlNetPipeline`` (transformer,
        controlnet, vae, text_encoder, tokenizer, text_encoder_2, tokenizer_2, scheduler), or None to
        always pass ``first_frame``; ``stage3``: of ``CogVideoXImageToVideoPipeline`` (transformer = a
        ``PamCogVideoXControlTransformer``, vae, text_encoder, tokenizer, scheduler)."""
        from diffusers import FluxControlNetPipeline

        from .motion import PamCogVideoXControlPipeline

        get_scorer(scorer if scorer is not None else config.stage2.scorer)
        device, dtype = config.resolve_device(), config.resolve_dtype()
        pipe2 = FluxControlNetPipeline(**stage2) if stage2 is not None else None
        pipe3 = PamCogVideoXControlPipeline(**stage3)
        for pipe, offload in ((pipe2, config.stage2_offload), (pipe3, config.stage3_offload)):
            if pipe is not None:
                _cast(pipe, dtype)
                apply_memory_options(pipe, config, device, offload)
        return cls(config, pipe2, pipe3, scorer)

    @classmethod
    def from_config(cls, config: DiffusionConfig, scorer: str | Scorer | None = None) -> "PamVideoGenerator":
        """Check all four weight locations, then load both stages (bf16 on GPU, fp32 on CPU)."""
        get_scorer(scorer if scorer is not None else config.stage2.scorer)
        if not config.is_configured():
            raise ConfigError(config.skip_message())
        paths = locate_weights(config)
        device, dtype = config.resolve_device(), config.resolve_dtype()
        local = paths["local_files_only"]
        pipe2 = load_stage2(paths["flux"], paths["controlnet"], dtype, local)
        pipe3 = load_stage3(paths["cogvideox"], paths["transformer"], dtype, local, config.stage3.num_control_blocks)
        apply_memory_options(pipe2, config, device, config.stage2_offload)
        apply_memory_options(pipe3, config, device, config.stage3_offload)
        return cls(config, pipe2, pipe3, scorer)

    # --- generation -----------------------------------------------------------------------------

    def generate(self, conditions: Mapping[str, np.ndarray], prompt: str, seed: int | None = None,
                 first_frame: np.ndarray | None = None,
                 stage2_conditions: Mapping[str, np.ndarray] | None = None) -> VideoResult:
        """Conditions (uint8 (T, H, W, 3) per name among depth, normal, seg, hand, tracking; missing ones
        are black) -> video. Stage II is skipped when ``first_frame`` (uint8 (H, W, 3)) is given.
        ``stage2_conditions``: first-frame maps (uint8 (h, w, 3) at ``stage2.size``) that replace
        those taken from ``conditions`` for Stage II (e.g. a keypoint map drawn as PAM's Stage II
        loader drew it)."""
        cfg = self.config
        t_start = time.perf_counter()
        conds = validate_conditions(conditions, cfg.num_frames, cfg.height, cfg.width)
        width2, height2 = cfg.stage2.size or (cfg.width, cfg.height)
        overrides = {}
        if stage2_conditions:
            single = {k: np.asarray(v)[None] if isinstance(v, np.ndarray) else v for k, v in stage2_conditions.items()}
            overrides = {k: v[0] for k, v in validate_conditions(single, 1, height2, width2).items()}
        if first_frame is not None:
            _check_first_frame(first_frame, cfg.height, cfg.width)
        elif self.appearance is None:
            raise ConditionError("first_frame: this generator has no Stage II; pass a uint8 (H, W, 3) first frame")
        if not isinstance(prompt, str):
            raise ConditionError(f"prompt: expected a string, got {type(prompt).__name__}")
        seed = cfg.seed if seed is None else int(seed)

        result = VideoResult(frames=np.zeros((0,), np.uint8), first_frame=first_frame, fps=cfg.fps)
        if first_frame is None:
            frame0 = {k: condition_or_zeros(conds, k, 1, cfg.height, cfg.width)[0] for k in SLOTS}
            frame0 = {**stage2_maps(frame0, width2, height2), **overrides}
            seeds = list(cfg.candidate_seeds(seed))
            t0 = time.perf_counter()
            result.candidates = self.appearance.candidates(frame0, prompt, seeds, height2, width2)
            result.timings["stage2_s"] = time.perf_counter() - t0
            result.timings["stage2_step_s"] = _mean(self.appearance.step_times)
            result.candidate_seeds = seeds
            result.candidate_scores = [float(self.scorer(c, frame0)) for c in result.candidates]
            result.chosen = int(np.argmax(result.candidate_scores))
            result.first_frame = result.candidates[result.chosen]
            if (width2, height2) != (cfg.width, cfg.height):
                import cv2  # PAM's evaluation stretches its 640x480 first frame bilinear

                result.first_frame = cv2.resize(result.first_frame, (cfg.width, cfg.height),
                                                interpolation=cv2.INTER_LINEAR)

        videos = {s: condition_or_zeros(conds, s, cfg.num_frames, cfg.height, cfg.width) for s in cfg.used_conditions}
        t0 = time.perf_counter()
        result.frames = self.motion.animate(result.first_frame, videos, prompt, seed, cfg.num_frames,
                                            cfg.height, cfg.width)
        result.timings["stage3_s"] = time.perf_counter() - t0
        result.timings["stage3_step_s"] = _mean(self.motion.step_times)
        result.timings["total_s"] = time.perf_counter() - t_start
        return result


def check_video_size(config: DiffusionConfig, transformer_config) -> None:
    """CogVideoX-5B-I2V's learned positional embeddings fix the video size and the text length."""
    if not transformer_config.get("use_learned_positional_embeddings"):
        return
    size = (8 * transformer_config["sample_height"], 8 * transformer_config["sample_width"])
    if (config.height, config.width) != size:
        raise ConfigError(
            f"height x width {config.height}x{config.width}: this Stage III transformer has learned positional "
            f"embeddings and only generates {size[0]}x{size[1]} videos")
    if config.stage3.max_sequence_length != transformer_config["max_text_seq_length"]:
        raise ConfigError(
            f"stage3.max_sequence_length {config.stage3.max_sequence_length}: this Stage III transformer needs "
            f"{transformer_config['max_text_seq_length']} text tokens (learned positional embeddings)")


def _mean(xs) -> float:
    return float(np.mean(xs)) if len(xs) else float("nan")


def _check_first_frame(image, height: int, width: int) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.shape != (height, width, 3):
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ConditionError(f"first_frame: expected uint8 ({height}, {width}, 3), got {got}")


# --- loading ------------------------------------------------------------------------------------

def locate_weights(config: DiffusionConfig) -> dict:
    """Resolve and check the four weight locations (no model is loaded; no network when offline)."""
    from .checkpoints import COGVIDEOX_FOLDER, FLUX_FOLDER, resolve_model_dir
    from .convert import find_controlnet_file

    local = config.resolve_local_files_only()
    flux = resolve_model_dir(config.stage2.flux_path, "stage2.flux_path", FLUX_FOLDER, local,
                             "FLUX.1-dev in diffusers layout")
    cog = resolve_model_dir(config.stage3.cogvideox_path, "stage3.cogvideox_path", COGVIDEOX_FOLDER, local,
                            "CogVideoX-5b-I2V in diffusers layout")
    controlnet = Path(config.stage2.controlnet_path).expanduser()
    if not (controlnet.is_dir() and (controlnet / "controlnet1").is_dir() and (controlnet / "controlnet2").is_dir()):
        controlnet = find_controlnet_file(controlnet)
    transformer = _locate_pam_transformer(config.stage3.transformer_path)
    return {"flux": flux, "cogvideox": cog, "controlnet": controlnet, "transformer": transformer,
            "local_files_only": local}


def _locate_pam_transformer(spec: str) -> Path:
    from .checkpoints import resolve_model_dir, weight_files

    # Not downloaded even when online: PAM's transformer is a local folder (or already in the HF cache).
    where = resolve_model_dir(spec, "stage3.transformer_path", ("config.json",), True,
                              "PAM's Stage III transformer (config.json plus sharded weights)")
    folder = Path(where)
    if not folder.is_dir():
        raise WeightsNotFoundError(
            f"stage3.transformer_path {spec!r}: not a local folder or cached repo; expected PAM's transformer "
            "folder (config.json plus sharded weights)")
    if not weight_files(folder):
        raise WeightsNotFoundError(
            f"stage3.transformer_path {str(folder)!r} holds no weights; expected diffusion_pytorch_model*.safetensors "
            "or pytorch_model*.bin (optionally sharded with an *.index.json) beside config.json")
    return folder


def load_stage2(flux_dir: str, controlnet_path: Path, dtype, local_files_only: bool):
    from diffusers import FluxControlNetPipeline, FluxTransformer2DModel

    from .convert import load_pam_controlnets

    transformer = FluxTransformer2DModel.from_pretrained(flux_dir, subfolder="transformer", torch_dtype=dtype,
                                                        local_files_only=local_files_only)
    controlnet = load_pam_controlnets(controlnet_path, transformer.config, torch_dtype=dtype)
    return FluxControlNetPipeline.from_pretrained(flux_dir, transformer=transformer, controlnet=controlnet,
                                                  torch_dtype=dtype, local_files_only=local_files_only)


def load_stage3(cog_dir: str, transformer_dir: Path, dtype, local_files_only: bool, num_control_blocks=None):
    from diffusers import CogVideoXDPMScheduler

    from .control_transformer import load_pam_transformer
    from .motion import PamCogVideoXControlPipeline

    transformer = load_pam_transformer(transformer_dir, torch_dtype=dtype, num_tracking_blocks=num_control_blocks)
    pipe = PamCogVideoXControlPipeline.from_pretrained(cog_dir, transformer=transformer, torch_dtype=dtype,
                                                       local_files_only=local_files_only)
    pipe.scheduler = CogVideoXDPMScheduler.from_config(pipe.scheduler.config, timestep_spacing="trailing")
    return pipe


def _cast(pipe, dtype) -> None:
    """Cast the pipeline's models that are not already in ``dtype``."""
    import torch

    for module in pipe.components.values():
        if isinstance(module, torch.nn.Module) and module.dtype != dtype:
            module.to(dtype=dtype)


def apply_memory_options(pipe, config: DiffusionConfig, device, offload: str) -> None:
    """Offload mode and VAE tiling/slicing. Offloading needs an accelerator; on a CPU the models simply
    stay in RAM."""
    import torch

    device = torch.device(device)
    if device.type != "cpu" and offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif device.type != "cpu" and offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe.to(device)
    if config.vae_tiling:
        pipe.vae.enable_tiling()
    if config.vae_slicing:
        pipe.vae.enable_slicing()
