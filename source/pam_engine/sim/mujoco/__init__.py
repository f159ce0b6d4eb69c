"""The embedded MuJoCo backend of the simulator seam (:mod:`pam_engine.sim.base`).

- :mod:`~pam_engine.sim.mujoco.scene`: :class:`HandObjectScene`, one compiled ``MjModel`` and one
  ``MjData``: the single-environment view, stepped directly (the fast path);
- :mod:`~pam_engine.sim.mujoco.batch`: :class:`MujocoSim`, ``num_envs`` views of one model
  behind the batched interface;
- :mod:`~pam_engine.sim.mujoco.hand_builder`, :mod:`~pam_engine.sim.mujoco.objects`: the hand
  and the objects written into an ``MjSpec``;
- :mod:`~pam_engine.sim.mujoco.capture`: a recorded trajectory rendered by the MuJoCo
  renderer of :mod:`pam_engine.capture`.
"""

from __future__ import annotations

from pam_engine.sim.base import SceneSpec


class MujocoBackend:
    """Builds MuJoCo scenes from a :class:`~pam_engine.sim.base.SceneSpec`."""

    name = "mujoco"

    def build_env(self, spec: SceneSpec):
        from pam_engine.sim.mujoco.scene import HandObjectScene

        return HandObjectScene(spec.hand, spec.articulation, list(spec.objects), spec.config, betas=spec.betas)

    def build(self, spec: SceneSpec, num_envs: int = 1):
        from pam_engine.sim.mujoco.batch import MujocoSim

        return MujocoSim(self.build_env(spec), num_envs)


MUJOCO_BACKEND = MujocoBackend()
