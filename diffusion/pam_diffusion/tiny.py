"""Tiny, randomly initialised versions of every component, built offline from configs.

They have the real classes and wiring (Flux + two PAM ControlNets, CLIP and T5 with in-memory
tokenizers, the Flux VAE, the CogVideoX control transformer, the CogVideoX VAE), only small widths,
so the whole Stage II -> III path runs on a CPU in seconds. Tests and benchmarks use them.

The CogVideoX transformer uses learned positional embeddings, as CogVideoX-5B-I2V does; that fixes the
video size to ``(sample_height * 8, sample_width * 8)``: build with the height and width you will
generate at (multiples of 16)."""

from __future__ import annotations

import string
from dataclasses import dataclass, field

import torch

#: Text length of the tiny encoders (the full models use 77 for CLIP, 512 for Flux's T5, 226 for CogVideoX's).
TINY_TEXT_LEN = 16


@dataclass
class TinyComponents:
    """Components of both stages, in the keyword layout of ``PamVideoGenerator.from_components``."""

    stage2: dict = field(default_factory=dict)
    stage3: dict = field(default_factory=dict)


def _randomize_(module: torch.nn.Module, seed: int, std: float = 0.2) -> torch.nn.Module:
    """Fill every parameter with seeded noise (norm scales around 1). diffusers zero-initialises some
    projections, which would make tiny models trivially constant."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            offset = 1.0 if p.dim() == 1 and bool(torch.all(p == 1.0)) else 0.0
            p.copy_(torch.randn(p.shape, generator=gen) * std + offset)
    return module


def tiny_clip(seed: int = 0):
    """CLIP text model + a character-level BPE tokenizer built in memory."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    specials = ["<|startoftext|>", "<|endoftext|>"]
    chars = string.ascii_lowercase + string.digits + ".,-'!?"
    vocab = {t: i for i, t in enumerate(specials + list(chars) + [c + "</w>" for c in chars])}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=TINY_TEXT_LEN)
    config = CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=TINY_TEXT_LEN, projection_dim=32,
        bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"],
    )
    torch.manual_seed(seed)
    return CLIPTextModel(config).eval(), tokenizer


def tiny_t5(seed: int = 0):
    """T5 encoder + a character-level Unigram tokenizer built in memory."""
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    pieces = ["<pad>", "</s>", "<unk>", "\u2581"] + list(string.ascii_lowercase + string.digits + ".,-'!?")
    vocab = [(p, 0.0 if i < 3 else -float(i)) for i, p in enumerate(pieces)]
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=512)
    config = T5Config(
        vocab_size=len(pieces), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, feed_forward_proj="gated-gelu", pad_token_id=0, eos_token_id=1,
        decoder_start_token_id=0, is_encoder_decoder=False,
    )
    torch.manual_seed(seed)
    return T5EncoderModel(config).eval(), tokenizer


def tiny_flux_transformer(seed: int = 0, num_layers: int = 3):
    """Flux transformer: 3 double blocks (so PAM's ``i % 2`` cycling wraps), 1 single block."""
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(seed)
    model = FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=num_layers, num_single_layers=1, attention_head_dim=8,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=True,
        axes_dims_rope=[2, 2, 4],
    )
    return _randomize_(model, seed).eval()


def tiny_controlnets(transformer, seed: int = 1, zero_init: bool = False):
    """PAM's two ControlNets for ``transformer``; random everywhere unless ``zero_init`` (PAM's start:
    copied from Flux with zero residual projections)."""
    from .flux_controlnet import controlnet_from_transformer, double_controlnet

    nets = []
    for i in range(2):
        torch.manual_seed(seed + i)
        net = controlnet_from_transformer(transformer)
        if not zero_init:
            _randomize_(net, seed + 10 + i)
        nets.append(net.eval())
    return double_controlnet(*nets)


def tiny_flux_vae(seed: int = 0):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[8, 8, 8, 8], layers_per_block=1,
        latent_channels=16, norm_num_groups=4, sample_size=64, scaling_factor=0.3611, shift_factor=0.1159,
        use_quant_conv=False, use_post_quant_conv=False,
    ).eval()


def tiny_flux_scheduler():
    from diffusers import FlowMatchEulerDiscreteScheduler

    from .fullsize import FLUX_DEV_SCHEDULER

    return FlowMatchEulerDiscreteScheduler(**FLUX_DEV_SCHEDULER)


def tiny_cogvideox_transformer(height: int = 64, width: int = 96, seed: int = 0, num_layers: int = 2,
                               num_tracking_blocks: int = 1, zero_init: bool = False):
    """PAM control transformer on a tiny CogVideoX-I2V (learned positional embeddings, rotary, 32-channel
    input = 16 noisy + 16 image latent channels at tiny width 4+4)."""
    from .control_transformer import PamCogVideoXControlTransformer

    if height % 16 or width % 16:
        raise ValueError(f"tiny CogVideoX size {height}x{width}: both sides must be multiples of 16")
    torch.manual_seed(seed)
    model = PamCogVideoXControlTransformer(
        num_attention_heads=2, attention_head_dim=16, in_channels=8, out_channels=4, time_embed_dim=4,
        text_embed_dim=32, num_layers=num_layers, sample_width=width // 8, sample_height=height // 8,
        sample_frames=49, patch_size=2, temporal_compression_ratio=4, max_text_seq_length=TINY_TEXT_LEN,
        use_rotary_positional_embeddings=True, use_learned_positional_embeddings=True,
        num_tracking_blocks=num_tracking_blocks,
    )
    _randomize_(model, seed)
    if zero_init:
        for layer in list(model.combine_linears) + [model.initial_combine_linear]:
            torch.nn.init.zeros_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    return model.eval()


def tiny_cogvideox_vae(seed: int = 0, height: int = 64, width: int = 96):
    from diffusers import AutoencoderKLCogVideoX

    torch.manual_seed(seed)
    return AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), latent_channels=4,
        layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4,
        # tiles are half the sample size: twice the frame keeps tiling a no-op at tiny sizes, where
        # tiles would be too small for the four downsamplings
        sample_height=2 * height, sample_width=2 * width, scaling_factor=0.7,
    ).eval()


def tiny_cogvideox_scheduler():
    from diffusers import CogVideoXDPMScheduler

    from .fullsize import COGVIDEOX_5B_I2V_SCHEDULER

    return CogVideoXDPMScheduler.from_config(COGVIDEOX_5B_I2V_SCHEDULER, timestep_spacing="trailing")


def tiny_components(height: int = 64, width: int = 96, seed: int = 0, zero_control: bool = False) -> TinyComponents:
    """Every component of both stages, tiny and random, for a video of ``height`` x ``width``."""
    clip, clip_tok = tiny_clip(seed)
    t5, t5_tok = tiny_t5(seed + 1)
    flux = tiny_flux_transformer(seed + 2)
    stage2 = dict(
        transformer=flux, controlnet=tiny_controlnets(flux, seed + 3, zero_init=zero_control),
        vae=tiny_flux_vae(seed + 4), text_encoder=clip, tokenizer=clip_tok, text_encoder_2=t5,
        tokenizer_2=t5_tok, scheduler=tiny_flux_scheduler(),
    )
    t5b, t5b_tok = tiny_t5(seed + 5)
    stage3 = dict(
        transformer=tiny_cogvideox_transformer(height, width, seed + 6, zero_init=zero_control),
        vae=tiny_cogvideox_vae(seed + 7, height, width), text_encoder=t5b, tokenizer=t5b_tok,
        scheduler=tiny_cogvideox_scheduler(),
    )
    return TinyComponents(stage2=stage2, stage3=stage3)


def tiny_config(height: int = 64, width: int = 96, num_frames: int = 49, **overrides):
    """A ``DiffusionConfig`` for the tiny components: CPU, float32, 2 steps per stage, short prompts."""
    from .config import DiffusionConfig

    d = dict(
        height=height, width=width, num_frames=num_frames, device="cpu", dtype="float32", offload="none",
        vae_tiling=False, vae_slicing=False, local_files_only=True,
        stage2=dict(steps=2, num_candidates=2, max_sequence_length=TINY_TEXT_LEN),
        stage3=dict(steps=2, max_sequence_length=TINY_TEXT_LEN),
    )
    for key, value in overrides.items():
        if key in ("stage2", "stage3"):
            d[key] = {**d[key], **value}
        else:
            d[key] = value
    return DiffusionConfig.from_dict(d)


def tiny_generator(height: int = 64, width: int = 96, num_frames: int = 49, seed: int = 0, **overrides):
    """A ``PamVideoGenerator`` on tiny components, ready to ``generate``."""
    from .generator import PamVideoGenerator

    comps = tiny_components(height, width, seed)
    return PamVideoGenerator.from_components(tiny_config(height, width, num_frames, **overrides),
                                             stage2=comps.stage2, stage3=comps.stage3)
