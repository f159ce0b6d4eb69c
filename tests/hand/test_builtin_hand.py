import numpy as np
import trimesh

from pam_engine.conventions import FINGERTIP_KEYPOINTS, MANO_FINGERS
from pam_engine.hand.procedural import MANO_TEMPLATE_WRIST, build_builtin_hand


def test_skin_is_a_closed_watertight_mesh_of_a_few_thousand_vertices():
    hand = build_builtin_hand()
    mesh = trimesh.Trimesh(hand.v_template, hand.faces, process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume > 0
    assert 2000 <= hand.num_vertices <= 8000
    # an adult hand displaces roughly 0.3-0.5 litres
    assert 2.5e-4 < mesh.volume < 5.5e-4


def test_adult_proportions_in_mano_frame():
    hand = build_builtin_hand()
    j = hand.j_template
    np.testing.assert_allclose(j[0], MANO_TEMPLATE_WRIST)
    tips = hand.v_template[list(hand.tip_vertex_ids)]
    # fingers point along -x, the middle fingertip 0.17-0.21 m from the wrist
    assert 0.17 < j[0, 0] - tips[2, 0] < 0.21
    # palm width across the index and pinky knuckles (MCPs), 7-9.5 cm including the skin
    knuckle_span = np.linalg.norm(j[1] - j[7])
    assert 0.055 < knuckle_span < 0.075
    skin_width = np.ptp(hand.v_template[hand.weights[:, 0] > 0.9][:, 2])
    assert 0.075 < skin_width < 0.095
    # thumb on +z for a right hand, palm facing -y: the palm side is where fingers curl
    assert j[13:, 2].mean() > j[4, 2]
    # finger thickness: proximal phalanges 15-22 mm across
    for finger, (mcp, pip, _) in MANO_FINGERS.items():
        mid = (j[mcp] + j[pip]) / 2
        near = hand.v_template[np.linalg.norm(hand.v_template - mid, axis=1) < 0.012]
        thickness = np.ptp(near[:, 1])
        assert 0.013 < thickness < 0.026, (finger, thickness)


def test_weights_are_normalised_and_tips_sit_at_the_finger_ends():
    hand = build_builtin_hand()
    np.testing.assert_allclose(hand.weights.sum(axis=1), 1.0)
    assert (hand.weights >= 0).all()
    out = hand.forward(np.zeros(48))
    for k, kp in enumerate(FINGERTIP_KEYPOINTS):
        chain = list(MANO_FINGERS.values())[[4, 0, 1, 3, 2][k]]
        distal = out.keypoints[kp - 1]
        np.testing.assert_allclose(distal, out.joints[chain[2]])
        # the tip lies beyond the distal joint, 1.5-4 cm further along the finger
        assert 0.015 < np.linalg.norm(out.keypoints[kp] - distal) < 0.04


def test_rest_pose_reproduces_the_template_and_bending_moves_only_the_finger():
    hand = build_builtin_hand()
    rest = hand.forward(np.zeros(48))
    np.testing.assert_allclose(rest.vertices, hand.v_template, atol=1e-12)
    pose = np.zeros((16, 3))
    pose[1] = [0.0, 0.0, 1.2]  # index MCP about +z: curls towards the palm (-y)
    bent = hand.forward(pose)
    moved = np.linalg.norm(bent.vertices - hand.v_template, axis=1) > 1e-9
    index_weight = hand.weights[:, [1, 2, 3]].sum(axis=1)
    assert np.all(index_weight[moved] > 0)
    assert bent.keypoints[8, 1] < rest.keypoints[8, 1] - 0.03  # index tip went palm-wards
    np.testing.assert_allclose(bent.keypoints[12], rest.keypoints[12])  # middle tip untouched


def test_disk_cache_gives_back_the_same_hand(tmp_path, monkeypatch):
    from pam_engine.hand import procedural

    monkeypatch.setenv("PAM_CACHE_DIR", str(tmp_path))
    procedural._cached.cache_clear()
    built = procedural.build_builtin_hand()
    assert procedural._cache_file(procedural.GRID_SPACING).is_file()
    procedural._cached.cache_clear()
    monkeypatch.setattr(procedural, "_build", lambda spacing: (_ for _ in ()).throw(AssertionError("rebuilt")))
    loaded = procedural.build_builtin_hand()
    np.testing.assert_array_equal(loaded.v_template, built.v_template)
    np.testing.assert_array_equal(loaded.weights, built.weights)
    assert loaded.tip_vertex_ids == built.tip_vertex_ids
    procedural._cached.cache_clear()
