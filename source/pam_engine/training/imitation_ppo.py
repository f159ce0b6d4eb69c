"""rl-games PPO on :class:`pam_engine.rl.imitation_env.ImitationEnv`: a closed-loop residual policy
that imitates one reference with DeVI's hybrid reward.

``num_envs`` copies of the environment run as a gymnasium ``SyncVectorEnv`` (same-step
autoreset, the layout the grasp task's vector env has), behind rl-games' ``IVecEnv`` under their
own names (``pam_imitate``), with the grasp trainer's PPO settings, network and observer
(:mod:`pam_engine.training.rlgames`): the observer starts the residual at ``initial_residual`` and
records the per-step reward of every epoch. Returns the trained actor
(:class:`pam_engine.policy.loading.ActorNetwork`, observation -> action mean) and that history.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pam_engine.errors import ConfigError

ENV_NAME = "pam_imitate"
VECENV_TYPE = "PAM_IMITATE"


@dataclass(frozen=True)
class ImitationPPOConfig:
    num_envs: int = 4
    epochs: int = 10  # each epoch is one whole reference per env (horizon = frames - 1)
    seed: int = 1
    learning_rate: float = 0.005
    gamma: float = 0.0  # the hybrid reward is dense and per frame; 0 keeps short runs stable
    mini_epochs: int = 4
    hidden: tuple[int, ...] = (64, 64)
    initial_log_std: float = -2.0
    initial_residual: float = 0.0  # the untrained policy's residual (on every action)
    train_dir: str = "runs/imitation"

    def __post_init__(self) -> None:
        for name in ("num_envs", "epochs", "mini_epochs"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise ConfigError(f"imitation PPO: {name} must be a positive integer, got {getattr(self, name)!r}")
        if not self.learning_rate > 0 or not 0.0 <= self.gamma <= 1.0:
            raise ConfigError("imitation PPO: learning_rate must be positive and gamma in [0, 1]")


@dataclass
class PPOResult:
    actor: object  # pam_engine.policy.loading.ActorNetwork
    step_rewards: list[float] = field(default_factory=list)  # mean per-step reward of each epoch


def train_ppo(make_env, config: ImitationPPOConfig | None = None) -> PPOResult:
    """PPO on ``config.num_envs`` environments made by ``make_env()`` (each an
    :class:`~pam_engine.rl.imitation_env.ImitationEnv` of the same reference)."""
    import torch
    from gymnasium.vector import AutoresetMode, SyncVectorEnv
    from rl_games.common import env_configurations, vecenv
    from rl_games.torch_runner import Runner

    from pam_engine.policy.loading import export_rl_games
    from pam_engine.training import rlgames
    from pam_engine.training.policy import _seed_everything

    cfg = config or ImitationPPOConfig()
    vec = SyncVectorEnv([make_env for _ in range(cfg.num_envs)], autoreset_mode=AutoresetMode.SAME_STEP)
    horizon = vec.envs[0].reference.num_frames - 1
    adapter = _vec_env(vec)
    vecenv.register(VECENV_TYPE, lambda config_name, num_actors, **kwargs: adapter)
    env_configurations.register(ENV_NAME, {"vecenv_type": VECENV_TYPE, "env_creator": lambda **kwargs: vec})
    ppo = rlgames.PPOConfig(horizon_length=horizon, minibatch_size=2 * horizon, mini_epochs=cfg.mini_epochs,
                            max_frames=cfg.num_envs * horizon * cfg.epochs, learning_rate=cfg.learning_rate,
                            lr_schedule="identity", gamma=cfg.gamma)
    net = rlgames.NetworkConfig(hidden=list(cfg.hidden), initial_log_std=cfg.initial_log_std,
                                initial_residual=[cfg.initial_residual], separate=True)
    params = rlgames.build_params("imitation", cfg.seed, cfg.num_envs, cfg.train_dir, ppo, net)
    params["config"]["env_name"] = ENV_NAME
    observer = rlgames.GraspObserver(initial_residual=[cfg.initial_residual])
    _seed_everything(cfg.seed)  # python, numpy and torch, as the grasp trainer does (rl-games skips seed 0)
    try:
        runner = Runner(algo_observer=observer)
        runner.load({"params": params})
        runner.run({"train": True, "play": False})
    finally:
        vec.close()
    actor = export_rl_games(observer.algo.model.state_dict(), list(cfg.hidden), net.activation)
    return PPOResult(actor, [h.mean_reward for h in observer.history])


def play(env, actor) -> tuple[float, dict[str, float]]:
    """One episode of ``actor``'s mean action (a callable: (1, obs) tensor -> (1, action)):
    (return, mean tracking error per term)."""
    import torch

    obs, _ = env.reset()
    total, errors, done = 0.0, [], False
    while not done:
        with torch.no_grad():
            action = np.asarray(actor(torch.as_tensor(obs[None], dtype=torch.float32)))[0]
        obs, reward, done, _, info = env.step(action)
        total += reward
        if info["diverged"]:
            break
        errors.append(info["errors"])
    mean = {k: float(np.mean([e[k] for e in errors])) for k in errors[0]} if errors else {}
    return total, mean


def _vec_env(env):
    """rl-games' view of the vector env (the grasp trainer's adapter), without the per-step infos:
    rl-games does not read them, and the tracking errors are measured by :func:`play`."""
    from pam_engine.training.rlgames import RlGamesVecEnv

    class ImitationVecEnv(RlGamesVecEnv):
        def step(self, actions):
            obs, rewards, done, _ = super().step(actions)
            return obs, rewards, done, {}

    return ImitationVecEnv(env)
