"""rl-games glue: the vectorised environment behind rl-games' ``IVecEnv``, an observer that logs
grasp statistics to TensorBoard and exports policy checkpoints, and the params dict of a PPO run.

As in Isaac Lab's rl-games wrapper, one environment object serves the whole batch
(``num_actors`` = number of slots); observations stay numpy and rl-games moves them to its device.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from rl_games.common import env_configurations, vecenv
from rl_games.common.algo_observer import AlgoObserver
from rl_games.common.ivecenv import IVecEnv


ENV_NAME = "pam_grasp"
VECENV_TYPE = "PAM_GRASP"


class RlGamesVecEnv(IVecEnv):
    """A gymnasium ``VectorEnv`` (same-step autoreset) as rl-games sees environments."""

    def __init__(self, env):
        self.env = env

    def step(self, actions):
        obs, rewards, terminated, truncated, infos = self.env.step(np.asarray(actions))
        return obs, rewards.astype(np.float32), terminated | truncated, infos

    def reset(self):
        obs, _ = self.env.reset()
        return obs

    def get_number_of_agents(self):
        return 1

    def get_env_info(self):
        return {"action_space": self.env.single_action_space, "observation_space": self.env.single_observation_space,
                "state_space": None, "use_global_observations": False, "agents": 1, "value_size": 1}

    def close(self):
        self.env.close()


def register(env) -> None:
    """Make ``env`` the environment rl-games creates for ``env_name: pam_grasp``."""
    vecenv.register(VECENV_TYPE, lambda config_name, num_actors, **kwargs: RlGamesVecEnv(env))
    env_configurations.register(ENV_NAME, {"vecenv_type": VECENV_TYPE, "env_creator": lambda **kwargs: env})


@dataclass
class EpochStats:
    """What one PPO epoch saw (kept by the observer for reports and tests)."""

    epoch: int
    frames: int
    episodes: int
    success_rate: float  # over the last ``window`` episodes
    mean_reward: float  # per-step reward of this epoch's rollout
    seconds: float
    value_loss: float = float("nan")  # rl-games' critic loss of this epoch's update
    learning_rate: float = float("nan")  # the rate the update ended with (adaptive: after KL steps)


class _RecordingWriter:
    """rl-games' TensorBoard writer, passed through, keeping the last value of a few scalars for
    the observer (the critic loss and the learning rate are computed inside rl-games' update)."""

    KEEP = ("losses/c_loss", "info/last_lr")

    def __init__(self, writer):
        self.writer = writer
        self.last: dict[str, float] = {}

    def add_scalar(self, tag, value, *args, **kwargs):
        if tag in self.KEEP:
            self.last[tag] = float(value)
        return self.writer.add_scalar(tag, value, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.writer, name)


class GraspObserver(AlgoObserver):
    """Logs success rate, rise, per-term rewards and per-object success to TensorBoard; starts
    the residual at exactly the plan; exports checkpoints; stops at a wall-clock limit."""

    def __init__(self, on_export=None, snapshot_every: int = 0, time_limit_s: float = 0.0, window: int = 200,
                 zero_init_residual: bool = True, initial_residual=(0.0,), max_learning_rate: float = 0.0):
        super().__init__()
        self.max_learning_rate = max_learning_rate  # >0: cap of the adaptive schedule (rl-games': 1e-2)
        self.on_export = on_export  # callable(model_state, tag, stats) writing a policy file
        self.snapshot_every = snapshot_every
        self.time_limit_s = time_limit_s
        self.window = deque(maxlen=window)
        self.per_object: dict[str, deque] = {}
        self.zero_init_residual = zero_init_residual
        self.initial_residual = list(initial_residual)
        self.history: list[EpochStats] = []
        self.episodes = 0
        self._terms: dict[str, list[float]] = {}
        self._rise: list[float] = []
        self._step_rewards: list[float] = []

    def after_init(self, algo):
        import torch

        self.algo = algo
        if algo.writer is not None:
            algo.writer = _RecordingWriter(algo.writer)
        self.writer = algo.writer
        self.start = time.perf_counter()
        scheduler = getattr(algo, "scheduler", None)
        if self.max_learning_rate > 0 and hasattr(scheduler, "max_lr"):
            # rl-games' adaptive schedule multiplies the rate by 1.5 after every mini-epoch whose
            # KL is under half the threshold, up to 1e-2: with a small exploration noise the KL
            # stays tiny, so 3e-4 reaches the cap within two epochs (see policies/*.md)
            scheduler.max_lr = self.max_learning_rate
        if self.zero_init_residual:  # the untrained policy's mean is the plan (plus initial_residual)
            mu = algo.model.a2c_network.mu
            with torch.no_grad():
                mu.weight.zero_()
                mu.bias.copy_(torch.as_tensor(self.initial_residual, dtype=mu.bias.dtype).expand_as(mu.bias))

    def process_infos(self, infos, done_indices):
        for info in infos.get("episode", []) if isinstance(infos, dict) else []:
            if info is None:
                continue
            self.episodes += 1
            self.window.append(float(info.success))
            self.per_object.setdefault(info.object, deque(maxlen=50)).append(float(info.success))
            if np.isfinite(info.rise):
                self._rise.append(info.rise)
            for key, value in info.terms.items():
                self._terms.setdefault(key, []).append(value)

    def after_steps(self):
        rewards = self.algo.experience_buffer.tensor_dict.get("rewards")
        if rewards is not None:
            # shaped rewards; undo the shaper's scale so the figure is the environment's reward
            scale = getattr(self.algo.rewards_shaper, "scale_value", 1.0) or 1.0
            self._step_rewards.append(float(rewards.mean().item()) / scale)

    def after_print_stats(self, frame, epoch_num, total_time):
        success = float(np.mean(self.window)) if self.window else float("nan")
        last = getattr(self.writer, "last", {})
        stats = EpochStats(epoch_num, int(frame), self.episodes, success,
                           self._step_rewards[-1] if self._step_rewards else float("nan"),
                           time.perf_counter() - self.start, last.get("losses/c_loss", float("nan")),
                           last.get("info/last_lr", float(getattr(self.algo, "last_lr", float("nan")))))
        self.history.append(stats)
        w = self.writer
        if w is not None:
            if self.window:
                w.add_scalar("grasp/success_rate", success, frame)
            if self._rise:
                w.add_scalar("grasp/rise", float(np.mean(self._rise)), frame)
            for key, values in self._terms.items():
                w.add_scalar(f"reward_terms/{key}", float(np.mean(values)), frame)
            w.add_scalar("grasp/step_reward", stats.mean_reward, frame)
            if epoch_num % 10 == 0:
                for name, values in self.per_object.items():
                    w.add_scalar(f"success_per_object/{name}", float(np.mean(values)), frame)
        self._terms, self._rise = {}, []
        if self.on_export and self.snapshot_every and epoch_num % self.snapshot_every == 0:
            self.on_export(self.algo.model.state_dict(), f"epoch{epoch_num}", stats)
        if self.time_limit_s and stats.seconds > self.time_limit_s:
            print(f"train-policy: time limit of {self.time_limit_s / 60:.0f} min reached at epoch {epoch_num}")
            self.algo.max_frames = 1  # rl-games stops (and saves) after this epoch


@dataclass(frozen=True)
class PPOConfig:
    """rl-games PPO settings (names as in rl-games' ``config`` section)."""

    learning_rate: float = 3e-4
    lr_schedule: str = "adaptive"  # adaptive | linear | identity
    kl_threshold: float = 0.016
    #: upper bound of the adaptive rate (0: rl-games' own, 1e-2, which is 33x the default rate
    #: and where the shipped run's collapse began)
    max_learning_rate: float = 0.0
    gamma: float = 0.99
    tau: float = 0.95
    e_clip: float = 0.2
    entropy_coef: float = 0.0
    critic_coef: float = 2.0
    grad_norm: float = 1.0
    bounds_loss_coef: float = 0.0001
    horizon_length: int = 32
    minibatch_size: int = 512
    mini_epochs: int = 5
    max_frames: int = 2_000_000
    reward_scale: float = 0.1
    normalize_value: bool = True
    normalize_advantage: bool = True
    games_to_track: int = 100


@dataclass(frozen=True)
class NetworkConfig:
    """The actor-critic MLPs (rl-games' ``actor_critic`` network)."""

    hidden: list[int] = field(default_factory=lambda: [256, 128, 64])
    activation: str = "elu"
    initial_log_std: float = -2.0  # exploration std exp(-2) = 0.14 of the residual range: scripted
    #: grasps survive it (at 0.3 half of them fail), so early rollouts still reach the lift
    zero_init_residual: bool = True
    #: with zero_init_residual, the residual the untrained policy outputs (default: none, the
    #: plan itself); one value for every action or one per action
    initial_residual: list[float] = field(default_factory=lambda: [0.0])
    normalize_input: bool = True  # running mean/std of observations (rl-games' normalize_input)
    #: separate actor and critic MLPs (rl-games' ``separate``). A shared trunk (the default, as in
    #: Isaac Gym's hand tasks) trains well here; separate MLPs keep the critic's gradients from
    #: moving the residual, which helps very short runs (see the CI smoke test)
    separate: bool = False


def build_params(name: str, seed: int, num_envs: int, train_dir: str, ppo: PPOConfig, net: NetworkConfig,
                 save_frequency: int = 0) -> dict:
    """The ``params`` dict rl-games' Runner loads."""
    return {
        "seed": seed,
        "torch_threads": 1,  # the simulation workers need the cores
        "algo": {"name": "a2c_continuous"},
        "model": {"name": "continuous_a2c_logstd"},
        "network": {
            "name": "actor_critic",
            "separate": net.separate,
            "space": {"continuous": {
                "mu_activation": "None", "sigma_activation": "None",
                "mu_init": {"name": "default"},
                "sigma_init": {"name": "const_initializer", "val": net.initial_log_std},
                "fixed_sigma": True,
            }},
            "mlp": {"units": list(net.hidden), "activation": net.activation, "d2rl": False,
                    "initializer": {"name": "default"}, "regularizer": {"name": "None"}},
        },
        "config": {
            "name": name,
            "full_experiment_name": name,
            "train_dir": train_dir,
            "env_name": ENV_NAME,
            "device": "cpu",
            "device_name": "cpu",
            "torch_compile": False,
            "multi_gpu": False,
            "ppo": True,
            "mixed_precision": False,
            "normalize_input": net.normalize_input,
            "normalize_value": ppo.normalize_value,
            "normalize_advantage": ppo.normalize_advantage,
            "value_bootstrap": True,
            "num_actors": num_envs,
            "reward_shaper": {"scale_value": ppo.reward_scale},
            "gamma": ppo.gamma,
            "tau": ppo.tau,
            "learning_rate": ppo.learning_rate,
            "lr_schedule": ppo.lr_schedule,
            "schedule_type": "standard",
            "kl_threshold": ppo.kl_threshold,
            "score_to_win": 1e9,
            "max_epochs": -1,
            "max_frames": ppo.max_frames,
            "save_best_after": 10,
            "save_frequency": save_frequency,
            "grad_norm": ppo.grad_norm,
            "entropy_coef": ppo.entropy_coef,
            "truncate_grads": True,
            "e_clip": ppo.e_clip,
            "clip_value": True,
            "horizon_length": ppo.horizon_length,
            "minibatch_size": ppo.minibatch_size,
            "mini_epochs": ppo.mini_epochs,
            "critic_coef": ppo.critic_coef,
            "bounds_loss_coef": ppo.bounds_loss_coef,
            "games_to_track": ppo.games_to_track,
            "print_stats": True,
        },
    }


__all__ = ["RlGamesVecEnv", "GraspObserver", "PPOConfig", "NetworkConfig", "build_params", "register"]
