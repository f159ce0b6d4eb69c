"""The grasp task on kit-less Isaac Lab 3.0 (Newton, CPU), against the embedded MuJoCo env on the
same episodes: the state at the first decision, the scripted plan lifting the mustard bottle, the
hand holding joint targets, a diverging env reset alone.

Isaac Lab environment only (marker ``isaaclab``; ``tools/make_isaac_env.sh``), skipped elsewhere.
One 4-env task is built for the module (Isaac Lab keeps one simulation per process).
"""

import numpy as np
import pytest

pytestmark = pytest.mark.isaaclab
pytest.importorskip("isaaclab_newton")

import torch  # noqa: E402

MUSTARD = "006_mustard_bottle"
N = 4
W, H = 320, 240


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    from pam_engine.isaaclab.task import PamGraspEnv, make_env_cfg
    from pam_engine.rl.bank import BankConfig, load_bank
    from pam_engine.rl.env import EnvConfig, GraspNoiseConfig

    engine = EnvConfig(bank=BankConfig(objects=[MUSTARD], synthesis_seeds=[100], grasps_per_seed=1,
                                       cache_dir=str(tmp_path_factory.mktemp("bank"))),
                       grasp_noise=GraspNoiseConfig(0.0, 0.0))
    bank = load_bank(engine.bank, engine.stage1, progress=False)
    env = PamGraspEnv(make_env_cfg([MUSTARD], num_envs=N, engine=engine, asset_dir=str(tmp_path_factory.mktemp("usd")),
                                   camera=(W, H)))
    yield env, engine, bank
    env.close()


def _run_episodes(env, action=None):
    obs, _ = env.reset()
    done = []
    while len(done) < env.num_envs:
        obs, _, _, _, extras = env.step(torch.zeros(env.num_envs, 13) if action is None else action)
        done += extras["episodes"]
    return done


def test_the_first_decision_is_mujocos_state(task):
    from pam_engine.rl import spec

    env, _, _ = task
    obs = env.reset()[0]["policy"].numpy()
    sl = spec.slices(spec.observation_terms(env.n_dof, spec.action_size()))
    keypoints = env.keypoints().numpy()
    for i in range(N):
        ep = env.source.vec.slots[i].episode
        first = int(env.step_index[i])
        np.testing.assert_allclose(keypoints[i], ep.scene.keypoints(), atol=1e-3)  # mm: float32 state
        want = ep.observe(ep.state(first))
        for term in ("object_position", "object_rotation", "finger_angles", "plan_wrist_error", "grasp_wrist_error",
                     "finger_error", "phase", "lift"):
            np.testing.assert_allclose(obs[i, sl[term]], want[sl[term]], atol=2e-3, err_msg=term)


def test_the_scripted_plan_lifts_the_mustard_bottle_as_in_mujoco(task):
    from pam_engine.isaaclab.episodes import play_mujoco

    env, engine, bank = task
    env.source = type(env.source)(engine, N, 0, bank, 1)
    isaac = _run_episodes(env)
    mujoco = play_mujoco(engine, N, 0, lambda obs, i: np.zeros((1, 13)), 1, bank)
    assert [r["success"] for r in isaac] == [True] * N
    assert [r["success"] for r in mujoco] == [True] * N
    rise_i = np.array([r["rise"] for r in sorted(isaac, key=lambda r: r["env"])])
    rise_m = np.array([r["rise"] for r in mujoco])
    np.testing.assert_allclose(rise_i, rise_m, atol=0.03)


def test_the_hand_holds_joint_targets_as_in_mujoco(task):
    env, engine, _ = task
    env.reset()
    art = env.articulation
    rng = np.random.default_rng(0)
    target = np.concatenate([[0.02, -0.01, 0.015, 0.1, -0.05, 0.08],
                             art.lower + rng.uniform(0.3, 0.7, art.size) * (art.upper - art.lower)])
    root = env.hand.data.root_link_pose_w.torch.clone()
    root[:, 2] += 0.5  # clear of the object and the table
    env.hand.write_root_pose_to_sim_index(root_pose=root)
    env.set_joint_targets(torch.as_tensor(target)[None].repeat(N, 1))
    for _ in range(105):  # 1 s
        env.physics_control_step()
    reached = env.joint_pos().numpy()
    np.testing.assert_allclose(reached, np.broadcast_to(target, reached.shape), atol=0.01)

    scene = env.source.vec.scenes[0].fresh()
    base = scene.base_pose()
    base[2, 3] += 0.5
    scene.set_base_pose(base)
    scene.set_targets(target[:6], target[6:])
    scene.step(105)
    np.testing.assert_allclose(scene.finger_angles(), target[6:], atol=0.01)
    np.testing.assert_allclose(scene.data.qpos[scene.wrist_qpos], target[:6], atol=0.01)


def test_a_diverging_env_is_reset_and_recorded_as_failed(task):
    env, _, _ = task
    env.reset()
    start = env.step_index.clone()
    env.step(torch.zeros(N, 13))
    pose = env.object.data.root_link_pose_w.torch.clone()
    pose[1, 2] = float("nan")  # env 1 blows up
    env.object.write_root_pose_to_sim_index(root_pose=pose[1:2], env_ids=torch.tensor([1]))
    obs, reward, terminated, _, extras = env.step(torch.zeros(N, 13))
    assert terminated.tolist() == [False, True, False, False]
    assert [(r["env"], r["success"], r["diverged"]) for r in extras["episodes"]] == [(1, False, True)]
    assert float(reward[1]) == pytest.approx(-10.0)
    assert torch.isfinite(obs["policy"]).all()
    assert int(env.step_index[1]) == int(start[1])  # its next episode starts at the first decision
    assert env.step_index[[0, 2, 3]].tolist() == (start[[0, 2, 3]] + 14).tolist()  # the others go on


def test_the_isaac_camera_sees_what_the_embedded_renderer_sees(task):
    """Same state, same engine camera: segmentation IoU (hand, object), depth where both see a
    surface, and the keypoint labels (they come from the same state)."""
    from pam_engine.capture.camera import Camera
    from pam_engine.capture.renderer import MujocoCapture, SegLookup
    from pam_engine.isaaclab.capture import mujoco_twin, pose_cameras, read_frames

    env, _, _ = task
    env.reset()
    for _ in range(12):  # into the close: fingers on the object
        env.step(torch.zeros(N, 13))
    cams = []
    for i in range(N):
        target = env.object_pose()[i, :3, 3].numpy() + np.array([0.0, 0.0, 0.08])
        cams.append(Camera.from_focal(width=W, height=H).looking_at(target + np.array([0.45, -0.25, 0.3]), target))
    pose_cameras(env, cams)
    env.sim.forward()
    env.scene.update(dt=0.0)
    frames = read_frames(env, [MUSTARD])
    keypoints = env.keypoints().numpy()
    ious = {255: [], 5: []}
    for i, f in enumerate(frames):
        np.testing.assert_allclose(f.K, cams[i].K, atol=1e-3)
        np.testing.assert_allclose(f.world_to_cam, cams[i].world_to_cam, atol=1e-5)
        scene = mujoco_twin(env, i)
        np.testing.assert_allclose(scene.keypoints(), keypoints[i], atol=1e-4)  # identical labels
        geoms, skins = scene.segmentation_ids()
        with MujocoCapture(scene.model, cams[i], SegLookup(geoms=geoms, skins=skins)) as cap:
            m = cap.capture(scene.data)
        assert set(np.unique(f.seg)) == set(np.unique(m.seg)) == {0, 5, 255}
        for sid in ious:
            a, b = f.seg == sid, m.seg == sid
            ious[sid].append((a & b).sum() / (a | b).sum())
        both = (f.depth > 0) & (m.depth > 0) & (f.seg == m.seg) & (m.seg > 0)
        assert np.median(np.abs(f.depth[both] - m.depth[both])) < 0.002
    print("IoU hand", np.round(ious[255], 3), "object", np.round(ious[5], 3))
    assert np.mean(ious[255]) >= 0.95 and np.mean(ious[5]) >= 0.95
    assert min(ious[255]) >= 0.9 and min(ious[5]) >= 0.9


def test_rl_games_trains_through_isaac_labs_wrapper_and_exports_the_engines_checkpoint(task, tmp_path):
    """A smoke run (4 envs x 8 steps x 8 epochs = 256 env steps): finite losses, and the exported
    actor loads with the engine's loader and fits the MuJoCo env's observation."""
    from pam_engine.isaaclab.scripts import train
    from pam_engine.policy.loading import load_policy
    from pam_engine.rl import spec

    env, engine, _ = task
    result = train(env, env.n_dof, engine.task, str(tmp_path / "grasp.pth"), max_epochs=8, seed=0,
                   train_dir=str(tmp_path / "runs"), horizon=8, minibatch=32)
    assert result["frames"] >= 256
    losses = result["losses"]
    assert {"losses/a_loss", "losses/c_loss"} <= set(losses)
    assert all(np.isfinite(v).all() for v in losses.values())
    rewards = [h.mean_reward for h in result["history"]]
    print("per-step reward by epoch", np.round(rewards, 3), "critic loss", np.round(losses["losses/c_loss"], 3))
    assert np.isfinite(rewards).all()
    policy = load_policy(result["checkpoint"])
    assert policy.network.obs_size == spec.observation_size(env.n_dof) and policy.network.action_size == 13
