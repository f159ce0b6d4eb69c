"""The batched grasp environment: spaces, episodes, determinism, sharding over processes."""

import numpy as np
import pytest

from pam_engine.rl import spec
from pam_engine.rl.env import GraspVecEnv
from pam_engine.rl.workers import ShardedGraspEnv, split

EPISODE_DECISIONS = 33  # frames 15..47 of a 49-frame clip: the reach phase starts at frame 15


def _rollout(env, steps, seed=0, scale=0.3):
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    trace = [obs]
    rewards, episodes = [], []
    for _ in range(steps):
        action = rng.normal(scale=scale, size=env.action_space.shape)
        obs, r, terminated, truncated, info = env.step(action)
        trace.append(obs)
        rewards.append(r)
        episodes += [e for e in info["episode"] if e is not None]
    return np.stack(trace), np.stack(rewards), episodes


def test_spaces_and_shapes(env_config, bank):
    env = GraspVecEnv(env_config, num_envs=3, seed=0, bank=bank)
    n_obs, n_act = spec.observation_size(env.n_dof), spec.action_size()
    assert env.single_observation_space.shape == (n_obs,) and env.single_action_space.shape == (n_act,)
    assert env.observation_space.shape == (3, n_obs) and env.action_space.shape == (3, n_act)
    assert np.all(env.single_action_space.low == -1) and np.all(env.single_action_space.high == 1)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, n_obs) and obs.dtype == np.float32 and np.isfinite(obs).all()
    obs, r, terminated, truncated, info = env.step(np.zeros((3, n_act)))
    assert obs.shape == (3, n_obs) and r.shape == (3,) and terminated.shape == truncated.shape == (3,)
    assert len(info["episode"]) == 3


def test_episodes_run_the_plan_to_its_end_and_autoreset(env_config, bank):
    env = GraspVecEnv(env_config, num_envs=2, seed=0, bank=bank)
    trace, rewards, episodes = _rollout(env, EPISODE_DECISIONS, scale=0.0)
    assert len(episodes) == 2  # both end exactly on the last frame of the plan
    for e in episodes:
        assert e.object == "061_foam_brick" and not e.diverged
        assert e.success and e.rise > spec.SUCCESS_RISE  # the zero residual is the scripted grasp
        assert e.reward == pytest.approx(sum(e.terms.values()))
    # the next episode started in the same step: its phase is reach again
    sl = spec.slices(spec.observation_terms(env.n_dof, spec.action_size()))
    assert np.all(trace[-1][:, sl["phase"]][:, spec.REACH] == 1)


def test_same_seed_same_episodes(env_config, bank):
    a = _rollout(GraspVecEnv(env_config, num_envs=2, seed=0, bank=bank), 6, seed=3)
    b = _rollout(GraspVecEnv(env_config, num_envs=2, seed=0, bank=bank), 6, seed=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = _rollout(GraspVecEnv(env_config, num_envs=2, seed=0, bank=bank), 6, seed=4)
    assert not np.array_equal(a[0], c[0])


def test_sharding_over_processes_plays_the_same_episodes(env_config, bank):
    local = _rollout(GraspVecEnv(env_config, num_envs=3, seed=0, bank=bank), 4, seed=1)
    sharded_env = ShardedGraspEnv(env_config, num_envs=3, num_workers=2, seed=0, bank=bank)
    try:
        sharded = _rollout(sharded_env, 4, seed=1)
    finally:
        sharded_env.close()
    np.testing.assert_array_equal(local[0], sharded[0])
    np.testing.assert_array_equal(local[1], sharded[1])


def test_split_is_even():
    assert split(5, 2) == [3, 2] and split(4, 4) == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="num_workers"):
        split(1, 2)


def test_rewards_respond_to_the_residual(env_config, bank):
    """Large random residuals shake the grasp: the return drops below the plan's."""
    env = GraspVecEnv(env_config, num_envs=2, seed=0, bank=bank)
    _, calm, _ = _rollout(env, EPISODE_DECISIONS, seed=0, scale=0.0)
    _, wild, _ = _rollout(env, EPISODE_DECISIONS, seed=0, scale=1.0)
    assert wild.sum() < calm.sum()


def test_curriculum_favours_objects_in_the_learnable_zone(env_config, bank):
    env = GraspVecEnv(env_config, num_envs=1, seed=0, bank=bank * 3)
    env.success_rate[:] = [1.0, 0.0, 0.5]
    w = env.object_weights()
    assert w[2] > w[0] > 0 and w[0] == pytest.approx(w[1])  # mastered and hopeless objects keep the floor
    env.record(0, False)
    assert env.success_rate[0] < 1.0
    from dataclasses import replace

    env.config = replace(env.config, curriculum=replace(env.config.curriculum, enabled=False))
    np.testing.assert_allclose(env.object_weights(), 1 / 3)


def test_grasp_noise_perturbs_hT_rigidly(bank):
    from pam_engine.rl.env import GraspNoiseConfig, _perturbed

    g = bank[0].grasps[0]
    out = _perturbed(g, GraspNoiseConfig(position=0.004, rotation=0.04), np.random.default_rng(0))
    r = out.wrist_in_object[:3, :3]
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-9)
    assert 0 < np.linalg.norm(out.wrist_in_object[:3, 3] - g.wrist_in_object[:3, 3]) < 0.03
    np.testing.assert_array_equal(out.angles, g.angles)
    assert _perturbed(g, GraspNoiseConfig(0.0, 0.0), np.random.default_rng(0)) is g


def test_batched_env_equals_the_per_slot_reference_on_the_same_seed(env_config, bank):
    """Observations, rewards, terminations, episode summaries and the physics state itself equal
    the pre-batching code path's, bit for bit, through episode ends and autoresets, with grasp
    noise and residuals large enough to end some episodes early."""
    from dataclasses import replace

    from pam_engine.rl.env import GraspNoiseConfig
    from tests.rl.reference_env import ReferenceGraspVecEnv

    cfg = replace(env_config, grasp_noise=GraspNoiseConfig())  # noise on: each draw differs
    fast, slow = GraspVecEnv(cfg, num_envs=3, seed=5, bank=bank), ReferenceGraspVecEnv(cfg, num_envs=3, seed=5, bank=bank)
    rng = np.random.default_rng(2)
    obs_f, _ = fast.reset(seed=5)
    obs_s, _ = slow.reset(seed=5)
    np.testing.assert_array_equal(obs_f, obs_s)
    ended = 0
    for t in range(EPISODE_DECISIONS + 4):
        action = rng.normal(scale=0.8 if t % 3 else 0.1, size=fast.action_space.shape)
        a, b = fast.step(action), slow.step(action)
        for x, y in zip(a[:4], b[:4]):
            np.testing.assert_array_equal(x, y)
        assert repr(a[4]["episode"]) == repr(b[4]["episode"])  # exact floats; NaN (diverged) equals NaN
        for x, y in zip(a[4]["final_obs"], b[4]["final_obs"]):
            assert (x is None and y is None) or np.array_equal(x, y)
        for sf, ss in zip(fast.slots, slow.slots):
            np.testing.assert_array_equal(sf.episode.scene.data.qpos, ss.episode.scene.data.qpos)
        ended += sum(e is not None for e in a[4]["episode"])
    assert ended >= 3  # every slot went through an episode end and an autoreset
    np.testing.assert_array_equal(fast.success_rate, slow.success_rate)


def test_one_slot_played_alone_equals_the_reference(env_config, bank):
    """``slot.reset()`` / ``slot.step()`` (how the Isaac Lab comparison plays MuJoCo episodes one
    slot at a time, without autoreset) give the per-slot reference's observations, rewards and
    episode summary."""
    from tests.rl.reference_env import ReferenceGraspVecEnv

    fast = GraspVecEnv(env_config, num_envs=2, seed=1, bank=bank)
    slow = ReferenceGraspVecEnv(env_config, num_envs=2, seed=1, bank=bank)
    rng = np.random.default_rng(0)
    a, b = fast.slots[1], slow.slots[1]
    np.testing.assert_array_equal(a.reset(), slow._reset_slot(b))
    for _ in range(EPISODE_DECISIONS):
        action = rng.normal(scale=0.3, size=spec.action_size())
        x, y = a.step(action), slow._step_slot(b, action)
        np.testing.assert_array_equal(x[0], y[0])
        assert x[1:] == y[1:] and isinstance(x[1], float)
        if x[2]:
            break
    assert x[2] and x[3] is not None and x[3].reward == pytest.approx(sum(x[3].terms.values()))
