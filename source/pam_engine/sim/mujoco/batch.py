"""``num_envs`` MuJoCo environments behind the batched seam (:class:`pam_engine.sim.base.HandObjectSim`).

All environments share one compiled model; each has its own ``MjData`` (a
:meth:`HandObjectScene.fresh` view), so they never share state. Batched calls loop over the
views: on CPU one ``MjData`` per env is what MuJoCo offers, and the per-env views stay the fast
path for code that runs one episode at a time.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from pam_engine.sim.mujoco.scene import HandObjectScene


class MujocoSim:
    """A batch of identical MuJoCo scenes; arrays carry a leading env axis."""

    def __init__(self, scene: HandObjectScene, num_envs: int = 1):
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        self.num_envs = int(num_envs)
        self.envs = [scene] + [scene.fresh() for _ in range(self.num_envs - 1)]

    def env(self, i: int) -> HandObjectScene:
        return self.envs[i]

    def _ids(self, env_ids: Sequence[int] | None) -> list[int]:
        return list(range(self.num_envs)) if env_ids is None else [int(i) for i in env_ids]

    def set_targets(self, wrist_q: np.ndarray, finger_q: np.ndarray, env_ids: Sequence[int] | None = None) -> None:
        ids = self._ids(env_ids)
        wrist_q, finger_q = np.asarray(wrist_q), np.asarray(finger_q)
        if wrist_q.shape[0] != len(ids) or finger_q.shape[0] != len(ids):
            raise ValueError(f"targets for {len(ids)} envs: expected leading axes of {len(ids)}, "
                             f"got {wrist_q.shape} and {finger_q.shape}")
        for row, i in enumerate(ids):
            self.envs[i].set_targets(wrist_q[row], finger_q[row])

    def step(self, control_steps: int = 1) -> None:
        for env in self.envs:
            env.step(control_steps)

    def sync(self) -> None:
        for env in self.envs:
            env.sync()

    def wrist_pose(self) -> np.ndarray:
        return np.stack([env.wrist_pose() for env in self.envs])

    def finger_angles(self) -> np.ndarray:
        return np.stack([env.finger_angles() for env in self.envs])

    def keypoints(self) -> np.ndarray:
        return np.stack([env.keypoints() for env in self.envs])

    def object_poses(self) -> np.ndarray:
        return np.stack([env.object_poses() for env in self.envs])

    def contacts(self, target: int) -> np.ndarray:
        return np.stack([env.contacts(target) for env in self.envs])

    def diverged(self) -> np.ndarray:
        return np.array([env.diverged() for env in self.envs], dtype=bool)
