"""PAM's Stage III control transformer on diffusers' ``CogVideoXTransformer3DModel``.

PAM extends CogVideoX-5B-I2V with a control branch:

* five condition slots (tracking, normal, depth, seg, hand), each a 32-channel latent video (the
  slot's VAE latents concatenated with the latent of its first frame, as the I2V model's own input),
  embedded by the base model's own ``patch_embed``;
* ``initial_combine_linear`` (5*D -> D, zero-initialised) mixes ``concat(slot tokens) +
  repeat(video tokens, 5)`` into one control stream;
* ``transformer_blocks_copy.i`` (copies of the first N base blocks, PAM: N = 12) run on the control
  stream beside base block i, with the text stream that base block i just produced; their output goes
  through ``combine_linears.i`` (zero-initialised), is added to the video stream, and becomes the
  control stream fed to the next copy.

With zero combine layers the model equals the base model exactly. State-dict keys are CogVideoX's
plus ``transformer_blocks_copy.*``, ``combine_linears.*`` and ``initial_combine_linear.*``, as in PAM's
checkpoint; ``num_tracking_blocks`` keeps PAM's config name for the copy count."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import torch
from torch import nn
from diffusers.configuration_utils import register_to_config
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.transformers.cogvideox_transformer_3d import CogVideoXBlock, CogVideoXTransformer3DModel

from .checkpoints import load_weights_file, weight_files
from .config import SLOTS
from .errors import CheckpointMismatchError, WeightsNotFoundError

#: Copied blocks in PAM's released Stage III checkpoint (its config.json does not say so).
PAM_NUM_CONTROL_BLOCKS = 12
NUM_SLOTS = len(SLOTS)


class PamCogVideoXControlTransformer(CogVideoXTransformer3DModel):
    """CogVideoX transformer plus PAM's control branch (see the module docstring). With gradient
    checkpointing enabled (training), base and copied blocks recompute their activations in backward."""

    @register_to_config
    def __init__(
        self,
        num_attention_heads: int = 30,
        attention_head_dim: int = 64,
        in_channels: int = 16,
        out_channels: int | None = 16,
        flip_sin_to_cos: bool = True,
        freq_shift: int = 0,
        time_embed_dim: int = 512,
        ofs_embed_dim: int | None = None,
        text_embed_dim: int = 4096,
        num_layers: int = 30,
        dropout: float = 0.0,
        attention_bias: bool = True,
        sample_width: int = 90,
        sample_height: int = 60,
        sample_frames: int = 49,
        patch_size: int = 2,
        patch_size_t: int | None = None,
        temporal_compression_ratio: int = 4,
        max_text_seq_length: int = 226,
        activation_fn: str = "gelu-approximate",
        timestep_activation_fn: str = "silu",
        norm_elementwise_affine: bool = True,
        norm_eps: float = 1e-5,
        spatial_interpolation_scale: float = 1.875,
        temporal_interpolation_scale: float = 1.0,
        use_rotary_positional_embeddings: bool = False,
        use_learned_positional_embeddings: bool = False,
        patch_bias: bool = True,
        num_tracking_blocks: int = PAM_NUM_CONTROL_BLOCKS,
    ):
        super().__init__(
            num_attention_heads=num_attention_heads, attention_head_dim=attention_head_dim,
            in_channels=in_channels, out_channels=out_channels, flip_sin_to_cos=flip_sin_to_cos,
            freq_shift=freq_shift, time_embed_dim=time_embed_dim, ofs_embed_dim=ofs_embed_dim,
            text_embed_dim=text_embed_dim, num_layers=num_layers, dropout=dropout, attention_bias=attention_bias,
            sample_width=sample_width, sample_height=sample_height, sample_frames=sample_frames,
            patch_size=patch_size, patch_size_t=patch_size_t, temporal_compression_ratio=temporal_compression_ratio,
            max_text_seq_length=max_text_seq_length, activation_fn=activation_fn,
            timestep_activation_fn=timestep_activation_fn, norm_elementwise_affine=norm_elementwise_affine,
            norm_eps=norm_eps, spatial_interpolation_scale=spatial_interpolation_scale,
            temporal_interpolation_scale=temporal_interpolation_scale,
            use_rotary_positional_embeddings=use_rotary_positional_embeddings,
            use_learned_positional_embeddings=use_learned_positional_embeddings, patch_bias=patch_bias,
        )
        if not 1 <= num_tracking_blocks <= num_layers:
            raise ValueError(f"num_tracking_blocks={num_tracking_blocks} must be in 1..num_layers={num_layers}")
        inner_dim = num_attention_heads * attention_head_dim
        self.transformer_blocks_copy = nn.ModuleList([
            CogVideoXBlock(dim=inner_dim, num_attention_heads=num_attention_heads,
                           attention_head_dim=attention_head_dim, time_embed_dim=time_embed_dim, dropout=dropout,
                           activation_fn=activation_fn, attention_bias=attention_bias,
                           norm_elementwise_affine=norm_elementwise_affine, norm_eps=norm_eps)
            for _ in range(num_tracking_blocks)
        ])
        self.combine_linears = nn.ModuleList(
            [_zero(nn.Linear(inner_dim, inner_dim)) for _ in range(num_tracking_blocks)])
        self.initial_combine_linear = _zero(nn.Linear(NUM_SLOTS * inner_dim, inner_dim))

    @classmethod
    def from_base(cls, base: CogVideoXTransformer3DModel, num_tracking_blocks: int = PAM_NUM_CONTROL_BLOCKS):
        """PAM's initialisation: the base weights, the first N blocks copied, zero combine layers."""
        config = {k: v for k, v in base.config.items() if not k.startswith("_") and k != "num_tracking_blocks"}
        model = cls(**config, num_tracking_blocks=num_tracking_blocks)
        base_sd = {k: v for k, v in base.state_dict().items() if k.split(".")[0] not in _CONTROL_MODULES}
        missing, unexpected = model.load_state_dict(base_sd, strict=False)
        if unexpected or any(k.split(".")[0] not in _CONTROL_MODULES for k in missing):
            raise ValueError(f"{type(base).__name__} is not a CogVideoX transformer this class can extend")
        for i, block in enumerate(model.transformer_blocks_copy):
            block.load_state_dict(model.transformer_blocks[i].state_dict())
        return model if model.dtype == base.dtype else model.to(dtype=base.dtype)

    def control_parameters(self):
        """Parameters of the control branch only (what PAM trains)."""
        for name in _CONTROL_MODULES:
            yield from getattr(self, name).parameters()

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        timestep,
        control_latents: torch.Tensor | None = None,
        timestep_cond: torch.Tensor | None = None,
        ofs=None,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_kwargs: dict | None = None,
        return_dict: bool = True,
    ):
        """``control_latents``: ``(B, 5, F, C, H, W)`` slot latents in ``SLOTS`` order, C equal to
        ``in_channels`` (condition latents then first-frame latents). ``None`` runs the base model."""
        if control_latents is None:
            return super().forward(hidden_states, encoder_hidden_states, timestep, timestep_cond=timestep_cond,
                                   ofs=ofs, image_rotary_emb=image_rotary_emb, attention_kwargs=attention_kwargs,
                                   return_dict=return_dict)
        if self.config.patch_size_t is not None:
            raise NotImplementedError("PAM's control branch is defined for CogVideoX 1.0 (patch_size_t=None)")
        expected = (hidden_states.shape[0], NUM_SLOTS) + tuple(hidden_states.shape[1:])
        if tuple(control_latents.shape) != expected:
            raise ValueError(f"control_latents has shape {tuple(control_latents.shape)}, expected {expected}")
        batch_size, num_frames, _, height, width = hidden_states.shape

        t_emb = self.time_proj(timestep).to(dtype=hidden_states.dtype)
        emb = self.time_embedding(t_emb, timestep_cond)
        if self.ofs_embedding is not None:
            emb = emb + self.ofs_embedding(self.ofs_proj(ofs).to(dtype=hidden_states.dtype))

        prompt = encoder_hidden_states
        text_len = prompt.shape[1]
        tokens = self.embedding_dropout(self.patch_embed(prompt, hidden_states))
        encoder_hidden_states, hidden_states = tokens[:, :text_len], tokens[:, text_len:]
        # Each slot goes through the same patch embedding as the video (its text part is dropped).
        slot_tokens = [self.embedding_dropout(self.patch_embed(prompt, control_latents[:, s]))[:, text_len:]
                       for s in range(NUM_SLOTS)]
        control = self.initial_combine_linear(torch.cat(slot_tokens, dim=2) + hidden_states.repeat(1, 1, NUM_SLOTS))

        checkpointing = torch.is_grad_enabled() and self.gradient_checkpointing
        for i, block in enumerate(self.transformer_blocks):
            hidden_states, encoder_hidden_states = _run_block(
                block, checkpointing and self._gradient_checkpointing_func, hidden_states, encoder_hidden_states, emb,
                image_rotary_emb, attention_kwargs)
            if i < len(self.transformer_blocks_copy):
                control, _ = _run_block(
                    self.transformer_blocks_copy[i], checkpointing and self._gradient_checkpointing_func, control,
                    encoder_hidden_states, emb, image_rotary_emb, attention_kwargs)
                control = self.combine_linears[i](control)  # PAM feeds this projection to the next copy
                hidden_states = hidden_states + control

        hidden_states = self.norm_final(hidden_states)
        hidden_states = self.proj_out(self.norm_out(hidden_states, temb=emb))
        p = self.config.patch_size
        output = hidden_states.reshape(batch_size, num_frames, height // p, width // p, -1, p, p)
        output = output.permute(0, 1, 4, 2, 5, 3, 6).flatten(5, 6).flatten(3, 4)
        if not return_dict:
            return (output,)
        return Transformer2DModelOutput(sample=output)


_CONTROL_MODULES = ("transformer_blocks_copy", "combine_linears", "initial_combine_linear")


def _run_block(block, checkpoint_func, hidden_states, encoder_hidden_states, emb, rotary, attention_kwargs):
    """One CogVideoX block, through ``checkpoint_func`` (diffusers' gradient checkpointing) when given."""
    if checkpoint_func:
        return checkpoint_func(block, hidden_states, encoder_hidden_states, emb, rotary, attention_kwargs)
    return block(hidden_states=hidden_states, encoder_hidden_states=encoder_hidden_states, temb=emb,
                 image_rotary_emb=rotary, attention_kwargs=attention_kwargs)


def _zero(layer: nn.Linear) -> nn.Linear:
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def checkpoint_keys(folder: Path, files: list[Path]) -> list[str]:
    """Tensor names of a (sharded) checkpoint, from the index or safetensors headers when possible."""
    for index in sorted(folder.glob("*.index.json")):
        weight_map = json.loads(index.read_text()).get("weight_map")
        if weight_map:
            return list(weight_map)
    from .checkpoints import weight_keys

    return weight_keys(files)


def load_pam_transformer(folder: str | Path, torch_dtype: torch.dtype | None = None,
                         num_tracking_blocks: int | None = None) -> PamCogVideoXControlTransformer:
    """Load PAM's Stage III transformer folder unchanged: ``config.json`` (CogVideoX-5B-I2V's, without the
    copy count) plus weights, sharded or not, as ``*.safetensors`` or torch ``*.bin`` (read weights-only).

    The number of copied blocks comes from the config if it has ``num_tracking_blocks``, else from
    ``num_tracking_blocks``, else from the ``transformer_blocks_copy.*`` keys. Keys and shapes must
    match the architecture exactly; the error lists the differences."""
    from accelerate import init_empty_weights

    from .convert import load_exact_state_dict

    folder = Path(folder)
    expected = ("config.json and weights (diffusion_pytorch_model*.safetensors or pytorch_model*.bin, "
                "optionally sharded with an *.index.json)")
    if not folder.is_dir():
        raise WeightsNotFoundError(
            f"stage3.transformer_path {str(folder)!r} does not exist; expected a folder with {expected}")
    if not (folder / "config.json").is_file():
        raise WeightsNotFoundError(f"stage3.transformer_path {str(folder)!r} lacks config.json; expected {expected}")
    files = weight_files(folder)
    if not files:
        raise WeightsNotFoundError(
            f"stage3.transformer_path {str(folder)!r} holds no weight files; expected {expected}")

    raw = json.loads((folder / "config.json").read_text())
    known = set(inspect.signature(PamCogVideoXControlTransformer.__init__).parameters) - {"self"}
    config = {k: v for k, v in raw.items() if k in known}
    keys = [k.removeprefix("module.") for k in checkpoint_keys(folder, files)]
    copies = {k.split(".")[1] for k in keys if k.startswith("transformer_blocks_copy.")}
    if not copies:
        raise CheckpointMismatchError(
            f"stage3.transformer_path {str(folder)!r}: no transformer_blocks_copy.* keys, so this is not PAM's "
            "control transformer (a plain CogVideoX transformer?); expected CogVideoX-5B-I2V keys plus "
            "transformer_blocks_copy.*, combine_linears.*, initial_combine_linear.*")
    config["num_tracking_blocks"] = int(config.get("num_tracking_blocks") or num_tracking_blocks or len(copies))
    what = f"stage3.transformer_path {str(folder)!r}"
    try:
        with init_empty_weights():
            model = PamCogVideoXControlTransformer(**config)
    except (TypeError, ValueError) as e:
        raise CheckpointMismatchError(f"{what}: config.json does not describe a CogVideoX transformer ({e})") from None

    state: dict[str, torch.Tensor] = {}
    for f in files:  # shard by shard, cast as we go, so peak memory is one copy in the target dtype
        for k, v in load_weights_file(f).items():
            state[k.removeprefix("module.")] = v.to(torch_dtype) if torch_dtype is not None else v
    load_exact_state_dict(model, state, what)
    return model.eval()
