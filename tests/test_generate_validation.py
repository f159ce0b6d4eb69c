"""Everything is checked before the first episode, ``dataset.json`` is written only after, and a
failure inside one episode never stops the batch."""

import json

import pytest

from pam_engine.cli import main
from pam_engine.config import load_config
from pam_engine.errors import ConfigError, OutputError
from pam_engine.pipeline import GenerateConfig, Generator

TINY = ["width=96", "height=64", "stage1.num_frames=9", "randomization.objects=[061_foam_brick]",
        "randomization.preview=false", "randomization.camera.distance=[0.5,0.6]", "keep_failed=true",
        "stage1.synthesis.num_directions=6", "stage1.synthesis.num_rolls=2", "stage1.check.candidates=2"]


@pytest.mark.parametrize("override, key", [
    ("randomization.objects=[061_foam_brick,no_such_thing]", "randomization.objects[1]"),
    ("randomization.objects=[/nowhere/cup.obj]", "randomization.objects[0]"),
    ("stage1.num_frames=1", "stage1.num_frames"),
    ("stage1.scene.fps=0", "stage1.scene.fps"),
    ("stage1.scene.fps=.nan", "stage1.scene.fps"),
    ("stage1.plan.lift_height=-0.1", "stage1.plan.lift_height"),
    ("prompt.template='a hand and {foo}'", "prompt.template"),
    ("prompt.template='{object.__class__}'", "prompt.template"),
    ("prompt.template='unbalanced {object'", "prompt.template"),
    ("seed=-1", "seed"),
    ("randomization.start_distance=[0.3,0.1]", "randomization.start_distance"),
    ("randomization.distractors=-2", "randomization.distractors"),
])
def test_bad_config_is_refused_before_anything_is_written(tmp_path, capsys, override, key):
    out = tmp_path / "data"
    assert main(["generate", "--out", str(out), "--no-progress", "--episodes", "2", "--set", override]) == 2
    assert key in capsys.readouterr().err
    assert not (out / "dataset.json").exists()  # a corrected config is not "a different config"


def test_corrected_config_runs_after_a_refused_one(tmp_path):
    out = tmp_path / "data"
    with pytest.raises(ConfigError, match="prompt.template"):
        Generator(load_config(GenerateConfig, None, TINY + ["episodes=1", "prompt.template={foo}"]), out)
    summary = Generator(load_config(GenerateConfig, None, TINY + ["episodes=1"]), out).run(progress=False)
    assert summary.written == 1
    desc = json.loads((out / "dataset.json").read_text())
    assert desc["format"] == "pam-engine-dataset" and desc["format_version"] == 2 and desc["episodes"] == 1
    assert desc["features"]["depth"] == {"file": "depth_raw.mkv", "dtype": "uint16", "shape": [9, 64, 96],
                                         "codec": "ffv1", "unit": "1/10000 m", "zero": "no surface"}
    assert desc["features"]["labels.joint_3d"]["shape"] == [9, 21, 3]


def test_refused_resume_names_the_differing_keys(tmp_path):
    out = tmp_path / "data"
    Generator(load_config(GenerateConfig, None, TINY + ["episodes=1"]), out)
    with pytest.raises(OutputError, match=r"differing keys: randomization\.placement_radius, seed"):
        Generator(load_config(GenerateConfig, None, TINY + ["episodes=1", "seed=5",
                                                            "randomization.placement_radius=0.05"]), out)


def test_an_unexpected_error_in_one_episode_is_recorded_and_the_batch_goes_on(tmp_path, monkeypatch):
    out = tmp_path / "data"
    real = Generator._episode

    def flaky(self, plan, summary, buffer):
        if plan.index == 0:
            raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(self, plan, summary, buffer)

    monkeypatch.setattr(Generator, "_episode", flaky)
    summary = Generator(load_config(GenerateConfig, None, TINY + ["episodes=2"]), out).run(progress=False)
    assert summary.failed == 1 and summary.written == 1
    entry = json.loads((out / "failures.jsonl").read_text().splitlines()[0])
    assert entry["episode"] == "episode_000000" and entry["error"] == "RuntimeError"
    assert entry["reason"] == "RuntimeError: CUDA out of memory. Tried to allocate 20.00 GiB"
    trace = (out / entry["traceback"]).read_text()
    assert "Traceback" in trace and "in flaky" in trace
    # a transient error is tried again on resume (a grasp that failed is not)
    monkeypatch.setattr(Generator, "_episode", real)
    again = Generator(load_config(GenerateConfig, None, TINY + ["episodes=2"]), out).run(progress=False)
    assert again.attempted == 1 and again.written == 1 and (out / "episode_000000").is_dir()
    assert main(["validate", str(out)]) == 0


def test_prompt_names_a_custom_mesh_by_its_file_name_only(tmp_path):
    from pam_engine.pipeline import readable_name

    assert readable_name("/home/someone/private/scans/red_cup.obj") == "a red cup"
    assert readable_name("C:\\Users\\me\\mesh-01.stl") == "a mesh 01"
    assert readable_name("006_mustard_bottle") == "a mustard bottle"
