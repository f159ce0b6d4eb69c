"""What a Stage I grasp controller is (:class:`GraspPolicy`, defined by the rollout that calls
it) and the scripted default that plays the plan back; trained ones are in
:mod:`pam_engine.policy.learned`."""

from __future__ import annotations

from pam_engine.pose.rollout import GraspPolicy, ScriptedPolicy

__all__ = ["GraspPolicy", "ScriptedPolicy"]
