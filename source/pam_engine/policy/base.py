"""What a Stage I grasp policy is: something that, each control step, gives the hand's
position-servo targets (wrist joints and finger joints) given the scene and the grasp plan."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from pam_engine.policy.plan import GraspPlan
from pam_engine.sim.scene import HandObjectScene


class GraspPolicy(Protocol):
    name: str
    version: str

    def reset(self, scene: HandObjectScene, plan: GraspPlan, target: int) -> None:
        """Start an episode in ``scene`` following ``plan`` to grasp object ``target``."""

    def act(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Wrist joint targets (6,) and finger joint targets (n_dof,) for control step ``step``."""


class ScriptedPolicy:
    """Plays the plan back open-loop: the fallback Stage I controller and the RL baseline."""

    name = "scripted"
    version = "1"

    def reset(self, scene: HandObjectScene, plan: GraspPlan, target: int) -> None:
        self.plan = plan

    def act(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        return self.plan.wrist_q[step], self.plan.fingers[step]
