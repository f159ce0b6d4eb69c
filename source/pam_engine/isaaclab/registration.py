"""Gym registration of the task, loaded by Isaac Lab's ``isaaclab.tasks`` entry point (see
pyproject.toml), so Isaac Lab's own ``train``/``play`` tools find ``PAM-Grasp-IsaacLab-v0``.
Importing it registers the id only: nothing of Isaac Lab is imported until ``gym.make``."""

from __future__ import annotations

import gymnasium as gym

from pam_engine.isaaclab import TASK_ID

if TASK_ID not in gym.registry:
    gym.register(
        id=TASK_ID,
        entry_point="pam_engine.isaaclab.task:PamGraspEnv",
        disable_env_checker=True,
        kwargs={
            "env_cfg_entry_point": "pam_engine.isaaclab.task:default_env_cfg",
            "rl_games_cfg_entry_point": "pam_engine.isaaclab.agents:rl_games_ppo_cfg.yaml",
        },
    )
