"""Stage III model: PAM's control transformer on diffusers' CogVideoX, its combine path checked
against PAM's forward written out from the raw tensors, and PAM's sharded checkpoint layout."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import CogVideoXTransformer3DModel
from diffusers.models.embeddings import get_3d_rotary_pos_embed
from diffusers.pipelines.cogvideo.pipeline_cogvideox_image2video import get_resize_crop_region_for_grid

from diffusion_refs import base_config, pam_combine_forward, pam_layout_checkpoint, write_pam_folder
from pam_diffusion.control_transformer import PamCogVideoXControlTransformer, load_pam_transformer
from pam_diffusion.errors import CheckpointMismatchError, WeightsNotFoundError
from pam_diffusion.tiny import tiny_cogvideox_transformer

H, W = 64, 96  # pixels; latents 8 x 12


def inputs(model, frames: int = 3, seed: int = 0):
    c = model.config
    gen = torch.Generator().manual_seed(seed)
    shape = (1, frames, c.in_channels, H // 8, W // 8)
    grid = (H // 8 // c.patch_size, W // 8 // c.patch_size)
    crops = get_resize_crop_region_for_grid(grid, c.sample_width // c.patch_size, c.sample_height // c.patch_size)
    rotary = get_3d_rotary_pos_embed(embed_dim=c.attention_head_dim, crops_coords=crops, grid_size=grid,
                                     temporal_size=frames)
    return dict(hidden_states=torch.randn(shape, generator=gen),
                encoder_hidden_states=torch.randn(1, c.max_text_seq_length, c.text_embed_dim, generator=gen),
                timestep=torch.tensor([500]), image_rotary_emb=rotary), \
        torch.randn((1, 5) + shape[1:], generator=gen)


@pytest.fixture(scope="module")
def model():
    return tiny_cogvideox_transformer(H, W, seed=0, num_layers=3, num_tracking_blocks=2)


def test_zero_initialised_control_equals_base(model):
    zero = tiny_cogvideox_transformer(H, W, seed=1, num_layers=3, num_tracking_blocks=2, zero_init=True)
    base = CogVideoXTransformer3DModel(**base_config(zero))
    base.load_state_dict({k: v for k, v in zero.state_dict().items() if k in base.state_dict()})
    x, slots = inputs(zero)
    with torch.no_grad():
        controlled = zero(**x, control_latents=slots).sample
        uncontrolled = zero(**x).sample
        plain = base(**x).sample
    assert torch.equal(controlled, plain) and torch.equal(uncontrolled, plain)


def test_combine_path_matches_pam_reference(model):
    x, slots = inputs(model)
    with torch.no_grad():
        ours = model(**x, control_latents=slots).sample
        ref = pam_combine_forward(model, model.state_dict(), x["hidden_states"], x["encoder_hidden_states"],
                                  x["timestep"], slots, x["image_rotary_emb"])
        base = model(**x).sample
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    assert (ours - base).abs().max() > 1e-3


def test_from_base_is_pams_initialisation():
    base = CogVideoXTransformer3DModel(**base_config(tiny_cogvideox_transformer(H, W, num_layers=3)))
    torch.manual_seed(0)
    for p in base.parameters():
        torch.nn.init.normal_(p, std=0.2)
    model = PamCogVideoXControlTransformer.from_base(base, num_tracking_blocks=2)
    for i in range(2):
        a, b = model.transformer_blocks_copy[i].state_dict(), base.transformer_blocks[i].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in b)
    x, slots = inputs(model)
    with torch.no_grad():
        assert torch.equal(model(**x, control_latents=slots).sample, base(**x).sample)
    assert sum(p.numel() for p in model.control_parameters()) > 0


def test_pam_sharded_checkpoint_loads_with_blockless_config(model, tmp_path):
    sd = pam_layout_checkpoint(model, seed=5)
    write_pam_folder(tmp_path / "pam", model, sd)
    assert "num_tracking_blocks" not in json.loads((tmp_path / "pam" / "config.json").read_text())
    loaded = load_pam_transformer(tmp_path / "pam")  # strict: raises on missing/unexpected keys
    assert loaded.config.num_tracking_blocks == model.config.num_tracking_blocks
    got = loaded.state_dict()
    assert set(got) == set(sd) and all(torch.equal(got[k], sd[k]) for k in sd)
    x, slots = inputs(loaded)
    with torch.no_grad():
        out = loaded(**x, control_latents=slots).sample
        ref = pam_combine_forward(loaded, sd, x["hidden_states"], x["encoder_hidden_states"], x["timestep"], slots,
                                  x["image_rotary_emb"])
        base = loaded(**x).sample
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert (out - base).abs().max() > 1e-3


def test_save_and_load_back_reproduces_outputs(model, tmp_path):
    model.save_pretrained(tmp_path / "saved", max_shard_size="200KB")  # sharded safetensors + index
    assert len(list((tmp_path / "saved").glob("*.safetensors"))) > 1
    loaded = load_pam_transformer(tmp_path / "saved", torch_dtype=torch.float32)
    x, slots = inputs(model, seed=4)
    with torch.no_grad():
        assert torch.equal(loaded(**x, control_latents=slots).sample, model(**x, control_latents=slots).sample)


def test_plain_cogvideox_checkpoint_is_rejected(model, tmp_path):
    base = CogVideoXTransformer3DModel(**base_config(model))
    base.save_pretrained(tmp_path / "plain")
    with pytest.raises(CheckpointMismatchError, match=r"no transformer_blocks_copy\.\* keys"):
        load_pam_transformer(tmp_path / "plain")


def test_other_architecture_names_mismatched_keys(model, tmp_path):
    wide = tiny_cogvideox_transformer(H, W, num_layers=3, num_tracking_blocks=2)
    sd = pam_layout_checkpoint(model)
    sd["initial_combine_linear.weight"] = torch.zeros(32, 4 * 32)  # four slots instead of five
    sd["transformer_blocks_copy.0.ff.net.0.proj.weight"] = torch.zeros(7, 32)
    write_pam_folder(tmp_path / "other", wide, sd)
    with pytest.raises(CheckpointMismatchError) as err:
        load_pam_transformer(tmp_path / "other")
    assert "initial_combine_linear.weight (32, 128)" in str(err.value)
    assert "transformer_blocks_copy.0.ff.net.0.proj.weight" in str(err.value)
    sd = pam_layout_checkpoint(model)
    del sd["combine_linears.1.bias"]
    sd["combine_linears.9.bias"] = torch.zeros(32)
    write_pam_folder(tmp_path / "keys", model, sd)
    with pytest.raises(CheckpointMismatchError, match=r"missing keys \(1\): combine_linears\.1\.bias.*unexpected keys "
                                                      r"\(1\): combine_linears\.9\.bias"):
        load_pam_transformer(tmp_path / "keys", num_tracking_blocks=2)


def test_missing_folder_parts_are_named(model, tmp_path):
    with pytest.raises(WeightsNotFoundError, match=r"nowhere.*does not exist.*config\.json"):
        load_pam_transformer(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsNotFoundError, match=r"lacks config\.json"):
        load_pam_transformer(tmp_path / "empty")
    (tmp_path / "empty" / "config.json").write_text(json.dumps(base_config(model)))
    with pytest.raises(WeightsNotFoundError, match=r"no weight files"):
        load_pam_transformer(tmp_path / "empty")
    write_pam_folder(tmp_path / "shards", model, pam_layout_checkpoint(model), shards=3)
    (tmp_path / "shards" / "pytorch_model-00002-of-00003.bin").unlink()
    with pytest.raises(WeightsNotFoundError, match=r"missing shard\(s\) pytorch_model-00002-of-00003\.bin"):
        load_pam_transformer(tmp_path / "shards")


def test_control_latents_of_wrong_shape_are_refused(model):
    x, slots = inputs(model)
    with pytest.raises(ValueError, match=r"control_latents has shape"):
        model(**x, control_latents=slots[:, :4])
