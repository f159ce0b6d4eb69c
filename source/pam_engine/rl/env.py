"""The vectorised grasp environment: several grasp episodes in one process, stepped as a
batch behind gymnasium's ``VectorEnv`` interface (same-step autoreset: a finished episode's
slot returns the first observation of its next episode, the final one goes into ``infos``).

An episode is Stage I's, set up by the same public API (:func:`pam_engine.pose.setup.prepare_episode`):
an object placed at a random spot and yaw and settled, a grasp hT drawn from the bank, a start
pose h0 drawn as Stage I draws it, the plan between them. The
scripted approach runs during reset; the policy then decides every capture frame (see
:mod:`pam_engine.rl.spec`) until the plan ends. A simulation that blows up ends its episode
with a penalty.

One built scene per object is shared by all slots of a process; each episode gets a fresh view
of it (:meth:`~pam_engine.sim.base.HandObjectEnv.fresh`: on MuJoCo a new ``MjData``, half a
millisecond against ~14 ms for the approach), so slots never share state.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

from pam_engine.errors import PoseError
from pam_engine.pose.request import Stage1Config
from pam_engine.pose.setup import prepare_episode, replace_object
from pam_engine.pose.success import graspxl_rule
from pam_engine.rl import spec
from pam_engine.rl.bank import BankConfig, ObjectGrasps, load_bank
from pam_engine.rl.features import GraspEpisode


@dataclass(frozen=True)
class GraspNoiseConfig:
    """Perturbation of the drawn grasp hT per episode (object frame): the bank holds a few
    grasps per object, Stage I synthesizes others, so the policy must not learn them by heart."""

    position: float = 0.004  # m, std per axis
    rotation: float = 0.04  # rad, std per axis


@dataclass(frozen=True)
class CurriculumConfig:
    """How often each object is drawn: ``floor + s (1 - s)`` for its running success rate s.

    Objects the policy always or never grasps teach little; those in between teach most. Each
    worker keeps its own rates (no cross-process traffic); the floor keeps every object in play.
    """

    enabled: bool = True
    floor: float = 0.1
    memory: float = 0.05  # weight of the newest episode in the running rate (~20 episodes)


@dataclass(frozen=True)
class EnvConfig:
    """The training environment: task definition, reward, grasp bank, Stage I settings."""

    task: spec.TaskConfig = field(default_factory=spec.TaskConfig)
    reward: spec.RewardConfig = field(default_factory=spec.RewardConfig)
    bank: BankConfig = field(default_factory=BankConfig)
    grasp_noise: GraspNoiseConfig = field(default_factory=GraspNoiseConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    stage1: Stage1Config = field(default_factory=Stage1Config)


@dataclass
class EpisodeInfo:
    """How a finished episode went."""

    object: str
    success: bool
    rise: float
    hand_error: float
    diverged: bool
    reward: float
    terms: dict[str, float]


class _Slot:
    """One environment of the batch: its episode, and where in it the episode is."""

    def __init__(self, env: "GraspVecEnv", rng: np.random.Generator, index: int):
        self.env, self.rng, self.index = env, rng, index
        self.episode: GraspEpisode | None = None
        self.step_index = 0
        self.name = ""
        self.object_index = -1

    def reset(self) -> np.ndarray:
        """Start the next episode and return its first observation (one slot played on its own,
        e.g. :func:`pam_engine.isaaclab.episodes.play_mujoco`)."""
        self.start()
        self.env._totals[self.index] = 0.0
        return self.env._first_observations([self.index])[0]

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, EpisodeInfo | None]:
        """This slot alone takes ``action``: (observation, reward, done, episode summary or
        None); no autoreset (call :meth:`reset`)."""
        obs, reward, done, info, _ = self.env._step_slots([self.index], np.asarray(action)[None], autoreset=False)
        return obs[0], float(reward[0]), bool(done[0]), info[0]

    def start(self) -> None:
        """Start the next episode (its scripted approach included), unobserved. Draws whose
        start pose is unreachable, or whose scripted approach blows up, are drawn again."""
        env = self.env
        cfg = env.config.stage1
        for _ in range(20):
            k = env.draw_object(self.rng)
            entry = env.bank[k]
            grasp = _perturbed(entry.grasps[int(self.rng.integers(len(entry.grasps)))], env.config.grasp_noise, self.rng)
            try:
                episode = _start_episode(env.fresh_scene(k), grasp, cfg, env.config.task, self.rng)
            except PoseError:
                continue
            first = episode.first_decision()
            if _advance(episode, 0, first):
                continue
            self.episode, self.name, self.object_index = episode, entry.name, k
            self.step_index = first
            return
        raise PoseError(f"could not start an episode on {entry.name!r}: 20 draws in a row were unreachable or diverged")

    def advance(self, action: np.ndarray) -> bool:
        """Take ``action`` and run the physics to the next decision; True if it diverged."""
        ep = self.episode
        ep.decide(self.step_index, action)
        diverged = _advance(ep, self.step_index, self.step_index + ep.substeps)
        self.step_index += ep.substeps
        return diverged


def _perturbed(grasp, noise: GraspNoiseConfig, rng: np.random.Generator):
    from scipy.spatial.transform import Rotation

    if noise.position <= 0 and noise.rotation <= 0:
        return grasp
    out = copy.copy(grasp)
    wrist = np.array(grasp.wrist_in_object, dtype=np.float64)
    wrist[:3, :3] = Rotation.from_rotvec(rng.normal(scale=noise.rotation, size=3)).as_matrix() @ wrist[:3, :3]
    wrist[:3, 3] += rng.normal(scale=noise.position, size=3)
    out.wrist_in_object = wrist
    return out


def _start_episode(scene, grasp, cfg: Stage1Config, task: spec.TaskConfig, rng: np.random.Generator) -> GraspEpisode:
    """Place, settle, draw h0, plan (Stage I's episode set-up, with the grasp given)."""
    replace_object(scene, 0, rng, cfg.placement_radius)
    setup = prepare_episode(scene, 0, cfg, rng, grasp=grasp)
    return GraspEpisode(scene, setup.plan, 0, task, grasp.parts)


def _advance(ep: GraspEpisode, start: int, stop: int) -> bool:
    """Run control steps [start, stop) with the episode's targets; True if the physics diverged.

    Divergence is checked once per decision's worth of control steps, not after each: MuJoCo
    flags a bad state with a warning that stays counted (and resets the state it could not
    integrate), so a later check sees it all the same, and a diverged episode's state is never
    read (it ends with the penalty)."""
    scene = ep.scene
    for step in range(start, stop):
        scene.set_targets(*ep.targets(step))
        scene.step()
        if (step - start) % ep.substeps == ep.substeps - 1 or step == stop - 1:
            if scene.diverged():
                return True
    return False


class GraspVecEnv(VectorEnv):
    """``num_envs`` grasp episodes in this process, stepped as a batch.

    Observations are float32 ``(num_envs, obs_size)``, actions ``(num_envs, action_size)`` in
    [-1, 1]. ``infos["episode"]`` lists an :class:`EpisodeInfo` (or None) per slot for episodes
    that ended this step; ``infos["final_obs"]`` holds their last observations.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, config: EnvConfig | None = None, num_envs: int = 4, seed: int = 0,
                 bank: list[ObjectGrasps] | None = None, progress: bool = True, first_slot: int = 0):
        """Slot ``i`` draws its episodes from ``default_rng([seed, first_slot + i])``, so a batch
        split over workers (each given its ``first_slot``) plays the very episodes it would play
        in one process."""
        from pam_engine.pose.request import ObjectSpec
        from pam_engine.pose.setup import HandCache, build_scene, load_objects

        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        self.config = config or EnvConfig()
        cfg = self.config.stage1
        self.bank = bank if bank is not None else load_bank(self.config.bank, cfg, progress=progress)
        _, articulation = HandCache.get(cfg.mano)
        self.scenes = [build_scene(load_objects([ObjectSpec(entry.name)]), [np.eye(4)], cfg) for entry in self.bank]
        self.n_dof = articulation.size
        self.num_envs = num_envs
        obs_size, act_size = spec.observation_size(self.n_dof), spec.action_size()
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_size,), np.float32)
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (act_size,), np.float32)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.first_slot = first_slot
        self.success_rate = np.full(len(self.bank), 0.5)  # running, per object (curriculum)
        self.slots = self._make_slots(seed)
        self._totals = np.zeros((num_envs, len(spec.REWARD_TERMS)))  # per slot, the episode's summed terms

    def _make_slots(self, seed: int) -> list[_Slot]:
        return [_Slot(self, np.random.default_rng([seed, self.first_slot + i]), i) for i in range(self.num_envs)]

    def object_weights(self) -> np.ndarray:
        c = self.config.curriculum
        if not c.enabled:
            return np.full(len(self.bank), 1.0 / len(self.bank))
        w = c.floor + self.success_rate * (1.0 - self.success_rate)
        return w / w.sum()

    def draw_object(self, rng: np.random.Generator) -> int:
        return int(rng.choice(len(self.bank), p=self.object_weights()))

    def record(self, k: int, success: bool) -> None:
        m = self.config.curriculum.memory
        self.success_rate[k] = (1.0 - m) * self.success_rate[k] + m * float(success)

    def fresh_scene(self, k: int):
        """Object ``k``'s scene with a fresh state of its own (the built model is shared)."""
        return self.scenes[k].fresh()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.slots = self._make_slots(seed)
        for slot in self.slots:
            slot.start()
        self._totals[:] = 0.0
        return self._first_observations(range(self.num_envs)), {}

    def _first_observations(self, ids) -> np.ndarray:
        """The first observations of the episodes the slots ``ids`` just started, one batch."""
        slots = [self.slots[i] for i in ids]
        states = spec.GraspStates.stack([s.episode.state(s.step_index) for s in slots])
        return spec.observation_batch(states, np.stack([s.episode.action for s in slots]))

    def step(self, actions):
        """Every slot takes its action and runs to its next decision; then all observations and
        reward terms are computed in one batched pass (:func:`spec.observation_batch`,
        :func:`spec.reward_terms_batch`, equal bit for bit to the per-state forms); finished
        slots start their next episode, in slot order (each draw sees the success rates of the
        slots before it, as when the slots were stepped one after the other)."""
        n = self.num_envs
        actions = np.asarray(actions, dtype=np.float64).reshape(n, -1)
        obs, rewards, done, episodes, final_obs = self._step_slots(range(n), actions, autoreset=True)
        infos = {"episode": episodes, "final_obs": final_obs}
        return obs, rewards.astype(np.float32), done, np.zeros(n, bool), infos

    def _step_slots(self, ids, actions: np.ndarray, autoreset: bool):
        """Step the slots ``ids`` (in order) with ``actions`` (len(ids), action_size): their
        observations (float32), rewards (float64), done flags and episode summaries, and with
        ``autoreset`` the final observations too (finished slots then start their next episode
        and return its first observation)."""
        ids = list(ids)
        n = len(ids)
        actions = np.asarray(actions, dtype=np.float64).reshape(n, -1)
        slots = [self.slots[i] for i in ids]
        diverged = np.array([slot.advance(actions[j]) for j, slot in enumerate(slots)], dtype=bool)
        final = np.array([slot.step_index >= slot.episode.last_step for slot in slots], dtype=bool)
        action = np.stack([slot.episode.action for slot in slots])
        previous = np.stack([slot.episode.previous for slot in slots])
        obs = np.zeros((n, self.single_observation_space.shape[0]), np.float32)
        live = np.flatnonzero(~diverged)
        terms = {k: np.zeros(n) for k in spec.REWARD_TERMS}
        rise, hand_error = np.full(n, np.nan), np.full(n, np.nan)  # NaN for diverged slots
        if live.size:
            states = spec.GraspStates.stack([slots[j].episode.state(slots[j].step_index) for j in live])
            obs[live] = spec.observation_batch(states, action[live])
            for key, value in spec.reward_terms_batch(states, action[live], previous[live], self.config.reward,
                                                      final=final[live]).items():
                terms[key][live] = value
            rise[live], hand_error[live] = states.rise(), states.hand_error()
        terms["diverged"][diverged] = -self.config.reward.diverged
        rewards = np.zeros(n)
        for key in spec.REWARD_TERMS:  # the order of the per-slot sum
            rewards = rewards + terms[key]
        self._totals[ids] += np.stack([terms[k] for k in spec.REWARD_TERMS], axis=1)
        done = final | diverged
        episodes: list[EpisodeInfo | None] = [None] * n
        final_obs = [None] * n
        for j in np.flatnonzero(done):
            slot = slots[j]
            success = bool(not diverged[j] and graspxl_rule(float(rise[j]), float(hand_error[j])))
            self.record(slot.object_index, success)
            totals = self._totals[slot.index].tolist()
            episodes[j] = EpisodeInfo(
                object=slot.name, success=success, rise=float(rise[j]), hand_error=float(hand_error[j]),
                diverged=bool(diverged[j]), reward=float(sum(totals)), terms=dict(zip(spec.REWARD_TERMS, totals)))
            if autoreset:
                final_obs[j] = obs[j].copy()
                self._totals[slot.index] = 0.0
                slot.start()
        if autoreset and done.any():
            obs[done] = self._first_observations([ids[j] for j in np.flatnonzero(done)])
        return obs, rewards, done, episodes, final_obs

    def close_extras(self, **kwargs):
        self.scenes = []
