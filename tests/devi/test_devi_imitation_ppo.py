"""rl-games PPO on the imitation environment, as the grasp task's smoke test runs it: a reference
made from a generated engine episode, four envs, ten epochs of one whole reference each, seeded.
The policy starts at a residual of +0.5 on every action (off the reference); the per-step
hybrid reward must rise and the trained policy's tracking error must fall."""

import math

import numpy as np
import pytest

from pam_engine.devi.reference import episode_reference
from pam_engine.errors import ConfigError
from pam_engine.rl.imitation_env import ImitationEnv
from pam_engine.training.imitation_ppo import ImitationPPOConfig, play, train_ppo


@pytest.mark.slow
def test_ppo_on_the_hybrid_reward_lowers_the_tracking_error(grasp_episode, tmp_path):
    ref = episode_reference(grasp_episode, points=64)
    cfg = ImitationPPOConfig(num_envs=4, epochs=10, seed=1, initial_residual=0.5, train_dir=str(tmp_path / "runs"))
    result = train_ppo(lambda: ImitationEnv(ref), cfg)
    rewards = result.step_rewards
    assert len(rewards) == cfg.epochs and all(math.isfinite(r) for r in rewards)
    assert np.mean(rewards[-2:]) > 1.3 * np.mean(rewards[:2]), rewards
    env = ImitationEnv(ref)
    start_return, start = play(env, lambda obs: np.full((1, 13), 0.5))
    trained_return, trained = play(env, result.actor)
    assert trained_return > 2 * start_return, (start_return, trained_return)
    assert trained["hand"] < 0.9 * start["hand"], (start, trained)


def test_bad_settings_are_named():
    with pytest.raises(ConfigError, match="epochs"):
        ImitationPPOConfig(epochs=0)
    with pytest.raises(ConfigError, match="gamma"):
        ImitationPPOConfig(gamma=1.5)
