"""``pam score-actions``: simulate candidate grasps in one scene and rank them by a goal, as DWM
uses a world model to evaluate candidate actions (docs/worldmodels.md, "Scoring candidate
actions"), with the physics itself as the model.

The scene is episode ``index`` of a ``pam generate`` config (its objects and Stage I seed, so the
same placement and settling), or that plan with another seed. Candidates are grasp targets hT
(the synthesizer's best ``n``, the user's files) crossed with controllers (the scripted one, trained
``.pth`` policies); a controller alone, with no hT, runs Stage I's own choice (synthesis and the
physical trial). Every candidate starts from the same settled scene, with its objects at the
poses Stage I placed them at. The ranking goes to ``score_actions.json``; with ``write_episodes``
each candidate's episode goes beside it.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pam_engine.config import to_dict
from pam_engine.dataset.format import EPISODE_RE, SCORE_ACTIONS_FILE, TMP_PREFIX
from pam_engine.errors import ConfigError, OutputError, PamError
from pam_engine.pipeline import GenerateConfig, plan_episode
from pam_engine.pose.request import ObjectSpec, Stage1Request
from pam_engine.worldmodels.goals import describe


@dataclass
class Candidate:
    """One action to try: a grasp target (None: Stage I chooses) under a controller (None: scripted)."""

    name: str
    grasp: object | None = None  # pam_engine.pose.grasp.target.GraspTarget
    policy: object | None = None
    source: str = "synthesis"  # "synthesis", "file" or "stage1"


@dataclass
class Scene:
    """The scene every candidate runs in: objects at their placed poses, the Stage I seed."""

    objects: list[ObjectSpec]
    seed: int
    index: int


def plan_scene(cfg: GenerateConfig, index: int = 0, seed: int | None = None) -> Scene:
    """Episode ``index``'s objects and seed (``seed`` overrides the seed), placed as Stage I places
    them, so that every candidate meets the same scene."""
    from pam_engine.pose.setup import load_objects, place_objects

    if index < 0:
        raise ConfigError(f"--episode {index}: expected an index >= 0")
    plan = plan_episode(cfg, index)
    seed = plan.seed if seed is None else int(seed)
    if seed < 0:
        raise ConfigError(f"--seed {seed}: expected an integer >= 0")
    assets = load_objects(plan.objects)
    poses = place_objects(assets, plan.objects, np.random.default_rng(seed), cfg.stage1.placement_radius)
    objects = [ObjectSpec(o.name, pose=p, scale=o.scale, mass=o.mass) for o, p in zip(plan.objects, poses)]
    return Scene(objects, seed, index)


def synthesized_grasps(cfg: GenerateConfig, scene: Scene, count: int) -> list:
    """The synthesizer's ``count`` best grasps of the target object in the settled scene."""
    from pam_engine.pose.grasp.synthesis import GraspSynthesizer
    from pam_engine.pose.setup import build_scene, load_objects, settle

    if count <= 0:
        return []
    assets = load_objects(scene.objects)
    sim = build_scene(assets, [np.asarray(o.pose) for o in scene.objects], cfg.stage1)
    settle(sim, cfg.stage1)
    synth = replace(cfg.stage1.synthesis, seed=scene.seed)
    return GraspSynthesizer(sim, 0, synth).synthesize(count)


def check_goal(goal, scene: Scene) -> None:
    """A goal's object index is one of the scene's objects (ConfigError otherwise)."""
    n_obj = len(scene.objects)
    if getattr(goal, "object", None) is not None and not 0 <= goal.object < n_obj:
        raise ConfigError(f"goal {goal.kind}: object {goal.object} is not one of the scene's objects 0..{n_obj - 1}")


def check_output(out: str | Path, write_episodes: bool) -> Path:
    """The output folder, checked before any simulation: a dataset folder (or new) without a
    ranking, and without episodes when candidates' episodes are to be written there."""
    from pam_engine.dataset.writer import check_output_dir

    root = check_output_dir(out)
    if (root / SCORE_ACTIONS_FILE).exists():
        raise OutputError(f"{root / SCORE_ACTIONS_FILE} exists; choose another --out (a ranking is never overwritten)")
    if write_episodes and any(EPISODE_RE.match(p.name) for p in root.iterdir()):
        raise OutputError(f"--out {root} already holds episodes; candidates' episodes need an empty folder")
    return root


def score_candidates(cfg: GenerateConfig, scene: Scene, candidates: list[Candidate], goal, out: str | Path,
                     write_episodes: bool = False, progress: bool = True) -> dict:
    """Simulate every candidate, score it by ``goal``, rank, and write ``score_actions.json``
    (atomically) into ``out``; returns its content. A candidate that cannot run (an unreachable
    hT, ...) is ranked last with a null score and its error."""
    from pam_engine.pose.stage import run_stage1

    if not candidates:
        raise ConfigError("no candidates to score: give synthesized grasps (--candidates N), grasp files (--grasp) "
                          "or policies (--policy)")
    root = check_output(out, write_episodes)
    check_goal(goal, scene)
    metric = goal_image = None
    if goal.needs_render:
        metric, goal_image = goal.load()
    camera = None
    if goal.needs_render or write_episodes:
        from pam_engine.capture.camera import sample_camera

        target = np.asarray(scene.objects[0].pose)[:3, 3] + np.array([0.0, 0.0, 0.08])
        camera = sample_camera(np.random.default_rng([cfg.seed, scene.index, 2]), target, cfg.randomization.camera)
    writer = None
    if write_episodes:
        from pam_engine.dataset.writer import EpisodeWriter

        writer = EpisodeWriter(root)

    rows = []
    for i, cand in enumerate(tqdm(candidates, desc="candidates", disable=not progress)):
        row = {"name": cand.name, "score": None, "metrics": {"source": cand.source}, "episode": None}
        try:
            request = Stage1Request(scene.objects, target=0, grasp=copy.deepcopy(cand.grasp), seed=scene.seed)
            run = run_stage1(request, cfg.stage1, cand.policy)
        except PamError as exc:
            row["metrics"]["error"] = f"{type(exc).__name__}: {exc}"
            rows.append(row)
            continue
        traj = run.trajectory
        row["metrics"].update(policy=traj.policy, success=bool(traj.success), failure_reason=traj.failure_reason,
                              rise_m=float(traj.pose_y[-1, 0, 2, 3] - traj.pose_y[0, 0, 2, 3]))
        seq = None
        if camera is not None:
            look = np.random.default_rng([cfg.seed, scene.index, 3]) if cfg.randomization.preview else None
            static_rng = copy.deepcopy(look)
            seq = run.scene.capture(traj, camera, look)
        if metric is not None:
            import cv2

            last = seq.rgb[-1]
            goal_rgb = cv2.resize(goal_image, (last.shape[1], last.shape[0]), interpolation=cv2.INTER_AREA)
            distance = metric.distance(last, goal_rgb)
            score, extra = -distance, {"lpips": distance}
        else:
            score, extra = goal.score(traj)
        row["score"] = float(score)
        row["metrics"].update(extra)
        if writer is not None:
            from pam_engine.dataset.episode import make_episode

            episode = make_episode(traj, camera, seq, prompt="", policy_version=traj.policy.rsplit("-", 1)[-1],
                                   map_style=cfg.maps, actions=cfg.world_models.actions,
                                   extra={"score_actions": {"candidate": cand.name, "score": row["score"]}})
            if cfg.world_models.static_video:
                episode.set_static(run.scene.capture_static(traj, camera, static_rng).rgb)
            row["episode"] = writer.write(episode, index=i).name
        rows.append(row)

    order = sorted(range(len(rows)), key=lambda k: (rows[k]["score"] is None, -(rows[k]["score"] or 0.0), k))
    ranked = [{"rank": r + 1, **rows[k]} for r, k in enumerate(order)]
    result = {"goal": describe(goal),
              "scene": {"episode": scene.index, "seed": scene.seed, "config_seed": cfg.seed,
                        "objects": [str(o.name) for o in scene.objects],
                        "object_poses": [np.asarray(o.pose).tolist() for o in scene.objects]},
              "candidates": ranked}
    write_json_atomic(root / SCORE_ACTIONS_FILE, result)
    return result


def write_json_atomic(path: Path, data: dict) -> Path:
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_text(json.dumps(to_dict(data), indent=2, allow_nan=False), encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path

