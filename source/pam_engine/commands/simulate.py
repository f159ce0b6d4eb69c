"""``pam simulate``: Stage I alone, from objects to a trajectory ``.npz``."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from pam_engine.errors import ConfigError, OutputError, PoseError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="run Stage I (physics + grasp policy) and save the trajectory",
        description="Simulate a grasp on the embedded MuJoCo backend and write the trajectory "
        "(pose_m, joint_3d, pose_y, contacts, success, ...) as .npz. Keys: see README.",
    )
    p.add_argument("--object", dest="objects", action="append", required=True,
                   help="DexYCB id, YCB name or mesh file; repeat for several objects (the first is grasped unless --target)")
    p.add_argument("--mass", dest="masses", action="append", type=float, default=None,
                   help="mass in kg of the objects, in --object order (repeat; default: the published YCB "
                        "mass, else the mesh's volume at 500 kg/m^3)")
    p.add_argument("--target", type=int, default=0, help="index of the object to grasp (default 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output .npz path")
    p.add_argument("--frames", type=int, default=49, help="frames to record (default 49)")
    p.add_argument("--fps", type=float, default=15.0, help="capture rate (default 15)")
    p.add_argument("--lift", type=float, default=0.20, help="lift height in metres (default 0.2)")
    p.add_argument("--mano", default=None, help="MANO_RIGHT.pkl or its folder (default: $PAM_MANO_DIR, else the built-in hand)")
    p.add_argument("--grasp", default=None, help="grasp target hT (.json/.npz with wrist_in_object 4x4, angles, approach); default: synthesized")
    p.add_argument("--hand-start", default=None, help="start pose h0 (.json/.npz with wrist 4x4 and angles, or pose_m (51)); default: derived from hT")
    p.add_argument("--policy", default=None, help="trained grasp policy checkpoint (.pth from `pam train-policy`, e.g. "
                   "policies/grasp_residual.pth); default: the scripted controller")
    p.add_argument("--backend", default="mujoco", help="physics backend: mujoco (embedded, default) or isaaclab "
                   "(kit-less Isaac Lab 3.0 on Newton; see docs/isaaclab.md; one --object, the scripted plan)")
    p.add_argument("--physics", default="newton", help="Isaac Lab physics preset (--backend isaaclab): newton (default, "
                   "kit-less) or physx (Isaac Sim)")
    p.add_argument("--device", default="cpu", help="Isaac Lab device (--backend isaaclab): cpu, cuda or cuda:N")
    p.set_defaults(func=run)


def _read_arrays(path: str) -> dict[str, np.ndarray]:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"pose file {file} does not exist")
    if file.suffix == ".json":
        try:
            data = json.loads(file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"pose file {file} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"pose file {file}: expected a JSON object of named numeric arrays, got a "
                              f"{type(data).__name__}")
        try:
            return {str(k): np.asarray(v, dtype=np.float64) for k, v in data.items()}
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"pose file {file}: values must be numeric arrays ({exc})") from exc
    if file.suffix == ".npz":
        try:
            with np.load(file, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except Exception as exc:  # noqa: BLE001 - zip, npy header, pickled-object and truncation errors
            raise ConfigError(f"pose file {file} is not a readable .npz of numeric arrays "
                              f"({type(exc).__name__}: {exc or 'empty file'})") from None
    raise ConfigError(f"pose file {file} must be .json or .npz")


def _require(arrays: dict, key: str, shape: tuple, path: str) -> np.ndarray:
    if key not in arrays:
        raise ConfigError(f"{path} lacks {key!r}")
    try:
        value = np.asarray(arrays[key], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PoseError(f"{path}: {key!r} is not numeric ({exc})") from None
    if value.shape != shape:
        raise PoseError(f"{path}: {key!r} has shape {value.shape}, expected {shape}")
    if not np.all(np.isfinite(value)):
        raise PoseError(f"{path}: {key!r} holds NaN or inf")
    return value


def load_grasp(path: str, n_dof: int):
    from pam_engine.pose.grasp.synthesis import GraspTarget

    arrays = _read_arrays(path)
    return GraspTarget(
        wrist_in_object=_require(arrays, "wrist_in_object", (4, 4), path),
        angles=_require(arrays, "angles", (n_dof,), path),
        approach=_require(arrays, "approach", (3,), path),
    )


def load_hand_start(path: str, articulation, rest_wrist):
    from pam_engine.hand.pose import HandPose, from_pose_m

    arrays = _read_arrays(path)
    if "pose_m" in arrays:
        return from_pose_m(_require(arrays, "pose_m", (51,), path), articulation, rest_wrist)
    return HandPose(_require(arrays, "wrist", (4, 4), path), _require(arrays, "angles", (articulation.size,), path))


def check_backend(name: str, args: argparse.Namespace | None = None) -> None:
    """``mujoco`` runs here; ``isaaclab`` needs Isaac Lab (else the error names the install steps),
    one object and the scripted plan, a known physics preset and device."""
    if name == "mujoco":
        return
    if name != "isaaclab":
        raise ConfigError(f"--backend {name!r}: expected 'mujoco' or 'isaaclab'")
    from pam_engine.isaaclab import check_device, check_physics, require_isaaclab

    require_isaaclab()
    if args is None:
        return
    check_physics(getattr(args, "physics", "newton"))
    check_device(getattr(args, "device", "cpu"))
    if len(args.objects) != 1:
        raise ConfigError(f"--backend isaaclab: one --object (the task spawns the grasped object alone), got "
                          f"{len(args.objects)}")
    if args.policy:
        raise ConfigError("--backend isaaclab plays the scripted plan; a --policy runs there through "
                          "`python standalone/play.py`")


def simulate_isaaclab(request, config, args):
    """Stage I of ``request`` in a one-env Isaac Lab task (no camera): the trajectory."""
    from pam_engine.isaaclab.stage1 import IsaacEpisodeInput, IsaacStage1

    stage = IsaacStage1(config, str(request.objects[0].name), num_envs=1, device=args.device, physics=args.physics)
    try:
        return stage.run([IsaacEpisodeInput(request)])[0].trajectory
    finally:
        stage.close()


def _check_writable(out: Path) -> None:
    """The output can be written, found out before the simulation rather than after it."""
    import uuid

    probe = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.probe")
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"--out {out}: folder {out.parent} cannot be written ({exc.strerror or exc})") from None
    if out.exists() and not os.access(out, os.W_OK):
        raise OutputError(f"--out {out} exists and is read-only")


def run(args: argparse.Namespace) -> int:
    from pam_engine.pose import HandCache, ObjectSpec, Stage1Config, Stage1Request, simulate

    backend = getattr(args, "backend", "mujoco")
    check_backend(backend, args)
    from pam_engine.pose.request import check_stage1

    out = Path(args.out)
    if out.suffix != ".npz":
        raise OutputError(f"--out {out} must end in .npz")
    if not out.parent.exists() or not out.parent.is_dir():
        raise OutputError(f"--out {out}: folder {out.parent} does not exist")
    if out.is_dir():
        raise OutputError(f"--out {out} is a folder; expected a file name ending in .npz")
    _check_writable(out)
    from dataclasses import replace

    default = Stage1Config()
    config = Stage1Config(num_frames=args.frames, mano=args.mano, scene=replace(default.scene, fps=args.fps),
                          plan=replace(default.plan, lift_height=args.lift))
    flags = {"num_frames": "--frames", "scene.fps": "--fps", "plan.lift_height": "--lift"}
    try:
        check_stage1(config, prefix="")
    except ConfigError as exc:
        text = str(exc)
        for key, flag in flags.items():
            text = text.replace(f"config key {key!r}", flag)
        raise ConfigError(text) from None
    hand, articulation = HandCache.get(args.mano)
    policy = None
    if args.policy:
        from pam_engine.policy.loading import load_policy

        policy = load_policy(args.policy, n_dof=articulation.size)  # checked before any simulation
    grasp = load_grasp(args.grasp, articulation.size) if args.grasp else None
    start = load_hand_start(args.hand_start, articulation, hand.shaped(config.betas)[1][0]) if args.hand_start else None
    masses = args.masses or []
    if len(masses) > len(args.objects):
        raise ConfigError(f"--mass given {len(masses)} times for {len(args.objects)} --object(s)")
    masses = masses + [None] * (len(args.objects) - len(masses))
    request = Stage1Request([ObjectSpec(o, mass=m) for o, m in zip(args.objects, masses)], target=args.target,
                            hand_start=start, grasp=grasp, seed=args.seed)
    t0 = time.perf_counter()
    trajectory = simulate_isaaclab(request, config, args) if backend == "isaaclab" else simulate(request, config, policy)
    trajectory.save(out)
    elapsed = time.perf_counter() - t0
    status = "grasp succeeded" if trajectory.success else f"grasp failed: {trajectory.failure_reason}"
    print(f"{status} ({trajectory.policy} policy); {trajectory.num_frames} frames at {trajectory.fps:g} fps in {elapsed:.1f} s -> {out}")
    return 0
