"""Stage II models: PAM's x-flux ControlNets mapped onto diffusers, checked against an independent
implementation of the x-flux math on the raw ``controlnet1.*``/``controlnet2.*`` tensors."""

from __future__ import annotations

import pytest
import torch

from diffusion_refs import pam_checkpoint, random_state_dict, xflux_controlnet_forward, xflux_controlnet_layout
from pam_diffusion.convert import load_pam_controlnets, main as convert_main
from pam_diffusion.errors import CheckpointMismatchError, WeightsNotFoundError


def flux_inputs(transformer, height=32, width=48, text_len=5, seed=0):
    """Inputs of a Flux/ControlNet forward at latent size (height/8, width/8), packed 2x2."""
    c = transformer.config
    gen = torch.Generator().manual_seed(seed)
    h, w = height // 16, width // 16
    img_ids = torch.zeros(h, w, 3)
    img_ids[..., 1] += torch.arange(h)[:, None]
    img_ids[..., 2] += torch.arange(w)[None, :]
    return dict(
        hidden_states=torch.randn(1, h * w, c.in_channels, generator=gen),
        encoder_hidden_states=torch.randn(1, text_len, c.joint_attention_dim, generator=gen),
        pooled_projections=torch.randn(1, c.pooled_projection_dim, generator=gen),
        timestep=torch.tensor([0.7]), guidance=torch.tensor([4.0]),
        img_ids=img_ids.reshape(-1, 3), txt_ids=torch.zeros(text_len, 3),
    ), [torch.rand(1, 6, height, width, generator=gen) * 2 - 1 for _ in range(2)]


@pytest.fixture(scope="module")
def checkpoint_file(tmp_path_factory, tiny_flux):
    path = tmp_path_factory.mktemp("pam") / "controlnet.bin"
    torch.save(pam_checkpoint(tiny_flux), path)
    return path


def test_xflux_mapping_matches_reference_math(tiny_flux, checkpoint_file):
    """Each mapped net's residuals equal x-flux's forward computed from the raw tensors."""
    sd = torch.load(checkpoint_file, weights_only=True)
    multi = load_pam_controlnets(checkpoint_file, tiny_flux.config)
    inputs, hints = flux_inputs(tiny_flux)
    c = tiny_flux.config
    for n, (net, hint) in enumerate(zip(multi.nets, hints), start=1):
        raw = {k[len(f"controlnet{n}."):]: v for k, v in sd.items() if k.startswith(f"controlnet{n}.")}
        with torch.no_grad():
            ours, single = net(controlnet_cond=hint, **inputs, return_dict=False)
            ref = xflux_controlnet_forward(
                raw, inputs["hidden_states"], inputs["img_ids"], hint, inputs["encoder_hidden_states"],
                inputs["txt_ids"], inputs["timestep"], inputs["pooled_projections"], inputs["guidance"],
                heads=c.num_attention_heads, axes_dim=list(c.axes_dims_rope))
        assert single is None and len(ours) == len(ref) == 2
        for a, b in zip(ours, ref):
            assert a.abs().max() > 1e-3  # residuals are not trivially zero
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_residuals_cycle_over_the_two_blocks(tiny_flux):
    """diffusers' repeat mode adds residual[i % 2] after double block i (PAM's injection)."""
    inputs, _ = flux_inputs(tiny_flux)
    gen = torch.Generator().manual_seed(3)
    hidden = tiny_flux.inner_dim
    residuals = [torch.randn(1, inputs["hidden_states"].shape[1], hidden, generator=gen) for _ in range(2)]
    with torch.no_grad():
        ours = tiny_flux(**inputs, controlnet_block_samples=residuals, controlnet_blocks_repeat=True).sample
        t = tiny_flux
        temb = t.time_text_embed(inputs["timestep"] * 1000, inputs["guidance"] * 1000, inputs["pooled_projections"])
        x, txt = t.x_embedder(inputs["hidden_states"]), t.context_embedder(inputs["encoder_hidden_states"])
        rot = t.pos_embed(torch.cat([inputs["txt_ids"], inputs["img_ids"]]))
        assert len(t.transformer_blocks) == 3  # so the cycle wraps: 0, 1, 0
        for i, block in enumerate(t.transformer_blocks):
            txt, x = block(x, txt, temb, rot)
            x = x + residuals[i % 2]
        for block in t.single_transformer_blocks:
            txt, x = block(x, txt, temb, rot)
        ref = t.proj_out(t.norm_out(x, temb))
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


def test_conditioning_scales_weight_each_net(tiny_flux, checkpoint_file):
    multi = load_pam_controlnets(checkpoint_file, tiny_flux.config)
    inputs, hints = flux_inputs(tiny_flux)
    modes = [torch.tensor([-1])] * 2
    with torch.no_grad():
        r1 = multi.nets[0](controlnet_cond=hints[0], **inputs, return_dict=False)[0]
        r2 = multi.nets[1](controlnet_cond=hints[1], **inputs, return_dict=False)[0]
        both, _ = multi(controlnet_cond=hints, controlnet_mode=modes, conditioning_scale=[0.5, 2.0], **inputs,
                        return_dict=False)
    for got, a, b in zip(both, r1, r2):
        torch.testing.assert_close(got, 0.5 * a + 2.0 * b)


def test_zero_initialised_control_equals_base(tiny_flux):
    from pam_diffusion.tiny import tiny_controlnets

    multi = tiny_controlnets(tiny_flux, zero_init=True)
    inputs, hints = flux_inputs(tiny_flux)
    modes = [torch.tensor([-1])] * 2
    with torch.no_grad():
        res, single = multi(controlnet_cond=hints, controlnet_mode=modes, conditioning_scale=[1.0, 1.0], **inputs, return_dict=False)
        controlled = tiny_flux(**inputs, controlnet_block_samples=res, controlnet_single_block_samples=single,
                               controlnet_blocks_repeat=True).sample
        base = tiny_flux(**inputs).sample
    assert torch.equal(controlled, base)


def test_pam_checkpoint_loads_strictly_and_changes_output(tiny_flux, checkpoint_file):
    sd = torch.load(checkpoint_file, weights_only=True)
    multi = load_pam_controlnets(checkpoint_file, tiny_flux.config)  # strict: raises on any key difference
    assert sum(p.numel() for p in multi.parameters()) == sum(v.numel() for v in sd.values())
    inputs, hints = flux_inputs(tiny_flux)
    modes = [torch.tensor([-1])] * 2
    with torch.no_grad():
        res, _ = multi(controlnet_cond=hints, controlnet_mode=modes, conditioning_scale=[1.0, 1.0], **inputs, return_dict=False)
        controlled = tiny_flux(**inputs, controlnet_block_samples=res, controlnet_blocks_repeat=True).sample
        base = tiny_flux(**inputs).sample
    assert (controlled - base).abs().max() > 1e-3


def test_convert_save_and_load_back_reproduces_outputs(tiny_flux, checkpoint_file, tmp_path):
    direct = load_pam_controlnets(checkpoint_file, tiny_flux.config)
    assert convert_main([str(checkpoint_file), str(tmp_path / "out"), "--flux", _flux_config_file(tiny_flux, tmp_path)]) == 0
    assert (tmp_path / "out" / "controlnet1" / "config.json").is_file()
    reloaded = load_pam_controlnets(tmp_path / "out", tiny_flux.config)
    inputs, hints = flux_inputs(tiny_flux)
    modes = [torch.tensor([-1])] * 2
    with torch.no_grad():
        a, _ = direct(controlnet_cond=hints, controlnet_mode=modes, conditioning_scale=[1.0, 1.0], **inputs, return_dict=False)
        b, _ = reloaded(controlnet_cond=hints, controlnet_mode=modes, conditioning_scale=[1.0, 1.0], **inputs, return_dict=False)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert reloaded.nets[0].config.conditioning_channels == 6


def _flux_config_file(transformer, tmp_path) -> str:
    import json

    path = tmp_path / "flux_config.json"
    path.write_text(json.dumps(dict(transformer.config)))
    return str(path)


def test_cli_reports_missing_file(tmp_path, capsys):
    assert convert_main([str(tmp_path / "nope.bin"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "nope.bin" in err and "controlnet1" in err


def test_missing_controlnet_path_names_path_and_contents(tiny_flux, tmp_path):
    with pytest.raises(WeightsNotFoundError, match=r"missing\.bin.*controlnet1"):
        load_pam_controlnets(tmp_path / "missing.bin", tiny_flux.config)
    with pytest.raises(WeightsNotFoundError, match=r"neither controlnet\.bin"):
        load_pam_controlnets(tmp_path, tiny_flux.config)


def test_foreign_keys_are_named(tiny_flux, tmp_path):
    sd = pam_checkpoint(tiny_flux)
    single = {k[len("controlnet1."):]: v for k, v in sd.items() if k.startswith("controlnet1.")}
    torch.save(single, tmp_path / "xlabs_single.bin")  # a plain XLabs ControlNet, not PAM's pair
    with pytest.raises(CheckpointMismatchError, match=r"unexpected keys.*img_in\.weight"):
        load_pam_controlnets(tmp_path / "xlabs_single.bin", tiny_flux.config)


def test_unknown_and_missing_keys_are_named(tiny_flux, tmp_path):
    sd = pam_checkpoint(tiny_flux)
    sd["controlnet2.extra_head.weight"] = torch.zeros(3)
    torch.save(sd, tmp_path / "extra.bin")
    with pytest.raises(CheckpointMismatchError, match=r"extra_head\.weight"):
        load_pam_controlnets(tmp_path / "extra.bin", tiny_flux.config)
    sd = pam_checkpoint(tiny_flux)
    del sd["controlnet1.double_blocks.1.txt_mlp.2.bias"]
    torch.save(sd, tmp_path / "missing.bin")
    with pytest.raises(CheckpointMismatchError, match=r"ff_context\.net\.2\.bias"):
        load_pam_controlnets(tmp_path / "missing.bin", tiny_flux.config)


def test_different_architecture_names_mismatched_keys(tiny_flux, tmp_path):
    layout = xflux_controlnet_layout(hidden=24, heads=3, in_channels=64, context=32, vec=32)
    sd = {**random_state_dict(layout, 0, prefix="controlnet1."), **random_state_dict(layout, 1, prefix="controlnet2.")}
    torch.save(sd, tmp_path / "wide.bin")
    with pytest.raises(CheckpointMismatchError, match=r"different Flux architecture.*img_in\.weight \(24, 64\)"):
        load_pam_controlnets(tmp_path / "wide.bin", tiny_flux.config)


class Payload:
    """Stands for code smuggled into a checkpoint; unpickling it would run ``__reduce__``."""

    def __reduce__(self):
        return (exec, ("raise SystemExit('unpickled')",))


def test_pickled_code_is_refused(tiny_flux, tmp_path):
    """Checkpoints are data: a pickle carrying an object is refused, not unpickled."""
    torch.save({"controlnet1.x": Payload()}, tmp_path / "evil.bin")
    with pytest.raises(CheckpointMismatchError, match=r"evil\.bin.*weights-only"):
        load_pam_controlnets(tmp_path / "evil.bin", tiny_flux.config)
