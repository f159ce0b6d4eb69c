"""PAM's Stage II ControlNet on diffusers' ``FluxControlNetModel``.

PAM trains two x-flux ("XLabs") ControlNets: each copies Flux's embedders and 2 double blocks, adds a
pixel hint encoder (8 convs, three of stride 2, 16 channels) on a 6-channel map, and returns one
zero-initialised linear residual per block. Flux adds ``residual[i % 2]`` after each of its 19 double
blocks (``controlnet_blocks_repeat=True`` in diffusers). diffusers' class builds the same network but
fixes the hint encoder's input to 3 channels; this subclass makes it configurable."""

from __future__ import annotations

from diffusers.configuration_utils import register_to_config
from diffusers.models.controlnets.controlnet import ControlNetConditioningEmbedding
from diffusers.models.controlnets.controlnet_flux import FluxControlNetModel, FluxMultiControlNetModel

#: Channels out of the x-flux hint encoder; packed into 2x2 patches they give 64 = Flux's latent width.
HINT_CHANNELS = 16
#: x-flux's hint encoder: four widths of 16 (conv_in, 3 x (conv, conv/2), conv_out).
HINT_BLOCK_OUT_CHANNELS = (16, 16, 16, 16)
#: Double blocks in each of PAM's ControlNets.
PAM_CONTROLNET_DEPTH = 2
#: Channels of each PAM hint: two RGB maps stacked (depth+normal, or hand keypoints+seg).
PAM_CONDITION_CHANNELS = 6


class PamFluxControlNetModel(FluxControlNetModel):
    """An x-flux ControlNet whose pixel hint has ``conditioning_channels`` channels (PAM: 6).

    ``patch_size`` is the size of the patches the hint features are packed into (2, as Flux packs
    its latents); it must satisfy ``16 * patch_size**2 == in_channels``."""

    @register_to_config
    def __init__(
        self,
        patch_size: int = 2,
        in_channels: int = 64,
        num_layers: int = PAM_CONTROLNET_DEPTH,
        num_single_layers: int = 0,
        attention_head_dim: int = 128,
        num_attention_heads: int = 24,
        joint_attention_dim: int = 4096,
        pooled_projection_dim: int = 768,
        guidance_embeds: bool = True,
        axes_dims_rope: list[int] = (16, 56, 56),
        num_mode: int | None = None,
        conditioning_embedding_channels: int = HINT_CHANNELS,
        conditioning_channels: int = PAM_CONDITION_CHANNELS,
    ):
        if conditioning_embedding_channels * patch_size**2 != in_channels:
            raise ValueError(
                f"hint features ({conditioning_embedding_channels} channels in {patch_size}x{patch_size} "
                f"patches) do not match in_channels={in_channels}")
        super().__init__(
            patch_size=patch_size,
            in_channels=in_channels,
            num_layers=num_layers,
            num_single_layers=num_single_layers,
            attention_head_dim=attention_head_dim,
            num_attention_heads=num_attention_heads,
            joint_attention_dim=joint_attention_dim,
            pooled_projection_dim=pooled_projection_dim,
            guidance_embeds=guidance_embeds,
            axes_dims_rope=list(axes_dims_rope),
            num_mode=num_mode,
            conditioning_embedding_channels=conditioning_embedding_channels,
        )
        # The parent built a 3-channel hint encoder; replace it with one of the requested width.
        self.input_hint_block = ControlNetConditioningEmbedding(
            conditioning_embedding_channels=conditioning_embedding_channels,
            conditioning_channels=conditioning_channels,
            block_out_channels=HINT_BLOCK_OUT_CHANNELS,
        )


def pam_controlnet_config(transformer_config) -> dict:
    """Config of one PAM ControlNet matching a Flux transformer's config (a dict or FrozenDict)."""
    return dict(
        patch_size=2,
        in_channels=int(transformer_config["in_channels"]),
        num_layers=PAM_CONTROLNET_DEPTH,
        num_single_layers=0,
        attention_head_dim=int(transformer_config["attention_head_dim"]),
        num_attention_heads=int(transformer_config["num_attention_heads"]),
        joint_attention_dim=int(transformer_config["joint_attention_dim"]),
        pooled_projection_dim=int(transformer_config["pooled_projection_dim"]),
        guidance_embeds=bool(transformer_config["guidance_embeds"]),
        axes_dims_rope=list(transformer_config["axes_dims_rope"]),
        conditioning_embedding_channels=HINT_CHANNELS,
        conditioning_channels=PAM_CONDITION_CHANNELS,
    )


def controlnet_from_transformer(transformer, load_weights: bool = True) -> PamFluxControlNetModel:
    """A PAM ControlNet initialised as PAM trains it: embedders and the first two double blocks copied
    from Flux, residual projections and the hint encoder's last conv zero (so it changes nothing)."""
    net = PamFluxControlNetModel(**pam_controlnet_config(transformer.config))
    if load_weights:
        for name in ("time_text_embed", "context_embedder", "x_embedder"):
            getattr(net, name).load_state_dict(getattr(transformer, name).state_dict())
        for i, block in enumerate(net.transformer_blocks):
            block.load_state_dict(transformer.transformer_blocks[i].state_dict())
    return net if net.dtype == transformer.dtype else net.to(dtype=transformer.dtype)


def double_controlnet(net1: PamFluxControlNetModel, net2: PamFluxControlNetModel) -> FluxMultiControlNetModel:
    """PAM's pair: net 1 sees (depth, normal), net 2 sees (hand keypoints, seg); residuals are summed
    with one conditioning scale each."""
    return FluxMultiControlNetModel([net1, net2])
