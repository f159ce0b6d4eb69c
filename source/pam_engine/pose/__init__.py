"""Stage I (Pose): objects o0, hand start h0 and grasp target hT to a simulated grasp trajectory.

- :mod:`~pam_engine.pose.request`: what to simulate (:class:`Stage1Request`, :class:`ObjectSpec`)
  and how (:class:`Stage1Config`);
- :mod:`~pam_engine.pose.setup`: the public episode-setup API (placement, settle, grasp choice,
  h0, reachability, plan) that Stage I, the RL environment and the grasp bank share;
- :mod:`~pam_engine.pose.grasp`: grasp synthesis, the physical trial, the plan;
- :mod:`~pam_engine.pose.rollout`: a controller drives the plan, the scene is recorded;
- :mod:`~pam_engine.pose.success`: the engine's success rule and GraspXL's, named apart;
- :mod:`~pam_engine.pose.stage`: :func:`run_stage1` / :func:`simulate`, the whole stage.

The names below load their modules on first use (importing the package loads no simulator)::

    from pam_engine.pose import ObjectSpec, Stage1Request, simulate
    traj = simulate(Stage1Request([ObjectSpec("006_mustard_bottle")], seed=0))
"""

from __future__ import annotations

from importlib import import_module

_LAZY = {
    "ObjectSpec": "request",
    "Stage1Config": "request",
    "Stage1Request": "request",
    "HandCache": "setup",
    "EpisodeSetup": "setup",
    "prepare_episode": "setup",
    "GraspPolicy": "rollout",
    "ScriptedPolicy": "rollout",
    "Stage1Run": "stage",
    "run_stage1": "stage",
    "simulate": "stage",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
