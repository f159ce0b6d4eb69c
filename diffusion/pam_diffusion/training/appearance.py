"""Stage II training: PAM's two Flux ControlNets on frames of an engine dataset.

The objective is PAM's (``appearance_gen/double_controlnet.py``, x-flux's rectified flow): a frame's
Flux latents ``x1`` (VAE sample, shifted and scaled, packed 2x2), noise ``x0``, ``t`` drawn from
``linspace(1, 0, 1000)``, ``x_t = (1 - t) x1 + t x0``; the frozen Flux transformer, with both nets'
residuals summed and added after every double block (cycling ``i % 2``), predicts ``x0 - x1`` under
MSE, at Flux's distilled guidance 4. Net 1 sees ``depth|normal``, net 2 ``hand keypoints|seg``
(6 channels each, in [-1, 1]). Each condition map is independently replaced by a black map with
probability ``condition_drop`` or its per-condition value in ``condition_drops`` (PAM's Stage II
dataset: depth and seg 0.2, hand keypoints 0.05, normal never; a black map is what an absent
condition is at inference) and the prompt by the empty prompt with probability ``prompt_drop``.
Samples are PAM's: frames 0, 8, ..., 48 of every episode (``data.frame_stride``). Only the two nets train; Flux, its VAE and its text
encoders stay frozen.

A checkpoint holds ``controlnet.bin`` (``controlnet1.*``/``controlnet2.*`` with x-flux key names, the
file PAM releases and ``DoubleControl.load_state_dict(strict=True)`` reads) and the diffusers folders
``controlnet1/`` and ``controlnet2/`` (``save_pretrained``); ``pam generate`` loads either."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..conditions import image_to_unit
from ..tiny import TINY_TEXT_LEN
from .config import STAGE2_CONDITIONS, TrainerConfig
from .data import DatasetError, sample_index, scan_dataset, step_rng

#: PAM's timestep grid (``torch.linspace(1, 0, 1000)``, drawn uniformly).
NUM_TIMESTEPS = 1000
#: Flux's distilled guidance during PAM's training.
TRAIN_GUIDANCE = 4.0
CONDITIONS = tuple(c for pair in STAGE2_CONDITIONS for c in pair)


def draw_drops(rng: np.random.Generator, names, p, batch: int) -> dict[str, np.ndarray]:
    """``{name: bool (batch,)}``, True where that condition is dropped: independent draws, with
    probability ``p`` (a number, or a function of the condition's name)."""
    prob = p if callable(p) else (lambda name: p)
    return {n: rng.random(batch) < prob(n) for n in names}


def build_stage2_components(cfg: TrainerConfig, device, weight_dtype) -> dict:
    """Flux + the two nets (+ VAE, encoders, tokenizers, scheduler) in ``FluxControlNetPipeline``'s layout.
    The nets start as PAM starts them (Flux's embedders and first two double blocks copied, zero
    residual projections) or from ``model.init_from`` through ``load_pam_controlnets``."""
    from ..convert import load_pam_controlnets
    from ..flux_controlnet import controlnet_from_transformer, double_controlnet

    m = cfg.model

    def nets_for(transformer):
        if m.init_from:
            return load_pam_controlnets(m.init_from, transformer.config, setting="model.init_from")
        return double_controlnet(*(controlnet_from_transformer(transformer) for _ in range(2)))

    if m.tiny:
        from ..tiny import tiny_components

        comps = dict(tiny_components(cfg.data.height, cfg.data.width, m.tiny_seed).stage2)
        comps["controlnet"] = nets_for(comps["transformer"])
        return comps
    from diffusers import FluxControlNetPipeline, FluxTransformer2DModel

    from ..checkpoints import FLUX_FOLDER, resolve_model_dir

    base = resolve_model_dir(m.base_path, "model.base_path", FLUX_FOLDER, m.local_files_only,
                             "FLUX.1-dev in diffusers layout")
    transformer = FluxTransformer2DModel.from_pretrained(base, subfolder="transformer", torch_dtype=weight_dtype,
                                                        local_files_only=m.local_files_only)
    pipe = FluxControlNetPipeline.from_pretrained(base, transformer=transformer, controlnet=nets_for(transformer),
                                                  torch_dtype=weight_dtype, local_files_only=m.local_files_only)
    return dict(pipe.components)


class AppearanceTask:
    """Stage II models, data and loss for ``loop.run``."""

    def __init__(self, cfg: TrainerConfig, accelerator):
        from diffusers import FluxControlNetPipeline

        self.cfg = cfg
        self.device = accelerator.device
        self.weight_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(accelerator.mixed_precision,
                                                                                torch.float32)
        self.train_set, self.val_set = scan_dataset(cfg.data, CONDITIONS, None)
        # PAM's samples: frames 0, 8, ..., 48 of every episode (its dataset has 7 entries per video)
        self.pairs = [(i, f) for i, ep in enumerate(self.train_set.episodes)
                      for f in range(0, min(ep.num_frames, cfg.data.num_frames), cfg.data.frame_stride)]
        comps = build_stage2_components(cfg, self.device, self.weight_dtype)
        self.pipe = FluxControlNetPipeline(**comps)
        self.pipe.set_progress_bar_config(disable=not cfg.train.progress)  # validation sampling
        for name, module in self.pipe.components.items():
            if isinstance(module, torch.nn.Module):
                module.requires_grad_(False)
                module.eval()
                if name != "controlnet":
                    module.to(self.device, dtype=self.weight_dtype)
        self.controlnet = self.pipe.controlnet.to(self.device, dtype=torch.float32)
        self.controlnet.requires_grad_(True)
        self.prepared = self.controlnet
        self.max_len = cfg.model.max_sequence_length or (TINY_TEXT_LEN if cfg.model.tiny else 512)
        self.drop_counts = {c: 0 for c in CONDITIONS} | {"prompt": 0, "draws": 0}

    # --- the loop's interface -------------------------------------------------------------------

    def trainable_module(self):
        return self.controlnet

    def set_prepared(self, module) -> None:
        self.prepared = module

    def trainable_named_parameters(self):
        return [(n, p) for n, p in self.controlnet.named_parameters() if p.requires_grad]

    def clip_groups(self):
        return [[p for p in net.parameters() if p.requires_grad] for net in self.controlnet.nets]

    def enable_gradient_checkpointing(self) -> None:
        self.pipe.transformer.enable_gradient_checkpointing()
        for net in self.controlnet.nets:
            net.enable_gradient_checkpointing()

    def sample(self, position: int) -> dict:
        """One training sample: the (episode, frame) pair at ``position`` of the epoch's permutation."""
        idx, frame = self.pairs[sample_index(self.cfg.train.seed, position, len(self.pairs))]
        item = self.train_set.read(idx, [frame])
        return {k: (v[0] if isinstance(v, np.ndarray) else v) for k, v in item.items()}

    def loss(self, positions, step, micro, rank, generator, drops: bool = True) -> torch.Tensor:
        t_cfg = self.cfg.train
        rng = step_rng(t_cfg.seed, 11, step, micro, rank)
        items = [self.sample(p) for p in positions]
        b = len(items)
        dropped = draw_drops(rng, CONDITIONS, t_cfg.drop_probability if drops else 0.0, b)
        no_prompt = rng.random(b) < (t_cfg.prompt_drop if drops else 0.0)
        if drops:
            self.drop_counts["draws"] += b
            self.drop_counts["prompt"] += int(no_prompt.sum())
            for c in CONDITIONS:
                self.drop_counts[c] += int(dropped[c].sum())
        prompts = ["" if no_prompt[i] else items[i]["prompt"] for i in range(b)]
        image = torch.from_numpy(np.stack([image_to_unit(it["video"]) for it in items])).to(self.device)
        hints = []
        for pair in STAGE2_CONDITIONS:
            maps = []
            for c in pair:
                x = np.stack([image_to_unit(it[c]) for it in items])
                x[dropped[c]] = -1.0  # a black map: what an absent condition is at inference
                maps.append(x)
            hints.append(torch.from_numpy(np.concatenate(maps, axis=1)).to(self.device, self.weight_dtype))
        return self.flow_loss(image, hints, prompts, generator)

    def flow_loss(self, image: torch.Tensor, hints: list[torch.Tensor], prompts: list[str],
                  generator: torch.Generator) -> torch.Tensor:
        pipe, dtype, device = self.pipe, self.weight_dtype, self.device
        b = image.shape[0]
        with torch.no_grad():
            vae = pipe.vae
            lat = vae.encode(image.to(dtype)).latent_dist.sample(generator)
            lat = (lat - vae.config.shift_factor) * vae.config.scaling_factor
            c, h, w = lat.shape[1:]
            x1 = pipe._pack_latents(lat, b, c, h, w).float()
            prompt_embeds, pooled, text_ids = pipe.encode_prompt(
                prompt=prompts, prompt_2=None, device=device, num_images_per_prompt=1, max_sequence_length=self.max_len)
        img_ids = pipe._prepare_latent_image_ids(b, h // 2, w // 2, device, dtype)
        grid = torch.linspace(1, 0, NUM_TIMESTEPS, device=device)
        t = grid[torch.randint(NUM_TIMESTEPS, (b,), generator=generator, device=device)]
        x0 = torch.randn(x1.shape, generator=generator, device=device, dtype=x1.dtype)
        xt = (1 - t[:, None, None]) * x1 + t[:, None, None] * x0
        guidance = torch.full((b,), TRAIN_GUIDANCE, device=device)
        modes = [torch.full((b,), -1, dtype=torch.long, device=device) for _ in hints]
        blocks, singles = self.prepared(
            hidden_states=xt.to(dtype), controlnet_cond=hints, controlnet_mode=modes, conditioning_scale=[1.0, 1.0],
            encoder_hidden_states=prompt_embeds, pooled_projections=pooled, timestep=t.to(dtype), img_ids=img_ids,
            txt_ids=text_ids, guidance=guidance.to(dtype), return_dict=False)
        pred = pipe.transformer(
            hidden_states=xt.to(dtype), timestep=t.to(dtype), guidance=guidance.to(dtype), pooled_projections=pooled,
            encoder_hidden_states=prompt_embeds, controlnet_block_samples=blocks,
            controlnet_single_block_samples=singles, txt_ids=text_ids, img_ids=img_ids, return_dict=False,
            controlnet_blocks_repeat=True)[0]
        return F.mse_loss(pred.float(), (x0 - x1).float())

    # --- checkpoints and validation -------------------------------------------------------------

    def save_weights(self, folder: Path) -> None:
        save_stage2(self.controlnet, folder)

    def validate(self, step: int, folder: Path, writer) -> None:
        """A first frame for each validation episode (or the first training one), at PAM's sampler."""
        from ..appearance import AppearanceStage

        data = self.val_set if len(self.val_set) else self.train_set
        stage = AppearanceStage(self.pipe, steps=self.cfg.train.validation_steps, guidance=TRAIN_GUIDANCE,
                                conditioning_scales=(1.0, 1.0), max_sequence_length=self.max_len)
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(min(len(data), 4)):
            item = data.read(i, [0])
            frame0 = {c: item[c][0] for c in CONDITIONS}
            frame0["tracking"] = np.zeros_like(frame0["depth"])
            image = stage.candidates(frame0, item["prompt"], [self.cfg.train.seed], self.cfg.data.height,
                                     self.cfg.data.width)[0]
            _write_png(folder / f"step{step:06d}_{item['name']}.png", image)
            if writer is not None:
                writer.add_image(f"validation/{item['name']}", np.concatenate([item["video"][0], image], axis=1),
                                 step, dataformats="HWC")


def save_stage2(multi, folder: Path) -> None:
    """``controlnet.bin`` in PAM's x-flux layout, plus diffusers ``controlnet1/``/``controlnet2/``."""
    from ..convert import diffusers_to_xflux, NET_PREFIXES

    folder.mkdir(parents=True, exist_ok=True)
    sd = {}
    for prefix, net in zip(NET_PREFIXES, multi.nets):
        for k, v in diffusers_to_xflux(net.state_dict()).items():
            sd[prefix + k] = v.detach().cpu().contiguous()
    tmp = folder / ".controlnet.bin.tmp"
    torch.save(sd, tmp)
    tmp.rename(folder / "controlnet.bin")
    for name, net in zip(("controlnet1", "controlnet2"), multi.nets):
        net.save_pretrained(folder / name, safe_serialization=True)


def _write_png(path: Path, image: np.ndarray) -> None:
    import cv2

    tmp = path.with_name(f".{path.name}.tmp.png")
    cv2.imwrite(str(tmp), image[..., ::-1])
    tmp.rename(path)


def train_appearance(cfg: TrainerConfig, stop_after: int | None = None):
    """Run Stage II training (see the module docstring); returns ``loop.TrainResult``."""
    from .loop import run

    if cfg.stage != "appearance":
        raise DatasetError(f"train_appearance got a {cfg.stage!r} config")
    return run(cfg, AppearanceTask, stop_after=stop_after)

