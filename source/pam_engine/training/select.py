"""Choosing the policy a run ships: every snapshot is played on held-out objects and seeds the
training never sees, and the best one wins (not the last: PPO can fall off after its best epoch).

Each candidate plays the same episodes (object, seed -> placement, synthesized hT, h0) as Stage I
would, judged by GraspXL's rule (:func:`pam_engine.pose.success.graspxl_rule`), the rule the
benchmarks report; ties go to the earlier snapshot.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Selection:
    """Held-out success per candidate and the one chosen."""

    objects: list[str]
    seeds: list[int]
    scores: dict[str, float] = field(default_factory=dict)  # candidate file -> success rate
    chosen: str = ""

    def write(self, path: Path) -> Path:
        """The record of the choice, beside the shipped policy (atomic)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".partial")
        tmp.write_text(json.dumps(self.__dict__, indent=2) + "\n")
        os.replace(tmp, path)
        return path


class _Recorder:
    """Passes a policy through and keeps the plan, for the GraspXL rule's target."""

    def __init__(self, policy):
        self.policy, self.name, self.version = policy, policy.name, policy.version

    def reset(self, scene, plan, target):
        self.plan = plan
        self.policy.reset(scene, plan, target)

    def act(self, step):
        return self.policy.act(step)


def graspxl_success(traj, scene, plan, target: int) -> bool:
    """GraspXL's rule on a recorded trajectory: the centre of mass rose > 0.1 m and the wrist
    ends within 0.1 m of hT carried with the object."""
    from pam_engine.pose.success import graspxl_rule

    com = np.asarray(scene.objects[target].asset.com, dtype=np.float64)

    def pose(f):
        return np.vstack([traj.pose_y[f, target], [0.0, 0.0, 0.0, 1.0]])

    start, end = pose(0), pose(traj.num_frames - 1)
    rise = float((end[:3, :3] @ com + end[:3, 3])[2] - (start[:3, :3] @ com + start[:3, 3])[2])
    grasp_in_object = np.linalg.inv(start) @ plan.grasp_wrist
    hand_error = float(np.linalg.norm(traj.wrist_pose[-1][:3, 3] - (end @ grasp_in_object)[:3, 3]))
    return graspxl_rule(rise, hand_error) and not traj.failure_reason.startswith("simulation diverged")


def _episode(args):
    """(success, grasp) of one episode; ``grasp`` given replays the episode of that seed without
    synthesis (the request seed fixes placement and h0; synthesis draws from its own seed)."""
    policy_path, name, seed, grasp = args
    from pam_engine.policy.loading import load_policy
    from pam_engine.pose import ObjectSpec, ScriptedPolicy, Stage1Request
    from pam_engine.pose.stage import run_stage1

    policy = _Recorder(load_policy(policy_path) if policy_path else ScriptedPolicy())
    run = run_stage1(Stage1Request([ObjectSpec(name)], seed=seed, grasp=grasp), policy=policy)
    if not hasattr(policy, "plan"):  # no grasp was found: the episode failed before a plan
        return False, None
    return graspxl_success(run.trajectory, run.scene, policy.plan, 0), run.grasp


def _run(tasks, jobs: int) -> list:
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            return list(pool.map(_episode, tasks))
    return [_episode(t) for t in tasks]


def evaluate(policy_path: str | None, objects, seeds, jobs: int = 1, grasps: dict | None = None) -> float:
    """Success rate of a policy file (None: the scripted plan) over ``objects`` x ``seeds``;
    ``grasps`` ((object, seed) -> hT, or None where none was found) skips synthesis."""
    episodes = [(str(o), int(s)) for o in objects for s in seeds]
    if grasps is not None:
        episodes = [e for e in episodes if grasps.get(e) is not None]  # no grasp: failed, see below
        failed = len(objects) * len(seeds) - len(episodes)
    else:
        failed = 0
    tasks = [(None if policy_path is None else str(policy_path), o, s, None if grasps is None else grasps[(o, s)])
             for o, s in episodes]
    results = [ok for ok, _ in _run(tasks, jobs)] + [False] * failed
    return float(np.mean(results)) if results else float("nan")


def choose(candidates, objects, seeds, jobs: int = 1) -> Selection:
    """Evaluate every candidate policy file on the same held-out episodes; the best is chosen.
    The episodes' grasps are synthesized once (the scripted plan's run, recorded as
    ``scores["scripted"]``) and every candidate replays them."""
    sel = Selection([str(o) for o in objects], [int(s) for s in seeds])
    episodes = [(str(o), int(s)) for o in objects for s in seeds]
    scripted = _run([(None, o, s, None) for o, s in episodes], jobs)
    grasps = {e: g for e, (_, g) in zip(episodes, scripted)}
    sel.scores["scripted"] = float(np.mean([ok for ok, _ in scripted])) if scripted else float("nan")
    for path in candidates:
        sel.scores[str(path)] = evaluate(path, objects, seeds, jobs, grasps)
    policies = [k for k in sel.scores if k != "scripted"]
    if policies:
        sel.chosen = max(policies, key=lambda k: (sel.scores[k], -policies.index(k)))
    return sel
