"""Shared fixtures of the USD tests: the two hands, and the MuJoCo model they are compared with."""

import mujoco
import pytest

pytest.importorskip("pxr")

from pam_engine.hand.articulation import build_articulation  # noqa: E402
from pam_engine.hand.mano import load_hand_model  # noqa: E402
from pam_engine.sim.hand_builder import add_hand as add_mujoco_hand  # noqa: E402
from pam_engine.stage1 import HandCache  # noqa: E402


@pytest.fixture(scope="session")
def builtin_hand():
    return HandCache.get(None)


@pytest.fixture(scope="session")
def mano_hand(tmp_path_factory):
    from hand.mano_fixture import write_mano_pkl

    path = tmp_path_factory.mktemp("mano") / "MANO_RIGHT.pkl"
    write_mano_pkl(path)
    hand = load_hand_model(str(path))
    return hand, build_articulation(hand)


def mujoco_hand(hand, articulation):
    """The compiled MuJoCo hand (base at the world origin) and its data at rest."""
    spec = mujoco.MjSpec()
    spec.compiler.degree = False
    add_mujoco_hand(spec, hand, articulation)
    model = spec.compile()
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    return model, data


def parse_physics(stage):
    """UsdPhysics' own parser over the whole stage: {descriptor type name: count}."""
    import warnings

    from pxr import UsdPhysics

    with warnings.catch_warnings():  # USD 26 renamed it; both releases in use keep this name
        warnings.simplefilter("ignore", DeprecationWarning)
        result = UsdPhysics.LoadUsdPhysicsFromRange(stage, ["/"])
    return {str(k): len(v[0]) for k, v in result.items()}
