"""Stage I's set-up, the physical trial, the rollout, the RL environment's features and the
learned policy use a scene only through the simulator seam: run through a proxy that admits
nothing but :class:`pam_engine.sim.base.HandObjectEnv`'s members, they give the very results
of the bare MuJoCo scene."""

import typing

import numpy as np
import pytest
import torch

from pam_engine.pose.grasp.trial import trial_lift
from pam_engine.pose.rollout import rollout
from pam_engine.rl.env import GraspVecEnv, _advance, _start_episode
from pam_engine.sim.base import HandObjectEnv

SEAM = frozenset(typing._get_protocol_attrs(HandObjectEnv))


class SeamOnly:
    """A scene seen through the seam alone: any other attribute is a test failure."""

    def __init__(self, inner):
        object.__setattr__(self, "_inner", inner)

    def __getattr__(self, name):
        if name not in SEAM:
            raise AssertionError(f"{name!r} is used beyond the simulator seam")
        value = getattr(self._inner, name)
        if name in ("fork", "fresh"):
            return lambda: SeamOnly(value())
        return value

    def __setattr__(self, name, value):
        raise AssertionError(f"{name!r} is set on the scene, beyond the seam")


def test_the_seam_lists_what_a_backend_must_offer():
    assert {"set_targets", "step", "wrist_pose", "finger_angles", "contacts", "penetration", "fork"} <= SEAM


def test_an_episode_through_the_seam_equals_the_bare_scene(env_config, bank):
    from pam_engine.policy.learned import ActorNetwork, LearnedPolicy
    from pam_engine.rl import spec

    env = GraspVecEnv(env_config, num_envs=1, seed=0, bank=bank)
    grasp = bank[0].grasps[0]
    cfg, task = env_config.stage1, env_config.task
    results = []
    for wrap in (lambda s: s, SeamOnly):
        scene = wrap(env.fresh_scene(0))
        rise = trial_lift(scene, grasp, 0, cfg.check, cfg.plan, num_steps=cfg.num_steps)  # the physical trial, on a fork
        episode = _start_episode(scene, grasp, cfg, task, np.random.default_rng(5))  # place, settle, h0, plan
        torch.manual_seed(0)  # the same random network both times
        net = ActorNetwork(spec.observation_size(env.n_dof), spec.action_size(), [16], "elu")
        policy = LearnedPolicy(net, task)
        policy.reset(scene, episode.plan, 0)
        traj = rollout(scene, policy, episode.plan, 0, cfg, "builtin", seed=0)
        results.append((rise, traj))
    (rise_a, a), (rise_b, b) = results
    assert rise_a == rise_b
    for key in ("wrist_pose", "joint_angles", "joint_3d", "pose_y", "contacts", "pose_m"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
    assert a.num_frames == cfg.num_frames


def test_the_environment_steps_through_the_seam(env_config, bank):
    env = GraspVecEnv(env_config, num_envs=1, seed=0, bank=bank)
    scene = SeamOnly(env.fresh_scene(0))
    episode = _start_episode(scene, bank[0].grasps[0], env_config.stage1, env_config.task, np.random.default_rng(1))
    first = episode.first_decision()
    assert not _advance(episode, 0, first)
    assert episode.observe(episode.state(first)).shape == (episode.obs_size,)


def test_the_proxy_catches_a_reach_past_the_seam(env_config, bank):
    env = GraspVecEnv(env_config, num_envs=1, seed=0, bank=bank)
    with pytest.raises(AssertionError, match="'data' is used beyond the simulator seam"):
        SeamOnly(env.fresh_scene(0)).data
