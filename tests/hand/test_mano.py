import pickle

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pam_engine.errors import AssetError
from pam_engine.hand.mano import load_hand_model, load_mano, resolve_mano_path
from pam_engine.hand.pose import axis_angle_to_pca, pca_to_axis_angle

from .mano_fixture import make_mano_arrays, write_mano_pkl


@pytest.fixture
def mano_pkl(tmp_path):
    path = tmp_path / "MANO_RIGHT.pkl"
    write_mano_pkl(path)
    return path


def test_loads_without_chumpy_and_regresses_joints(mano_pkl):
    arrays = make_mano_arrays()
    hand = load_mano(mano_pkl)
    assert hand.name == "mano" and hand.num_vertices == 778
    np.testing.assert_allclose(hand.v_template, arrays["v_template"])
    np.testing.assert_allclose(hand.j_template, arrays["J_regressor"] @ arrays["v_template"])
    np.testing.assert_allclose(hand.shapedirs, arrays["shapedirs"])  # came through a chumpy object
    assert hand.tip_vertex_ids == (745, 317, 444, 556, 673)


def test_linear_blend_skinning_with_shape_and_pose(mano_pkl):
    arrays = make_mano_arrays()
    hand = load_mano(mano_pkl)
    betas = np.linspace(-2, 2, 10)
    pose = np.zeros((16, 3))
    pose[0] = [0.3, -0.2, 0.1]
    pose[4] = [0.0, 0.0, 0.8]
    transl = np.array([0.1, -0.2, 0.3])
    out = hand.forward(pose, betas, transl)

    # reference, written independently of the model's code: MANO's equations step by step
    v_shaped = arrays["v_template"] + arrays["shapedirs"] @ betas
    joints = arrays["J_regressor"] @ v_shaped
    rots = Rotation.from_rotvec(pose).as_matrix()
    v_posed = v_shaped + arrays["posedirs"] @ (rots[1:] - np.eye(3)).reshape(-1)
    parents = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]
    world = []
    for j in range(16):
        local = np.eye(4)
        local[:3, :3] = rots[j]
        local[:3, 3] = joints[j] - (joints[parents[j]] if j else 0)
        world.append(local if j == 0 else world[parents[j]] @ local)
    world = np.stack(world)
    expected = np.zeros_like(v_posed)
    for j in range(16):
        rel = world[j].copy()
        rel[:3, 3] -= rel[:3, :3] @ joints[j]
        expected += arrays["weights"][:, j:j + 1] * (v_posed @ rel[:3, :3].T + rel[:3, 3])
    np.testing.assert_allclose(out.vertices, expected + transl, atol=1e-12)
    np.testing.assert_allclose(out.joints, world[:, :3, 3] + transl, atol=1e-12)
    # the wrist stays put under global rotation: rotation is about the rest wrist
    np.testing.assert_allclose(out.joints[0], joints[0] + transl)
    np.testing.assert_allclose(out.keypoints[4], out.vertices[745])


def test_pca_round_trip(mano_pkl):
    hand = load_mano(mano_pkl)
    coeffs = np.random.default_rng(1).normal(size=45)
    np.testing.assert_allclose(axis_angle_to_pca(hand, pca_to_axis_angle(hand, coeffs)), coeffs, atol=1e-10)


def test_env_var_selects_mano_and_builtin_is_the_default(mano_pkl, monkeypatch):
    monkeypatch.setenv("PAM_MANO_DIR", str(mano_pkl.parent))
    assert load_hand_model().name == "mano"
    monkeypatch.delenv("PAM_MANO_DIR")
    assert load_hand_model().name == "builtin"


def test_missing_mano_path_is_named(tmp_path):
    with pytest.raises(AssetError, match="MANO_RIGHT.pkl"):
        resolve_mano_path(tmp_path / "nowhere")


def test_malicious_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(pickle.dumps({"v_template": Evil()}, protocol=2))
    with pytest.raises(AssetError, match="not allowed"):
        load_mano(path)


def test_missing_keys_and_wrong_shapes_are_named(tmp_path):
    arrays = make_mano_arrays()
    del arrays["posedirs"]
    path = tmp_path / "a.pkl"
    write_mano_pkl(path, arrays)
    with pytest.raises(AssetError, match="posedirs"):
        load_mano(path)
    arrays = make_mano_arrays()
    arrays["weights"] = arrays["weights"][:, :15]
    write_mano_pkl(path, arrays)
    with pytest.raises(AssetError, match="weights.*shape"):
        load_mano(path)


def test_corrupt_file_is_named(tmp_path):
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(b"\x80\x02}q\x00(X\x01")
    with pytest.raises(AssetError, match=str(path)):
        load_mano(path)
