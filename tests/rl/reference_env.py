"""The grasp environment as it stepped before it was batched (one slot after the other, one
state, observation and reward at a time, divergence checked after every control step): the
reference the batched :class:`~pam_engine.rl.env.GraspVecEnv` must equal on the same seeds
(``test_rl_env.py``), and the baseline ``benchmarks/bench_rl.py throughput`` times it against."""

from __future__ import annotations

import numpy as np

from pam_engine.errors import PoseError
from pam_engine.pose.success import graspxl_rule
from pam_engine.rl import spec
from pam_engine.rl.env import EpisodeInfo, GraspVecEnv, _perturbed, _start_episode


def _advance_checking_every_step(ep, start: int, stop: int) -> bool:
    scene = ep.scene
    for step in range(start, stop):
        scene.set_targets(*ep.targets(step))
        scene.step()
        if scene.diverged():
            return True
    return False


class ReferenceGraspVecEnv(GraspVecEnv):
    """Same episodes, the per-slot code path."""

    def _reset_slot(self, slot) -> np.ndarray:
        cfg = self.config.stage1
        for _ in range(20):
            k = self.draw_object(slot.rng)
            entry = self.bank[k]
            grasp = _perturbed(entry.grasps[int(slot.rng.integers(len(entry.grasps)))], self.config.grasp_noise, slot.rng)
            try:
                episode = _start_episode(self.fresh_scene(k), grasp, cfg, self.config.task, slot.rng)
            except PoseError:
                continue
            first = episode.first_decision()
            if _advance_checking_every_step(episode, 0, first):
                continue
            slot.episode, slot.name, slot.object_index = episode, entry.name, k
            slot.totals = dict.fromkeys(spec.REWARD_TERMS, 0.0)
            slot.step_index = first
            return episode.observe(episode.state(first))
        raise PoseError("20 draws in a row were unreachable or diverged")

    def _step_slot(self, slot, action):
        ep = slot.episode
        ep.decide(slot.step_index, action)
        diverged = _advance_checking_every_step(ep, slot.step_index, slot.step_index + ep.substeps)
        slot.step_index += ep.substeps
        final = slot.step_index >= ep.last_step
        if diverged:
            terms = spec.reward_terms(None, ep.action, ep.previous, self.config.reward, diverged=True)
            obs, state = np.zeros(ep.obs_size, np.float32), None
        else:
            state = ep.state(slot.step_index)
            terms = spec.reward_terms(state, ep.action, ep.previous, self.config.reward, final=final)
            obs = ep.observe(state)
        for key, value in terms.items():
            slot.totals[key] += value
        reward = float(sum(terms.values()))
        if not (final or diverged):
            return obs, reward, False, None
        success = bool(state is not None and graspxl_rule(state.rise(), state.hand_error()))
        self.record(slot.object_index, success)
        info = EpisodeInfo(
            object=slot.name, success=success,
            rise=state.rise() if state else float("nan"), hand_error=state.hand_error() if state else float("nan"),
            diverged=diverged, reward=float(sum(slot.totals.values())), terms=dict(slot.totals))
        return obs, reward, True, info

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.slots = self._make_slots(seed)
        return np.stack([self._reset_slot(slot) for slot in self.slots]), {}

    def step(self, actions):
        actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, -1)
        obs = np.empty((self.num_envs, self.single_observation_space.shape[0]), np.float32)
        rewards = np.zeros(self.num_envs, np.float32)
        terminated = np.zeros(self.num_envs, bool)
        episodes = [None] * self.num_envs
        final_obs = [None] * self.num_envs
        for i, slot in enumerate(self.slots):
            o, r, done, info = self._step_slot(slot, actions[i])
            rewards[i], terminated[i] = r, done
            if done:
                episodes[i], final_obs[i] = info, o
                o = self._reset_slot(slot)
            obs[i] = o
        return obs, rewards, terminated, np.zeros(self.num_envs, bool), {"episode": episodes, "final_obs": final_obs}
