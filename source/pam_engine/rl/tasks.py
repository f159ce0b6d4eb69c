"""Grasp tasks registered with gymnasium the way Isaac Lab registers its tasks, so that ``pam
train-policy`` (and the Isaac Lab task of a later issue) find environments and their agent
settings by id:

    gym.register(id, vector_entry_point=..., kwargs={"env_cfg_entry_point": "module:Class",
                                                    "rl_games_cfg_entry_point": "package:file.yaml"})

``env_cfg_entry_point`` names the task's environment config class; ``rl_games_cfg_entry_point``
the YAML with its rl-games PPO settings (in :mod:`pam_engine.rl.agents`).
"""

from __future__ import annotations

import importlib
from importlib import resources

import gymnasium as gym
import yaml

from pam_engine.errors import ConfigError

MUJOCO_GRASP = "PAM-Grasp-MuJoCo-v0"

_TASKS = {
    MUJOCO_GRASP: {
        "vector_entry_point": "pam_engine.rl.tasks:make_mujoco_grasp_env",
        "kwargs": {
            "env_cfg_entry_point": "pam_engine.rl.env:EnvConfig",
            "rl_games_cfg_entry_point": "pam_engine.rl.agents:rl_games_ppo_cfg.yaml",
        },
    },
}


def register_tasks() -> None:
    """Register the engine's tasks with gymnasium (once; later calls do nothing)."""
    for task_id, entry in _TASKS.items():
        if task_id not in gym.registry:
            gym.register(id=task_id, vector_entry_point=entry["vector_entry_point"], kwargs=dict(entry["kwargs"]),
                         disable_env_checker=True)


def task_spec(task_id: str) -> gym.envs.registration.EnvSpec:
    """The registered spec of ``task_id``; an unknown id is an error listing the known ones."""
    register_tasks()
    if task_id not in gym.registry:
        known = sorted(k for k, s in gym.registry.items() if "env_cfg_entry_point" in (s.kwargs or {}))
        raise ConfigError(f"config key 'task': unknown task {task_id!r}; registered tasks: {', '.join(known)}")
    return gym.spec(task_id)


def load_entry_point(task_id: str, key: str):
    """What ``kwargs[key]`` of the task names: a class/function (``module:attr``) or the parsed
    YAML file (``package:file.yaml``)."""
    spec = task_spec(task_id)
    target = (spec.kwargs or {}).get(key)
    if not target:
        raise ConfigError(f"task {task_id!r} has no {key}")
    module, _, attr = target.partition(":")
    if attr.endswith((".yaml", ".yml")):
        text = resources.files(module).joinpath(attr).read_text(encoding="utf-8")
        return yaml.safe_load(text) or {}
    return getattr(importlib.import_module(module), attr)


def make_mujoco_grasp_env(num_envs: int = 1, config=None, num_workers: int = 0, seed: int = 0, bank=None,
                          progress: bool = True, env_cfg_entry_point: str | None = None,
                          rl_games_cfg_entry_point: str | None = None, **unused):
    """The vector entry point of :data:`MUJOCO_GRASP` (``gym.make_vec(MUJOCO_GRASP, num_envs,
    vectorization_mode="vector_entry_point", config=EnvConfig(...))``); the two entry-point
    kwargs are the registry's metadata, not settings."""
    from pam_engine.rl.env import EnvConfig
    from pam_engine.rl.workers import make_env

    if unused:
        raise ConfigError(f"task {MUJOCO_GRASP!r}: unknown settings {sorted(unused)}")
    return make_env(config or EnvConfig(), num_envs, num_workers, seed, bank=bank, progress=progress)
