"""``pam score-actions``: simulate candidate grasps for one scene and rank them by a goal
(docs/worldmodels.md, "Scoring candidate actions")."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "score-actions", help="simulate candidate grasps for one scene and rank them by a goal (lifted, target_pose, lpips)",
        description="Simulate N candidate grasps (synthesized hT, grasp files, trained policies) in one scene of a "
        "generate config and rank them by a goal; writes score_actions.json (and, with --write-episodes, each "
        "candidate's episode) into --out.")
    p.add_argument("--config", default=None, help="generate config YAML (default: the built-in defaults)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (repeatable), as for pam generate")
    p.add_argument("--episode", type=int, default=0, help="which episode of the config is the scene (default 0)")
    p.add_argument("--seed", type=int, default=None, help="Stage I seed of the scene (default: the episode's)")
    p.add_argument("--candidates", type=int, default=4, help="synthesized grasps to try, best first (default 4)")
    p.add_argument("--grasp", action="append", default=[], metavar="PATH",
                   help="a grasp target hT file (.json/.npz: wrist_in_object 4x4, angles, approach), as for pam simulate "
                        "(repeatable)")
    p.add_argument("--policy", action="append", default=[], metavar="PATH",
                   help="controller: a trained policy .pth or 'scripted' (repeatable; each grasp runs under each; "
                        "without grasps, each runs Stage I's own choice); default: scripted")
    p.add_argument("--goal", default="lifted", help="lifted (object rise), target_pose (distance to a pose) or lpips "
                   "(to a goal image); default lifted")
    p.add_argument("--goal-arg", dest="goal_args", action="append", default=[], metavar="KEY=VALUE",
                   help="goal setting (repeatable), e.g. position=[0,0,0.2] for target_pose, image=goal.png for lpips")
    p.add_argument("--lpips-weights", default=None, metavar="PATH",
                   help="LPIPS linear-layer weights (the lpips package's weights/v0.1/alex.pth) for --goal lpips")
    p.add_argument("--out", required=True, help="output folder for score_actions.json (a dataset folder or new)")
    p.add_argument("--write-episodes", action="store_true", help="also write each candidate's episode into --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pam_engine.config import apply_overrides, from_dict, load_yaml, parse_override
    from pam_engine.errors import ConfigError
    from pam_engine.pipeline import GenerateConfig
    from pam_engine.worldmodels.goals import make_goal
    from pam_engine.worldmodels.score import Candidate, check_goal, check_output, plan_scene, score_candidates, synthesized_grasps

    # everything the user typed is checked before any simulation
    goal_args = {}
    for text in args.goal_args:
        parts, value = parse_override(text)
        goal_args[".".join(parts)] = value
    if args.lpips_weights is not None:
        if args.goal != "lpips":
            raise ConfigError(f"--lpips-weights is for --goal lpips, not --goal {args.goal}")
        goal_args["weights"] = args.lpips_weights
    goal = make_goal(args.goal, goal_args)
    if args.candidates < 0:
        raise ConfigError(f"--candidates {args.candidates}: expected a count >= 0")
    if args.candidates == 0 and not args.grasp and not args.policy:
        raise ConfigError("zero candidates: --candidates 0 and no --grasp or --policy given; expected at least one")
    given = apply_overrides(load_yaml(args.config) if args.config else {}, args.overrides)
    cfg = from_dict(GenerateConfig, given).resolve(given)
    from pam_engine.pose.setup import HandCache

    hand, articulation = HandCache.get(cfg.stage1.mano)
    from pam_engine.commands.simulate import load_grasp

    files = [(Path(path).stem, load_grasp(path, articulation.size)) for path in args.grasp]
    policies = []
    for path in args.policy or ["scripted"]:
        if path == "scripted":
            policies.append(("scripted", None))
        else:
            from pam_engine.policy.loading import load_policy

            policies.append((Path(path).stem, load_policy(path, n_dof=articulation.size)))
    scene = plan_scene(cfg, args.episode, args.seed)
    check_goal(goal, scene)
    check_output(args.out, args.write_episodes)  # creates the folder: only once every input passed
    grasps = [(f"synth-{i}-{g.family}", g, "synthesis") for i, g in enumerate(synthesized_grasps(cfg, scene, args.candidates))]
    grasps += [(name, g, "file") for name, g in files]
    candidates = []
    for name, grasp, source in grasps or [("stage1", None, "stage1")]:
        for policy_name, policy in policies:
            label = name if len(policies) == 1 and policy is None else f"{name}+{policy_name}"
            candidates.append(Candidate(label, grasp, policy, source))
    result = score_candidates(cfg, scene, candidates, goal, args.out, args.write_episodes, progress=not args.no_progress)
    for row in result["candidates"]:
        score = "failed to run" if row["score"] is None else f"{row['score']:.4f}"
        print(f"{row['rank']:3d}. {row['name']}: {score}" + (f" -> {row['episode']}" if row["episode"] else ""))
    print(f"goal {goal.kind}: ranking -> {Path(args.out) / 'score_actions.json'}")
    return 0
