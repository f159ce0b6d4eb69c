"""The PAM window's controller on CPU with the embedded backend: UI state -> Stage I, capture
and writing on a worker thread, with progress, cancel, a refused second job and field errors."""

import threading

import numpy as np
import pytest

from pam_engine.cli import main
from pam_engine.dataset.reader import list_episodes, load_episode
from pam_engine.kitless.controller import PamController, WindowState, validate
from pam_engine.kitless.replicator_format import camera_params_from_camera

SMALL = dict(object="061_foam_brick", frames=9, width=160, height=128, seed=0)


def finished(controller):
    assert controller.wait(timeout=300)
    return controller.events()


def test_capture_job_from_ui_state_reports_progress_and_writes_a_valid_episode(tmp_path):
    controller = PamController()
    state = WindowState(**SMALL, output_dir=str(tmp_path / "ds"))
    assert controller.start("capture", state) == []
    refused = controller.start("simulate", state)  # Stage I takes seconds: still running
    assert refused and refused[0].field == "job" and "already running" in refused[0].message
    events = finished(controller)
    assert events[-1].kind == "done", events[-1]
    stages = [e.stage for e in events if e.kind == "progress"]
    assert stages[0] == "stage1" and "capture" in stages and stages[-1] == "write"
    order = [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s]
    assert order == ["stage1", "capture", "write"]
    for name in ("stage1", "capture"):
        fractions = [e.fraction for e in events if e.kind == "progress" and e.stage == name]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) > 2
    result = events[-1].result
    assert result.episode_dir == list_episodes(tmp_path / "ds")[0]
    assert main(["validate", str(tmp_path / "ds")]) == 0
    episode = load_episode(result.episode_dir)
    assert episode.num_frames == 9 and episode.seg.shape == (9, 128, 160)
    assert (episode.seg == 255).any() and (episode.seg == 21).any()
    assert controller.open_result_target().name == "index.html"


@pytest.mark.parametrize("stage", ["stage1", "capture"])
def test_cancel_stops_cleanly_and_writes_nothing(tmp_path, stage):
    out = tmp_path / "ds"
    holder = {}

    def on_event(event):
        if event.kind == "progress" and event.stage == stage and 0 < event.fraction < 1 and "done" not in holder:
            holder["done"] = holder["controller"].cancel()  # once: the next job runs to the end

    controller = holder["controller"] = PamController(on_event=on_event)
    assert controller.start("capture", WindowState(**SMALL, output_dir=str(out))) == []
    events = finished(controller)
    assert events[-1].kind == "cancelled" and events[-1].stage == stage, events[-1]
    assert not any(e.stage == "write" for e in events)
    assert list_episodes(out) == [] and not [p for p in out.iterdir() if p.name.startswith(".tmp")]
    assert not controller.busy and controller.cancel() is False
    # the controller takes the next job after a cancel
    assert controller.start("simulate", WindowState(**SMALL, output_dir=str(out))) == []
    assert finished(controller)[-1].kind == "done"


def test_simulate_then_generate_reuses_stage1_and_runs_the_video_stage(tmp_path):
    calls = []

    def fake_video(episode, prompt, seed):  # stands in for Stages II-III (tested in tests/diffusion)
        calls.append((prompt, seed))
        return episode.sim_rgb[..., ::-1].copy()

    controller = PamController(diffusion=fake_video)
    state = WindowState(**SMALL, prompt="a hand lifts a brick", output_dir=str(tmp_path / "ds"))
    assert controller.start("simulate", state) == []
    sim = finished(controller)[-1]
    assert sim.kind == "done" and sim.result.trajectory.num_frames == 9 and sim.result.episode_dir is None
    assert not (tmp_path / "ds").exists() or list_episodes(tmp_path / "ds") == []
    assert controller.start("generate", state) == []
    events = finished(controller)
    assert events[-1].kind == "done" and events[-1].result.diffusion_ran
    assert any(e.message == "reusing the last simulation" for e in events)
    assert calls == [("a hand lifts a brick", 0)]
    episode = load_episode(events[-1].result.episode_dir)
    assert episode.has_video and episode.meta.prompt == "a hand lifts a brick"


def test_viewport_camera_is_used_exactly(tmp_path, mujoco_run):
    params = camera_params_from_camera(mujoco_run.camera)
    controller = PamController()
    state = WindowState(**SMALL, camera="viewport", camera_params=params, output_dir=str(tmp_path / "ds"))
    assert controller.start("capture", state) == []
    done = finished(controller)[-1]
    assert done.kind == "done", done
    episode = load_episode(done.result.episode_dir)
    np.testing.assert_allclose(episode.K, mujoco_run.camera.K, atol=1e-9)
    np.testing.assert_allclose(episode.world_to_cam, mujoco_run.camera.world_to_cam, atol=1e-9)


def test_fields_are_validated_before_any_job(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    bad = {
        "object": dict(object="not_an_object"),
        "object_source": dict(object_source="usd"),
        "resolution": dict(width=150),
        "camera": dict(camera="viewport"),
        "hand_start_pose": dict(hand_start="prim"),
        "policy_path": dict(policy="checkpoint", policy_path=str(tmp_path / "missing.pth")),
        "flux_path": dict(diffusion=True, frames=9, flux_path=str(tmp_path / "nope")),
        "output_dir": dict(output_dir=str(a_file)),
    }
    controller = PamController()
    for name, fields in bad.items():
        state = WindowState(**{**SMALL, "output_dir": str(tmp_path / "ds"), **fields})
        errors = controller.start("capture", state)
        assert name in [e.field for e in errors], (name, errors)
        assert not controller.busy
    mesh_state = WindowState(**{**SMALL, "object_source": "mesh", "object": str(tmp_path / "cup.obj"),
                                "output_dir": str(tmp_path / "ds")})
    assert [e.field for e in validate(mesh_state)] == ["object"]
    dexycb_only = WindowState(**{**SMALL, "object": "025_mug", "output_dir": str(tmp_path / "ds")})
    assert validate(dexycb_only) == []
    other_ycb = WindowState(**{**SMALL, "object": "077_rubiks_cube", "output_dir": str(tmp_path / "ds")})
    assert [e.field for e in validate(other_ycb)] == ["object"]
    assert validate(WindowState(**{**SMALL, "object_source": "ycb", "object": "077_rubiks_cube",
                                   "output_dir": str(tmp_path / "ds")})) == []
    assert not (tmp_path / "ds").exists()  # validation writes nothing
    generate = controller.start("generate", WindowState(**SMALL, output_dir=str(tmp_path / "ds")))
    assert [e.field for e in generate] == ["diffusion"]


def test_job_errors_come_back_as_events_not_tracebacks(tmp_path):
    seen = threading.Event()
    controller = PamController(on_event=lambda e: seen.set() if e.kind == "error" else None)
    # a grasp target far outside the object's reach: Stage I refuses it with a PoseError
    pose = np.eye(4)
    far = np.eye(4)
    far[:3, 3] = [3.0, 0.0, 0.5]
    state = WindowState(**SMALL, object_pose=pose, target="prim", target_pose=far, output_dir=str(tmp_path / "ds"))
    assert controller.start("capture", state) == []
    event = finished(controller)[-1]
    assert event.kind == "error" and "unreachable" in event.message and seen.is_set()
    assert list_episodes(tmp_path / "ds") == []


def test_weights_that_do_not_load_are_an_error_before_stage1(tmp_path):
    paths = {}
    for name in ("flux_path", "controlnet_path", "cogvideox_path", "transformer_path"):
        (tmp_path / name).mkdir()
        paths[name] = str(tmp_path / name)
    controller = PamController()
    state = WindowState(**SMALL, diffusion=True, output_dir=str(tmp_path / "ds"), **paths)
    assert controller.start("generate", state) == []
    events = finished(controller)
    assert events[-1].kind == "error" and events[-1].stage == "setup" and "flux_path" in events[-1].message
    assert not any(e.stage == "stage1" for e in events)
    assert list_episodes(tmp_path / "ds") == []
