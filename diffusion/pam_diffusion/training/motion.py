"""Stage III training: PAM's control branch of CogVideoX-5B-I2V on clips of an engine dataset.

The objective is PAM's (``training/cogvideox_image_to_video_comb_sft.py``, CogVideoX's SFT recipe):
scaled VAE latents of a T = 4k + 1 frame clip, ``t ~ U{0..999}``, ``x_t = add_noise(x, noise, t)``;
the model's output is read as v-prediction through the scheduler (``get_velocity(out, x_t, t)``
gives the predicted clean latents), and the loss is ``mean((1 / (1 - alphā_t)) * (x̂ - x)^2)``. The
noisy latents are concatenated with the first frame's latents (zero-padded to all latent frames, the
I2V input); each used condition slot is its clip's latents concatenated with its own first-frame
latents. Each used condition is dropped (both parts zero, as unused slots) with probability
``condition_drop`` (PAM: ``random_mask``, keep 0.8), all first-frame latents with ``image_drop`` (PAM:
``noised_image_dropout`` 0.05), and the prompt with ``prompt_drop``. Only ``transformer_blocks_copy``,
``combine_linears`` and ``initial_combine_linear`` train.

VAE posteriors are computed once per episode and kept on disk (``latent_cache``), keyed by the
episode's files, the clip, the size and a fingerprint of the VAE's weights. As in PAM (whose
``prepare_dataset`` stores ``vae._encode`` moments), the cache holds the posterior's moments, which
equal on-the-fly encoding bit for bit, and every step draws a fresh latent sample from them. A checkpoint holds ``transformer/``: a sharded diffusers folder with CogVideoX's keys plus the
control keys and a ``config.json`` (with ``num_tracking_blocks``), loadable by
``load_pam_transformer`` (``pam generate``), ``from_pretrained`` and PAM's own loader."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from ..conditions import image_to_unit
from ..config import SLOTS
from .appearance import draw_drops
from .config import TrainerConfig
from .data import DatasetError, EpisodeDataset, sample_index, scan_dataset, step_rng

#: Largest shard of the saved transformer folder (PAM's released folder is sharded too).
MAX_SHARD_SIZE = "5GB"


def build_stage3_components(cfg: TrainerConfig, weight_dtype) -> dict:
    """Control transformer, VAE, T5, tokenizer and scheduler in ``CogVideoXImageToVideoPipeline``'s layout."""
    from ..control_transformer import PamCogVideoXControlTransformer, load_pam_transformer

    m = cfg.model
    if m.tiny:
        from ..tiny import tiny_components

        comps = dict(tiny_components(cfg.data.height, cfg.data.width, m.tiny_seed).stage3)
        control = comps["transformer"]
        # PAM's start: copies of the first blocks, zero combine layers.
        for i, block in enumerate(control.transformer_blocks_copy):
            block.load_state_dict(control.transformer_blocks[i].state_dict())
        for layer in list(control.combine_linears) + [control.initial_combine_linear]:
            torch.nn.init.zeros_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    else:
        from diffusers import (AutoencoderKLCogVideoX, CogVideoXDPMScheduler, CogVideoXTransformer3DModel)
        from transformers import AutoTokenizer, T5EncoderModel

        from ..checkpoints import COGVIDEOX_FOLDER, resolve_model_dir

        base = resolve_model_dir(m.base_path, "model.base_path", COGVIDEOX_FOLDER, m.local_files_only,
                                 "CogVideoX-5b-I2V in diffusers layout")
        kw = dict(local_files_only=m.local_files_only)
        comps = dict(
            vae=AutoencoderKLCogVideoX.from_pretrained(base, subfolder="vae", torch_dtype=weight_dtype, **kw),
            text_encoder=T5EncoderModel.from_pretrained(base, subfolder="text_encoder", torch_dtype=weight_dtype, **kw),
            tokenizer=AutoTokenizer.from_pretrained(base, subfolder="tokenizer", **kw),
            scheduler=CogVideoXDPMScheduler.from_pretrained(base, subfolder="scheduler", **kw),
        )
        if not m.init_from:
            plain = CogVideoXTransformer3DModel.from_pretrained(base, subfolder="transformer", torch_dtype=weight_dtype,
                                                                **kw)
            comps["transformer"] = PamCogVideoXControlTransformer.from_base(plain, m.num_control_blocks)
            del plain
    if m.init_from:
        comps["transformer"] = load_pam_transformer(m.init_from, num_tracking_blocks=m.num_control_blocks)
    return comps


def transformer_video_size(cfg: TrainerConfig) -> tuple[int, int] | None:
    """(H, W) that the transformer's learned positional embeddings fix, read from its config.json
    without loading weights; None when the size is free or not known yet (tiny models are built at
    the data size)."""
    m = cfg.model
    if m.tiny and not m.init_from:
        return None
    if m.init_from:
        path = Path(m.init_from) / "config.json"
    else:
        path = Path(m.base_path) / "transformer" / "config.json"
    if not path.is_file():
        return None  # the loaders report the missing folder with what they expected
    try:
        c = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not c.get("use_learned_positional_embeddings") or "sample_height" not in c:
        return None
    return 8 * int(c["sample_height"]), 8 * int(c["sample_width"])


def vae_fingerprint(vae) -> str:
    """A hash of the VAE's config and weights: cached latents are only reused with the same VAE."""
    h = hashlib.sha256(json.dumps(dict(vae.config), sort_keys=True, default=str).encode())
    for name, t in sorted(vae.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class MotionTask:
    """Stage III models, data, latent cache and loss for ``loop.run``."""

    def __init__(self, cfg: TrainerConfig, accelerator):
        from ..motion import PamCogVideoXControlPipeline

        self.cfg = cfg
        self.device = accelerator.device
        self.weight_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(accelerator.mixed_precision,
                                                                                torch.float32)
        self.used = tuple(s for s in SLOTS if s in set(cfg.train.used_conditions))
        # Cheap checks first: the dataset and the size the transformer's config fixes, before any weights load.
        self.train_set, self.val_set = scan_dataset(cfg.data, self.used, cfg.data.num_frames,
                                                    model_size=transformer_video_size(cfg))
        comps = build_stage3_components(cfg, self.weight_dtype)
        tcfg = comps["transformer"].config
        if tcfg.get("use_learned_positional_embeddings"):
            size = (8 * tcfg["sample_height"], 8 * tcfg["sample_width"])
            if size != (cfg.data.height, cfg.data.width):
                raise DatasetError(
                    f"data.height x data.width {cfg.data.height}x{cfg.data.width}: this transformer's learned "
                    f"positional embeddings take only {size[0]}x{size[1]} videos")
        self.pipe = PamCogVideoXControlPipeline(**comps)
        self.pipe.set_progress_bar_config(disable=not cfg.train.progress)  # validation sampling
        self.transformer = self.pipe.transformer
        for name, module in self.pipe.components.items():
            if isinstance(module, torch.nn.Module):
                module.requires_grad_(False)
                module.eval()
                module.to(self.device, dtype=self.weight_dtype)
        for p in self.transformer.control_parameters():
            p.data = p.data.float()
            p.requires_grad_(True)
        self.prepared = self.transformer
        self.max_len = cfg.model.max_sequence_length or int(tcfg["max_text_seq_length"])
        self.alphas = self.pipe.scheduler.alphas_cumprod.to(self.device, torch.float32)
        self.drop_counts = {c: 0 for c in self.used} | {"prompt": 0, "image": 0, "draws": 0}
        self._vae_id = None
        self._memory: dict[int, dict] = {}
        self.cache_dir = Path(cfg.train.cache_dir or Path(cfg.train.output_dir) / "latent_cache")
        if cfg.train.cache_latents:  # one process encodes, the others read the files
            if accelerator.is_main_process:
                self.precompute()
            accelerator.wait_for_everyone()

    # --- latents -----------------------------------------------------------------------------------

    @property
    def vae_id(self) -> str:
        if self._vae_id is None:
            self._vae_id = vae_fingerprint(self.pipe.vae)
        return self._vae_id

    def cache_key(self, dataset: EpisodeDataset, index: int) -> str:
        from .config import CONDITION_FILES

        ep = dataset.episodes[index]
        stats = []
        for f in [self.cfg.data.video] + [CONDITION_FILES[c] for c in self.used]:
            st = (ep.path / f).stat()
            stats.append(f"{f}:{st.st_size}:{st.st_mtime_ns}")
        parts = [str(ep.path.resolve()), *stats, dataset.clip(index), self.cfg.data.height, self.cfg.data.width,
                 self.vae_id, list(self.used)]
        return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:20]

    @torch.no_grad()
    def encode(self, dataset: EpisodeDataset, index: int) -> dict[str, torch.Tensor]:
        """The VAE posteriors of one episode's clip, as their moments (mean | logvar on channels, as
        ``vae._encode`` gives them and PAM's ``prepare_dataset`` stores them): ``video`` (2C, F, h, w),
        ``image`` (2C, 1, h, w) and, per used slot, ``<slot>`` and ``<slot>_image``. A fresh sample is
        drawn from them at every training step, as PAM's trainer does with its cached tensors."""
        item = dataset.read(index, dataset.clip(index))
        vae = self.pipe.vae

        def enc(frames: np.ndarray) -> torch.Tensor:  # (T, H, W, 3) uint8 -> (2C, F, h, w) moments
            x = torch.from_numpy(image_to_unit(frames)).permute(1, 0, 2, 3)[None].to(self.device, vae.dtype)
            return vae.encode(x).latent_dist.parameters[0]

        out = {"video": enc(item["video"]), "image": enc(item["video"][:1])}
        for s in self.used:
            out[s] = enc(item[s])
            out[f"{s}_image"] = enc(item[s][:1])
        return {k: v.float().cpu().contiguous() for k, v in out.items()}

    def cache_file(self, dataset: EpisodeDataset, index: int) -> Path:
        return self.cache_dir / f"{dataset.episodes[index].name}-{self.cache_key(dataset, index)}.safetensors"

    def latents(self, index: int) -> dict[str, torch.Tensor]:
        """The training episode's latents: from memory, the disk cache, or encoded now."""
        if index in self._memory:
            return self._memory[index]
        if not self.cfg.train.cache_latents:
            return self.encode(self.train_set, index)
        from safetensors.torch import load_file

        path = self.cache_file(self.train_set, index)
        if path.is_file():
            lat = load_file(str(path))
        else:
            lat = self.encode(self.train_set, index)
            write_latents(path, lat)
        self._memory[index] = lat
        return lat

    def precompute(self) -> None:
        """Encode every training episode missing from the cache (once; later runs reuse the files)."""
        from tqdm.auto import tqdm

        for i in tqdm(range(len(self.train_set)), desc="latent cache", disable=not self.cfg.train.progress):
            self.latents(i)
        self._memory.clear()

    # --- the loop's interface ----------------------------------------------------------------------

    def trainable_module(self):
        return self.transformer

    def set_prepared(self, module) -> None:
        self.prepared = module

    def trainable_named_parameters(self):
        return [(n, p) for n, p in self.transformer.named_parameters() if p.requires_grad]

    def clip_groups(self):
        return [[p for _, p in self.trainable_named_parameters()]]

    def enable_gradient_checkpointing(self) -> None:
        self.transformer.enable_gradient_checkpointing()

    def loss(self, positions, step, micro, rank, generator, drops: bool = True) -> torch.Tensor:
        t_cfg = self.cfg.train
        rng = step_rng(t_cfg.seed, 13, step, micro, rank)
        idx = [sample_index(t_cfg.seed, p, len(self.train_set)) for p in positions]
        lats = [self.latents(i) for i in idx]
        b = len(lats)
        dropped = draw_drops(rng, self.used, t_cfg.drop_probability if drops else 0.0, b)
        no_image = rng.random(b) < (t_cfg.image_drop if drops else 0.0)
        no_prompt = rng.random(b) < (t_cfg.prompt_drop if drops else 0.0)
        if drops:
            self.drop_counts["draws"] += b
            self.drop_counts["image"] += int(no_image.sum())
            self.drop_counts["prompt"] += int(no_prompt.sum())
            for s in self.used:
                self.drop_counts[s] += int(dropped[s].sum())
        dev, dtype = self.device, self.weight_dtype
        scale = self.pipe.vae.config.scaling_factor

        def sample(key: str) -> torch.Tensor:  # posterior samples of the batch, (B, F, C, h, w)
            from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

            return torch.cat([
                DiagonalGaussianDistribution(lt[key][None].to(dev)).sample(generator) * scale for lt in lats
            ]).permute(0, 2, 1, 3, 4).to(dtype)

        video = sample("video")
        frames = video.shape[1]
        keep_image = torch.from_numpy(~no_image).to(dev, dtype)[:, None, None, None, None]

        def first(t: torch.Tensor) -> torch.Tensor:  # (B, 1, C, h, w) -> zero-padded to all latent frames
            pad = t.new_zeros((t.shape[0], frames - 1, *t.shape[2:]))
            return torch.cat([t, pad], dim=1) * keep_image

        image = first(sample("image"))
        slots = []
        for s in SLOTS:
            if s in self.used:
                keep = torch.from_numpy(~dropped[s]).to(dev, dtype)[:, None, None, None, None]
                slots.append(torch.cat([sample(s), first(sample(f"{s}_image"))], dim=2) * keep)
            else:
                slots.append(torch.zeros_like(torch.cat([video, video], dim=2)))
        control = torch.stack(slots, dim=1)
        prompts = ["" if no_prompt[i] else self.train_set.episodes[j].prompt for i, j in enumerate(idx)]
        return self.v_loss(video, image, control, prompts, generator)

    def v_loss(self, video, image, control, prompts, generator) -> torch.Tensor:
        pipe, dev, dtype = self.pipe, self.device, self.weight_dtype
        with torch.no_grad():
            prompt_embeds = pipe.encode_prompt(prompt=prompts, do_classifier_free_guidance=False,
                                               max_sequence_length=self.max_len, device=dev, dtype=dtype)[0]
        b = video.shape[0]
        noise = torch.randn(video.shape, generator=generator, device=dev, dtype=torch.float32).to(dtype)
        t = torch.randint(0, pipe.scheduler.config.num_train_timesteps, (b,), generator=generator, device=dev)
        noisy = pipe.scheduler.add_noise(video, noise, t)
        rotary = None
        if self.transformer.config.use_rotary_positional_embeddings:
            rotary = pipe._prepare_rotary_positional_embeddings(self.cfg.data.height, self.cfg.data.width,
                                                                video.shape[1], dev)
        out = self.prepared(hidden_states=torch.cat([noisy, image], dim=2), encoder_hidden_states=prompt_embeds,
                            timestep=t, control_latents=control, image_rotary_emb=rotary, return_dict=False)[0]
        pred = pipe.scheduler.get_velocity(out.float(), noisy.float(), t)
        weights = (1 / (1 - self.alphas[t]))[:, None, None, None, None]
        return torch.mean((weights * (pred - video.float()) ** 2).reshape(b, -1), dim=1).mean()

    # --- checkpoints and validation ----------------------------------------------------------------

    def save_weights(self, folder: Path) -> None:
        save_stage3(self.transformer, folder / "transformer")

    def validate(self, step: int, folder: Path, writer) -> None:
        """A video for each validation episode (or the first training one), from its real first frame."""
        from ..config import PAM_NEGATIVE_PROMPT
        from ..motion import MotionStage

        data = self.val_set if len(self.val_set) else self.train_set
        stage = MotionStage(self.pipe, steps=self.cfg.train.validation_steps, guidance=6.0, dynamic_guidance=True,
                            negative_prompt=PAM_NEGATIVE_PROMPT, max_sequence_length=self.max_len,
                            used_conditions=self.used)
        folder.mkdir(parents=True, exist_ok=True)
        d = self.cfg.data
        for i in range(min(len(data), 2)):
            item = data.read(i, data.clip(i))
            frames = stage.animate(item["video"][0], {s: item[s] for s in self.used}, item["prompt"],
                                   self.cfg.train.seed, d.num_frames, d.height, d.width)
            write_mp4(folder / f"step{step:06d}_{item['name']}.mp4", frames)
            if writer is not None:
                picks = [0, len(frames) // 2, len(frames) - 1]
                strip = np.concatenate([np.concatenate([item["video"][k], frames[k]], axis=0) for k in picks], axis=1)
                writer.add_image(f"validation/{item['name']}", strip, step, dataformats="HWC")


def write_latents(path: Path, latents: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # ranks may encode the same episode at once
    save_file(latents, str(tmp))
    tmp.rename(path)


def save_stage3(transformer, folder: Path, max_shard_size: str | int = MAX_SHARD_SIZE) -> None:
    """The transformer in PAM's layout: sharded safetensors (CogVideoX keys + control keys) and a
    ``config.json`` naming ``num_tracking_blocks``."""
    transformer.save_pretrained(folder, safe_serialization=True, max_shard_size=max_shard_size)


def write_mp4(path: Path, frames: np.ndarray, fps: int = 15) -> None:
    import av

    tmp = path.with_name(f".{path.stem}.tmp.mp4")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.rename(path)


def train_motion(cfg: TrainerConfig, stop_after: int | None = None):
    """Run Stage III training (see the module docstring); returns ``loop.TrainResult``."""
    from .loop import run

    if cfg.stage != "motion":
        raise DatasetError(f"train_motion got a {cfg.stage!r} config")
    return run(cfg, MotionTask, stop_after=stop_after)
