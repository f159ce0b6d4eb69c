"""Episode set-up for the Isaac Lab task, and the same episodes played on MuJoCo (no ``isaaclab``
import: the embedded side of every sim-to-sim comparison)."""

from __future__ import annotations

import numpy as np


class EpisodeSource:
    """The MuJoCo ``GraspVecEnv``'s episode set-up, slot by slot: env ``i`` draws from slot
    ``i``'s rng (``default_rng([seed, i])``), so with one object the two backends play the very
    same episodes for a seed."""

    def __init__(self, engine, num_envs: int, seed: int, bank, num_objects: int, slot_seeds: list[int] | None = None):
        """``slot_seeds[i]``: slot ``i`` draws from ``default_rng([seed, slot_seeds[i]])`` instead
        of ``[seed, i]`` (two envs given the same index play the same episodes: a paired
        comparison of two policies in one batch)."""
        from pam_engine.rl.env import GraspVecEnv

        self.vec = GraspVecEnv(engine, num_envs=num_envs, seed=seed, bank=bank, progress=False)
        if slot_seeds is not None:
            for slot, k in zip(self.vec.slots, slot_seeds):
                slot.rng = np.random.default_rng([seed, int(k)])
        self.pinned: int | None = None
        draw = self.vec.draw_object

        def pinned_draw(rng):
            k = draw(rng)  # consumes the rng as GraspVecEnv does
            return k if self.pinned is None else self.pinned

        self.vec.draw_object = pinned_draw
        self.multi = num_objects > 1

    def start(self, i: int, k: int):
        """Slot ``i``'s next episode on object ``k``, advanced to its first decision."""
        slot = self.vec.slots[i]
        self.pinned = k if self.multi else None
        try:
            slot.reset()  # set-up and the scripted approach up to the first decision
        finally:
            self.pinned = None
        return slot.episode, slot.step_index

    def record(self, k: int, success: bool) -> None:
        self.vec.record(k, success)


def play_mujoco(engine, num_envs: int, seed: int, act, rounds: int, bank, multi: bool = False,
                slot_seeds: list[int] | None = None) -> list[dict]:
    """The episodes an Isaac task with ``num_envs`` envs and this seed plays, on MuJoCo: slot
    ``i`` (on object ``i`` when ``multi``), ``rounds`` episodes each; ``act(obs (1, obs_size), i)
    -> (1, 13)``. ``slot_seeds[i]`` replaces slot ``i``'s rng stream index (see :func:`paired`)."""
    source = EpisodeSource(engine, num_envs, seed, bank, num_envs if multi else 1, slot_seeds)
    out = []
    for _ in range(rounds):
        for i in range(num_envs):
            slot = source.vec.slots[i]
            source.pinned = i if multi else None
            try:
                obs = slot.reset()
            finally:
                source.pinned = None
            while True:
                obs, _, done, info = slot.step(np.asarray(act(obs[None], i), dtype=np.float64)[0])
                if done:
                    out.append({"env": i, "object": info.object, "success": info.success, "rise": info.rise,
                                "hand_error": info.hand_error, "diverged": info.diverged})
                    break
    return out
