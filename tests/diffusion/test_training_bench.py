"""The training GPU benchmark's plumbing, checked on the CPU with tiny configs: arguments, plan, and that
each timed step trains only the control parameters (with and without gradient checkpointing)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_training_gpu", ROOT / "benchmarks" / "bench_training_gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_arguments_and_plan(bench, capsys):
    args = bench.parse_args([])
    assert (args.height, args.width, args.frames) == (480, 720, 49)
    assert bench.plan(args) == [("2", False), ("2", True), ("3", False), ("3", True)]
    assert bench.plan(bench.parse_args(["--stage", "3", "--checkpointing", "on"])) == [("3", True)]
    assert bench.main(["--dry-run"]) == 0 and "stage 3 checkpointing=on" in capsys.readouterr().out
    for bad in (["--frames", "48"], ["--width", "700"], ["--steps", "0"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)


@pytest.mark.parametrize("checkpointing", [False, True])
def test_tiny_training_steps_move_only_control_parameters(bench, monkeypatch, checkpointing):
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
    for builder in (bench.stage2, bench.stage3):
        params, step = builder(args, "cpu", checkpointing)
        before = [p.detach().clone() for p in params]
        loss = step()
        assert loss == loss and loss > 0  # finite, positive
        assert any(not torch.equal(a, p) for a, p in zip(before, params))
