"""``pam train-policy``: train the residual grasp policy with rl-games PPO and export it.

The task is found by id in gymnasium's registry (:mod:`pam_engine.rl.tasks`, Isaac Lab's way):
its ``rl_games_cfg_entry_point`` gives the PPO and network settings a config does not set, its
vector entry point builds the environment.

The run writes rl-games' own checkpoints and TensorBoard logs under ``<train_dir>/<name>/``
(``nn/``, ``summaries/``, and ``policies/<stem>.epoch<N>.pth`` deployable snapshots when
``snapshot_every`` is set) and the deployable policy to ``output`` (default
``<train_dir>/<name>/<name>.pth``). The exported file records the config and the command.

A run never overwrites: an existing output or run folder needs ``force``, and the policies shipped
with the engine (``policies/*.pth`` beside ``pyproject.toml``) are never written, not even then.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

from typing import Sequence

from pam_engine.config import apply_overrides, from_dict, load_yaml, to_dict
from pam_engine.errors import ConfigError, OutputError
from pam_engine.rl import spec
from pam_engine.rl.env import EnvConfig
from pam_engine.rl.tasks import MUJOCO_GRASP, load_entry_point
from pam_engine.training.rlgames import NetworkConfig, PPOConfig


@dataclass(frozen=True)
class TrainConfig:
    """A training run (the YAML file ``pam train-policy --config`` reads)."""

    name: str = "grasp_residual"
    #: the registered task (gymnasium id) to train on
    task: str = MUJOCO_GRASP
    seed: int = 0
    num_envs: int = 32  # environment slots, split over the workers
    num_workers: int = 2  # simulation processes; 0 steps the slots in the learner's process
    output: str | None = None  # the exported policy; None: <train_dir>/<name>/<name>.pth
    train_dir: str = "runs/policies"  # rl-games checkpoints and TensorBoard logs
    time_limit_minutes: float = 0.0  # stop after this much wall time (0: run to ppo.max_frames)
    snapshot_every: int = 0  # epochs between exported snapshots (0: final policy only)
    #: held-out objects and seeds the snapshots (and the final policy) are played on after
    #: training; the best becomes ``output`` (empty: the final policy does). Training never sees
    #: them: keep them out of env.bank.objects and away from its synthesis seeds
    select_objects: list[str] = field(default_factory=list)
    select_seeds: list[int] = field(default_factory=lambda: [1000, 1001])
    select_jobs: int = 2
    env: EnvConfig = field(default_factory=EnvConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)

    def check(self) -> None:
        """Reject settings rl-games would only trip over later."""
        if self.num_envs < 1:
            raise ConfigError(f"config key 'num_envs': expected at least 1, got {self.num_envs}")
        if self.num_workers < 0 or self.num_workers > self.num_envs:
            raise ConfigError(f"config key 'num_workers': expected 0..num_envs ({self.num_envs}), got {self.num_workers}")
        batch = self.num_envs * self.ppo.horizon_length
        if self.ppo.minibatch_size < 1 or batch % self.ppo.minibatch_size:
            raise ConfigError(f"config key 'ppo.minibatch_size': must divide num_envs x ppo.horizon_length = {batch}, "
                              f"got {self.ppo.minibatch_size}")
        if self.ppo.lr_schedule not in ("adaptive", "linear", "identity"):
            raise ConfigError(f"config key 'ppo.lr_schedule': expected adaptive, linear or identity, got {self.ppo.lr_schedule!r}")
        if len(self.network.initial_residual) not in (1, spec.action_size()) or \
                any(abs(v) > 1 for v in self.network.initial_residual):
            raise ConfigError(f"config key 'network.initial_residual': expected 1 or {spec.action_size()} values "
                              f"in [-1, 1], got {self.network.initial_residual}")
        if not self.network.hidden or any(h < 1 for h in self.network.hidden):
            raise ConfigError(f"config key 'network.hidden': expected positive layer widths, got {self.network.hidden}")
        from pam_engine.policy.learned import ACTIVATIONS

        if self.network.activation not in ACTIVATIONS:
            raise ConfigError(f"config key 'network.activation': expected one of {sorted(ACTIVATIONS)}, "
                              f"got {self.network.activation!r}")
        if self.ppo.max_learning_rate < 0 or (self.ppo.max_learning_rate and self.ppo.max_learning_rate < self.ppo.learning_rate):
            raise ConfigError(f"config key 'ppo.max_learning_rate': expected 0 (rl-games' cap) or at least "
                              f"ppo.learning_rate ({self.ppo.learning_rate}), got {self.ppo.max_learning_rate}")
        overlap = sorted(set(map(str, self.select_objects)) & set(map(str, self.env.bank.objects)))
        if overlap:
            raise ConfigError(f"config key 'select_objects': {overlap} are also training objects (env.bank.objects); "
                              "the snapshot choice must use objects the training never sees")
        if set(self.select_seeds) & set(self.env.bank.synthesis_seeds):
            raise ConfigError("config key 'select_seeds': expected seeds apart from env.bank.synthesis_seeds")
        if self.output is not None and not str(self.output).endswith(".pth"):
            raise ConfigError(f"config key 'output': expected a .pth path, got {self.output!r}")
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise ConfigError(f"config key 'name': expected a folder name, got {self.name!r}")

    @property
    def run_dir(self) -> Path:
        return Path(self.train_dir) / self.name

    @property
    def output_path(self) -> Path:
        return Path(self.output) if self.output is not None else self.run_dir / f"{self.name}.pth"


def shipped_policy_dir() -> Path | None:
    """The ``policies/`` folder shipped beside the engine's ``pyproject.toml`` (a source checkout
    or editable install), or None when the engine is installed without it."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file():
            folder = parent / "policies"
            return folder if folder.is_dir() else None
    return None


def check_outputs(cfg: TrainConfig, force: bool = False) -> None:
    """Refuse, before any work, a run that would overwrite a policy or another run's files:
    shipped policies always, anything else unless ``force``."""
    output = cfg.output_path
    shipped = shipped_policy_dir()
    if shipped is not None and output.resolve().is_relative_to(shipped.resolve()):
        raise OutputError(f"output {output} is in the engine's shipped policies folder {shipped}, which the tools "
                          "never write; leave config key 'output' unset (the policy then goes under "
                          f"{cfg.train_dir}/<name>/) or name a file elsewhere")
    if force:
        return
    if output.exists():
        raise OutputError(f"output {output} already exists; choose another 'output' or 'name', or pass --force "
                          "to overwrite it")
    checkpoints = cfg.run_dir / "nn"
    if checkpoints.is_dir() and any(checkpoints.iterdir()):
        raise OutputError(f"run folder {cfg.run_dir} already holds a training run ({checkpoints}); choose another "
                          "'name' or 'train_dir', or pass --force to train over it")


def resolve_train_config(data: dict | None) -> TrainConfig:
    """A :class:`TrainConfig` from plain data: the task's registered agent settings
    (``rl_games_cfg_entry_point``) fill the ``ppo`` and ``network`` keys the data leaves out; a
    task whose environment config is not the one this trainer builds is refused."""
    data = dict(data or {})
    task = data.get("task", MUJOCO_GRASP)
    if not isinstance(task, str):
        raise ConfigError(f"config key 'task': expected a task id (str), got {task!r}")
    env_cfg = load_entry_point(task, "env_cfg_entry_point")
    if env_cfg is not EnvConfig:
        raise ConfigError(f"config key 'task': task {task!r} is configured by {env_cfg.__module__}."
                          f"{env_cfg.__qualname__}; pam train-policy trains tasks configured by {EnvConfig.__qualname__}")
    agent = load_entry_point(task, "rl_games_cfg_entry_point")
    for section in ("ppo", "network"):
        given = data.get(section) or {}
        if not isinstance(given, dict):
            raise ConfigError(f"config key {section!r}: expected a mapping, got {given!r}")
        data[section] = {**(agent.get(section) or {}), **given}
    return from_dict(TrainConfig, data)


def load_train_config(path, overrides: Sequence[str] = ()) -> TrainConfig:
    """The training config of a YAML file plus ``key=value`` overrides, resolved."""
    return resolve_train_config(apply_overrides(load_yaml(path), overrides))


@dataclass
class TrainResult:
    output: Path
    log_dir: Path
    frames: int
    epochs: int
    seconds: float
    success_rate: float  # training episodes, last window (stochastic policy)
    steps_per_second: float
    history: list


def train(cfg: TrainConfig, command: str = "", progress: bool = True, observer_hook=None,
          force: bool = False) -> TrainResult:
    """Run PPO as configured; return where the policy went and how training went. Existing
    outputs are refused unless ``force`` (``check_outputs``)."""
    import numpy as np
    import torch
    from rl_games.torch_runner import Runner

    from pam_engine.policy.loading import export_rl_games, save_policy
    from pam_engine.rl import spec
    from pam_engine.training import rlgames
    from pam_engine.rl.bank import load_bank
    import gymnasium as gym
    from pam_engine.pose import HandCache

    cfg.check()
    check_outputs(cfg, force)
    t0 = time.perf_counter()
    bank = load_bank(cfg.env.bank, cfg.env.stage1, progress=progress, jobs=max(1, cfg.num_workers))
    n_dof = HandCache.get(cfg.env.stage1.mano)[1].size
    from pam_engine.rl.tasks import register_tasks

    register_tasks()  # a TrainConfig built directly (not through resolve_train_config) has not registered them
    env = gym.make_vec(cfg.task, num_envs=cfg.num_envs, vectorization_mode="vector_entry_point", config=cfg.env,
                       num_workers=cfg.num_workers, seed=cfg.seed, bank=bank, progress=progress)
    output = cfg.output_path
    snapshots = cfg.run_dir / "policies"
    provenance = {"config": to_dict(cfg), "command": command, "python": platform.python_version(),
                  "torch": str(torch.__version__), "rl_games": _version("rl_games"), "objects": [b.name for b in bank]}

    def export(model_state, tag, stats=None):
        net = export_rl_games(model_state, cfg.network.hidden, cfg.network.activation)
        path = output if tag == "final" else snapshots / f"{output.stem}.{tag}{output.suffix}"
        meta = dict(provenance, tag=tag)
        if stats is not None:
            meta.update(epoch=stats.epoch, frames=stats.frames, train_success_rate=stats.success_rate)
        save_policy(path, net, cfg.env.task, n_dof, meta)
        return path

    observer = rlgames.GraspObserver(on_export=export, snapshot_every=cfg.snapshot_every,
                                     time_limit_s=60.0 * cfg.time_limit_minutes,
                                     zero_init_residual=cfg.network.zero_init_residual,
                                     initial_residual=cfg.network.initial_residual,
                                     max_learning_rate=cfg.ppo.max_learning_rate)
    if observer_hook is not None:
        observer_hook(observer)
    rlgames.register(env)
    params = rlgames.build_params(cfg.name, cfg.seed, cfg.num_envs, cfg.train_dir, cfg.ppo, cfg.network)
    # rl-games seeds torch/numpy only for a truthy seed (`if self.seed:`), so seed 0 would train
    # from whatever state the process's RNGs were left in; seed them here for every seed.
    _seed_everything(cfg.seed)
    try:
        runner = Runner(algo_observer=observer)
        runner.load({"params": params})
        runner.run({"train": True, "play": False})
    finally:
        env.close()
    algo = observer.algo
    stats = observer.history[-1] if observer.history else None
    final = export(algo.model.state_dict(), "final" if not cfg.select_objects else "last", stats)
    if observer.history:
        from pam_engine.training.curves import plot_curves

        plot_curves(observer.history, output.with_name(f"{output.stem}_curves.png"), f"{cfg.name}: PPO training")
    if cfg.select_objects:
        _select(cfg, snapshots, final, output)
    seconds = time.perf_counter() - t0
    frames = int(algo.frame)
    success = float(np.mean(observer.window)) if observer.window else float("nan")
    training = stats.seconds if stats else seconds  # from the learner's start, without the bank
    return TrainResult(output, cfg.run_dir, frames, int(algo.epoch_num), seconds, success,
                       frames / max(training, 1e-9), observer.history)


def _select(cfg: TrainConfig, snapshots: Path, last: Path, output: Path) -> None:
    """Play every snapshot and the last policy on the held-out episodes; the best becomes
    ``output``, and ``<output>.selection.json`` records every score and the choice."""
    import os
    import shutil

    from pam_engine.training.select import choose

    candidates = sorted(snapshots.glob(f"{output.stem}.epoch*{output.suffix}"),
                        key=lambda p: int(p.stem.rsplit("epoch", 1)[1])) + [last]
    sel = choose(candidates, cfg.select_objects, cfg.select_seeds, cfg.select_jobs)
    tmp = output.with_name(output.name + ".partial")
    shutil.copyfile(sel.chosen, tmp)
    os.replace(tmp, output)
    sel.write(output.with_name(f"{output.stem}.selection.json"))
    print(f"train-policy: held-out success per snapshot {sel.scores}; chose {sel.chosen}")


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module.replace("_", "-"))
    except PackageNotFoundError:
        return "unknown"


def _seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

