"""A grasp target hT: the data every part of Stage I (synthesis, trial, plan, the grasp bank,
the RL environment) passes around."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class GraspTarget:
    """A grasp hT in the object frame: where the wrist goes, the finger angles at contact and
    the direction (object frame) the hand travels to reach it."""

    wrist_in_object: np.ndarray  # (4, 4)
    angles: np.ndarray  # (n_dof,) finger angles at first contact
    approach: np.ndarray  # (3,) unit vector, object frame
    preshape: np.ndarray | None = None  # (n_dof,) open hand used on the way in
    score: float = 0.0
    quality: float = 0.0  # force-closure epsilon
    parts: np.ndarray = field(default_factory=lambda: np.zeros(6, bool))
    family: str = "power"  # the grasp family that found it (pose.grasp.families)
    #: (n_dof,) how the fingers touching the object close further (synthesis' closing velocity
    #: on their joints, zero elsewhere): the plan presses along it; None for a user's hT
    squeeze: np.ndarray | None = None

    def wrist_world(self, object_pose: np.ndarray) -> np.ndarray:
        return object_pose @ self.wrist_in_object

    def approach_world(self, object_pose: np.ndarray) -> np.ndarray:
        return object_pose[:3, :3] @ self.approach
