"""The deployed policy: checkpoint round trip, export from rl-games, equivalence with the
training environment, Stage I integration, and the errors for bad checkpoints and configs."""

import mujoco
import numpy as np
import pytest
import torch

from pam_engine.cli import main
from pam_engine.config import load_config
from pam_engine.errors import AssetError, ConfigError
from pam_engine.policy.base import ScriptedPolicy
from pam_engine.policy.learned import ActorNetwork, LearnedPolicy
from pam_engine.policy.loading import export_rl_games, load_policy, save_policy
from pam_engine.rl import spec
from pam_engine.rl.env import GraspVecEnv, _advance, _start_episode
from pam_engine.rl.features import GraspEpisode
from pam_engine.pose import HandCache, ObjectSpec, Stage1Request, simulate
from pam_engine.pose.rollout import rollout

N_DOF = 21
OBS, ACT = spec.observation_size(N_DOF), spec.action_size()


def _random_network(seed=0, hidden=(32, 16)) -> ActorNetwork:
    torch.manual_seed(seed)
    net = ActorNetwork(OBS, ACT, list(hidden), "elu")
    with torch.no_grad():
        net.obs_mean.copy_(torch.randn(OBS, dtype=torch.float64) * 0.1)
        net.obs_var.copy_(torch.rand(OBS, dtype=torch.float64) + 0.5)
        net.mu.weight.mul_(0.5)
    return net


def _zero_network() -> ActorNetwork:
    net = ActorNetwork(OBS, ACT, [16], "elu")
    with torch.no_grad():
        net.mu.weight.zero_()
        net.mu.bias.zero_()
    return net


def test_checkpoint_round_trip_reproduces_actions_exactly(tmp_path):
    net = _random_network()
    path = save_policy(tmp_path / "p.pth", net, spec.TaskConfig(surface_points=512), N_DOF, {"command": "test"})
    policy = load_policy(path, n_dof=N_DOF)
    obs = np.random.default_rng(0).normal(size=(20, OBS)).astype(np.float32)
    with torch.no_grad():
        assert torch.equal(net(torch.from_numpy(obs)), policy.network(torch.from_numpy(obs)))
    for o in obs:
        np.testing.assert_array_equal(net.act(o), policy.network.act(o))
    assert policy.task.surface_points == 512  # the task settings travel with the weights
    assert policy.version.startswith("p-") and not list(tmp_path.glob("*.partial"))


def test_export_matches_the_rl_games_actor():
    from rl_games.algos_torch.model_builder import ModelBuilder

    from pam_engine.training.rlgames import NetworkConfig, PPOConfig, build_params

    net_cfg = NetworkConfig(hidden=[32, 16])
    params = build_params("t", 0, 2, "unused", PPOConfig(), net_cfg)
    torch.manual_seed(0)
    model = ModelBuilder().load(params).build({
        "actions_num": ACT, "input_shape": (OBS,), "num_seqs": 1, "value_size": 1,
        "normalize_value": True, "normalize_input": True})
    with torch.no_grad():
        model.running_mean_std.running_mean.copy_(torch.randn(OBS, dtype=torch.float64))
        model.running_mean_std.running_var.copy_(torch.rand(OBS, dtype=torch.float64) + 0.1)
    model.eval()
    obs = torch.randn(8, OBS)
    with torch.no_grad():
        mus = model({"obs": obs.clone(), "is_train": False})["mus"]
    exported = export_rl_games(model.state_dict(), net_cfg.hidden, net_cfg.activation)
    with torch.no_grad():
        torch.testing.assert_close(exported(obs), mus, rtol=0, atol=1e-6)


def test_policy_in_stage1_plays_exactly_what_the_environment_trained(env_config, bank):
    """One episode driven the training environment's way and through Stage I's control loop
    with LearnedPolicy ends in the identical physical state."""
    env = GraspVecEnv(env_config, num_envs=1, seed=0, bank=bank)
    scene_a = env.fresh_scene(0)
    episode_a = _start_episode(scene_a, bank[0].grasps[0], env_config.stage1, env_config.task, np.random.default_rng(5))
    scene_b = env.fresh_scene(0)
    mujoco.mj_copyData(scene_b.data, scene_b.model, scene_a.data)
    net = _random_network(1)
    # the environment's way
    step = episode_a.first_decision()
    assert not _advance(episode_a, 0, step)
    while step < episode_a.last_step:
        episode_a.decide(step, net.act(episode_a.observe(episode_a.state(step))))
        assert not _advance(episode_a, step, step + episode_a.substeps)
        step += episode_a.substeps
    mujoco.mj_kinematics(scene_a.model, scene_a.data)
    # Stage I's way
    policy = LearnedPolicy(net, env_config.task)
    policy.reset(scene_b, episode_a.plan, 0)
    hand = HandCache.get(None)[0]
    traj = rollout(scene_b, policy, episode_a.plan, 0, env_config.stage1, hand.name, seed=0)
    assert traj.num_frames == env_config.stage1.num_frames
    np.testing.assert_array_equal(traj.joint_angles[-1], scene_a.finger_angles())
    np.testing.assert_array_equal(traj.pose_y[-1, 0], scene_a.object_poses()[0])
    assert np.abs(episode_a.action).max() > 0.05  # the residual really acted


def test_zero_residual_policy_is_the_scripted_controller():
    request = Stage1Request([ObjectSpec("061_foam_brick")], seed=2)
    scripted = simulate(request, policy=ScriptedPolicy())
    learned = simulate(request, policy=LearnedPolicy(_zero_network(), spec.TaskConfig()))
    np.testing.assert_array_equal(scripted.pose_y, learned.pose_y)
    np.testing.assert_array_equal(scripted.joint_angles, learned.joint_angles)
    assert learned.policy.startswith("learned-") and scripted.policy.startswith("scripted-")


def test_size_mismatch_names_both_sizes(tmp_path):
    path = save_policy(tmp_path / "old.pth", ActorNetwork(100, 12, [8]), spec.TaskConfig(), N_DOF)
    with pytest.raises(AssetError) as err:
        load_policy(path, n_dof=N_DOF)
    message = str(err.value)
    assert "old.pth" in message
    assert "observations of size 100" in message and "actions of size 12" in message
    assert f"observations of size {OBS}" in message and f"actions of size {ACT}" in message


def test_weights_disagreeing_with_stated_sizes_are_reported(tmp_path):
    path = save_policy(tmp_path / "bad.pth", _random_network(), spec.TaskConfig(), N_DOF)
    data = torch.load(path, weights_only=True)
    data["obs_size"] = OBS + 1
    torch.save(data, path)
    with pytest.raises(AssetError, match="damaged"):
        load_policy(path, n_dof=N_DOF)


def test_missing_and_foreign_checkpoints(tmp_path):
    with pytest.raises(AssetError, match="does not exist"):
        load_policy(tmp_path / "nothing.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(AssetError, match="not a readable torch checkpoint"):
        load_policy(tmp_path / "text.pth")
    torch.save({"model": {"w": torch.zeros(2)}}, tmp_path / "rlgames.pth")
    with pytest.raises(AssetError, match="not a PAM grasp-policy checkpoint"):
        load_policy(tmp_path / "rlgames.pth")


class _Payload:
    """Stands for code inside a pickle; a weights-only load must refuse to build it."""

    def __reduce__(self):
        return (print, ("this must never run",))


def test_checkpoints_never_run_code(tmp_path, capsys):
    torch.save({"format": "pam-grasp-policy", "evil": _Payload()}, tmp_path / "evil.pth")
    with pytest.raises(AssetError, match="was refused: it holds more than tensors and plain data") as info:
        load_policy(tmp_path / "evil.pth")
    assert "must never run" not in capsys.readouterr().out
    message = str(info.value)
    assert "succeed" not in message and "trust" not in message and "weights_only" not in message


def test_unknown_config_keys_are_named(tmp_path):
    from pam_engine.training.policy import TrainConfig

    (tmp_path / "bad.yaml").write_text("ppo:\n  learning_rat: 0.001\n")
    with pytest.raises(ConfigError, match="ppo.learning_rat"):
        load_config(TrainConfig, tmp_path / "bad.yaml")
    (tmp_path / "bad2.yaml").write_text("env:\n  reward:\n    lift_bonus: 1.0\n")
    with pytest.raises(ConfigError, match="env.reward.lift_bonus"):
        load_config(TrainConfig, tmp_path / "bad2.yaml")
    assert main(["train-policy", "--config", str(tmp_path / "bad.yaml")]) == 2


def test_inconsistent_training_settings_fail_before_training(tmp_path):
    from pam_engine.training.policy import TrainConfig

    cfg = load_config(TrainConfig, None, ["num_envs=6", "ppo.horizon_length=5", "ppo.minibatch_size=4"])
    with pytest.raises(ConfigError, match="ppo.minibatch_size"):
        cfg.check()
    cfg = load_config(TrainConfig, None, ["network.activation=swish"])
    with pytest.raises(ConfigError, match="network.activation"):
        cfg.check()


def test_simulate_command_takes_a_policy(tmp_path, capsys):
    ckpt = save_policy(tmp_path / "zero.pth", _zero_network(), spec.TaskConfig(), N_DOF)
    out = tmp_path / "t.npz"
    assert main(["simulate", "--object", "061_foam_brick", "--seed", "1", "--out", str(out), "--policy", str(ckpt)]) == 0
    assert "learned-zero-" in capsys.readouterr().out and out.exists()
    missing = tmp_path / "gone.pth"
    assert main(["simulate", "--object", "061_foam_brick", "--out", str(tmp_path / "u.npz"), "--policy", str(missing)]) == 2
    assert "gone.pth does not exist" in capsys.readouterr().err and not (tmp_path / "u.npz").exists()


def test_generate_loads_the_configured_policy_before_writing(tmp_path):
    from pam_engine.pipeline import GenerateConfig, Generator

    cfg = load_config(GenerateConfig, None, [f"policy={tmp_path / 'none.pth'}"])
    with pytest.raises(AssetError, match="none.pth does not exist"):
        Generator(cfg, tmp_path / "data")
    assert not (tmp_path / "data").exists()
    ckpt = save_policy(tmp_path / "zero.pth", _zero_network(), spec.TaskConfig(), N_DOF)
    generator = Generator(load_config(GenerateConfig, None, [f"policy={ckpt}"]), tmp_path / "data2")
    assert isinstance(generator.policy, LearnedPolicy)


def test_episode_needs_an_anchored_plan(env_config, bank):
    env = GraspVecEnv(env_config, num_envs=1, seed=0, bank=bank)
    episode = _start_episode(env.fresh_scene(0), bank[0].grasps[0], env_config.stage1, env_config.task,
                             np.random.default_rng(0))
    episode.plan.wrist_q = None
    with pytest.raises(ValueError, match="anchored"):
        GraspEpisode(episode.scene, episode.plan, 0, env_config.task)


def test_shipped_policy_loads_and_records_its_config_and_command():
    """policies/grasp_residual.pth: loads, fits the environment, and carries the YAML beside it."""
    from pathlib import Path

    import yaml

    shipped = Path(__file__).resolve().parents[2] / "policies" / "grasp_residual.pth"
    policy = load_policy(shipped)
    assert policy.network.obs_size == OBS and policy.network.action_size == ACT
    assert shipped.stat().st_size < 5_000_000
    provenance = torch.load(shipped, weights_only=True)["provenance"]
    assert provenance["command"] == "pam train-policy --config policies/grasp_residual.yaml --no-progress"

    def same(given, recorded, key=""):
        if isinstance(given, dict):
            for k, v in given.items():
                same(v, recorded[k], f"{key}.{k}")
        else:
            assert given == recorded, key

    same(yaml.safe_load(shipped.with_suffix(".yaml").read_text()), provenance["config"])


def test_the_retrained_candidate_records_its_config_and_command():
    """policies/grasp_residual_v2.pth (issue 13's retrained candidate, not the default): loads,
    fits the environment, carries its YAML and the held-out snapshot choice beside it."""
    import json
    from pathlib import Path

    import yaml

    path = Path(__file__).resolve().parents[2] / "policies" / "grasp_residual_v2.pth"
    policy = load_policy(path)
    assert policy.network.obs_size == OBS and policy.network.action_size == ACT
    provenance = torch.load(path, weights_only=True)["provenance"]
    assert provenance["command"].startswith("pam train-policy --config policies/grasp_residual_v2.yaml")
    given = yaml.safe_load(path.with_suffix(".yaml").read_text())
    for key in ("select_objects", "select_seeds", "time_limit_minutes"):
        assert given[key] == provenance["config"][key], key
    assert given["env"]["bank"]["objects"] == provenance["config"]["env"]["bank"]["objects"]
    assert not set(given["env"]["bank"]["objects"]) & set(given["select_objects"])
    selection = json.loads(path.with_name("grasp_residual_v2.selection.json").read_text())
    assert selection["chosen"].endswith(f"grasp_residual_v2.{provenance['tag']}.pth")
