"""Fitting a residual that imitates a reference, by the cross-entropy method (CEM) on
:class:`pam_engine.rl.imitation_env.ImitationEnv`.

The policy is open-loop: a residual action held constant over each of ``segments`` equal spans of
the reference (a 13 x ``segments`` vector). CEM samples a population around a Gaussian, keeps the
elites by return (the summed hybrid reward) and refits the Gaussian to them. It is the smallest
learner that shows the reward does its job on a real rollout in seconds on a CPU: the environment
is deterministic, the search space small, and no critic needs to warm up first. PPO through
rl-games (:mod:`pam_engine.training.imitation_ppo`) trains closed-loop policies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pam_engine.errors import ConfigError
from pam_engine.rl.imitation import TERMS


@dataclass(frozen=True)
class CEMConfig:
    iterations: int = 6
    population: int = 12
    elites: int = 4
    segments: int = 1  # piecewise-constant residual pieces over the reference
    initial_mean: float = 0.0  # every action component's start (a non-zero start shows learning)
    initial_std: float = 0.3
    min_std: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("iterations", "population", "elites", "segments"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise ConfigError(f"imitation CEM: {name} must be a positive integer, got {getattr(self, name)!r}")
        if self.elites > self.population:
            raise ConfigError(f"imitation CEM: elites ({self.elites}) exceed the population ({self.population})")
        if not self.initial_std > 0 or not self.min_std > 0:
            raise ConfigError("imitation CEM: initial_std and min_std must be positive")


@dataclass
class Rollout:
    ret: float  # summed reward
    errors: dict[str, float]  # mean tracking error per term over the frames
    diverged: bool


@dataclass
class CEMResult:
    mean: np.ndarray  # (segments, action_size) the fitted residual
    history: list[Rollout] = field(default_factory=list)  # the mean's rollout before each iteration and at the end


def rollout(env, plan: np.ndarray) -> Rollout:
    """Play the piecewise-constant residual ``plan`` (segments, action_size) over one episode."""
    env.reset()
    steps = env.reference.num_frames - 1
    total, sums, n, diverged = 0.0, dict.fromkeys(TERMS, 0.0), 0, False
    for step in range(steps):
        _, reward, terminated, _, info = env.step(plan[min(step * len(plan) // steps, len(plan) - 1)])
        total += reward
        if info["diverged"]:
            diverged = True
            break
        for k in TERMS:
            sums[k] += info["errors"][k]
        n += 1
        if terminated:
            break
    return Rollout(total, {k: v / max(n, 1) for k, v in sums.items()}, diverged)


def fit_cem(env, config: CEMConfig | None = None, progress: bool = False) -> CEMResult:
    """Fit the residual of ``env`` (an :class:`~pam_engine.rl.imitation_env.ImitationEnv`)."""
    from tqdm import tqdm

    cfg = config or CEMConfig()
    rng = np.random.default_rng(cfg.seed)
    shape = (cfg.segments, env.action_space.shape[0])
    mean = np.full(shape, float(cfg.initial_mean))
    std = np.full(shape, float(cfg.initial_std))
    result = CEMResult(mean.copy())
    for _ in tqdm(range(cfg.iterations), desc="imitation CEM", disable=not progress, leave=False):
        result.history.append(rollout(env, mean))
        samples = np.clip(mean + std * rng.standard_normal((cfg.population,) + shape), -1.0, 1.0)
        returns = np.array([rollout(env, s).ret for s in samples])
        elite = samples[np.argsort(returns)[::-1][:cfg.elites]]
        mean, std = elite.mean(axis=0), np.maximum(elite.std(axis=0), cfg.min_std)
    result.mean = mean
    result.history.append(rollout(env, mean))
    return result
