"""Grasp-policy checkpoints: the file ``pam train-policy`` writes and Stage I loads.

A checkpoint is a plain dict of tensors, numbers, strings and lists, saved with ``torch.save``
and read with ``torch.load(weights_only=True)``: a user's file is data and never runs code.
It carries everything inference needs and nothing else: the actor's weights, the observation
normaliser's statistics, the observation and action sizes, the task settings the network was
trained with (action scales, surface samples) and where it came from (config, command).

Loading checks the sizes twice: the stored ones against the weights (a corrupt file), and
against the environment built by the current code (a checkpoint from another task version).
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import torch

from pam_engine.config import from_dict, to_dict
from pam_engine.errors import AssetError, ConfigError
from pam_engine.policy.learned import ActorNetwork, LearnedPolicy, check_sizes
from pam_engine.rl import spec

FORMAT = "pam-grasp-policy"
FORMAT_VERSION = 1


def export_rl_games(model_state: dict, hidden: list[int], activation: str) -> ActorNetwork:
    """The actor of an rl-games ``continuous_a2c_logstd`` model (its ``state_dict``)."""
    mu_weight = model_state["a2c_network.mu.weight"]
    normalize = "running_mean_std.running_mean" in model_state
    first = model_state["a2c_network.actor_mlp.0.weight"] if hidden else mu_weight
    net = ActorNetwork(int(first.shape[1]), int(mu_weight.shape[0]), hidden, activation, normalize=normalize)
    state = {"obs_mean": net.obs_mean, "obs_var": net.obs_var}
    if normalize:
        state = {"obs_mean": model_state["running_mean_std.running_mean"].detach().clone(),
                 "obs_var": model_state["running_mean_std.running_var"].detach().clone()}
    for key, value in model_state.items():
        if key.startswith("a2c_network.actor_mlp."):
            state["mlp." + key[len("a2c_network.actor_mlp."):]] = value.detach().clone()
        elif key.startswith("a2c_network.mu."):
            state["mu." + key[len("a2c_network.mu."):]] = value.detach().clone()
    net.load_state_dict(state)
    return net


def save_policy(path: str | Path, network: ActorNetwork, task: spec.TaskConfig, n_dof: int,
                provenance: dict | None = None) -> Path:
    """Write a checkpoint (to a temporary name, then renamed: never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "spec_version": spec.SPEC_VERSION,
        "obs_size": network.obs_size,
        "action_size": network.action_size,
        "n_dof": int(n_dof),
        "hidden": list(network.hidden),
        "activation": network.activation,
        "obs_epsilon": float(network.epsilon),
        "obs_clip": float(network.clip),
        "normalize_input": bool(network.normalize),
        "state_dict": {k: v.detach().clone() for k, v in network.state_dict().items()},
        "task": to_dict(task),
        # plain JSON types only: a weights-only load refuses anything else (e.g. torch's version object)
        "provenance": json.loads(json.dumps(to_dict(provenance or {}), default=str)),
    }
    tmp = path.with_name(path.name + ".partial")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint's dict, checked for format (weights-only load)."""
    path = Path(path)
    if not path.is_file():
        raise AssetError(f"policy checkpoint {path} does not exist (train one with `pam train-policy`)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip, truncation and other read errors, or objects a weights-only load refuses
        text = str(exc).lower()
        if isinstance(exc, pickle.UnpicklingError) and ("unsupported global" in text or "unsupported class" in text):
            # not torch's own advice (to load it unsafely): a user's file is data and never runs code
            raise AssetError(f"policy checkpoint {path} was refused: it holds more than tensors and plain data "
                             "(the engine reads checkpoints with torch's weights-only loader)") from None
        raise AssetError(f"policy checkpoint {path} is not a readable torch checkpoint ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise AssetError(f"policy checkpoint {path} is not a PAM grasp-policy checkpoint "
                         f"(expected format {FORMAT!r}; rl-games' own nn/*.pth files are exported by `pam train-policy`)")
    if data.get("format_version") != FORMAT_VERSION:
        raise AssetError(f"policy checkpoint {path} has format version {data.get('format_version')}, "
                         f"this engine reads version {FORMAT_VERSION}")
    return data


def load_policy(path: str | Path, n_dof: int | None = None) -> LearnedPolicy:
    """A :class:`LearnedPolicy` from a checkpoint; ``n_dof`` is the hand's finger DoF count
    (default: the built-in hand's)."""
    data = read_checkpoint(path)
    try:
        network = ActorNetwork(int(data["obs_size"]), int(data["action_size"]), [int(h) for h in data["hidden"]],
                               str(data["activation"]), float(data["obs_epsilon"]), float(data["obs_clip"]),
                               bool(data.get("normalize_input", True)))
        network.load_state_dict(data["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise AssetError(f"policy checkpoint {path} is damaged: its weights do not match its stated sizes "
                         f"(observation {data.get('obs_size')}, action {data.get('action_size')}): {exc}") from exc
    if n_dof is None:
        from pam_engine.pose.setup import HandCache

        n_dof = HandCache.get(None)[1].size
    check_sizes(network.obs_size, network.action_size, spec.observation_size(n_dof), spec.action_size(),
                f"policy checkpoint {path}")
    try:
        task = from_dict(spec.TaskConfig, data.get("task") or {}, path="task")
    except ConfigError as exc:
        raise AssetError(f"policy checkpoint {path}: {exc}") from exc
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:8]
    return LearnedPolicy(network, task, version=f"{Path(path).stem}-{digest}", source=f"policy checkpoint {path}")
