"""PAM's Stage II checkpoint (x-flux naming) to diffusers, and its command line.

``controlnet.bin`` is ``DoubleControl(controlnet1, controlnet2).state_dict()``: every key starts with
``controlnet1.`` or ``controlnet2.`` followed by an x-flux ``ControlNetFlux`` key. The mapping onto
``PamFluxControlNetModel``:

===================================================  ====================================================
x-flux                                               diffusers
===================================================  ====================================================
img_in / txt_in / pos_embed_input                    x_embedder / context_embedder / controlnet_x_embedder
time_in / guidance_in / vector_in .in_layer,.out     time_text_embed.{timestep,guidance,text}_embedder
                                                     .linear_1, .linear_2
double_blocks.i.img_mod.lin / txt_mod.lin            transformer_blocks.i.norm1.linear / norm1_context.linear
double_blocks.i.img_attn.qkv (fused q|k|v)           transformer_blocks.i.attn.to_q, to_k, to_v (split)
double_blocks.i.txt_attn.qkv (fused q|k|v)           ...attn.add_q_proj, add_k_proj, add_v_proj (split)
double_blocks.i.{img,txt}_attn.norm.{query,key}_norm ...attn.norm_q/norm_k, norm_added_q/norm_added_k
  .scale                                               .weight
double_blocks.i.img_attn.proj / txt_attn.proj        ...attn.to_out.0 / attn.to_add_out
double_blocks.i.{img,txt}_mlp.0 / .2                 ...{ff,ff_context}.net.0.proj / .net.2
controlnet_blocks.i                                  controlnet_blocks.i
input_hint_block.0 / .2,.4,...,.12 / .14             input_hint_block.conv_in / .blocks.0..5 / .conv_out
===================================================  ====================================================

Both layouts order the modulation chunks (shift, scale, gate) x 2 the same way, so those tensors are
copied as they are. Conversion is strict: every source key is consumed and every target key produced.

Command line::

    python -m pam_diffusion.convert controlnet.bin OUT_DIR [--flux FLUX_DIR]

writes ``OUT_DIR/controlnet1`` and ``OUT_DIR/controlnet2`` (diffusers ``save_pretrained`` folders)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Mapping

from .checkpoints import load_weights_file
from .errors import CheckpointMismatchError, WeightsNotFoundError

NET_PREFIXES = ("controlnet1.", "controlnet2.")
_HINT_CONVS = {0: "conv_in", 2: "blocks.0", 4: "blocks.1", 6: "blocks.2", 8: "blocks.3", 10: "blocks.4",
               12: "blocks.5", 14: "conv_out"}
_SIMPLE = {
    "img_in": "x_embedder",
    "txt_in": "context_embedder",
    "pos_embed_input": "controlnet_x_embedder",
    "time_in.in_layer": "time_text_embed.timestep_embedder.linear_1",
    "time_in.out_layer": "time_text_embed.timestep_embedder.linear_2",
    "guidance_in.in_layer": "time_text_embed.guidance_embedder.linear_1",
    "guidance_in.out_layer": "time_text_embed.guidance_embedder.linear_2",
    "vector_in.in_layer": "time_text_embed.text_embedder.linear_1",
    "vector_in.out_layer": "time_text_embed.text_embedder.linear_2",
}
_BLOCK = {
    "img_mod.lin": "norm1.linear",
    "txt_mod.lin": "norm1_context.linear",
    "img_attn.proj": "attn.to_out.0",
    "txt_attn.proj": "attn.to_add_out",
    "img_mlp.0": "ff.net.0.proj",
    "img_mlp.2": "ff.net.2",
    "txt_mlp.0": "ff_context.net.0.proj",
    "txt_mlp.2": "ff_context.net.2",
}
_NORMS = {
    "img_attn.norm.query_norm.scale": "attn.norm_q.weight",
    "img_attn.norm.key_norm.scale": "attn.norm_k.weight",
    "txt_attn.norm.query_norm.scale": "attn.norm_added_q.weight",
    "txt_attn.norm.key_norm.scale": "attn.norm_added_k.weight",
}
_QKV = {"img_attn.qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
        "txt_attn.qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj")}


def split_double_controlnet(state_dict: Mapping[str, "torch.Tensor"]) -> tuple[dict, dict]:
    """Split ``controlnet.bin`` into the two nets' x-flux state dicts. A leading ``module.`` (from a
    wrapped model) is tolerated; any key outside ``controlnet1.*``/``controlnet2.*`` is an error."""
    nets: tuple[dict, dict] = ({}, {})
    foreign = []
    for key, value in state_dict.items():
        k = key[len("module."):] if key.startswith("module.") else key
        for i, prefix in enumerate(NET_PREFIXES):
            if k.startswith(prefix):
                nets[i][k[len(prefix):]] = value
                break
        else:
            foreign.append(key)
    if foreign or not nets[0] or not nets[1]:
        missing = [p + "*" for p, n in zip(NET_PREFIXES, nets) if not n]
        raise CheckpointMismatchError(
            "not a PAM Stage II checkpoint: expected only keys controlnet1.* and controlnet2.* (x-flux "
            f"ControlNets); {_describe('unexpected keys', foreign)}{_describe('; missing', missing)}")
    return nets


def xflux_to_diffusers(sd: Mapping[str, "torch.Tensor"], what: str = "controlnet") -> dict:
    """Rename (and split the fused qkv of) one x-flux ControlNet state dict for ``PamFluxControlNetModel``."""
    import torch

    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in sd.items():
        target = _convert_key(key)
        if target is None:
            unknown.append(key)
        elif isinstance(target, tuple):  # fused q|k|v, split along the output dimension
            if value.shape[0] % 3:
                raise CheckpointMismatchError(f"{what}: {key} has {value.shape[0]} rows, not divisible into q, k, v")
            for name, part in zip(target, torch.chunk(value, 3, dim=0)):
                out[name] = part.contiguous()
        else:
            out[target] = value
    if unknown:
        raise CheckpointMismatchError(f"{what}: {_describe('keys not in the x-flux ControlNet layout', unknown)}")
    return out


def _convert_key(key: str):
    m = re.fullmatch(r"double_blocks\.(\d+)\.(.+)", key)
    if m and m.group(2) in _NORMS:
        return f"transformer_blocks.{m.group(1)}.{_NORMS[m.group(2)]}"
    name, _, leaf = key.rpartition(".")
    if leaf not in ("weight", "bias"):
        return None
    if name in _SIMPLE:
        return f"{_SIMPLE[name]}.{leaf}"
    m = re.fullmatch(r"input_hint_block\.(\d+)", name)
    if m:
        conv = _HINT_CONVS.get(int(m.group(1)))
        return None if conv is None else f"input_hint_block.{conv}.{leaf}"
    m = re.fullmatch(r"controlnet_blocks\.(\d+)", name)
    if m:
        return key
    m = re.fullmatch(r"double_blocks\.(\d+)\.(.+)", key)
    if m:
        i, rest = m.group(1), m.group(2)
        sub, _, leaf = rest.rpartition(".")
        if sub in _BLOCK:
            return f"transformer_blocks.{i}.{_BLOCK[sub]}.{leaf}"
        if sub in _QKV:
            return tuple(f"transformer_blocks.{i}.{t}.{leaf}" for t in _QKV[sub])
    return None


def diffusers_to_xflux(sd: Mapping[str, "torch.Tensor"], what: str = "controlnet") -> dict:
    """The inverse of ``xflux_to_diffusers``: a ``PamFluxControlNetModel`` state dict in x-flux names
    (q, k, v fused back into ``qkv``), as the trainer writes ``controlnet.bin``. Strict both ways."""
    import torch

    reverse: dict[str, str] = {}
    for src, dst in _SIMPLE.items():
        for leaf in ("weight", "bias"):
            reverse[f"{dst}.{leaf}"] = f"{src}.{leaf}"
    for idx, conv in _HINT_CONVS.items():
        for leaf in ("weight", "bias"):
            reverse[f"input_hint_block.{conv}.{leaf}"] = f"input_hint_block.{idx}.{leaf}"
    out: dict[str, torch.Tensor] = {}
    fused: dict[str, dict[str, torch.Tensor]] = {}
    unknown = []
    for key, value in sd.items():
        if key in reverse:
            out[reverse[key]] = value
            continue
        if re.fullmatch(r"controlnet_blocks\.\d+\.(weight|bias)", key):
            out[key] = value
            continue
        m = re.fullmatch(r"transformer_blocks\.(\d+)\.(.+)", key)
        if m:
            i, rest = m.group(1), m.group(2)
            hit = next((src for src, dst in _NORMS.items() if dst == rest), None)
            if hit is not None:
                out[f"double_blocks.{i}.{hit}"] = value
                continue
            sub, _, leaf = rest.rpartition(".")
            hit = next((src for src, dst in _BLOCK.items() if dst == sub), None)
            if hit is not None:
                out[f"double_blocks.{i}.{hit}.{leaf}"] = value
                continue
            hit = next((src for src, parts in _QKV.items() if sub in parts), None)
            if hit is not None:
                fused.setdefault(f"double_blocks.{i}.{hit}.{leaf}", {})[sub] = value
                continue
        unknown.append(key)
    if unknown:
        raise CheckpointMismatchError(f"{what}: {_describe('keys outside the PAM ControlNet layout', unknown)}")
    for target, parts in fused.items():
        src = target.split(".")[2] + "." + target.split(".")[3]
        order = _QKV[src]
        if set(parts) != set(order):
            raise CheckpointMismatchError(f"{what}: {target} lacks {sorted(set(order) - set(parts))}")
        out[target] = torch.cat([parts[o] for o in order], dim=0)
    return out


def load_pam_controlnets(path: str | Path, transformer_config, torch_dtype=None,
                         setting: str = "stage2.controlnet_path"):
    """Load PAM's two ControlNets as a ``FluxMultiControlNetModel`` matching a Flux transformer.

    ``path``: ``controlnet.bin`` (x-flux keys, converted on the fly), a folder holding it, or a folder
    from ``convert_controlnet_file`` with ``controlnet1/`` and ``controlnet2/``."""
    from .flux_controlnet import PamFluxControlNetModel, double_controlnet

    path = Path(path)
    if path.is_dir() and (path / "controlnet1").is_dir() and (path / "controlnet2").is_dir():
        nets = [PamFluxControlNetModel.from_pretrained(path / n, torch_dtype=torch_dtype)
                for n in ("controlnet1", "controlnet2")]
        for n, net in zip(("controlnet1", "controlnet2"), nets):
            _check_against_transformer(dict(net.config), transformer_config, str(path / n))
        return double_controlnet(*nets)
    file = find_controlnet_file(path, setting)
    sd1, sd2 = split_double_controlnet(load_weights_file(file))
    nets = [_build_net(sd, transformer_config, f"{file}: {p}*", torch_dtype) for sd, p in zip((sd1, sd2), NET_PREFIXES)]
    return double_controlnet(*nets)


def _check_against_transformer(net_config, transformer_config, what: str) -> None:
    """A converted net must fit the Flux transformer it will drive."""
    from .flux_controlnet import pam_controlnet_config

    expected = pam_controlnet_config(transformer_config)
    keys = ("in_channels", "attention_head_dim", "num_attention_heads", "joint_attention_dim",
            "pooled_projection_dim", "guidance_embeds")
    wrong = [f"{k}={net_config.get(k)!r} (the Flux transformer has {expected[k]!r})" for k in keys
             if net_config.get(k) != expected[k]]
    if wrong:
        raise CheckpointMismatchError(
            f"{what}: ControlNet built for a different Flux architecture: " + "; ".join(wrong))


def find_controlnet_file(path: Path, setting: str = "stage2.controlnet_path") -> Path:
    if path.is_file():
        return path
    if path.is_dir():
        for name in ("controlnet.bin", "controlnet.safetensors", "controlnet.pt", "controlnet.pth"):
            if (path / name).is_file():
                return path / name
        raise WeightsNotFoundError(
            f"{setting} {str(path)!r}: folder holds neither controlnet.bin (PAM's x-flux "
            "checkpoint) nor controlnet1/ and controlnet2/ (converted diffusers folders)")
    raise WeightsNotFoundError(
        f"{setting} {str(path)!r} does not exist; expected PAM's controlnet.bin (keys "
        "controlnet1.*, controlnet2.*) or a folder from `python -m pam_diffusion.convert`")


def _build_net(xflux_sd, transformer_config, what: str, torch_dtype=None):
    """Build one ``PamFluxControlNetModel`` from x-flux tensors, checking the architecture first."""
    from accelerate import init_empty_weights

    from .flux_controlnet import PamFluxControlNetModel

    config = infer_controlnet_config(xflux_sd, transformer_config, what)
    sd = xflux_to_diffusers(xflux_sd, what)
    with init_empty_weights():
        net = PamFluxControlNetModel(**config)
    load_exact_state_dict(net, sd, what)
    if torch_dtype is not None:
        net = net.to(torch_dtype)
    return net.eval()


def infer_controlnet_config(sd, transformer_config, what: str) -> dict:
    """A ``PamFluxControlNetModel`` config read from x-flux tensor shapes; mismatches with the Flux
    transformer it will drive are reported with the keys and shapes involved."""
    from .flux_controlnet import HINT_CHANNELS, pam_controlnet_config

    required = ["img_in.weight", "txt_in.weight", "vector_in.in_layer.weight", "input_hint_block.0.weight",
                "double_blocks.0.img_attn.norm.query_norm.scale"]
    missing = [k for k in required if k not in sd]
    if missing:
        raise CheckpointMismatchError(f"{what}: {_describe('missing x-flux ControlNet keys', missing)}")
    hidden, in_channels = sd["img_in.weight"].shape
    head_dim = sd["double_blocks.0.img_attn.norm.query_norm.scale"].shape[0]
    found = {
        "in_channels": (int(in_channels), "img_in.weight", tuple(sd["img_in.weight"].shape)),
        "joint_attention_dim": (int(sd["txt_in.weight"].shape[1]), "txt_in.weight", tuple(sd["txt_in.weight"].shape)),
        "pooled_projection_dim": (int(sd["vector_in.in_layer.weight"].shape[1]), "vector_in.in_layer.weight",
                                  tuple(sd["vector_in.in_layer.weight"].shape)),
        "attention_head_dim": (int(head_dim), "double_blocks.0.img_attn.norm.query_norm.scale", (int(head_dim),)),
        "num_attention_heads": (int(hidden) // int(head_dim), "img_in.weight", tuple(sd["img_in.weight"].shape)),
        "guidance_embeds": ("guidance_in.in_layer.weight" in sd, "guidance_in.*", "present" if
                            "guidance_in.in_layer.weight" in sd else "absent"),
    }
    config = pam_controlnet_config(transformer_config)
    wrong = [f"{key} {shape} gives {name}={value}, the Flux transformer has {config[name]}"
             for name, (value, key, shape) in found.items() if value != config[name]]
    if wrong:
        raise CheckpointMismatchError(
            f"{what}: checkpoint is for a different Flux architecture: " + "; ".join(wrong))
    config["num_layers"] = len({k.split(".")[1] for k in sd if k.startswith("double_blocks.")})
    config["conditioning_channels"] = int(sd["input_hint_block.0.weight"].shape[1])
    if config["in_channels"] != HINT_CHANNELS * config["patch_size"] ** 2:
        raise CheckpointMismatchError(
            f"{what}: in_channels {config['in_channels']} cannot take x-flux's 16-channel hint")
    return config


def load_exact_state_dict(model, sd: Mapping, what: str) -> None:
    """Load ``sd`` into ``model`` (possibly on the meta device) requiring the same keys and shapes;
    the error lists the differences by name."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    shapes = sorted(f"{k} {tuple(sd[k].shape)} (expected {tuple(expected[k].shape)})"
                    for k in set(sd) & set(expected) if tuple(sd[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or shapes:
        raise CheckpointMismatchError(
            f"{what}: checkpoint does not match the architecture: "
            + "; ".join(s for s in (_describe("missing keys", missing), _describe("unexpected keys", unexpected),
                                    _describe("shape mismatches", shapes)) if s))
    model.load_state_dict(dict(sd), strict=True, assign=True)


def _describe(label: str, items, limit: int = 8) -> str:
    items = list(items)
    if not items:
        return ""
    more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"{label} ({len(items)}): {', '.join(items[:limit])}{more}"


def convert_controlnet_file(src: str | Path, out_dir: str | Path, transformer_config=None,
                            safe_serialization: bool = True, setting: str = "controlnet") -> list[Path]:
    """Convert PAM's ``controlnet.bin`` into two diffusers folders ``out_dir/controlnet{1,2}``.
    ``transformer_config`` (Flux's) defaults to FLUX.1-dev's."""
    from .fullsize import FLUX_DEV_TRANSFORMER

    multi = load_pam_controlnets(src, transformer_config or FLUX_DEV_TRANSFORMER, setting=setting)
    out = []
    for name, net in zip(("controlnet1", "controlnet2"), multi.nets):
        target = Path(out_dir) / name
        net.save_pretrained(target, safe_serialization=safe_serialization)
        out.append(target)
    return out


def main(argv: list[str] | None = None) -> int:
    from pam_diffusion.errors import PamError

    parser = argparse.ArgumentParser(
        prog="python -m pam_diffusion.convert",
        description="Convert PAM's Stage II controlnet.bin (x-flux naming) to two diffusers ControlNet folders.")
    parser.add_argument("controlnet", help="PAM's controlnet.bin (keys controlnet1.*, controlnet2.*)")
    parser.add_argument("out_dir", help="folder to write controlnet1/ and controlnet2/ into")
    parser.add_argument("--flux", default=None,
                        help="Flux transformer config.json (or folder holding transformer/config.json); "
                             "default: FLUX.1-dev's")
    args = parser.parse_args(argv)
    try:
        config = _read_flux_config(args.flux) if args.flux else None
        for path in convert_controlnet_file(args.controlnet, args.out_dir, config):
            print(f"wrote {path}")
    except PamError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _read_flux_config(path: str) -> dict:
    import json

    p = Path(path)
    for candidate in (p, p / "config.json", p / "transformer" / "config.json"):
        if candidate.is_file():
            return json.loads(candidate.read_text())
    raise WeightsNotFoundError(f"--flux {path!r}: no config.json there (expected a Flux transformer config)")


if __name__ == "__main__":
    sys.exit(main())
