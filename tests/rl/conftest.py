"""Shared fixtures of the RL tests: one small grasp bank (the foam brick, a few grasps) built
once per session into a temporary cache, and the environment config that uses it."""

import pytest

from pam_engine.rl.bank import BankConfig, load_bank
from pam_engine.rl.env import EnvConfig, GraspNoiseConfig

OBJECT = "061_foam_brick"


@pytest.fixture(scope="session")
def bank_config(tmp_path_factory):
    return BankConfig(objects=[OBJECT], synthesis_seeds=[100], grasps_per_seed=2,
                      cache_dir=str(tmp_path_factory.mktemp("grasp_bank")))


@pytest.fixture(scope="session")
def env_config(bank_config):
    # no grasp noise: episodes then replay the bank's grasps exactly, as Stage I would
    return EnvConfig(bank=bank_config, grasp_noise=GraspNoiseConfig(position=0.0, rotation=0.0))


@pytest.fixture(scope="session")
def bank(env_config):
    return load_bank(env_config.bank, env_config.stage1, progress=False)
