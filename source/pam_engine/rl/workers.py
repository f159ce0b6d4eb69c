"""Spreading a batch of grasp environments over worker processes.

Each worker holds a :class:`~pam_engine.rl.env.GraspVecEnv` with its share of the slots and
steps it as a batch; the parent sends the actions of each share and concatenates the results.
MuJoCo steps on one core per process, so on two cores two workers roughly double throughput
while the parent (the PPO learner) mostly waits. gymnasium's own ``AsyncVectorEnv`` runs one
environment per process; here a process carries many, which keeps the pipe traffic to one
message per worker per step.

Workers start with ``spawn`` (no inherited torch/OpenMP state) and get the grasp bank from the
parent, so they never synthesize.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

from pam_engine.rl import spec
from pam_engine.rl.bank import load_bank
from pam_engine.rl.env import EnvConfig, GraspVecEnv
from pam_engine.pose import HandCache


def _worker(conn, config: EnvConfig, num_envs: int, seed: int, first_slot: int, bank) -> None:
    try:
        env = GraspVecEnv(config, num_envs=num_envs, seed=seed, bank=bank, progress=False, first_slot=first_slot)
        conn.send(("ready", None))
        while True:
            command, payload = conn.recv()
            if command == "step":
                conn.send(("ok", env.step(payload)))
            elif command == "reset":
                conn.send(("ok", env.reset(seed=payload)))
            elif command == "close":
                conn.send(("ok", None))
                break
    except (EOFError, KeyboardInterrupt):
        pass
    except Exception:  # report, so the parent raises instead of hanging
        try:
            conn.send(("error", traceback.format_exc()))
        except (BrokenPipeError, EOFError):
            pass
    finally:
        conn.close()


def split(num_envs: int, num_workers: int) -> list[int]:
    """Slots per worker, as even as possible (a worker gets at least one)."""
    if num_workers < 1 or num_envs < num_workers:
        raise ValueError(f"need 1 <= num_workers <= num_envs, got {num_workers} workers for {num_envs} envs")
    base, extra = divmod(num_envs, num_workers)
    return [base + (i < extra) for i in range(num_workers)]


class ShardedGraspEnv(VectorEnv):
    """``num_envs`` grasp environments over ``num_workers`` processes, one batch interface."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, config: EnvConfig | None = None, num_envs: int = 8, num_workers: int = 2, seed: int = 0,
                 bank=None, progress: bool = True):
        self.config = config or EnvConfig()
        bank = bank if bank is not None else load_bank(self.config.bank, self.config.stage1, progress=progress)
        self.counts = split(num_envs, num_workers)
        self.num_envs = num_envs
        ctx = mp.get_context("spawn")
        self._conns, self._procs = [], []
        for w, count in enumerate(self.counts):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, self.config, count, seed, sum(self.counts[:w]), bank),
                               daemon=True)
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        for conn in self._conns:
            self._receive(conn)
        n_dof = HandCache.get(self.config.stage1.mano)[1].size
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (spec.observation_size(n_dof),), np.float32)
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (spec.action_size(),), np.float32)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)

    @staticmethod
    def _receive(conn):
        status, payload = conn.recv()
        if status == "error":
            raise RuntimeError(f"grasp environment worker failed:\n{payload}")
        return payload

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        for conn in self._conns:
            conn.send(("reset", seed))
        obs = [self._receive(conn)[0] for conn in self._conns]
        return np.concatenate(obs), {}

    def step(self, actions):
        actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, -1)
        start = 0
        for conn, count in zip(self._conns, self.counts):
            conn.send(("step", actions[start:start + count]))
            start += count
        results = [self._receive(conn) for conn in self._conns]
        obs = np.concatenate([r[0] for r in results])
        rewards = np.concatenate([r[1] for r in results])
        terminated = np.concatenate([r[2] for r in results])
        truncated = np.concatenate([r[3] for r in results])
        infos = {"episode": sum((r[4]["episode"] for r in results), []),
                 "final_obs": sum((r[4]["final_obs"] for r in results), [])}
        return obs, rewards, terminated, truncated, infos

    def close_extras(self, **kwargs):
        for conn in self._conns:
            try:
                conn.send(("close", None))
                conn.recv()
            except (BrokenPipeError, EOFError, OSError):
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        self._conns, self._procs = [], []


def make_env(config: EnvConfig, num_envs: int, num_workers: int, seed: int, bank=None,
             progress: bool = True) -> VectorEnv:
    """The batch environment: in this process when ``num_workers`` is 0, else over workers."""
    if num_workers <= 0:
        return GraspVecEnv(config, num_envs=num_envs, seed=seed, bank=bank, progress=progress)
    return ShardedGraspEnv(config, num_envs=num_envs, num_workers=num_workers, seed=seed, bank=bank,
                           progress=progress)
