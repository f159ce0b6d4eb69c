"""GPU figures of one training step at full size with random weights: seconds per optimiser step and
peak GPU memory, for Stage II and Stage III, with gradient checkpointing off and on, batch 1.

Stage II step = PAM's two ControlNets (trainable, fp32 master weights) + the frozen FLUX.1-dev
transformer (bf16), the flow-matching loss of ``pam_diffusion.training.appearance``, backward, AdamW.
Stage III step = the CogVideoX-5B-I2V transformer (frozen, bf16) with PAM's control branch (12 copied
blocks, trainable, fp32), the v-prediction loss of ``pam_diffusion.training.motion`` at 480x720 and 49
frames by default, backward, AdamW. bf16 autocast as ``accelerate``'s bf16 mixed precision. The VAEs and
text encoders are not part of the step (frozen; Stage III's latents are cached): random latents and
text embeddings of the right shapes stand in for them.

Run on a CUDA machine: ``python benchmarks/bench_training_gpu.py [--stage 2|3|both] [--checkpointing off
on] [--steps 3]``; ``--dry-run`` only prints the plan (works without a GPU)."""

from __future__ import annotations

import argparse
import time


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stage", choices=("2", "3", "both"), default="both")
    p.add_argument("--checkpointing", nargs="+", choices=("off", "on"), default=["off", "on"])
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=720)
    p.add_argument("--frames", type=int, default=49)
    p.add_argument("--steps", type=int, default=3, help="timed optimiser steps per mode (after one warm-up step)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dry-run", action="store_true", help="print the plan and exit (no GPU needed)")
    args = p.parse_args(argv)
    from pam_diffusion.config import check_geometry

    try:
        check_geometry(args.frames, args.height, args.width, error=ValueError, what="--frames/--height/--width")
    except ValueError as exc:
        p.error(str(exc))
    if args.steps < 1:
        p.error("--steps must be at least 1")
    return args


def plan(args) -> list[tuple[str, bool]]:
    stages = ("2", "3") if args.stage == "both" else (args.stage,)
    return [(s, c == "on") for s in stages for c in args.checkpointing]


def random_weights(build, device, dtype):
    """Build on the meta device and fill with N(0, 0.02) on ``device`` in ``dtype``."""
    import torch

    with torch.device("meta"):
        model = build()
    model = model.to(dtype).to_empty(device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.empty(p.shape, device=device, dtype=p.dtype).normal_(0.0, 0.02, generator=gen))
        for name, b in model.named_buffers():
            if b.is_floating_point():
                b.zero_()
    return model


def stage2(args, device, checkpointing: bool):
    """(trainable parameters, step) for PAM's Stage II training step."""
    import torch
    import torch.nn.functional as F
    from diffusers import FluxTransformer2DModel

    from pam_diffusion.flux_controlnet import PamFluxControlNetModel, pam_controlnet_config
    from pam_diffusion.fullsize import FLUX_DEV_TRANSFORMER as C

    flux = random_weights(lambda: FluxTransformer2DModel(**C), device, torch.bfloat16).eval().requires_grad_(False)
    nets = [random_weights(lambda: PamFluxControlNetModel(**pam_controlnet_config(C)), device, torch.float32).train()
            for _ in range(2)]
    if checkpointing:
        flux.enable_gradient_checkpointing()
        for n in nets:
            n.enable_gradient_checkpointing()
    params = [p for n in nets for p in n.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-5)
    h, w, text = args.height // 16, args.width // 16, 512
    ids = torch.zeros(h, w, 3, device=device)
    ids[..., 1] += torch.arange(h, device=device)[:, None]
    ids[..., 2] += torch.arange(w, device=device)[None, :]
    gen = torch.Generator(device=device).manual_seed(0)
    x1 = torch.randn(1, h * w, C["in_channels"], device=device, generator=gen)
    enc = torch.randn(1, text, C["joint_attention_dim"], device=device, generator=gen)
    pooled = torch.randn(1, C["pooled_projection_dim"], device=device, generator=gen)
    hints = [torch.rand(1, 6, args.height, args.width, device=device, generator=gen) * 2 - 1 for _ in range(2)]
    common = dict(encoder_hidden_states=enc, pooled_projections=pooled, img_ids=ids.reshape(-1, 3),
                  txt_ids=torch.zeros(text, 3, device=device), guidance=torch.full((1,), 4.0, device=device))

    def step() -> float:
        t = torch.rand(1, device=device, generator=gen)
        x0 = torch.randn(x1.shape, device=device, generator=gen)
        xt = (1 - t[:, None, None]) * x1 + t[:, None, None] * x0
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16):
            res = None
            for net, hint in zip(nets, hints):
                r = net(hidden_states=xt, controlnet_cond=hint, timestep=t, return_dict=False, **common)[0]
                res = r if res is None else [a + b for a, b in zip(res, r)]
            pred = flux(hidden_states=xt, timestep=t, controlnet_block_samples=res, controlnet_blocks_repeat=True,
                        return_dict=False, **common)[0]
            loss = F.mse_loss(pred.float(), x0 - x1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    return params, step


def stage3(args, device, checkpointing: bool):
    """(trainable parameters, step) for PAM's Stage III training step."""
    import torch
    from diffusers import CogVideoXDPMScheduler
    from diffusers.models.embeddings import get_3d_rotary_pos_embed
    from diffusers.pipelines.cogvideo.pipeline_cogvideox_image2video import get_resize_crop_region_for_grid

    import pam_diffusion.control_transformer as ct
    from pam_diffusion.fullsize import COGVIDEOX_5B_I2V_SCHEDULER, COGVIDEOX_5B_I2V_TRANSFORMER as C

    model = random_weights(lambda: ct.PamCogVideoXControlTransformer(**C, num_tracking_blocks=ct.PAM_NUM_CONTROL_BLOCKS),
                           device, torch.bfloat16)
    model.requires_grad_(False)
    for p in model.control_parameters():
        p.data = p.data.float()
        p.requires_grad_(True)
    model.train()
    if checkpointing:
        model.enable_gradient_checkpointing()
    params = list(model.control_parameters())
    opt = torch.optim.AdamW(params, lr=1e-5)
    sched = CogVideoXDPMScheduler.from_config(COGVIDEOX_5B_I2V_SCHEDULER)
    alphas = sched.alphas_cumprod.to(device)
    frames = (args.frames - 1) // 4 + 1
    h, w = args.height // 8, args.width // 8
    grid = (h // 2, w // 2)
    crops = get_resize_crop_region_for_grid(grid, C["sample_width"] // 2, C["sample_height"] // 2)
    rotary = get_3d_rotary_pos_embed(embed_dim=C["attention_head_dim"], crops_coords=crops, grid_size=grid,
                                     temporal_size=frames, device=device) if C.get("use_rotary_positional_embeddings") else None
    gen = torch.Generator(device=device).manual_seed(0)
    c = C["in_channels"] // 2
    bf = dict(device=device, dtype=torch.bfloat16)
    video = torch.randn(1, frames, c, h, w, generator=gen, **bf)
    image = torch.randn(1, frames, c, h, w, generator=gen, **bf)
    control = torch.randn(1, 5, frames, 2 * c, h, w, generator=gen, **bf)
    enc = torch.randn(1, C["max_text_seq_length"], C["text_embed_dim"], generator=gen, **bf)

    def step() -> float:
        t = torch.randint(0, 1000, (1,), device=device, generator=gen)
        noise = torch.randn(video.shape, generator=gen, **bf)
        noisy = sched.add_noise(video, noise, t)
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16):
            out = model(torch.cat([noisy, image], dim=2), enc, t, control_latents=control, image_rotary_emb=rotary,
                        return_dict=False)[0]
            pred = sched.get_velocity(out.float(), noisy.float(), t)
            loss = ((1 / (1 - alphas[t]))[:, None, None, None, None] * (pred - video.float()) ** 2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    return params, step


def measure(step, device, steps: int) -> dict:
    import torch

    torch.cuda.reset_peak_memory_stats(device)
    torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    step()  # warm-up: allocates the optimiser state
    torch.cuda.synchronize(device)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize(device)
    return {"first_s": first, "step_s": (time.perf_counter() - t0) / steps,
            "peak_gib": torch.cuda.max_memory_allocated(device) / 1024 ** 3}


def main(argv=None) -> int:
    args = parse_args(argv)
    runs = plan(args)
    print(f"plan: {args.height}x{args.width}, {args.frames} frames (Stage III), batch 1, {args.steps} timed steps; "
          + ", ".join(f"stage {s} checkpointing={'on' if c else 'off'}" for s, c in runs))
    if args.dry_run:
        return 0
    import gc

    import torch

    if not torch.cuda.is_available():
        print("no CUDA device: nothing measured (use --dry-run to check the plan)")
        return 1
    device = torch.device(args.device)
    print(f"device: {torch.cuda.get_device_name(device)}")
    for stage, ckpt in runs:
        label = f"stage {stage} checkpointing={'on ' if ckpt else 'off'}"
        try:
            params, step = (stage2 if stage == "2" else stage3)(args, device, ckpt)
            r = measure(step, device, args.steps)
            n = sum(p.numel() for p in params)
            print(f"{label} {r['step_s']:8.3f} s/step (first step {r['first_s']:.2f} s) peak {r['peak_gib']:6.2f} GiB "
                  f"({n / 1e9:.2f} B trainable parameters)", flush=True)
        except torch.cuda.OutOfMemoryError:
            print(f"{label} out of GPU memory", flush=True)
        params = step = None
        gc.collect()
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
