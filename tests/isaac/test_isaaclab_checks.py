"""Bad input of the Isaac Lab backend, named before anything is built; runs in any environment
(nothing here imports isaaclab)."""

import importlib.util

import pytest

from pam_engine.errors import ConfigError
from pam_engine.isaaclab import checks
from pam_engine.isaaclab.assets import check_hand_usd, expected_joint_names, usd_joint_names


@pytest.mark.parametrize("bad", [0, -3, 2.5, "4", True])
def test_num_envs_must_be_a_positive_integer(bad):
    with pytest.raises(ConfigError, match=f"num_envs must be a positive integer, got {bad!r}"):
        checks.check_num_envs(bad)
    assert checks.check_num_envs(4) == 4


def test_unknown_physics_preset_and_device_are_named():
    with pytest.raises(ConfigError, match=r"physics preset 'bullet': expected one of newton, physx"):
        checks.check_physics("bullet")
    assert checks.check_physics(None) == "newton"
    with pytest.raises(ConfigError, match=r"device 'tpu': expected one of cpu, cuda, cuda:N"):
        checks.check_device("tpu")
    with pytest.raises(ConfigError, match=r"device 'cuda:99': no such CUDA device"):
        checks.check_device("cuda:99")
    assert checks.check_device("cpu") == "cpu"


def test_physx_needs_isaac_sim(monkeypatch):
    monkeypatch.setattr(checks, "isaac_sim_available", lambda: False)
    with pytest.raises(ConfigError, match="physics preset 'physx' needs Isaac Sim"):
        checks.check_physics("physx")


def test_missing_isaaclab_names_the_install_steps(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name.startswith("isaaclab") else real(name, *a))
    with pytest.raises(ConfigError, match=r"Isaac Lab 3.0 is not installed.*tools/make_isaac_env.sh.*isaaclab==3.0.0"):
        checks.require_isaaclab()


def test_joint_mismatch_lists_every_difference():
    expected = ["wrist_x", "a", "b", "c"]
    with pytest.raises(ConfigError, match=r"missing \['c'\]; unexpected \['d'\]"):
        checks.check_joint_names(["wrist_x", "a", "b", "d"], expected)
    with pytest.raises(ConfigError, match=r"out of order: a at 2 \(expected 1\), b at 1 \(expected 2\)"):
        checks.check_joint_names(["wrist_x", "b", "a", "c"], expected)
    checks.check_joint_names(expected, expected)


def test_a_hand_usd_with_renamed_joints_is_refused_before_the_sim(tmp_path):
    pytest.importorskip("pxr")
    from pxr import Usd

    from pam_engine.pose.setup import HandCache
    from pam_engine.usd import export_hand

    hand, art = HandCache.get(None)
    path = export_hand(tmp_path / "hand.usda", hand, art)
    assert usd_joint_names(path) == expected_joint_names(art)
    check_hand_usd(path, art)
    stage = Usd.Stage.Open(str(path))
    joint = next(p for p in stage.Traverse() if p.GetName() == art.names[0])
    stage.GetRootLayer().GetPrimAtPath(joint.GetPath()).name = "index_bent"  # rename the first finger joint
    stage.GetRootLayer().Save()
    with pytest.raises(ConfigError, match=rf"hand USD .*missing \['{art.names[0]}'\]; unexpected \['index_bent'\]"):
        check_hand_usd(path, art)


def test_pam_simulate_backend_isaaclab_without_isaaclab_names_the_install(monkeypatch, tmp_path, capsys):
    from pam_engine import cli

    monkeypatch.setattr(checks, "isaaclab_available", lambda: False)
    code = cli.main(["simulate", "--object", "061_foam_brick", "--out", str(tmp_path / "t.npz"), "--backend", "isaaclab"])
    assert code == 2
    err = capsys.readouterr().err
    assert "Isaac Lab 3.0 is not installed" in err and "tools/make_isaac_env.sh" in err
    assert not (tmp_path / "t.npz").exists()
    code = cli.main(["simulate", "--object", "061_foam_brick", "--out", str(tmp_path / "t.npz"), "--backend", "bullet"])
    assert code == 2 and "--backend 'bullet': expected 'mujoco' or 'isaaclab'" in capsys.readouterr().err


def test_the_task_is_registered_for_isaac_labs_tools():
    """Gym id with both entry points; Isaac Lab finds the module through pyproject's
    ``isaaclab.tasks`` group; the rl-games yaml is numbers where rl-games wants numbers and
    the shipped policy's network, so one checkpoint format serves both backends."""
    import tomllib
    from pathlib import Path

    import gymnasium as gym
    import yaml

    import pam_engine.isaaclab.registration  # noqa: F401
    from pam_engine.isaaclab import TASK_ID

    spec = gym.spec(TASK_ID)
    assert spec.entry_point == "pam_engine.isaaclab.task:PamGraspEnv"
    assert spec.kwargs["env_cfg_entry_point"] == "pam_engine.isaaclab.task:default_env_cfg"
    module, name = spec.kwargs["rl_games_cfg_entry_point"].split(":")
    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["isaaclab.tasks"]["pam_engine"] == "pam_engine.isaaclab.registration"
    cfg = yaml.safe_load((root / "source" / module.replace(".", "/") / name).read_text())["params"]
    c = cfg["config"]
    for key in ("learning_rate", "gamma", "tau", "kl_threshold", "e_clip", "score_to_win", "grad_norm"):
        assert isinstance(c[key], float), key
    assert isinstance(cfg["env"]["clip_observations"], float) and cfg["env"]["clip_actions"] == 1.0
    shipped = yaml.safe_load((root / "policies" / "grasp_residual.yaml").read_text())
    assert cfg["network"]["mlp"]["units"] == shipped["network"]["hidden"]
    assert cfg["network"]["mlp"]["activation"] == shipped["network"]["activation"]


def test_backend_is_a_validated_config_key():
    from pam_engine.pipeline import GenerateConfig, IsaacLabConfig

    with pytest.raises(ConfigError, match=r"config key 'backend': unknown backend 'bullet'; expected one of mujoco, isaaclab"):
        GenerateConfig(backend="bullet").check()
    for isaac, key in [(IsaacLabConfig(num_envs=0), "isaaclab.num_envs"), (IsaacLabConfig(physics="ode"), "isaaclab.physics"),
                       (IsaacLabConfig(device="tpu"), "isaaclab.device")]:
        with pytest.raises(ConfigError, match=rf"config key '{key}'"):
            GenerateConfig(backend="isaaclab", isaaclab=isaac).check()
    with pytest.raises(ConfigError, match=r"config key 'randomization.distractors'.*isaaclab"):
        from pam_engine.pipeline import RandomizationConfig

        GenerateConfig(backend="isaaclab", randomization=RandomizationConfig(distractors=1)).check()
    with pytest.raises(ConfigError, match=r"config key 'policy'.*scripted plan"):
        GenerateConfig(backend="isaaclab", policy="policies/grasp_residual.pth").check()
    GenerateConfig(backend="isaaclab").check()
    # Newton's renderer shares one K across envs: the focal jitter follows the backend
    assert GenerateConfig(backend="isaaclab").resolve().randomization.camera.focal_jitter == 0.0
    assert GenerateConfig().resolve().randomization.camera.focal_jitter > 0
    with pytest.raises(ConfigError, match=r"'randomization.camera.focal_jitter' = 0.2 conflicts with 'backend'"):
        from pam_engine.config import apply_overrides, from_dict

        given = apply_overrides({}, ["backend=isaaclab", "randomization.camera.focal_jitter=0.2"])
        from_dict(GenerateConfig, given).resolve(given)


def test_the_backend_belongs_to_the_datasets_identity_and_num_envs_does_not():
    from dataclasses import replace

    from pam_engine.config import to_dict
    from pam_engine.pipeline import GenerateConfig, IsaacLabConfig, dataset_identity, differing_keys

    mujoco = dataset_identity(to_dict(GenerateConfig()))
    assert "backend" not in mujoco and "isaaclab" not in mujoco  # MuJoCo datasets keep the identity they had
    isaac = GenerateConfig(backend="isaaclab")
    assert differing_keys(mujoco, dataset_identity(to_dict(isaac))) == ["backend", "isaaclab"]
    faster = replace(isaac, isaaclab=IsaacLabConfig(num_envs=64, device="cpu"))
    assert differing_keys(dataset_identity(to_dict(isaac)), dataset_identity(to_dict(faster))) == []
    physx = replace(isaac, isaaclab=IsaacLabConfig(physics="physx"))
    assert differing_keys(dataset_identity(to_dict(isaac)), dataset_identity(to_dict(physx))) == ["isaaclab.physics"]


def test_pam_generate_backend_isaaclab_without_isaaclab_names_the_install(monkeypatch, tmp_path, capsys):
    from pam_engine import cli

    monkeypatch.setattr(checks, "isaaclab_available", lambda: False)
    out = tmp_path / "data"
    assert cli.main(["generate", "--out", str(out), "--set", "backend=isaaclab"]) == 2
    err = capsys.readouterr().err
    assert "backend 'isaaclab': Isaac Lab 3.0 is not installed" in err and "tools/make_isaac_env.sh" in err
    assert not out.exists()  # refused before anything is written
    assert cli.main(["generate", "--out", str(out), "--set", "backend=bullet"]) == 2
    assert "unknown backend 'bullet'" in capsys.readouterr().err


def test_pam_simulate_backend_isaaclab_checks_its_flags(monkeypatch, tmp_path, capsys):
    from pam_engine import cli

    monkeypatch.setattr(checks, "isaaclab_available", lambda: True)
    base = ["simulate", "--object", "061_foam_brick", "--out", str(tmp_path / "t.npz"), "--backend", "isaaclab"]
    for extra, message in [(["--object", "025_mug"], "one --object"), (["--physics", "ode"], "physics preset 'ode'"),
                           (["--device", "tpu"], "device 'tpu'"), (["--policy", "p.pth"], "scripted plan")]:
        assert cli.main(base + extra) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "t.npz").exists()


def test_the_hand_usd_carries_mujocos_contact_model_for_newton(tmp_path):
    """Newton's MuJoCo solver reads condim (``mjc:condim``) and torsional/rolling friction
    (``newton:*Friction`` on the bound material) from the USD; the embedded hand's geoms use
    condim 4 with the rig's friction triple, so the exported hand must say so (sim-to-sim)."""
    pytest.importorskip("pxr")
    from pxr import Usd, UsdPhysics, UsdShade

    from pam_engine.pose.setup import HandCache
    from pam_engine.sim.base import HandGains
    from pam_engine.sim.rig import HAND_CONDIM
    from pam_engine.usd import export_hand

    hand, art = HandCache.get(None)
    stage = Usd.Stage.Open(str(export_hand(tmp_path / "hand.usda", hand, art)))
    friction = HandGains().friction
    colliders = [p for p in stage.Traverse() if p.HasAPI(UsdPhysics.CollisionAPI)]
    assert len(colliders) >= 16  # palm + 15 phalanges
    for prim in colliders:
        assert prim.GetAttribute("mjc:condim").Get() == HAND_CONDIM, prim.GetPath()
        material, _ = UsdShade.MaterialBindingAPI(prim).ComputeBoundMaterial("physics")
        m = material.GetPrim()
        assert m.GetAttribute("physics:dynamicFriction").Get() == pytest.approx(friction[0])
        assert m.GetAttribute("newton:torsionalFriction").Get() == pytest.approx(friction[1])
        assert m.GetAttribute("newton:rollingFriction").Get() == pytest.approx(friction[2])
