"""Diffusion backend figures, on a CPU and without weights.

1. Parameter counts and bf16 weight memory of the full-size Stage II (FLUX.1-dev transformer + PAM's
   two ControlNets) and Stage III (CogVideoX-5B-I2V transformer + PAM's control branch) models, built
   from their published configs on the ``meta`` device, plus the text encoders and VAEs; and the
   weights resident on the GPU at the peak for each offload mode (activations not included).
2. The control branch's share of per-step FLOPs, counted by ``torch.utils.flop_counter.FlopCounterMode``
   on meta tensors at 480x720 (49 frames for Stage III, CFG batch 2). It counts matrix products,
   convolutions and attention; element-wise work is not counted.
3. CPU time per denoising step of the tiny pipeline (Stage II and III separately).

Run: ``python benchmarks/bench_diffusion.py [--tiny-steps 4]``. Figures are printed, never asserted."""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

warnings.filterwarnings("ignore")
GiB = 1024 ** 3


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def bf16_gib(n: int) -> float:
    return 2 * n / GiB


def meta_models():
    """Full-size models on the meta device (float32 meta tensors; bf16 memory is computed as 2 bytes/param)."""
    from diffusers import AutoencoderKL, AutoencoderKLCogVideoX, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from pam_diffusion.control_transformer import PAM_NUM_CONTROL_BLOCKS, PamCogVideoXControlTransformer
    from pam_diffusion.flux_controlnet import PamFluxControlNetModel, pam_controlnet_config
    from pam_diffusion.fullsize import (CLIP_L_TEXT, COGVIDEOX_5B_I2V_TRANSFORMER, COGVIDEOX_5B_I2V_VAE,
                                        FLUX_DEV_TRANSFORMER, FLUX_DEV_VAE, T5_XXL_ENCODER)

    with torch.device("meta"):
        return {
            "flux": FluxTransformer2DModel(**FLUX_DEV_TRANSFORMER),
            "nets": [PamFluxControlNetModel(**pam_controlnet_config(FLUX_DEV_TRANSFORMER)) for _ in range(2)],
            "clip": CLIPTextModel(CLIPTextConfig(**CLIP_L_TEXT)),
            "t5": T5EncoderModel(T5Config(**T5_XXL_ENCODER)),
            "flux_vae": AutoencoderKL(**FLUX_DEV_VAE),
            "cog": PamCogVideoXControlTransformer(**COGVIDEOX_5B_I2V_TRANSFORMER,
                                                  num_tracking_blocks=PAM_NUM_CONTROL_BLOCKS),
            "cog_vae": AutoencoderKLCogVideoX(**COGVIDEOX_5B_I2V_VAE),
        }


def largest_leaf(*modules) -> int:
    return max(sum(p.numel() for p in m.parameters(recurse=False)) for mod in modules for m in mod.modules())


def report_sizes(m) -> None:
    flux, nets, cog = count(m["flux"]), [count(n) for n in m["nets"]], count(m["cog"])
    control = sum(p.numel() for p in m["cog"].control_parameters())
    clip, t5, fvae, cvae = count(m["clip"]), count(m["t5"]), count(m["flux_vae"]), count(m["cog_vae"])
    rows = [
        ("Stage II", "FLUX.1-dev transformer", flux),
        ("", f"PAM ControlNets x2 ({nets[0] / 1e6:.1f}M each)", sum(nets)),
        ("", "denoiser total (transformer + nets)", flux + sum(nets)),
        ("", "CLIP-L text encoder", clip),
        ("", "T5-XXL encoder", t5),
        ("", "Flux VAE", fvae),
        ("Stage III", "CogVideoX-5B-I2V transformer (base)", cog - control),
        ("", "PAM control branch (12 copies + combine)", control),
        ("", "denoiser total (base + control)", cog),
        ("", "T5-XXL encoder", t5),
        ("", "CogVideoX VAE", cvae),
    ]
    print("== Full-size models on the meta device (published configs, no weights) ==")
    print(f"{'stage':10s}{'model':44s}{'parameters':>18s}{'bf16 GiB':>10s}")
    for stage, name, n in rows:
        print(f"{stage:10s}{name:44s}{n:>18,d}{bf16_gib(n):>10.2f}")
    print()
    print("Weights resident on the GPU at the peak, bf16 (activations, CUDA context not included):")
    s2 = {"none": flux + sum(nets) + clip + t5 + fvae,
          # diffusers keeps ControlNets (outside the offload chain) resident beside the transformer
          "model": max(clip, t5, flux + sum(nets), sum(nets) + fvae),
          "sequential": largest_leaf(m["flux"], m["t5"], m["clip"], m["flux_vae"], *m["nets"])}
    # the VAE runs before the transformer (condition encoding) and stays until the end; T5 until the transformer
    s3 = {"none": cog + t5 + cvae, "model": max(t5 + cvae, cog + cvae),
          "sequential": largest_leaf(m["cog"], m["t5"], m["cog_vae"])}
    for mode in ("none", "model", "sequential"):
        print(f"  offload={mode:10s} Stage II {bf16_gib(s2[mode]):6.2f} GiB   Stage III {bf16_gib(s3[mode]):6.2f} GiB"
              + ("   (one layer at a time)" if mode == "sequential" else ""))
    print()


def report_flops(m, height: int = 480, width: int = 720, frames: int = 49) -> None:
    from pam_diffusion.fullsize import COGVIDEOX_5B_I2V_TRANSFORMER as C, FLUX_DEV_TRANSFORMER as F

    def flops(fn) -> int:
        with FlopCounterMode(display=False) as counter:
            fn()
        return counter.get_total_flops()

    meta = dict(device="meta")
    tokens, text = (height // 16) * (width // 16), 512
    flux_in = dict(hidden_states=torch.empty(1, tokens, F["in_channels"], **meta),
                   encoder_hidden_states=torch.empty(1, text, F["joint_attention_dim"], **meta),
                   pooled_projections=torch.empty(1, F["pooled_projection_dim"], **meta),
                   timestep=torch.empty(1, **meta), guidance=torch.empty(1, **meta),
                   img_ids=torch.empty(tokens, 3, **meta), txt_ids=torch.empty(text, 3, **meta))
    hint = torch.empty(1, 6, height, width, **meta)
    residuals = []
    control2 = flops(lambda: residuals.extend(
        [n(controlnet_cond=hint, **flux_in, return_dict=False)[0] for n in m["nets"]]))
    base2 = flops(lambda: m["flux"](**flux_in, controlnet_block_samples=residuals[0], controlnet_blocks_repeat=True))

    cog = m["cog"]
    latent_frames = (frames - 1) // 4 + 1
    h, w = height // 8, width // 8
    seq = latent_frames * (h // 2) * (w // 2)
    hidden = torch.empty(2, latent_frames, C["in_channels"], h, w, **meta)
    enc = torch.empty(2, C["max_text_seq_length"], C["text_embed_dim"], **meta)
    rotary = (torch.empty(seq, C["attention_head_dim"], **meta), torch.empty(seq, C["attention_head_dim"], **meta))
    slots = torch.empty(2, 5, latent_frames, C["in_channels"], h, w, **meta)
    step = torch.empty(2, **meta)
    base3 = flops(lambda: cog(hidden, enc, step, image_rotary_emb=rotary))
    total3 = flops(lambda: cog(hidden, enc, step, control_latents=slots, image_rotary_emb=rotary))
    print("== Per-step FLOPs (FlopCounterMode on meta tensors: matmul, conv, attention) ==")
    print(f"Stage II  {height}x{width}, batch 1: transformer {base2 / 1e12:7.2f} TFLOP, two ControlNets "
          f"{control2 / 1e12:6.2f} TFLOP -> control share {control2 / (base2 + control2):6.1%}")
    print(f"Stage III {height}x{width}x{frames}, CFG batch 2: base {base3 / 1e12:7.2f} TFLOP, control branch "
          f"{(total3 - base3) / 1e12:6.2f} TFLOP -> control share {(total3 - base3) / total3:6.1%}")
    print()


def report_tiny(steps: int, height: int = 64, width: int = 96, frames: int = 49) -> None:
    from pam_diffusion.tiny import tiny_generator

    gen = tiny_generator(height=height, width=width, num_frames=frames,
                         stage2=dict(steps=steps, num_candidates=2), stage3=dict(steps=steps))
    rng = np.random.default_rng(0)
    conds = {k: rng.integers(0, 256, (frames, height, width, 3), dtype=np.uint8) for k in ("depth", "seg", "hand")}
    gen.generate(conds, "a hand grasps a can", seed=0)  # warm-up
    t0 = time.perf_counter()
    result = gen.generate(conds, "a hand grasps a can", seed=1)
    total = time.perf_counter() - t0
    s2, s3 = gen.appearance.step_times, gen.motion.step_times
    print(f"== Tiny pipeline on CPU ({torch.get_num_threads()} threads, {height}x{width}, {frames} frames, "
          f"{steps} steps per stage, 2 candidates) ==")
    print(f"Stage II  per denoising step: median {statistics.median(s2) * 1e3:8.1f} ms over {len(s2)} steps"
          f"   (stage {result.timings['stage2_s']:.2f} s incl. text encoding and VAE decode)")
    print(f"Stage III per denoising step: median {statistics.median(s3) * 1e3:8.1f} ms over {len(s3)} steps"
          f"   (stage {result.timings['stage3_s']:.2f} s incl. VAE encoding of 3 condition videos and decode)")
    print(f"generate(): {total:.2f} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny-steps", type=int, default=4, help="denoising steps per stage for the tiny timing")
    parser.add_argument("--skip-tiny", action="store_true")
    args = parser.parse_args(argv)
    models = meta_models()
    report_sizes(models)
    report_flops(models)
    if not args.skip_tiny:
        report_tiny(args.tiny_steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
