"""The hand USD as Isaac Lab 3.0 loads it (kit-less, Newton on the CPU): an ``ArticulationCfg``
from ``UsdFileCfg``, cloned into two environments, holds joint targets like MuJoCo does.

Newton environment only (marker ``newton``; ``tools/make_isaac_env.sh``), skipped elsewhere.
"""

import numpy as np
import pytest

from pam_engine.usd import export_hand

pytestmark = pytest.mark.newton
pytest.importorskip("newton")
pytest.importorskip("isaaclab_newton")

DT = 1.0 / 420.0


def test_isaac_lab_articulation_from_the_hand_usd(builtin_hand, tmp_path):
    import isaaclab.sim as sim_utils
    import torch
    from isaaclab.actuators import ImplicitActuatorCfg
    from isaaclab.assets import ArticulationCfg
    from isaaclab.scene import InteractiveScene, InteractiveSceneCfg
    from isaaclab.sim import SimulationCfg, SimulationContext
    from isaaclab.utils import configclass
    from isaaclab_newton.physics import MJWarpSolverCfg, NewtonCfg

    hand, art = builtin_hand
    export_hand(tmp_path / "hand.usda", hand, art)
    sim = SimulationContext(SimulationCfg(
        device="cpu", dt=DT, gravity=(0.0, 0.0, 0.0),  # the MuJoCo hand is gravity compensated
        physics=NewtonCfg(solver_cfg=MJWarpSolverCfg(integrator="implicitfast", njmax=200, nconmax=100),
                          use_cuda_graph=False)))

    @configclass
    class SceneCfg(InteractiveSceneCfg):
        robot = ArticulationCfg(
            prim_path="{ENV_REGEX_NS}/Hand",
            spawn=sim_utils.UsdFileCfg(usd_path=str(tmp_path / "hand.usda"), semantic_tags=[("class", "hand")]),
            init_state=ArticulationCfg.InitialStateCfg(pos=(0.0, 0.0, 0.3)),
            actuators={"hand": ImplicitActuatorCfg(joint_names_expr=[".*"], stiffness=None, damping=None)})  # USD gains

    try:
        scene = InteractiveScene(SceneCfg(num_envs=2, env_spacing=1.0))
        robot = scene["robot"]
        sim.reset()
        names = ["wrist_x", "wrist_y", "wrist_z", "wrist_rx", "wrist_ry", "wrist_rz", *art.names]
        assert robot.joint_names == names and robot.num_bodies == 28
        stiffness = robot.data.joint_stiffness.torch[0].numpy()
        assert stiffness[:3] == pytest.approx([2000.0] * 3) and stiffness[3:6] == pytest.approx([60.0] * 3, rel=1e-5)
        rng = np.random.default_rng(0)
        target = np.concatenate([[0.02, -0.01, 0.015, 0.1, -0.05, 0.08],
                                 art.lower + rng.uniform(0.3, 0.7, art.size) * (art.upper - art.lower)])
        robot.set_joint_position_target(torch.tensor(target, dtype=torch.float32)[None].repeat(2, 1))
        for _ in range(int(round(1.0 / DT))):
            scene.write_data_to_sim()
            sim.step()
            scene.update(DT)
        reached = robot.data.joint_pos.torch.numpy()
        np.testing.assert_allclose(reached, np.broadcast_to(target, reached.shape), atol=0.01)
        roots = robot.data.root_pos_w.torch.numpy()
        assert np.ptp(roots[:, 2]) == 0 and np.allclose(roots[:, 2], 0.3) and np.ptp(roots[:, 0]) > 0.5  # each env its own place
    finally:
        sim.clear_instance()
