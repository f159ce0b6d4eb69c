"""Finding weights on disk and reading them safely.

Weights come from a local folder or from the Hugging Face cache (a repo id such as
``black-forest-labs/FLUX.1-dev``). With ``local_files_only`` nothing is downloaded and no connection
is made. Torch checkpoints are read with ``torch.load(weights_only=True)``: files from users are data."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Iterable, Mapping

from .errors import CheckpointMismatchError, WeightsNotFoundError

#: What each kind of weight folder must hold, checked before anything heavy is loaded.
FLUX_FOLDER = ("model_index.json", "transformer/config.json", "vae/config.json", "text_encoder/config.json",
               "text_encoder_2/config.json", "tokenizer", "tokenizer_2", "scheduler")
COGVIDEOX_FOLDER = ("model_index.json", "vae/config.json", "text_encoder/config.json", "tokenizer", "scheduler")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def resolve_model_dir(spec: str, setting: str, required: Iterable[str], local_files_only: bool,
                      description: str) -> str:
    """Turn a config value into something ``from_pretrained`` can open, checking its contents.

    Returns a local folder (given directly or found in the HF cache). A repo id missing from the cache
    is returned as is only when downloads are allowed; otherwise the error names the path and the
    files expected inside."""
    path = Path(spec).expanduser()
    expected = ", ".join(required)
    if path.is_dir():
        check_folder(path, setting, required, description)
        return str(path)
    if path.exists():
        raise WeightsNotFoundError(f"{setting} {spec!r} is a file; expected a folder with {description}: {expected}")
    if not _REPO_ID.match(spec):
        raise WeightsNotFoundError(
            f"{setting} {spec!r} does not exist; expected a folder with {description} ({expected}) or a "
            "Hugging Face repo id")
    cached = cached_snapshot(spec)
    if cached is not None:
        check_folder(Path(cached), f"{setting} {spec!r} (HF cache {cached})", required, description)
        return cached
    if local_files_only:
        raise WeightsNotFoundError(
            f"{setting} {spec!r}: no such folder, and the repo is not in the Hugging Face cache while offline "
            f"(local_files_only); expected a folder with {description}: {expected}")
    return spec  # from_pretrained will download it


def cached_snapshot(repo_id: str) -> str | None:
    """The HF-cache snapshot folder of ``repo_id``, without any network access."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(repo_id, local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        return None


def check_folder(path: Path, setting: str, required: Iterable[str], description: str) -> None:
    missing = [r for r in required if not (path / r).exists()]
    if missing:
        raise WeightsNotFoundError(
            f"{setting} {str(path)!r} lacks {', '.join(missing)}; expected a folder with {description}: "
            f"{', '.join(required)}")


def load_weights_file(path: str | Path) -> dict:
    """A state dict from a ``.safetensors`` file or a torch pickle read with ``weights_only=True``."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"weights file {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        try:
            sd = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # old (non-zip) pickles cannot be memory-mapped
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointMismatchError(
            f"weights file {str(path)!r} holds more than tensors and was refused by the weights-only loader "
            f"(checkpoints are read as data, never as code): {str(e).splitlines()[0]}") from None
    if isinstance(sd, Mapping) and "state_dict" in sd and isinstance(sd["state_dict"], Mapping):
        sd = sd["state_dict"]
    if not isinstance(sd, Mapping) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointMismatchError(f"weights file {str(path)!r} does not hold a state dict of tensors")
    return dict(sd)


def weight_files(folder: Path) -> list[Path]:
    """The weight files of a model folder: the shards an ``*.index.json`` names, else the single file.
    Accepts diffusers (``diffusion_pytorch_model*``) and transformers/DeepSpeed (``pytorch_model*``,
    ``model*``) names, safetensors preferred."""
    for index in sorted(folder.glob("*.safetensors.index.json")) + sorted(folder.glob("*.bin.index.json")):
        weight_map = json.loads(index.read_text()).get("weight_map", {})
        shards = sorted({folder / f for f in weight_map.values()})
        absent = [s.name for s in shards if not s.is_file()]
        if absent:
            raise WeightsNotFoundError(f"{str(folder)!r}: {index.name} names missing shard(s) {', '.join(absent)}")
        if shards:
            return shards
    for suffix in WEIGHT_SUFFIXES:
        files = sorted(p for p in folder.glob(f"*{suffix}") if p.is_file())
        if files:
            return files
    return []


def weight_keys(files: list[Path]) -> list[str]:
    """All tensor names in ``files`` (safetensors headers are read without loading tensors)."""
    keys: list[str] = []
    for f in files:
        if f.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(f), framework="pt") as h:
                keys.extend(h.keys())
        else:
            keys.extend(load_weights_file(f).keys())
    return keys
