"""Tasks are found the way Isaac Lab finds them: a gymnasium id whose spec names the env config
class and the rl-games agent YAML."""

import gymnasium as gym
import pytest

from pam_engine.config import from_dict
from pam_engine.errors import ConfigError
from pam_engine.rl import tasks
from pam_engine.rl.env import EnvConfig, GraspVecEnv
from pam_engine.training.policy import resolve_train_config
from pam_engine.training.rlgames import NetworkConfig, PPOConfig


def test_the_mujoco_grasp_task_is_registered_with_both_entry_points():
    spec = tasks.task_spec(tasks.MUJOCO_GRASP)
    assert spec.kwargs["env_cfg_entry_point"] == "pam_engine.rl.env:EnvConfig"
    assert spec.kwargs["rl_games_cfg_entry_point"].startswith("pam_engine.rl.agents:")
    assert tasks.load_entry_point(tasks.MUJOCO_GRASP, "env_cfg_entry_point") is EnvConfig
    agent = tasks.load_entry_point(tasks.MUJOCO_GRASP, "rl_games_cfg_entry_point")
    from_dict(PPOConfig, agent["ppo"], path="ppo")  # every key is a real setting
    from_dict(NetworkConfig, agent["network"], path="network")


def test_make_vec_builds_the_environment(env_config, bank):
    env = gym.make_vec(tasks.MUJOCO_GRASP, num_envs=2, vectorization_mode="vector_entry_point", config=env_config,
                       bank=bank, seed=3)
    try:
        assert isinstance(env, GraspVecEnv) and env.num_envs == 2
        obs, _ = env.reset()
        assert obs.shape == (2, env.single_observation_space.shape[0])
    finally:
        env.close()


def test_the_agent_yaml_fills_what_the_config_leaves_out(monkeypatch):
    real = tasks.load_entry_point

    def patched(task_id, key):
        value = real(task_id, key)
        if key == "rl_games_cfg_entry_point":
            value = {"ppo": {**value["ppo"], "gamma": 0.5, "mini_epochs": 7}, "network": value["network"]}
        return value

    monkeypatch.setattr(tasks, "load_entry_point", patched)
    monkeypatch.setattr("pam_engine.training.policy.load_entry_point", patched)
    cfg = resolve_train_config({"ppo": {"mini_epochs": 3}})
    assert cfg.ppo.gamma == 0.5  # from the task's agent settings
    assert cfg.ppo.mini_epochs == 3  # the config's own value wins


def test_an_unknown_task_is_named():
    with pytest.raises(ConfigError, match="'PAM-Nothing-v0'.*PAM-Grasp-MuJoCo-v0"):
        resolve_train_config({"task": "PAM-Nothing-v0"})
