"""Configs of the full-size models, as published with FLUX.1-dev and CogVideoX-5b-I2V (diffusers layout),
so that their architecture can be built on the ``meta`` device without downloading anything
(benchmarks, checkpoint checks, conversion)."""

from __future__ import annotations

#: black-forest-labs/FLUX.1-dev, transformer/config.json
FLUX_DEV_TRANSFORMER = {
    "patch_size": 1,
    "in_channels": 64,
    "num_layers": 19,
    "num_single_layers": 38,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "pooled_projection_dim": 768,
    "guidance_embeds": True,
    "axes_dims_rope": [16, 56, 56],
}

#: black-forest-labs/FLUX.1-dev, vae/config.json
FLUX_DEV_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 16,
    "norm_num_groups": 32,
    "sample_size": 1024,
    "scaling_factor": 0.3611,
    "shift_factor": 0.1159,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
    "force_upcast": True,
}

#: black-forest-labs/FLUX.1-dev, scheduler/scheduler_config.json
FLUX_DEV_SCHEDULER = {
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 1.15,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
}

#: CLIP ViT-L/14 text tower (FLUX.1-dev text_encoder)
CLIP_L_TEXT = {
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "projection_dim": 768,
    "hidden_act": "quick_gelu",
}

#: T5 v1.1 XXL encoder (FLUX.1-dev text_encoder_2 and CogVideoX-5b-I2V text_encoder)
T5_XXL_ENCODER = {
    "vocab_size": 32128,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "feed_forward_proj": "gated-gelu",
    "is_encoder_decoder": False,
}

#: THUDM/CogVideoX-5b-I2V, transformer/config.json (PAM's transformer folder ships this file as is)
COGVIDEOX_5B_I2V_TRANSFORMER = {
    "activation_fn": "gelu-approximate",
    "attention_bias": True,
    "attention_head_dim": 64,
    "dropout": 0.0,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 32,
    "max_text_seq_length": 226,
    "norm_elementwise_affine": True,
    "norm_eps": 1e-05,
    "num_attention_heads": 48,
    "num_layers": 42,
    "out_channels": 16,
    "patch_size": 2,
    "sample_frames": 49,
    "sample_height": 60,
    "sample_width": 90,
    "spatial_interpolation_scale": 1.875,
    "temporal_compression_ratio": 4,
    "temporal_interpolation_scale": 1.0,
    "text_embed_dim": 4096,
    "time_embed_dim": 512,
    "timestep_activation_fn": "silu",
    "use_learned_positional_embeddings": True,
    "use_rotary_positional_embeddings": True,
}

#: THUDM/CogVideoX-5b-I2V, vae/config.json
COGVIDEOX_5B_I2V_VAE = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 256, 512],
    "down_block_types": ["CogVideoXDownBlock3D"] * 4,
    "up_block_types": ["CogVideoXUpBlock3D"] * 4,
    "force_upcast": True,
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 16,
    "layers_per_block": 3,
    "norm_eps": 1e-06,
    "norm_num_groups": 32,
    "sample_height": 480,
    "sample_width": 720,
    "scaling_factor": 0.7,
    "temporal_compression_ratio": 4,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
}

#: THUDM/CogVideoX-5b-I2V, scheduler/scheduler_config.json (PAM samples with CogVideoXDPMScheduler
#: built from it, timestep_spacing "trailing")
COGVIDEOX_5B_I2V_SCHEDULER = {
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "clip_sample_range": 1.0,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "sample_max_value": 1.0,
    "set_alpha_to_one": True,
    "snr_shift_scale": 1.0,
    "steps_offset": 0,
    "timestep_spacing": "trailing",
    "trained_betas": None,
}
