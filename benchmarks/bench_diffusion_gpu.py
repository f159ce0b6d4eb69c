"""GPU figures of the full-size denoisers with random bf16 weights: seconds per denoising step and peak
GPU memory, per offload mode, at 480x720 and 49 frames by default.

Stage II step = PAM's two ControlNets + the FLUX.1-dev transformer, batch 1 (guidance-distilled, no CFG).
Stage III step = the CogVideoX-5B-I2V transformer with PAM's control branch, CFG batch 2.
Offloading uses accelerate's hooks as diffusers does: "model" moves each whole model to the GPU when it
runs (ControlNets and transformer stay there once loaded, as in the pipeline's denoising loop);
"sequential" streams every layer from CPU RAM on each call. Weights only (no text encoders or VAEs).

Run on a CUDA machine: ``python benchmarks/bench_diffusion_gpu.py [--stage 2|3|both] [--offload none model
sequential] [--steps 3]``; ``--dry-run`` only prints the plan (works without a GPU)."""

from __future__ import annotations

import argparse
import time

OFFLOADS = ("none", "model", "sequential")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stage", choices=("2", "3", "both"), default="both")
    p.add_argument("--offload", nargs="+", choices=OFFLOADS, default=list(OFFLOADS))
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=720)
    p.add_argument("--frames", type=int, default=49)
    p.add_argument("--steps", type=int, default=3, help="timed steps per mode (after one warm-up step)")
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


def plan(args) -> list[tuple[str, str]]:
    stages = ("2", "3") if args.stage == "both" else (args.stage,)
    return [(s, o) for s in stages for o in args.offload]


def random_bf16(build, device):
    """Build on the meta device, materialise in CPU RAM in bf16, fill with N(0, 0.02) drawn on ``device``."""
    import torch

    with torch.device("meta"):
        model = build().to(torch.bfloat16)
    model = model.to_empty(device="cpu")
    gen = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.empty(p.shape, device=device, dtype=p.dtype).normal_(0.0, 0.02, generator=gen))
    return model.eval()


def place(models, mode: str, device):
    """Apply an offload mode to models living in CPU RAM; return a function that undoes it."""
    import torch
    from accelerate import cpu_offload, cpu_offload_with_hook
    from accelerate.hooks import remove_hook_from_module

    hooks, saved = [], [dict(m.state_dict()) for m in models]
    for m in models:
        if mode == "none":
            m.to(device)
        elif mode == "model":
            hooks.append(cpu_offload_with_hook(m, device)[1])
        else:
            cpu_offload(m, execution_device=device)

    def undo():
        for h in hooks:
            h.offload()
        for m, sd in zip(models, saved):
            remove_hook_from_module(m, recurse=True)
            if any(p.is_meta for p in m.parameters()):  # sequential offload swapped weights for meta tensors
                m.load_state_dict(sd, assign=True)
            m.to("cpu")
        torch.cuda.empty_cache()

    return undo


def stage2_step(args, device):
    import torch
    from diffusers import FluxTransformer2DModel

    from pam_diffusion.flux_controlnet import PamFluxControlNetModel, pam_controlnet_config
    from pam_diffusion.fullsize import FLUX_DEV_TRANSFORMER as F

    flux = random_bf16(lambda: FluxTransformer2DModel(**F), device)
    nets = [random_bf16(lambda: PamFluxControlNetModel(**pam_controlnet_config(F)), device) for _ in range(2)]
    tokens, text = (args.height // 16) * (args.width // 16), 512
    bf = dict(device=device, dtype=torch.bfloat16)
    h, w = args.height // 16, args.width // 16
    ids = torch.zeros(h, w, 3, device=device)
    ids[..., 1] += torch.arange(h, device=device)[:, None]
    ids[..., 2] += torch.arange(w, device=device)[None, :]
    inputs = dict(hidden_states=torch.randn(1, tokens, F["in_channels"], **bf),
                  encoder_hidden_states=torch.randn(1, text, F["joint_attention_dim"], **bf),
                  pooled_projections=torch.randn(1, F["pooled_projection_dim"], **bf),
                  timestep=torch.full((1,), 0.5, **bf), guidance=torch.full((1,), 4.0, **bf),
                  img_ids=ids.reshape(-1, 3), txt_ids=torch.zeros(text, 3, device=device))
    hints = [torch.rand(1, 6, args.height, args.width, **bf) * 2 - 1 for _ in range(2)]

    def step():
        res = None
        for net, hint in zip(nets, hints):
            r = net(controlnet_cond=hint, **inputs, return_dict=False)[0]
            res = r if res is None else [a + b for a, b in zip(res, r)]
        return flux(**inputs, controlnet_block_samples=res, controlnet_blocks_repeat=True, return_dict=False)[0]

    return [*nets, flux], step


def stage3_step(args, device):
    import torch
    from diffusers.models.embeddings import get_3d_rotary_pos_embed
    from diffusers.pipelines.cogvideo.pipeline_cogvideox_image2video import get_resize_crop_region_for_grid

    from pam_diffusion.control_transformer import PAM_NUM_CONTROL_BLOCKS, PamCogVideoXControlTransformer
    from pam_diffusion.fullsize import COGVIDEOX_5B_I2V_TRANSFORMER as C

    model = random_bf16(lambda: PamCogVideoXControlTransformer(**C, num_tracking_blocks=PAM_NUM_CONTROL_BLOCKS),
                        device)
    frames = (args.frames - 1) // 4 + 1
    h, w = args.height // 8, args.width // 8
    bf = dict(device=device, dtype=torch.bfloat16)
    grid = (h // 2, w // 2)
    crops = get_resize_crop_region_for_grid(grid, C["sample_width"] // 2, C["sample_height"] // 2)
    rotary = get_3d_rotary_pos_embed(embed_dim=C["attention_head_dim"], crops_coords=crops, grid_size=grid,
                                     temporal_size=frames, device=device)
    hidden = torch.randn(2, frames, C["in_channels"], h, w, **bf)
    enc = torch.randn(2, C["max_text_seq_length"], C["text_embed_dim"], **bf)
    slots = torch.randn(2, 5, frames, C["in_channels"], h, w, **bf)
    t = torch.full((2,), 500, device=device, dtype=torch.long)

    def step():
        return model(hidden, enc, t, control_latents=slots, image_rotary_emb=rotary, return_dict=False)[0]

    return [model], step


def measure(models, step, mode: str, device, steps: int) -> dict:
    import torch

    undo = place(models, mode, device)
    try:
        torch.cuda.reset_peak_memory_stats(device)
        with torch.no_grad():
            torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            step()  # warm-up, includes the first transfer when offloading
            torch.cuda.synchronize(device)
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            torch.cuda.synchronize(device)
            per_step = (time.perf_counter() - t0) / steps
        return {"first_s": first, "step_s": per_step, "peak_gib": torch.cuda.max_memory_allocated(device) / 1024 ** 3}
    finally:
        undo()


def main(argv=None) -> int:
    args = parse_args(argv)
    runs = plan(args)
    print(f"plan: {args.height}x{args.width}, {args.frames} frames, {args.steps} timed steps; "
          + ", ".join(f"stage {s} offload={o}" for s, o in runs))
    if args.dry_run:
        return 0
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device: nothing measured (use --dry-run to check the plan)")
        return 1
    device = torch.device(args.device)
    print(f"device: {torch.cuda.get_device_name(device)}")
    for stage in dict.fromkeys(s for s, _ in runs):
        models, step = (stage2_step if stage == "2" else stage3_step)(args, device)
        for s, mode in runs:
            if s != stage:
                continue
            try:
                r = measure(models, step, mode, device, args.steps)
                print(f"stage {stage} offload={mode:10s} {r['step_s']:8.3f} s/step (first step {r['first_s']:.2f} s) "
                      f"peak {r['peak_gib']:6.2f} GiB")
            except torch.cuda.OutOfMemoryError:
                print(f"stage {stage} offload={mode:10s} out of GPU memory")
                torch.cuda.empty_cache()
        del models, step
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
