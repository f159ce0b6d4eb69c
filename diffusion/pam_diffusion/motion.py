"""Stage III, motion: CogVideoX-5B-I2V animates the first frame under PAM's control transformer.

``PamCogVideoXControlPipeline`` extends diffusers' ``CogVideoXImageToVideoPipeline`` (prompt encoding,
latent preparation, rotary embeddings, decoding, offload hooks) with PAM's condition path:

* each used slot's video (T frames in [-1, 1]) is encoded by the video VAE, ``sample * scaling_factor``;
* its first frame is encoded like the I2V conditioning image (``prepare_latents``: scaled, zero-padded
  to all latent frames) and concatenated on channels, giving the 32 channels ``patch_embed`` takes;
* unused slots are zeros, as in PAM's training;
* classifier-free guidance with PAM's negative prompt and dynamic guidance
  ``1 + g * (1 - cos(pi * ((N - t) / N) ** 5)) / 2`` (diffusers' ``use_dynamic_cfg``), DPM scheduler.

The generator's draws follow PAM's pipeline call: image encode and initial noise, then the five slot
first frames (encode + discarded noise) in slot order, then the scheduler. Condition videos are
encoded with a separate generator (PAM drew them from the global RNG)."""

from __future__ import annotations

import math
import time
from typing import Callable, Mapping

import numpy as np
import torch
from diffusers import CogVideoXDPMScheduler, CogVideoXImageToVideoPipeline
from diffusers.pipelines.cogvideo.pipeline_cogvideox_image2video import retrieve_timesteps

from .config import SLOTS


def dynamic_guidance(guidance_scale: float, t: float, num_inference_steps: int) -> float:
    """CogVideoX's dynamic CFG scale at timestep ``t`` (0..999), as PAM samples with it."""
    return 1 + guidance_scale * ((1 - math.cos(math.pi * ((num_inference_steps - t) / num_inference_steps) ** 5.0)) / 2)


class PamCogVideoXControlPipeline(CogVideoXImageToVideoPipeline):
    """CogVideoX image-to-video with PAM's five-slot control transformer."""

    def encode_condition_video(self, video: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """``(B, 3, T, H, W)`` in [-1, 1] -> scaled latents ``(B, F, C, h, w)``."""
        vae = self.vae
        dist = vae.encode(video.to(device=self._execution_device, dtype=vae.dtype)).latent_dist
        return (dist.sample(generator) * vae.config.scaling_factor).permute(0, 2, 1, 3, 4)

    @torch.no_grad()
    def __call__(
        self,
        image: torch.Tensor,
        condition_videos: Mapping[str, torch.Tensor],
        prompt: str,
        negative_prompt: str | None = None,
        height: int = 480,
        width: int = 720,
        num_frames: int = 49,
        num_inference_steps: int = 50,
        guidance_scale: float = 6.0,
        use_dynamic_cfg: bool = True,
        generator: torch.Generator | None = None,
        condition_generator: torch.Generator | None = None,
        max_sequence_length: int = 226,
        step_callback: Callable[[int, float], None] | None = None,
    ) -> np.ndarray:
        """``image``: ``(1, 3, H, W)`` in [-1, 1]. ``condition_videos``: the used slots, each
        ``(1, 3, T, H, W)`` in [-1, 1]. Returns uint8 frames ``(T, H, W, 3)``."""
        unknown = set(condition_videos) - set(SLOTS)
        if unknown:
            raise ValueError(f"unknown condition slots {sorted(unknown)}; expected some of {SLOTS}")
        device = self._execution_device
        do_cfg = guidance_scale > 1.0
        prompt_embeds, negative_embeds = self.encode_prompt(
            prompt=prompt, negative_prompt=negative_prompt, do_classifier_free_guidance=do_cfg,
            num_videos_per_prompt=1, max_sequence_length=max_sequence_length, device=device)
        if do_cfg:
            prompt_embeds = torch.cat([negative_embeds, prompt_embeds], dim=0)
        dtype = prompt_embeds.dtype
        timesteps, num_inference_steps = retrieve_timesteps(self.scheduler, num_inference_steps, device)

        cond_latents = {s: self.encode_condition_video(v, condition_generator).to(dtype)
                        for s, v in condition_videos.items()}
        channels = self.transformer.config.in_channels // 2
        latents, image_latents = self.prepare_latents(
            image.to(device, dtype), 1, channels, num_frames, height, width, dtype, device, generator)
        slots = []
        for s in SLOTS:
            video = condition_videos.get(s)
            first = video[:, :, 0] if video is not None else torch.zeros_like(image)
            _, first_latents = self.prepare_latents(
                first.to(device, dtype), 1, channels, num_frames, height, width, dtype, device, generator)
            if s in cond_latents:
                slots.append(torch.cat([cond_latents[s], first_latents], dim=2))
            else:  # unused slot: zeros, as PAM trained it
                slots.append(torch.cat([torch.zeros_like(first_latents)] * 2, dim=2))
        control = torch.stack(slots, dim=1)
        image_input = torch.cat([image_latents] * 2) if do_cfg else image_latents
        control = torch.cat([control] * 2) if do_cfg else control

        extra_step_kwargs = self.prepare_extra_step_kwargs(generator, 0.0)
        rotary = (self._prepare_rotary_positional_embeddings(height, width, latents.size(1), device)
                  if self.transformer.config.use_rotary_positional_embeddings else None)
        old_pred = None
        with self.progress_bar(total=num_inference_steps) as progress:
            for i, t in enumerate(timesteps):
                step_start = time.perf_counter()
                model_input = torch.cat([latents] * 2) if do_cfg else latents
                model_input = torch.cat([self.scheduler.scale_model_input(model_input, t), image_input], dim=2)
                noise_pred = self.transformer(
                    hidden_states=model_input, encoder_hidden_states=prompt_embeds,
                    timestep=t.expand(model_input.shape[0]), control_latents=control,
                    image_rotary_emb=rotary, return_dict=False)[0].float()
                scale = guidance_scale
                if use_dynamic_cfg:
                    scale = dynamic_guidance(guidance_scale, t.item(), num_inference_steps)
                if do_cfg:
                    uncond, cond = noise_pred.chunk(2)
                    noise_pred = uncond + scale * (cond - uncond)
                if isinstance(self.scheduler, CogVideoXDPMScheduler):
                    latents, old_pred = self.scheduler.step(
                        noise_pred, old_pred, t, timesteps[i - 1] if i > 0 else None, latents,
                        **extra_step_kwargs, return_dict=False)
                else:
                    latents = self.scheduler.step(noise_pred, t, latents, **extra_step_kwargs, return_dict=False)[0]
                latents = latents.to(dtype)
                progress.update()
                if step_callback is not None:
                    step_callback(i, time.perf_counter() - step_start)

        video = self.decode_latents(latents)
        frames = self.video_processor.postprocess_video(video=video, output_type="np")[0]
        self.maybe_free_model_hooks()
        return (np.asarray(frames, dtype=np.float32) * 255.0).round().clip(0, 255).astype(np.uint8)


class MotionStage:
    """Runs ``PamCogVideoXControlPipeline`` from uint8 maps and a uint8 first frame."""

    def __init__(self, pipe: PamCogVideoXControlPipeline, steps: int, guidance: float, dynamic_guidance: bool,
                 negative_prompt: str, max_sequence_length: int, used_conditions):
        self.pipe = pipe
        self.steps = steps
        self.guidance = guidance
        self.dynamic_guidance = dynamic_guidance
        self.negative_prompt = negative_prompt
        self.max_sequence_length = max_sequence_length
        self.used_conditions = tuple(used_conditions)
        self.step_times: list[float] = []

    def animate(self, first_frame: np.ndarray, videos: Mapping[str, np.ndarray], prompt: str, seed: int,
                num_frames: int, height: int, width: int) -> np.ndarray:
        """``first_frame``: uint8 (H, W, 3); ``videos``: uint8 (T, H, W, 3) per used slot."""
        from .conditions import image_to_unit

        device = self.pipe._execution_device
        image = torch.from_numpy(image_to_unit(first_frame))[None]
        cond = {s: torch.from_numpy(image_to_unit(videos[s])).permute(1, 0, 2, 3)[None] for s in self.used_conditions}
        generator = torch.Generator(device=device).manual_seed(int(seed))
        condition_generator = torch.Generator(device=device).manual_seed(int(seed) + 1)
        self.step_times = []
        return self.pipe(
            image=image, condition_videos=cond, prompt=prompt, negative_prompt=self.negative_prompt,
            height=height, width=width, num_frames=num_frames, num_inference_steps=self.steps,
            guidance_scale=self.guidance, use_dynamic_cfg=self.dynamic_guidance, generator=generator,
            condition_generator=condition_generator, max_sequence_length=self.max_sequence_length,
            step_callback=lambda i, seconds: self.step_times.append(seconds))
