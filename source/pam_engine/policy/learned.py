"""The trained grasp policy in Stage I: the actor network on CPU, adding its residual to the
scripted plan through the same :class:`~pam_engine.rl.features.GraspEpisode` the training
environment uses. Only the actor's mean is kept (no sampling): Stage I is deterministic.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pam_engine.errors import AssetError
from pam_engine.pose.grasp.plan import GraspPlan
from pam_engine.rl import spec
from pam_engine.rl.features import GraspEpisode
from pam_engine.sim.base import HandObjectEnv

ACTIVATIONS = {"elu": nn.ELU, "relu": nn.ReLU, "tanh": nn.Tanh, "selu": nn.SELU}


class ActorNetwork(nn.Module):
    """Observation normalisation (running mean and variance, clipped at +-5 as rl-games does)
    and the actor MLP with its mean head. Layer names follow rl-games' ``actor_mlp``/``mu`` so
    its weights map one to one."""

    def __init__(self, obs_size: int, action_size: int, hidden: list[int], activation: str = "elu",
                 epsilon: float = 1e-5, clip: float = 5.0, normalize: bool = True):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation {activation!r} is not one of {sorted(ACTIVATIONS)}")
        layers: list[nn.Module] = []
        width = obs_size
        for units in hidden:
            layers += [nn.Linear(width, units), ACTIVATIONS[activation]()]
            width = units
        self.mlp = nn.Sequential(*layers)
        self.mu = nn.Linear(width, action_size)
        self.register_buffer("obs_mean", torch.zeros(obs_size, dtype=torch.float64))
        self.register_buffer("obs_var", torch.ones(obs_size, dtype=torch.float64))
        self.obs_size, self.action_size = obs_size, action_size
        self.hidden, self.activation = list(hidden), activation
        self.epsilon, self.clip, self.normalize = epsilon, clip, normalize

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs
        if self.normalize:
            x = (obs - self.obs_mean.float()) / torch.sqrt(self.obs_var.float() + self.epsilon)
            x = torch.clamp(x, min=-self.clip, max=self.clip)
        return self.mu(self.mlp(x))

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action (the mean, clipped to [-1, 1]) for one observation."""
        out = self(torch.as_tensor(np.asarray(obs, dtype=np.float32)).reshape(1, -1))[0]
        return np.clip(out.numpy().astype(np.float64), -1.0, 1.0)


class LearnedPolicy:
    """A :class:`~pam_engine.policy.base.GraspPolicy` running a trained residual network."""

    name = "learned"

    def __init__(self, network: ActorNetwork, task: spec.TaskConfig, version: str = "1", source: str = ""):
        self.network = network.eval()
        self.task = task
        self.version = version
        self.source = source
        self.episode: GraspEpisode | None = None

    def reset(self, scene: HandObjectEnv, plan: GraspPlan, target: int) -> None:
        episode = GraspEpisode(scene, plan, target, self.task)
        check_sizes(self.network.obs_size, self.network.action_size, episode.obs_size, episode.action_size,
                    self.source or "the policy")
        self.episode = episode

    def act(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        if self.episode is None:
            raise RuntimeError("LearnedPolicy.act called before reset")
        ep = self.episode
        if ep.is_decision(step):
            ep.decide(step, self.network.act(ep.observe(ep.state(step))))
        return ep.targets(step)


def check_sizes(obs_size: int, action_size: int, env_obs: int, env_action: int, what: str) -> None:
    """Raise naming both sides when a network's input/output sizes differ from the environment's."""
    if (obs_size, action_size) != (env_obs, env_action):
        raise AssetError(
            f"{what} does not fit this environment: it takes observations of size {obs_size} and gives "
            f"actions of size {action_size}, but the environment has observations of size {env_obs} and "
            f"actions of size {env_action} (task spec version {spec.SPEC_VERSION})")
