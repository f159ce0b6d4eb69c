"""Independent references for the tests, written from the published architectures with plain torch
functions on raw state-dict tensors. They share no code with pam_diffusion, so a wrong key mapping,
split, stride or ordering there shows up as a mismatch here."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from diffusers import CogVideoXTransformer3DModel

#: PAM's map colours, written out here (docs/design.md, "Condition maps in PAM's style") so these
#: references share nothing with the engine: the hand in seg, object 1 (ADE20K entry 1), the
#: keypoint map's per-finger base colours.
SEG_HAND_COLOR = np.array([92, 0, 255], dtype=np.uint8)
OBJECT_1_COLOR = np.array([180, 120, 120], dtype=np.uint8)
KEYPOINT_FINGER_COLORS = [[139, 53, 255], [0, 56, 255], [43, 140, 237], [37, 168, 36], [147, 147, 0], [70, 17, 145]]

# --- x-flux ControlNet (XLabs-AI/x-flux ControlNetFlux, PAM's appearance_gen/src/flux/controlnet.py) ---------

#: Positions of the convs in x-flux's ``input_hint_block`` Sequential (SiLUs in between), and their strides.
HINT_CONVS = {0: 1, 2: 1, 4: 2, 6: 1, 8: 2, 10: 1, 12: 2, 14: 1}


def xflux_controlnet_layout(hidden: int, heads: int, in_channels: int, context: int, vec: int,
                            cond_channels: int = 6, depth: int = 2, mlp_ratio: float = 4.0) -> dict[str, tuple]:
    """Key -> shape of one x-flux ControlNetFlux (guidance-distilled, qkv bias, as FLUX.1-dev)."""
    head, mlp = hidden // heads, int(hidden * mlp_ratio)
    layout: dict[str, tuple] = {}

    def linear(name: str, n_in: int, n_out: int) -> None:
        layout[f"{name}.weight"] = (n_out, n_in)
        layout[f"{name}.bias"] = (n_out,)

    linear("img_in", in_channels, hidden)
    linear("txt_in", context, hidden)
    linear("pos_embed_input", in_channels, hidden)
    for name, n_in in (("time_in", 256), ("guidance_in", 256), ("vector_in", vec)):
        linear(f"{name}.in_layer", n_in, hidden)
        linear(f"{name}.out_layer", hidden, hidden)
    for b in range(depth):
        for s in ("img", "txt"):
            p = f"double_blocks.{b}.{s}"
            linear(f"{p}_mod.lin", hidden, 6 * hidden)
            linear(f"{p}_attn.qkv", hidden, 3 * hidden)
            layout[f"{p}_attn.norm.query_norm.scale"] = (head,)
            layout[f"{p}_attn.norm.key_norm.scale"] = (head,)
            linear(f"{p}_attn.proj", hidden, hidden)
            linear(f"{p}_mlp.0", hidden, mlp)
            linear(f"{p}_mlp.2", mlp, hidden)
        linear(f"controlnet_blocks.{b}", hidden, hidden)
    for i in HINT_CONVS:
        layout[f"input_hint_block.{i}.weight"] = (16, cond_channels if i == 0 else 16, 3, 3)
        layout[f"input_hint_block.{i}.bias"] = (16,)
    return layout


def random_state_dict(layout: dict[str, tuple], seed: int, std: float = 0.2, prefix: str = "") -> dict:
    gen = torch.Generator().manual_seed(seed)
    return {prefix + k: torch.randn(shape, generator=gen) * std + (1.0 if k.endswith("norm.scale") else 0.0)
            for k, shape in layout.items()}


def _timestep_embedding(t: torch.Tensor, dim: int = 256) -> torch.Tensor:
    t = 1000.0 * t.float()
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def _rope_angles(ids: torch.Tensor, axes_dim: list[int], theta: float = 10000.0) -> torch.Tensor:
    """(L, 3) position ids -> (L, head_dim / 2) rotation angles, axis after axis."""
    parts = []
    for axis, d in enumerate(axes_dim):
        omega = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
        parts.append(ids[:, axis].double()[:, None] * omega[None])
    return torch.cat(parts, dim=-1)


def _rotate(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive pairs (x[2k], x[2k+1]) by angle k: a complex multiplication."""
    xc = torch.view_as_complex(x.double().reshape(*x.shape[:-1], -1, 2).contiguous())
    out = torch.view_as_real(xc * torch.polar(torch.ones_like(angles), angles)).flatten(-2)
    return out.to(x.dtype)


def _rms(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * scale


def _double_block(sd: dict, p: str, img, txt, vec, angles, heads: int):
    def lin(x, name):
        return F.linear(x, sd[f"{p}.{name}.weight"], sd[f"{p}.{name}.bias"])

    def stream(x, s):
        mod = lin(F.silu(vec), f"{s}_mod.lin")[:, None, :].chunk(6, dim=-1)
        normed = F.layer_norm(x, x.shape[-1:], eps=1e-6) * (1 + mod[1]) + mod[0]
        b, n, _ = x.shape
        q, k, v = lin(normed, f"{s}_attn.qkv").reshape(b, n, 3, heads, -1).permute(2, 0, 3, 1, 4)
        q = _rms(q, sd[f"{p}.{s}_attn.norm.query_norm.scale"])
        k = _rms(k, sd[f"{p}.{s}_attn.norm.key_norm.scale"])
        return mod, q, k, v

    img_mod, iq, ik, iv = stream(img, "img")
    txt_mod, tq, tk, tv = stream(txt, "txt")
    q, k, v = (torch.cat(pair, dim=2) for pair in ((tq, iq), (tk, ik), (tv, iv)))
    q, k = _rotate(q, angles), _rotate(k, angles)
    attn = F.scaled_dot_product_attention(q, k, v).permute(0, 2, 1, 3).flatten(2)
    t_attn, i_attn = attn[:, : txt.shape[1]], attn[:, txt.shape[1]:]

    def finish(x, a, mod, s):
        x = x + mod[2] * lin(a, f"{s}_attn.proj")
        h = F.layer_norm(x, x.shape[-1:], eps=1e-6) * (1 + mod[4]) + mod[3]
        return x + mod[5] * lin(F.gelu(lin(h, f"{s}_mlp.0"), approximate="tanh"), f"{s}_mlp.2")

    return finish(img, i_attn, img_mod, "img"), finish(txt, t_attn, txt_mod, "txt")


def xflux_controlnet_forward(sd: dict, img, img_ids, cond, txt, txt_ids, t, y, guidance, heads: int,
                             axes_dim: list[int]) -> list[torch.Tensor]:
    """x-flux ControlNetFlux.forward from raw tensors: the per-block residuals."""
    def lin(x, name):
        return F.linear(x, sd[f"{name}.weight"], sd[f"{name}.bias"])

    def mlp(x, name):
        return lin(F.silu(lin(x, f"{name}.in_layer")), f"{name}.out_layer")

    h = cond
    for i, stride in HINT_CONVS.items():
        h = F.conv2d(h, sd[f"input_hint_block.{i}.weight"], sd[f"input_hint_block.{i}.bias"], stride=stride, padding=1)
        if i != 14:
            h = F.silu(h)
    b, c, hh, ww = h.shape
    h = h.reshape(b, c, hh // 2, 2, ww // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (hh // 2) * (ww // 2), c * 4)
    x = lin(img, "img_in") + lin(h, "pos_embed_input")
    vec = mlp(_timestep_embedding(t), "time_in") + mlp(_timestep_embedding(guidance), "guidance_in") + mlp(y, "vector_in")
    txt = lin(txt, "txt_in")
    angles = _rope_angles(torch.cat([txt_ids, img_ids], dim=0), axes_dim)
    depth = len({k.split(".")[1] for k in sd if k.startswith("double_blocks.")})
    out = []
    for i in range(depth):
        x, txt = _double_block(sd, f"double_blocks.{i}", x, txt, vec, angles, heads)
        out.append(lin(x, f"controlnet_blocks.{i}"))
    return out


def pam_layout(transformer) -> dict[str, tuple]:
    """x-flux layout of one PAM ControlNet for a (diffusers) Flux transformer."""
    c = transformer.config
    return xflux_controlnet_layout(hidden=c.num_attention_heads * c.attention_head_dim, heads=c.num_attention_heads,
                                   in_channels=c.in_channels, context=c.joint_attention_dim, vec=c.pooled_projection_dim)


def pam_checkpoint(transformer, seed: int = 0) -> dict:
    """A ``controlnet.bin`` state dict in PAM's layout (``controlnet1.*``, ``controlnet2.*``), random values."""
    layout = pam_layout(transformer)
    return {**random_state_dict(layout, seed, prefix="controlnet1."),
            **random_state_dict(layout, seed + 1, prefix="controlnet2.")}


# --- PAM's control-transformer combine path (models/cogvidex_combination.py) -------------------------------

def pam_combine_forward(model, sd: dict, hidden_states, encoder_hidden_states, timestep, slots, rotary):
    """PAM's forward written out step by step. The blocks and embeddings are the model's (diffusers'
    CogVideoX modules); every PAM-specific tensor (initial_combine_linear.*, combine_linears.*) is read
    raw from ``sd``, and the ordering is PAM's: slot order tracking, normal, depth, seg, hand; copy i
    runs after base block i with that block's text output; combine_linears.i's output is both added to
    the video tokens and fed to copy i+1."""
    b, f, _, h, w = hidden_states.shape
    emb = model.time_embedding(model.time_proj(timestep).to(hidden_states.dtype))
    text_len = encoder_hidden_states.shape[1]
    all_tokens = model.patch_embed(encoder_hidden_states, hidden_states)
    text, video = all_tokens[:, :text_len], all_tokens[:, text_len:]
    conds = [model.patch_embed(encoder_hidden_states, slots[:, s])[:, text_len:] for s in range(5)]
    control = F.linear(torch.cat(conds, dim=2) + torch.cat([video] * 5, dim=2),
                       sd["initial_combine_linear.weight"], sd["initial_combine_linear.bias"])
    n_copy = len({k.split(".")[1] for k in sd if k.startswith("combine_linears.")})
    for i, block in enumerate(model.transformer_blocks):
        video, text = block(video, text, emb, image_rotary_emb=rotary)
        if i < n_copy:
            control, _ = model.transformer_blocks_copy[i](control, text, emb, image_rotary_emb=rotary)
            control = F.linear(control, sd[f"combine_linears.{i}.weight"], sd[f"combine_linears.{i}.bias"])
            video = video + control
    video = model.proj_out(model.norm_out(model.norm_final(video), temb=emb))
    p = model.config.patch_size
    return video.reshape(b, f, h // p, w // p, -1, p, p).permute(0, 1, 4, 2, 5, 3, 6).flatten(5, 6).flatten(3, 4)


def base_config(model) -> dict:
    return {k: v for k, v in model.config.items() if not k.startswith("_") and k != "num_tracking_blocks"}


def pam_layout_checkpoint(model, seed: int = 0) -> dict:
    """PAM's Stage III key layout built from a plain CogVideoX transformer's keys: the base keys, copies of the
    first N blocks under transformer_blocks_copy.*, combine_linears.*, initial_combine_linear.*"""
    base = CogVideoXTransformer3DModel(**base_config(model))
    n = model.config.num_tracking_blocks
    dim = model.config.num_attention_heads * model.config.attention_head_dim
    shapes = {k: tuple(v.shape) for k, v in base.state_dict().items()}
    for k, v in list(shapes.items()):
        parts = k.split(".")
        if parts[0] == "transformer_blocks" and int(parts[1]) < n:
            shapes[".".join(["transformer_blocks_copy"] + parts[1:])] = v
    for i in range(n):
        shapes[f"combine_linears.{i}.weight"], shapes[f"combine_linears.{i}.bias"] = (dim, dim), (dim,)
    shapes["initial_combine_linear.weight"], shapes["initial_combine_linear.bias"] = (dim, 5 * dim), (dim,)
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=gen) * 0.2 for k, s in shapes.items()}


def write_pam_folder(folder, model, sd: dict, shards: int = 2) -> None:
    """As PAM's convert_ckpt.py writes it: CogVideoX's config.json (no block count) and torch .bin
    shards named by pytorch_model.bin.index.json."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"_class_name": "CogVideoXTransformer3DModel", "_diffusers_version": "0.31.0", **base_config(model)}
    (folder / "config.json").write_text(json.dumps(config))
    keys = sorted(sd)
    weight_map = {}
    for i in range(shards):
        name = f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin"
        part = keys[i::shards]
        torch.save({k: sd[k] for k in part}, folder / name)
        weight_map.update({k: name for k in part})
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


# --- condition maps in PAM's style (docs/design.md, "Condition maps in PAM's style") ----------------------------------------------------------------

def pam_style_conditions(num_frames: int, height: int, width: int) -> dict[str, np.ndarray]:
    """A hand-shaped blob moving toward an object, drawn as PAM's maps: depth (near bright, background
    black), seg (hand [92, 0, 255], object 1 in ADE20K colour), hand keypoints (finger colours)."""
    depth = np.zeros((num_frames, height, width, 3), np.uint8)
    seg = np.zeros_like(depth)
    hand = np.zeros_like(depth)
    yy, xx = np.mgrid[0:height, 0:width]
    for t in range(num_frames):
        cx = int(width * (0.25 + 0.3 * t / max(num_frames - 1, 1)))
        cy = height // 2
        obj = (np.abs(xx - int(width * 0.7)) < width // 8) & (np.abs(yy - cy) < height // 5)
        palm = (xx - cx) ** 2 / (width / 7) ** 2 + (yy - cy) ** 2 / (height / 5) ** 2 < 1.0
        seg[t][obj] = OBJECT_1_COLOR
        seg[t][palm] = SEG_HAND_COLOR
        disparity = np.where(palm, 0.9, np.where(obj, 0.6, 0.0))
        depth[t] = (disparity[..., None] * 255).astype(np.uint8)
        for finger in range(5):
            angle = -0.8 + 0.4 * finger
            tip = (int(cx + np.cos(angle) * width / 6), int(cy + np.sin(angle) * height / 4))
            color = tuple(int(c) for c in KEYPOINT_FINGER_COLORS[finger])
            cv2.line(hand[t], (cx, cy), tip, color, 1)
            cv2.circle(hand[t], tip, 1, color, -1)
    return {"depth": depth, "seg": seg, "hand": hand}
