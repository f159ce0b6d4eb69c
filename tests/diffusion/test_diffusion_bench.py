"""The GPU benchmark script's plumbing, checked on the CPU with tiny configs: argument checks, the
denoising steps it times, and that each offload mode is undone without losing weights."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_diffusion_gpu", ROOT / "benchmarks" / "bench_diffusion_gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_arguments_and_plan(bench, capsys):
    args = bench.parse_args([])
    assert (args.height, args.width, args.frames) == (480, 720, 49)
    assert bench.plan(args) == [(s, o) for s in "23" for o in ("none", "model", "sequential")]
    assert bench.plan(bench.parse_args(["--stage", "3", "--offload", "model"])) == [("3", "model")]
    assert bench.main(["--dry-run"]) == 0 and "stage 3 offload=sequential" in capsys.readouterr().out
    for bad in (["--frames", "48"], ["--width", "700"], ["--steps", "0"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)


def test_steps_and_offload_modes_on_tiny_configs(bench, monkeypatch):
    import pam_diffusion.control_transformer as ct
    import pam_diffusion.fullsize as fullsize
    from pam_diffusion.tiny import TINY_TEXT_LEN

    monkeypatch.setattr(fullsize, "FLUX_DEV_TRANSFORMER", dict(
        patch_size=1, in_channels=64, num_layers=3, num_single_layers=1, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=True, axes_dims_rope=[2, 2, 4]))
    monkeypatch.setattr(fullsize, "COGVIDEOX_5B_I2V_TRANSFORMER", dict(
        num_attention_heads=2, attention_head_dim=16, in_channels=8, out_channels=4, time_embed_dim=4,
        text_embed_dim=32, num_layers=2, sample_width=12, sample_height=8, sample_frames=49, patch_size=2,
        max_text_seq_length=TINY_TEXT_LEN, use_rotary_positional_embeddings=True,
        use_learned_positional_embeddings=True))
    monkeypatch.setattr(ct, "PAM_NUM_CONTROL_BLOCKS", 1)
    args = bench.parse_args(["--height", "64", "--width", "96", "--frames", "9"])
    for builder, shape in ((bench.stage2_step, (1, 24, 64)), (bench.stage3_step, (2, 3, 4, 8, 12))):
        models, step = builder(args, "cpu")
        with torch.no_grad():
            reference = step()
            assert reference.shape == shape and reference.dtype == torch.bfloat16
            for mode in bench.OFFLOADS:
                undo = bench.place(models, mode, "cpu")
                try:
                    assert torch.equal(step(), reference), mode
                finally:
                    undo()
                assert torch.equal(step(), reference), f"weights lost after offload={mode}"
