"""The physical trial plays the episode's own plan, and the tripod pre-shapes fit what they aim at."""

from dataclasses import replace

import numpy as np
import pytest
import trimesh

from pam_engine.hand.pose import HandPose
from pam_engine.pose.grasp import families as fam
from pam_engine.pose.grasp.plan import GraspPlan, pregrasp_pose
from pam_engine.pose.grasp.trial import trial_lift
from pam_engine.pose.request import ObjectSpec, Stage1Config
from pam_engine.pose.rollout import ScriptedPolicy, rollout
from pam_engine.pose.setup import build_scene, load_objects, place_objects, settle

SMALL = dict(num_directions=6, num_rolls=2)


def _scene(name, cfg, seed=0):
    specs = [ObjectSpec(name)]
    assets = load_objects(specs)
    scene = build_scene(assets, place_objects(assets, specs, np.random.default_rng(seed), 0.0), cfg)
    settle(scene, cfg)
    return scene


@pytest.mark.parametrize("lift", [0.20, 0.06])
def test_the_trial_rise_is_the_rollouts(lift):
    """One definition: the trial's rise is what the scripted rollout of the same grasp does
    (from the pre-grasp pose on), for the plan's own lift height."""
    from pam_engine.pose.grasp.synthesis import GraspSynthesizer

    cfg = Stage1Config(plan=replace(Stage1Config().plan, lift_height=lift),
                       synthesis=replace(Stage1Config().synthesis, **SMALL))
    scene = _scene("061_foam_brick", cfg)
    grasps = GraspSynthesizer(scene, 0, cfg.synthesis).synthesize(4)
    art = scene.articulation
    for grasp in grasps:
        rise = trial_lift(scene, grasp, 0, cfg.check, cfg.plan, num_steps=cfg.num_steps)
        if rise > 0:
            break
    assert rise > 0.7 * lift, "no candidate of the foam brick lifted in the trial"
    assert rise < lift + 0.01  # the plan's lift, not a fixed trial height
    # the scripted episode of that grasp, the hand starting where the trial starts
    pose = scene.object_pose(0)
    start = HandPose(pregrasp_pose(grasp, pose, cfg.plan), grasp.preshape)
    plan = GraspPlan.build(start, grasp, pose, cfg.num_steps, art.lower, art.upper, cfg.plan)
    plan.anchor(scene)
    scene.set_hand_state(start)
    scene.forward()
    policy = ScriptedPolicy()
    policy.reset(scene, plan, 0)
    traj = rollout(scene, policy, plan, 0, cfg, "builtin", seed=0)
    rolled = traj.pose_y[-1, 0, 2, 3] - traj.pose_y[0, 0, 2, 3]
    assert rolled == pytest.approx(rise, abs=0.01)


def _bar(size, com_shift=0.0):
    """Vertices of a box lying on the table (long along x) and a centre of mass moved along x."""
    mesh = trimesh.creation.box(extents=size)
    mesh = mesh.subdivide().subdivide().subdivide()  # vertices along the length: sections
    mesh.apply_translation([0, 0, size[2] / 2])
    return np.asarray(mesh.vertices), np.asarray(mesh.center_mass) + [com_shift, 0.0, 0.0]


def test_wide_sections_get_the_wide_tripod_and_thin_plates_no_pinch():
    rng = np.random.default_rng(0)
    handle = fam.measure(*_bar([0.20, 0.045, 0.03]))  # a banana's or a hammer handle's width
    narrow, wide = 0.03, 0.058
    assert not list(fam.family_candidates("pinch", handle, narrow, rng))
    cands = list(fam.family_candidates("pinch", handle, wide, rng, shape="tripod_wide", narrowest=narrow))
    assert cands and all(c[3] == "tripod_wide" for c in cands)
    # a 2 mm plate: narrow enough, but nothing for the fingertips to press on
    plate = fam.measure(*_bar([0.20, 0.02, 0.002]))
    assert len(plate.graspable(narrow)) and not list(fam.family_candidates("pinch", plate, narrow, rng))
    assert list(fam.family_candidates("handle", plate, 0.19, rng))


def test_pinch_aims_move_towards_the_centre_of_mass():
    rng = np.random.default_rng(0)
    centred = fam.measure(*_bar([0.20, 0.02, 0.02]))
    shifted = fam.measure(*_bar([0.20, 0.02, 0.02], com_shift=0.05))
    along = lambda geo: np.array([c[2] @ geo.long_axis for c in fam.family_candidates("pinch", geo, 0.03, rng)])  # noqa: E731
    sign = np.sign(shifted.long_axis[0])  # the principal axis may point either way along x
    a, b = sign * along(centred), sign * along(shifted)
    # the nearest aims sit on the COM's position along the bar (within a section), not a section's centre
    assert abs(np.mean(a[:10])) < 0.01
    assert np.min(np.abs(b - 0.05)) < 1e-3


def test_the_synthesizer_uses_the_wide_tripod_on_a_wide_flat_bar(tmp_path, monkeypatch):
    from pam_engine.pose.grasp.synthesis import GraspSynthesizer

    monkeypatch.setenv("PAM_CACHE_DIR", str(tmp_path / "cache"))
    mesh = trimesh.creation.box(extents=[0.20, 0.045, 0.03]).subdivide().subdivide().subdivide()
    path = tmp_path / "bar.stl"
    mesh.export(path)
    cfg = Stage1Config(synthesis=replace(Stage1Config().synthesis, families=("pinch",), **SMALL))
    scene = _scene(str(path), cfg)
    synth = GraspSynthesizer(scene, 0, cfg.synthesis)
    grasps = synth.synthesize(50)
    wide = synth._preshapes["tripod_wide"]
    assert synth._pinch_span < 0.045 < synth._wide_pinch_span
    assert any(np.allclose(g.preshape, wide) for g in grasps)
    assert not any(np.allclose(g.preshape, synth._preshapes["tripod"]) for g in grasps)


def test_an_episode_replays_with_its_own_grasp_given():
    """bench_rl and the snapshot choice synthesize an episode's hT once and replay the episode
    with it given: the same seed gives the same placement and h0, so the same trajectory."""
    import copy

    from pam_engine.pose import Stage1Request
    from pam_engine.pose.stage import run_stage1

    cfg = Stage1Config(synthesis=replace(Stage1Config().synthesis, **SMALL))
    first = run_stage1(Stage1Request([ObjectSpec("061_foam_brick")], seed=3), cfg)
    again = run_stage1(Stage1Request([ObjectSpec("061_foam_brick")], seed=3, grasp=copy.deepcopy(first.grasp)), cfg)
    assert first.grasp is not None and "synthesis" not in again.timings
    for key in ("wrist_pose", "joint_angles", "pose_y", "contacts"):
        np.testing.assert_array_equal(getattr(first.trajectory, key), getattr(again.trajectory, key), err_msg=key)
    other = run_stage1(Stage1Request([ObjectSpec("061_foam_brick")], seed=4, grasp=copy.deepcopy(first.grasp)), cfg)
    assert not np.array_equal(other.trajectory.pose_y, first.trajectory.pose_y)  # the seed places the object


def test_the_trial_passes_only_grasps_that_keep_the_object_where_they_put_it(monkeypatch):
    """A grasp that lifts the object but lets it turn in the grip (the wrist ends far from hT
    carried with the object, GraspXL's failure) loses to one that holds it still; alone, it is
    still the fallback, ahead of one that did not lift."""
    from pam_engine.pose.grasp import trial as tr

    cfg = Stage1Config()
    results = {"turned": tr.TrialResult(0.19, True, 0.12), "still": tr.TrialResult(0.18, True, 0.04),
               "dropped": tr.TrialResult(0.01, False, 0.3)}
    monkeypatch.setattr(tr, "trial", lambda scene, g, *a, **k: results[g])
    pick = lambda cands: tr.choose_grasp(None, cands, 0, cfg.check, cfg.plan, num_steps=cfg.num_steps)  # noqa: E731
    assert pick(["turned", "still"]) == "still"
    assert pick(["dropped", "turned"]) == "turned"
    assert pick(["dropped"]) == "dropped"


def test_a_candidate_sunk_into_the_object_is_not_tried(monkeypatch):
    """Stage I's reachability check refuses an hT whose hand sinks > 1 cm into something, so the
    trial never chooses one (the episode would end before it starts)."""
    from pam_engine.pose.grasp import trial as tr

    cfg = Stage1Config()
    results = {"sunk": tr.TrialResult(0.2, True, 0.01), "clear": tr.TrialResult(0.19, True, 0.02)}
    tried = []

    def fake_trial(scene, g, *a, **k):
        tried.append(g.score)
        return results["sunk" if g.score == 1.0 else "clear"]

    class Scene:
        def object_pose(self, target):
            return np.eye(4)

        def fork(self):
            return self

        def penetration(self, pose):  # the "sunk" grasp's wrist is 2 cm lower
            return (0.015 if pose.wrist[2, 3] < 0 else 0.002), "object 'x'"

    def grasp(z, score):
        wrist = np.eye(4)
        wrist[2, 3] = z
        return tr.GraspTarget(wrist, np.zeros(3), np.array([0.0, 0.0, -1.0]), score=score)

    monkeypatch.setattr(tr, "trial", fake_trial)
    sunk, clear = grasp(-0.02, 1.0), grasp(0.0, 0.5)
    got = tr.choose_grasp(Scene(), [sunk, clear], 0, cfg.check, cfg.plan, num_steps=cfg.num_steps)
    assert got is clear and tried == [0.5]
