"""The simulator seam: the MuJoCo backend satisfies the protocols, its batched form (a leading
env axis, Isaac Lab's layout) steps exactly as independent single-env scenes do, and views
never share state."""

import numpy as np
import pytest

from pam_engine.hand.pose import HandPose, make_transform
from pam_engine.pose.request import ObjectSpec, Stage1Config
from pam_engine.pose.setup import build_scene, load_objects, place_objects, settle
from pam_engine.sim import get_backend
from pam_engine.sim.base import HandObjectEnv, HandObjectSim, PlacedObject, SceneSpec
from pam_engine.errors import ConfigError


@pytest.fixture(scope="module")
def cfg():
    return Stage1Config()


@pytest.fixture(scope="module")
def settled(cfg):
    assets = load_objects([ObjectSpec("061_foam_brick")])
    poses = place_objects(assets, [ObjectSpec("061_foam_brick")], np.random.default_rng(0), 0.0)
    scene = build_scene(assets, poses, cfg)
    settle(scene, cfg)
    return scene


def _targets(scene, rng):
    art = scene.articulation
    return rng.normal(scale=0.01, size=6), rng.uniform(art.lower, art.upper) * 0.3


def test_the_mujoco_backend_implements_the_protocols(settled):
    assert isinstance(settled, HandObjectEnv)
    sim = get_backend("mujoco").build(SceneSpec(settled.hand, settled.articulation, tuple(settled.objects),
                                                settled.config), num_envs=2)
    assert isinstance(sim, HandObjectSim) and sim.num_envs == 2


def test_batched_steps_equal_independent_scenes(settled):
    """Two envs driven with different targets through the batched calls end where two separate
    views driven one by one end, bit for bit; the reads stack on a leading env axis."""
    from pam_engine.sim.mujoco.batch import MujocoSim

    start = HandPose(make_transform(None, [0.0, -0.25, 0.2]), np.zeros(settled.articulation.size))
    singles = [settled.fork() for _ in range(2)]
    batch = MujocoSim(settled.fork(), 2)
    batch.envs[1] = settled.fork()  # both envs start from the settled state
    for view in singles + batch.envs:
        view.set_base_pose(start.wrist)
        view.set_hand_state(start)
        view.forward()
    rng = np.random.default_rng(1)
    for _ in range(5):
        targets = [_targets(settled, rng) for _ in range(2)]
        for view, (w, f) in zip(singles, targets):
            view.set_targets(w, f)
            view.step()
        batch.set_targets(np.stack([t[0] for t in targets]), np.stack([t[1] for t in targets]))
        batch.step()
    batch.sync()
    for view in singles:
        view.sync()
    assert batch.finger_angles().shape == (2, settled.articulation.size)
    assert batch.keypoints().shape == (2, 21, 3) and batch.object_poses().shape == (2, 1, 3, 4)
    for i, view in enumerate(singles):
        np.testing.assert_array_equal(batch.finger_angles()[i], view.finger_angles())
        np.testing.assert_array_equal(batch.wrist_pose()[i], view.wrist_pose())
        np.testing.assert_array_equal(batch.keypoints()[i], view.keypoints())
    assert not np.array_equal(batch.finger_angles()[0], batch.finger_angles()[1])  # different targets
    assert batch.contacts(0).shape == (2, 6) and not batch.diverged().any()


def test_targets_for_a_subset_of_envs(settled):
    from pam_engine.sim.mujoco.batch import MujocoSim

    batch = MujocoSim(settled.fork(), 3)
    before = [env.data.ctrl.copy() for env in batch.envs]
    w, f = _targets(settled, np.random.default_rng(2))
    batch.set_targets(w[None], f[None], env_ids=[2])
    assert np.array_equal(batch.envs[0].data.ctrl, before[0]) and np.array_equal(batch.envs[1].data.ctrl, before[1])
    assert not np.array_equal(batch.envs[2].data.ctrl, before[2])
    with pytest.raises(ValueError, match="leading axes"):
        batch.set_targets(w[None], f[None], env_ids=[0, 1])


def test_fork_and_fresh_views_share_no_state(settled):
    fork = settled.fork()
    np.testing.assert_array_equal(fork.object_poses(), settled.object_poses())
    fork.set_object_pose(0, make_transform(None, [0.3, 0.3, 0.5]))
    fork.forward()
    assert not np.allclose(fork.object_poses(), settled.object_poses())
    fresh = settled.fresh()
    assert fresh.model is settled.model and fresh.data is not settled.data and fresh.sim_time() == 0.0


def test_an_unknown_backend_is_named():
    with pytest.raises(ConfigError, match="'isaac-nope'"):
        get_backend("isaac-nope")


def test_scene_spec_is_backend_neutral_data():
    spec = SceneSpec(hand=None, articulation=None, objects=(PlacedObject(None, np.eye(4)),))
    assert spec.config.control_dt == pytest.approx(1 / 105)
