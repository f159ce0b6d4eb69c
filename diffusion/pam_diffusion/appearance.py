"""Stage II, appearance: candidate first frames from Flux.1-dev and PAM's two ControlNets.

Runs diffusers' ``FluxControlNetPipeline`` with a ``FluxMultiControlNetModel`` of two
``PamFluxControlNetModel``: net 1 sees ``concat(depth, normal)``, net 2 ``concat(hand keypoints, seg)``,
each a 6-channel map in [-1, 1]; their residuals are scaled, summed and added after every Flux double
block, cycling over the nets' two blocks. Sampling follows PAM's x-flux sampler:

* initial noise ``randn(1, 16, 2*ceil(H/16), 2*ceil(W/16))`` from ``torch.Generator(device).manual_seed(seed)``
  in float32, packed in 2x2 patches;
* Euler flow-matching steps on ``linspace(1, 0, steps + 1)`` shifted by ``mu = lin(seq)`` with x-flux's
  ``seq = (W // 8) * (H // 8) // 256`` (x-flux's estimate, not the token count diffusers would use);
* guidance 4 through Flux's distilled guidance embedding, no true CFG;
* decoded pixels quantised as ``uint8(127.5 * (x + 1))`` (truncation)."""

from __future__ import annotations

import math
import time
from typing import Mapping, Sequence

import numpy as np
import torch

from .conditions import image_to_unit

#: x-flux's shift line: mu = 0.5 at 256 "tokens", 1.15 at 4096.
_BASE_SEQ, _BASE_SHIFT, _MAX_SEQ, _MAX_SHIFT = 256, 0.5, 4096, 1.15


def pam_schedule(num_steps: int, height: int, width: int) -> tuple[np.ndarray, float]:
    """Unshifted sigmas (``linspace(1, 1/N, N)``) and the static shift ``exp(mu)`` that together give
    x-flux's ``get_schedule(N, (W//8)*(H//8)//256, shift=True)`` in diffusers' Euler scheduler."""
    seq = (width // 8) * (height // 8) // (16 * 16)
    mu = _BASE_SHIFT + (_MAX_SHIFT - _BASE_SHIFT) / (_MAX_SEQ - _BASE_SEQ) * (seq - _BASE_SEQ)
    return np.linspace(1.0, 1.0 / num_steps, num_steps), math.exp(mu)


def pam_noise(seed: int, channels: int, height: int, width: int, device) -> torch.Tensor:
    """x-flux's initial noise for ``seed``, packed to Flux's ``(1, tokens, 4 * channels)`` layout."""
    h, w = 2 * math.ceil(height / 16), 2 * math.ceil(width / 16)
    gen = torch.Generator(device=device).manual_seed(int(seed))
    x = torch.randn(1, channels, h, w, generator=gen, device=device, dtype=torch.float32)
    x = x.view(1, channels, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(1, (h // 2) * (w // 2), channels * 4)


def control_hints(frame0: Mapping[str, np.ndarray]) -> list[torch.Tensor]:
    """PAM's two hints from first-frame maps (uint8 (H, W, 3)): ``[depth|normal, hand|seg]``, each
    ``(1, 6, H, W)`` float32 in [-1, 1]."""
    def pair(a: str, b: str) -> torch.Tensor:
        stacked = np.concatenate([image_to_unit(frame0[a]), image_to_unit(frame0[b])], axis=0)
        return torch.from_numpy(stacked)[None]

    return [pair("depth", "normal"), pair("hand", "seg")]


class AppearanceStage:
    """Makes candidate first frames with a ``FluxControlNetPipeline`` holding PAM's two nets."""

    def __init__(self, pipe, steps: int, guidance: float, conditioning_scales: Sequence[float],
                 max_sequence_length: int):
        self.pipe = pipe
        self.steps = steps
        self.guidance = guidance
        self.conditioning_scales = list(conditioning_scales)
        self.max_sequence_length = max_sequence_length
        self._scheduler_config = dict(pipe.scheduler.config)
        self.step_times: list[float] = []

    @torch.no_grad()
    def candidates(self, frame0: Mapping[str, np.ndarray], prompt: str, seeds: Sequence[int],
                   height: int, width: int) -> list[np.ndarray]:
        """One uint8 (H, W, 3) image per seed."""
        from diffusers import FlowMatchEulerDiscreteScheduler

        pipe = self.pipe
        device = pipe._execution_device
        sigmas, shift = pam_schedule(self.steps, height, width)
        pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(
            self._scheduler_config, use_dynamic_shifting=False, shift=shift)
        prompt_embeds, pooled, _ = pipe.encode_prompt(
            prompt=prompt, prompt_2=None, device=device, num_images_per_prompt=1,
            max_sequence_length=self.max_sequence_length)
        hints = [h.to(device) for h in control_hints(frame0)]
        channels = pipe.transformer.config.in_channels // 4
        self.step_times = []
        # A step starts when the first ControlNet runs and ends at the pipeline's step callback.
        stamp = [0.0]
        hook = pipe.controlnet.register_forward_pre_hook(lambda module, args: stamp.__setitem__(0, time.perf_counter()))
        images = []
        try:
            for seed in seeds:
                out = pipe(
                    prompt_embeds=prompt_embeds, pooled_prompt_embeds=pooled, control_image=hints,
                    controlnet_conditioning_scale=self.conditioning_scales, height=height, width=width,
                    num_inference_steps=self.steps, sigmas=list(sigmas), guidance_scale=self.guidance,
                    latents=pam_noise(seed, channels, height, width, device).to(prompt_embeds.dtype),
                    output_type="pt", max_sequence_length=self.max_sequence_length,
                    callback_on_step_end=lambda p, i, t, kw: self._step_done(stamp),
                )
                pixels = out.images[0].float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
                images.append(np.floor(pixels * 255.0).astype(np.uint8))  # x-flux's uint8(127.5 * (x + 1))
        finally:
            hook.remove()
        return images

    def _step_done(self, stamp: list[float]) -> dict:
        self.step_times.append(time.perf_counter() - stamp[0])
        return {}
