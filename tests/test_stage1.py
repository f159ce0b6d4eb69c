import numpy as np
import pytest

from pam_engine.cli import main
from pam_engine.errors import AssetError, PoseError
from pam_engine.hand.articulation import JointLimitWarning
from pam_engine.hand.pose import HandPose, make_transform
from pam_engine.policy.base import ScriptedPolicy
from pam_engine.pose.grasp.synthesis import GraspTarget
from pam_engine.pose import HandCache, ObjectSpec, Stage1Request, simulate
from pam_engine.trajectory import Trajectory


@pytest.fixture(scope="module")
def brick_run():
    return simulate(Stage1Request([ObjectSpec("061_foam_brick")], seed=0))


def test_scripted_grasp_lifts_the_object(brick_run):
    t = brick_run
    assert t.success, t.failure_reason
    assert t.num_frames == 49 and t.fps == 15.0
    rise = t.pose_y[-1, 0, 2, 3] - t.pose_y[0, 0, 2, 3]
    assert rise > 0.1
    assert t.contacts[-1, 0] and t.contacts[-1, 1:5].any()  # thumb and a finger hold it
    assert not t.contacts[0].any()  # the hand starts away from the object
    assert t.object_ids == [21] and t.object_names == ["061_foam_brick"]


def test_trajectory_labels_are_consistent(brick_run):
    hand, art = HandCache.get(None)
    t = brick_run
    for f in (0, 24, 48):
        out = hand.forward(t.pose_m[f, :48], transl=t.pose_m[f, 48:])
        np.testing.assert_allclose(out.keypoints, t.joint_3d[f], atol=1e-7)
        np.testing.assert_allclose(out.joints[0], t.wrist_pose[f, :3, 3], atol=1e-9)
    # object poses are proper rigid transforms
    rot = t.pose_y[..., :3]
    np.testing.assert_allclose(rot @ np.swapaxes(rot, -1, -2), np.broadcast_to(np.eye(3), rot.shape), atol=1e-6)


def test_trajectory_round_trips_through_npz(brick_run, tmp_path):
    path = brick_run.save(tmp_path / "t.npz")
    back = Trajectory.load(path)
    np.testing.assert_array_equal(back.pose_m, brick_run.pose_m)
    assert back.object_names == brick_run.object_names and back.success == brick_run.success
    assert not list(tmp_path.glob("*.partial*"))


def test_unknown_object_is_named_before_simulation():
    with pytest.raises(AssetError, match="no_such_thing"):
        simulate(Stage1Request([ObjectSpec("no_such_thing")]))
    with pytest.raises(AssetError, match="99"):
        simulate(Stage1Request([ObjectSpec(99)]))


@pytest.mark.parametrize("mass", [0.0, -0.1, float("nan"), float("inf")])
def test_a_bad_mass_override_is_refused_naming_it(mass):
    from pam_engine.errors import ConfigError

    with pytest.raises(ConfigError, match=r"'061_foam_brick'.*mass="):
        ObjectSpec("061_foam_brick", mass=mass)


def test_a_mass_override_reaches_the_simulated_body():
    from pam_engine.pose.setup import load_objects

    (asset,) = load_objects([ObjectSpec("061_foam_brick", mass=0.2)])
    assert asset.mass == pytest.approx(0.2) and asset.mass_source == "given"


def test_nan_poses_are_rejected():
    bad = make_transform(None, [0.0, np.nan, 0.1])
    with pytest.raises(PoseError, match="NaN"):
        simulate(Stage1Request([ObjectSpec("061_foam_brick", pose=bad)]))
    with pytest.raises(PoseError, match="NaN"):
        HandPose(make_transform(None, [np.inf, 0, 0]), np.zeros(21))


def test_out_of_range_start_angles_are_clamped_with_a_warning():
    hand, art = HandCache.get(None)
    angles = np.zeros(art.size)
    angles[art.names.index("middle2_flex")] = 2.5
    start = HandPose(make_transform(None, [0.05, -0.25, 0.25]), angles)
    with pytest.warns(JointLimitWarning, match="middle2_flex"):
        t = simulate(Stage1Request([ObjectSpec("061_foam_brick")], hand_start=start))
    assert t.joint_angles[0, art.names.index("middle2_flex")] <= art.upper[art.names.index("middle2_flex")] + 1e-3


def test_unreachable_targets_are_rejected_before_simulation():
    hand, art = HandCache.get(None)
    far = GraspTarget(make_transform(None, [0.0, 3.0, 0.1]), np.zeros(art.size), np.array([0.0, -1.0, 0.0]))
    with pytest.raises(PoseError, match="unreachable.*object's centre"):
        simulate(Stage1Request([ObjectSpec("061_foam_brick")], grasp=far))
    near = GraspTarget(make_transform(None, [0.0, 0.0, 0.12]), np.zeros(art.size), np.array([0.0, 0.0, -1.0]))
    start = HandPose(make_transform(None, [2.0, 0.0, 0.5]), np.zeros(art.size))
    with pytest.raises(PoseError, match="unreachable.*max_reach"):
        simulate(Stage1Request([ObjectSpec("061_foam_brick")], grasp=near, hand_start=start))
    sunk = GraspTarget(make_transform(None, [0.0, 0.0, -0.05]), np.zeros(art.size), np.array([0.0, 0.0, -1.0]))
    with pytest.raises(PoseError, match="unreachable"):
        simulate(Stage1Request([ObjectSpec("061_foam_brick")], grasp=sunk))


class _ExplodingPolicy(ScriptedPolicy):
    """Corrupts the state mid-episode, as a diverging integration would."""

    def reset(self, scene, plan, target):
        super().reset(scene, plan, target)
        self.scene = scene

    def act(self, step):
        if step == 40:
            self.scene.data.qvel[:] = 1e30
        return super().act(step)


def test_a_diverging_simulation_ends_the_episode_as_failed():
    t = simulate(Stage1Request([ObjectSpec("061_foam_brick")]), policy=_ExplodingPolicy())
    assert not t.success
    assert "diverged" in t.failure_reason
    assert np.all(np.isfinite(t.pose_m)) and t.num_frames < 49


def test_pam_simulate_writes_the_documented_keys(tmp_path, capsys):
    out = tmp_path / "traj.npz"
    assert main(["simulate", "--object", "061_foam_brick", "--seed", "1", "--out", str(out)]) == 0
    with np.load(out) as data:
        assert data["pose_m"].shape == (49, 51)
        assert data["joint_3d"].shape == (49, 21, 3)
        assert data["pose_y"].shape == (49, 1, 3, 4)
        assert data["contacts"].shape == (49, 6)
        assert data["fps"] == 15.0 and list(data["object_names"]) == ["061_foam_brick"]
        assert data["success"].dtype == bool
    assert "frames" in capsys.readouterr().out
    assert main(["simulate", "--object", "061_foam_brick", "--out", str(tmp_path / "x.txt")]) == 2


def test_pam_simulate_refuses_a_bad_mass_before_simulating(tmp_path, capsys):
    out = tmp_path / "t.npz"
    assert main(["simulate", "--object", "061_foam_brick", "--mass", "-1", "--out", str(out)]) == 2
    assert "mass=-1" in capsys.readouterr().err and not out.exists()
    assert main(["simulate", "--object", "061_foam_brick", "--mass", "0.1", "--mass", "0.2", "--out", str(out)]) == 2
