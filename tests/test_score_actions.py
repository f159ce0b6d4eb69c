"""``pam score-actions``: candidate grasps simulated in one scene and ranked by a goal."""

import json

import cv2
import numpy as np
import pytest
import torch

from pam_engine.cli import main
from pam_engine.config import load_config
from pam_engine.dataset.reader import load_episode
from pam_engine.errors import ConfigError, OutputError
from pam_engine.pipeline import GenerateConfig
from pam_engine.worldmodels.goals import make_goal
from pam_engine.worldmodels.lpips import ALEXNET_CONVS, load_lpips
from pam_engine.worldmodels.score import Candidate, plan_scene, score_candidates, synthesized_grasps

SETTINGS = ["randomization.objects=[061_foam_brick]", "stage1.num_frames=17", "width=320", "height=240",
            "randomization.camera.distance=[0.6,0.7]"]
SET = [a for s in SETTINGS for a in ("--set", s)]


def _save_grasp(path, grasp, wrist):
    path.write_text(json.dumps({"wrist_in_object": wrist.tolist(), "angles": np.asarray(grasp.angles).tolist(),
                                "approach": np.asarray(grasp.approach).tolist()}))
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The scene of episode 0, its best synthesized grasp, and that grasp moved 10 cm back along its
    approach (the hand closes on air)."""
    cfg = load_config(GenerateConfig, None, SETTINGS).resolve()
    scene = plan_scene(cfg, 0)
    good = synthesized_grasps(cfg, scene, 1)[0]
    folder = tmp_path_factory.mktemp("grasps")
    moved = good.wrist_in_object.copy()
    moved[:3, 3] -= 0.10 * np.asarray(good.approach) / np.linalg.norm(good.approach)
    return cfg, scene, good, _save_grasp(folder / "good.json", good, good.wrist_in_object), \
        _save_grasp(folder / "bad.json", good, moved)


def test_a_good_grasp_outranks_one_moved_10cm_away(setup, tmp_path, capsys):
    cfg, scene, good, good_file, bad_file = setup
    out = tmp_path / "out"
    assert main(["score-actions", *SET, "--candidates", "0", "--grasp", str(bad_file), "--grasp", str(good_file),
                 "--goal", "lifted", "--out", str(out), "--no-progress"]) == 0
    result = json.loads((out / "score_actions.json").read_text())
    assert result["goal"] == {"kind": "lifted", "object": None}
    ranked = result["candidates"]
    assert [c["name"] for c in ranked] == ["good", "bad"] and [c["rank"] for c in ranked] == [1, 2]
    assert ranked[0]["score"] > 0.1 > 0.02 > ranked[1]["score"]  # lifted vs. barely moved
    assert ranked[0]["metrics"]["success"] and not ranked[1]["metrics"]["success"]
    assert ranked[0]["episode"] is None
    assert result["scene"]["seed"] == scene.seed
    assert "1. good" in capsys.readouterr().out
    # a ranking is never overwritten
    assert main(["score-actions", *SET, "--grasp", str(good_file), "--candidates", "0", "--out", str(out)]) == 2


def test_the_goal_decides_the_ranking(setup, tmp_path):
    cfg, scene, good, good_file, bad_file = setup
    from pam_engine.commands.simulate import load_grasp

    n_dof = len(good.angles)
    cands = [Candidate("bad", load_grasp(str(bad_file), n_dof), source="file"),
             Candidate("good", load_grasp(str(good_file), n_dof), source="file")]
    start = np.asarray(scene.objects[0].pose)[:3, 3]
    stay = score_candidates(cfg, scene, cands, make_goal("target_pose", {"position": start.tolist()}),
                            tmp_path / "stay", progress=False)
    assert stay["candidates"][0]["name"] == "bad"  # the object that stays put is nearest its start
    assert stay["candidates"][0]["metrics"]["position_error_m"] < 0.02
    up = score_candidates(cfg, scene, cands, make_goal("target_pose", {"position": (start + [0, 0, 0.2]).tolist(),
                                                                        "rotation": [0, 0, 0]}),
                          tmp_path / "up", progress=False)
    assert up["candidates"][0]["name"] == "good" and "rotation_error_rad" in up["candidates"][0]["metrics"]


def test_candidates_from_synthesis_with_their_episodes_and_an_lpips_goal(setup, tmp_path):
    cfg, scene, good, good_file, bad_file = setup
    out = tmp_path / "lifted"
    assert main(["score-actions", *SET, "--candidates", "1", "--grasp", str(bad_file), "--out", str(out),
                 "--write-episodes", "--no-progress"]) == 0
    ranked = json.loads((out / "score_actions.json").read_text())["candidates"]
    assert [c["name"] for c in ranked] == ["synth-0-" + good.family, "bad"]
    assert ranked[0]["score"] == pytest.approx(ranked[0]["metrics"]["rise_m"])
    assert main(["validate", str(out)]) == 0
    bad_episode = load_episode(out / ranked[1]["episode"])
    assert bad_episode.meta.extra["score_actions"]["candidate"] == "bad"
    # LPIPS to the bad candidate's own last frame puts it first
    goal = tmp_path / "goal.png"
    cv2.imwrite(str(goal), cv2.cvtColor(bad_episode.video("sim_rgb")[-1], cv2.COLOR_RGB2BGR))
    weights, _ = _tiny_lpips(tmp_path / "lpips.pth")
    out2 = tmp_path / "lpips"
    assert main(["score-actions", *SET, "--candidates", "0", "--grasp", str(good_file), "--grasp", str(bad_file),
                 "--out", str(out2), "--goal", "lpips", "--lpips-weights", str(weights), "--goal-arg", f"image={goal}",
                 "--no-progress"]) == 0
    ranked = json.loads((out2 / "score_actions.json").read_text())["candidates"]
    assert ranked[0]["name"] == "bad" and ranked[0]["metrics"]["lpips"] < ranked[1]["metrics"]["lpips"]


def _tiny_lpips(path, channels=(8, 12, 12, 10, 10), full=True):
    """Random weights in LPIPS' layouts, with fewer channels than AlexNet's."""
    g = torch.Generator().manual_seed(0)
    state, c_in = {}, 3
    slice_of = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}
    kernels = {0: 11, 3: 5, 6: 3, 8: 3, 10: 3}
    trunk = {}
    for k, ((i, *_), c) in enumerate(zip(ALEXNET_CONVS, channels)):
        trunk[f"features.{i}.weight"] = torch.randn(c, c_in, kernels[i], kernels[i], generator=g) * 0.1
        trunk[f"features.{i}.bias"] = torch.zeros(c)
        state[f"lin{k}.model.1.weight"] = torch.rand(1, c, 1, 1, generator=g)
        c_in = c
    if full:
        for i, s in slice_of.items():
            for p in ("weight", "bias"):
                state[f"net.slice{s}.{i}.{p}"] = trunk[f"features.{i}.{p}"]
    torch.save(state, path)
    return path, trunk


def test_lpips_loads_the_published_layouts(tmp_path):
    full, trunk = _tiny_lpips(tmp_path / "full.pth")
    metric = load_lpips(full)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    near = np.clip(a.astype(int) + rng.integers(-8, 9, a.shape), 0, 255).astype(np.uint8)
    far = rng.integers(0, 256, a.shape, dtype=np.uint8)
    assert metric.distance(a, a) == 0.0
    assert 0 < metric.distance(a, near) < metric.distance(a, far)
    # linear layers alone, with torchvision's AlexNet layout for the trunk: the same metric
    lin_only = tmp_path / "lin.pth"
    torch.save({k: v for k, v in torch.load(full, weights_only=True).items() if k.startswith("lin")}, lin_only)
    backbone = tmp_path / "alexnet.pth"
    torch.save(trunk, backbone)
    assert load_lpips(lin_only, backbone).distance(a, far) == pytest.approx(metric.distance(a, far))
    with pytest.raises(ConfigError, match="backbone"):
        load_lpips(lin_only)
    torch.save({"lin0.model.1.weight": torch.zeros(1, 8, 1, 1)}, tmp_path / "broken.pth")
    with pytest.raises(ConfigError, match="lin1.model.1.weight"):
        load_lpips(tmp_path / "broken.pth")


def test_bad_input_is_named_before_any_simulation(tmp_path, capsys):
    out = str(tmp_path / "o")
    assert main(["score-actions", "--candidates", "0", "--out", out]) == 2
    assert "zero candidates" in capsys.readouterr().err
    assert main(["score-actions", "--goal", "lifted", "--goal-arg", "height=0.2", "--goal-arg", "speed=1",
                 "--out", out]) == 2
    err = capsys.readouterr().err
    assert "height, speed" in err and "expected object" in err
    assert main(["score-actions", "--goal", "levitate", "--out", out]) == 2
    assert "lifted, target_pose, lpips" in capsys.readouterr().err
    assert main(["score-actions", "--goal", "lpips", "--out", out]) == 2
    assert "--lpips-weights" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="position"):
        make_goal("target_pose", {})
    assert not (tmp_path / "o").exists()  # nothing written
    cfg = load_config(GenerateConfig, None, SETTINGS).resolve()
    with pytest.raises(ConfigError, match="no candidates"):
        score_candidates(cfg, None, [], make_goal("lifted"), tmp_path / "p")
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "score_actions.json").write_text("{}")
    with pytest.raises(OutputError, match="never overwritten"):
        score_candidates(cfg, None, [Candidate("x")], make_goal("lifted"), tmp_path / "q")


def test_candidates_cross_grasps_with_policies_and_a_policy_alone_runs_stage1(setup, tmp_path):
    from pathlib import Path

    cfg, scene, good, good_file, bad_file = setup
    policy = Path(__file__).resolve().parents[1] / "policies" / "grasp_residual.pth"
    out = tmp_path / "policies"
    assert main(["score-actions", *SET, "--candidates", "0", "--grasp", str(good_file), "--policy", "scripted",
                 "--policy", str(policy), "--out", str(out), "--no-progress"]) == 0
    ranked = json.loads((out / "score_actions.json").read_text())["candidates"]
    assert sorted(c["name"] for c in ranked) == ["good+grasp_residual", "good+scripted"]
    assert {c["metrics"]["policy"].split("-")[0] for c in ranked} == {"scripted", "learned"}
    alone = tmp_path / "alone"
    assert main(["score-actions", *SET, "--candidates", "0", "--policy", "scripted", "--out", str(alone),
                 "--no-progress"]) == 0
    (row,) = json.loads((alone / "score_actions.json").read_text())["candidates"]
    assert row["name"] == "stage1" and row["metrics"]["source"] == "stage1" and row["score"] is not None


def test_a_goal_object_the_scene_lacks_is_refused_before_simulating(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["score-actions", *SET, "--goal-arg", "object=3", "--out", str(out)]) == 2
    assert "object 3 is not one of the scene's objects 0..0" in capsys.readouterr().err
    assert not out.exists()
