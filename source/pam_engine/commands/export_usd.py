"""``pam export-usd``: an episode scene (or the hand, or an object) as a UsdPhysics file."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from pam_engine.errors import ConfigError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export-usd",
        help="write the scene of an episode (table, objects at o0, hand at h0, lights, camera) as USD",
        description="Write USD (UsdPhysics) for Isaac Sim / Isaac Lab / usdview: the scene Stage I sets up for "
        "--object/--seed, or the scene of a recorded --trajectory or --episode with its frames as time samples; "
        "--asset hand|object writes the hand articulation or one object alone.",
    )
    p.add_argument("--out", required=True, help="output .usd, .usda or .usdc")
    p.add_argument("--object", dest="objects", action="append", default=[],
                   help="DexYCB id, YCB name or mesh file; repeat for several objects (the first is grasped)")
    p.add_argument("--seed", type=int, default=0, help="episode seed (object placement, grasp, h0, camera)")
    p.add_argument("--trajectory", default=None, help="trajectory .npz from `pam simulate`: its scene and its frames as animation")
    p.add_argument("--episode", default=None, help="episode folder from `pam generate`: its scene, its camera and its frames as animation")
    p.add_argument("--asset", choices=("hand", "object"), default=None,
                   help="write only the hand articulation, or only the (first) --object, at the origin")
    p.add_argument("--camera", default=None, help="camera .json with K (3x3), world_to_cam (4x4), width, height "
                   "(an episode's meta.json works); default: drawn from --seed like `pam generate`")
    p.add_argument("--mano", default=None, help="MANO_RIGHT.pkl or its folder (default: $PAM_MANO_DIR, else the built-in hand)")
    p.set_defaults(func=run)


def read_camera(path: str):
    from pam_engine.capture.camera import Camera

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--camera {file} does not exist")
    try:
        data = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--camera {file} is not valid JSON: {exc}") from exc
    data = data.get("camera", data) if isinstance(data, dict) else data
    if not isinstance(data, dict) or not {"K", "world_to_cam", "width", "height"} <= set(data):
        raise ConfigError(f"--camera {file}: expected keys K, world_to_cam, width, height")
    try:
        return Camera(np.asarray(data["K"], dtype=np.float64), np.asarray(data["world_to_cam"], dtype=np.float64),
                      int(data["width"]), int(data["height"]))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--camera {file}: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    from pam_engine.pose.setup import HandCache
    from pam_engine.usd import check_output_path, export_hand, export_object, export_scene

    out = check_output_path(args.out)  # before any work
    camera = read_camera(args.camera) if args.camera else None
    sources = [flag for flag, given in (("--object", args.objects), ("--trajectory", args.trajectory),
                                        ("--episode", args.episode)) if given]
    if len(sources) > 1 and not args.asset:
        raise ConfigError(f"give one of --object, --trajectory, --episode, not {' and '.join(sources)}")
    if args.asset and (args.trajectory or args.episode):
        raise ConfigError("--asset writes one asset at rest; it takes no --trajectory or --episode")
    hand, articulation = HandCache.get(args.mano)  # a MANO file the engine refuses fails here
    if args.asset == "hand":
        export_hand(out, hand, articulation)
        print(f"hand ({hand.name}, {articulation.size} finger joints) -> {out}")
        return 0
    if args.asset == "object":
        from pam_engine.objects import load_object

        if len(args.objects) != 1:
            raise ConfigError("--asset object needs exactly one --object")
        asset = load_object(args.objects[0])
        export_object(out, asset)
        print(f"object {asset.name} ({asset.mass:.3f} kg, {len(asset.collision_parts)} hulls) -> {out}")
        return 0

    from pam_engine.usd.scene import default_camera, scene_from_episode, scene_from_request, scene_from_trajectory

    trajectory = None
    if args.episode:
        scene, trajectory = scene_from_episode(args.episode, hand, articulation)
    elif args.trajectory:
        from pam_engine.trajectory import Trajectory

        trajectory = Trajectory.load(args.trajectory)
        scene = scene_from_trajectory(trajectory, hand, articulation)
    elif args.objects:
        from pam_engine.pose.request import ObjectSpec, Stage1Config, Stage1Request

        request = Stage1Request([ObjectSpec(o) for o in args.objects], seed=args.seed)
        scene = scene_from_request(request, Stage1Config(mano=args.mano))
    else:
        raise ConfigError("give --object (with --seed), --trajectory or --episode")
    scene = replace(scene, camera=camera or scene.camera or default_camera(scene, args.seed))
    export_scene(out, scene, trajectory)
    frames = f", {trajectory.num_frames} frames at {trajectory.fps:g} fps" if trajectory is not None else ""
    print(f"scene ({', '.join(p.asset.name for p in scene.objects)}; {hand.name} hand{frames}) -> {out}")
    return 0
