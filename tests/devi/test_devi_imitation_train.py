"""Imitating an engine episode with the hybrid reward: the environment steps the MuJoCo scene
through the seam, and a short, seeded CEM fit of the residual drives the tracking error down.

The fit starts from a residual of +0.5 on every action (as the PPO smoke test starts its policy),
which throws the hand off the reference and the object off its track; the best residual is near
zero, and only a reward that really measures the tracking leads CEM back there."""

import numpy as np
import pytest

from pam_engine.devi.reference import episode_reference
from pam_engine.rl.imitation_env import OBSERVATION_SIZE, ImitationEnv
from pam_engine.training.imitation import CEMConfig, fit_cem, rollout


@pytest.fixture(scope="module")
def env(grasp_episode):
    return ImitationEnv(episode_reference(grasp_episode, points=64))


def test_a_reference_at_another_frame_rate_is_refused(env):
    from dataclasses import replace

    from pam_engine.errors import ConfigError

    with pytest.raises(ConfigError, match="30 fps, the scene steps 15"):
        ImitationEnv(replace(env.reference, fps=30.0))


def test_it_is_a_gymnasium_environment(env):
    from gymnasium.utils.env_checker import check_env

    check_env(env, skip_render_check=True)


def test_the_environment_starts_on_the_reference_and_follows_it(env):
    obs, _ = env.reset()
    assert obs.shape == (OBSERVATION_SIZE,) and obs.dtype == np.float32
    ref = env.reference
    env.scene.sync()
    assert np.linalg.norm(env.scene.keypoints() - ref.joints[0], axis=-1).mean() < 0.003
    follow = rollout(env, np.zeros((1, env.action_space.shape[0])))
    off = rollout(env, np.full((1, env.action_space.shape[0]), 0.5))
    assert not follow.diverged and follow.errors["hand"] < 0.015  # servo lag only
    assert off.errors["hand"] > 2 * follow.errors["hand"] and off.errors["object"] > follow.errors["object"]
    assert follow.ret > off.ret


@pytest.mark.slow
def test_cem_on_the_hybrid_reward_lowers_the_tracking_error(env):
    result = fit_cem(env, CEMConfig(iterations=5, population=10, elites=3, initial_mean=0.5, seed=0))
    first, last = result.history[0], result.history[-1]
    assert last.ret > 1.5 * first.ret, [h.ret for h in result.history]
    assert last.errors["hand"] < 0.8 * first.errors["hand"], [h.errors for h in result.history]
    assert last.errors["object"] < 0.6 * first.errors["object"], [h.errors for h in result.history]
    assert np.abs(result.mean).mean() < 0.5  # walked back from the +0.5 start
