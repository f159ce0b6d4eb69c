"""DeVI on a real engine episode: tracks from its labels, agreement of Algorithm 1 with the
simulator's contacts (the issue's bar), a detector's npz as the hand track, and the imitation
reference built from it."""

import numpy as np
import pytest

from pam_engine.devi.agreement import FRAME_ACCURACY_BAR, ONSET_BAR, episode_agreement, hand_level, onset
from pam_engine.devi.reference import episode_reference
from pam_engine.devi.tracks import episode_tracks, load_keypoints
from pam_engine.errors import ConfigError


def test_object_track_is_the_projected_object(grasp_episode):
    tracks = episode_tracks(grasp_episode, 64)
    assert tracks.object.shape == (grasp_episode.num_frames, 64, 2)
    # the projected points land on the object's pixels in the segmentation (id = DexYCB id)
    seg = grasp_episode.seg[0]
    oid = grasp_episode.meta.object_ids[grasp_episode.meta.target_object]
    u, v = np.round(tracks.object[0]).astype(int).T
    inside = (u >= 0) & (u < seg.shape[1]) & (v >= 0) & (v < seg.shape[0])
    hits = np.isin(seg[v[inside], u[inside]], [oid, 255])  # on the object, or behind the hand
    visible_side = hits.mean()
    assert visible_side > 0.4, visible_side  # the far side's points are occluded by the object itself
    # and the track moves as the object is lifted: its start and end differ by more than a few px
    assert np.linalg.norm(tracks.object[-1] - tracks.object[0], axis=-1).mean() > 5.0


def test_devi_contacts_agree_with_the_simulator(grasp_episode):
    result, devi = episode_agreement(grasp_episode)
    sim = hand_level(grasp_episode.labels["contacts"])
    assert onset(sim) is not None and not sim[0]
    assert result.accuracy >= FRAME_ACCURACY_BAR, result
    assert result.onset_error is not None and result.onset_error <= ONSET_BAR, result
    assert result.passed
    assert devi.dtype == bool and devi.shape == sim.shape


def test_a_detectors_keypoints_drive_the_rule(grasp_episode, tmp_path):
    joint_2d = grasp_episode.labels["joint_2d"]
    exact = tmp_path / "exact.npz"
    np.savez(exact, keypoints=joint_2d, valid=np.ones(len(joint_2d), bool))
    a, devi_labels = episode_agreement(grasp_episode)
    b, devi_detector = episode_agreement(grasp_episode, keypoints=exact)
    np.testing.assert_array_equal(devi_labels, devi_detector)
    # a detector that lost the hand everywhere gives no evidence about the hand moving alone
    lost = tmp_path / "lost.npz"
    np.savez(lost, keypoints=np.full_like(joint_2d, np.nan))
    hand, valid = load_keypoints(lost, len(joint_2d))
    assert not valid.any()
    c, devi_lost = episode_agreement(grasp_episode, keypoints=lost)
    assert not devi_lost.any()  # and no hand at the object: never contact


def test_bad_detector_files_are_named(grasp_episode, tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_keypoints(tmp_path / "missing.npz")
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, keypoints=np.zeros((5, 20, 2)))
    with pytest.raises(ConfigError, match=r"wrong.npz.*\(T, 21, 2\)"):
        load_keypoints(wrong)
    short = tmp_path / "short.npz"
    np.savez(short, keypoints=np.zeros((5, 21, 2)))
    with pytest.raises(ConfigError, match="5 frames, the episode has"):
        load_keypoints(short, grasp_episode.num_frames)
    nokey = tmp_path / "nokey.npz"
    np.savez(nokey, points=np.zeros((5, 21, 2)))
    with pytest.raises(ConfigError, match="keypoints"):
        load_keypoints(nokey)


def test_reference_from_an_episode(grasp_episode):
    ref = episode_reference(grasp_episode, points=64)
    labels = grasp_episode.labels
    np.testing.assert_allclose(ref.joints, labels["joint_3d_world"], atol=1e-6)
    assert ref.contact.dtype == bool and ref.contact.any() and not ref.contact[0]
    # the 2D object track is the object at its world pose seen through the camera
    from pam_engine.rl.imitation import project

    k = grasp_episode.meta.target_object
    pose = labels["pose_y_world"][-1, k].astype(np.float64)
    uv = project(ref.points @ pose[:3, :3].T + pose[:3, 3], ref.world_to_cam, ref.K)
    np.testing.assert_allclose(uv, ref.object_uv[-1], atol=0.05)
    # the finger angles are the simulator's reading of the MANO pose: they give it back
    from pam_engine.pose.setup import HandCache

    _, articulation = HandCache.get(None)
    np.testing.assert_allclose(articulation.angles_to_hand_pose(ref.angles), labels["pose_m_world"][:, 3:48], atol=1e-4)
    np.testing.assert_allclose(ref.wrist, labels["wrist_pose_world"], atol=1e-6)


def test_the_cli_reports_agreement_and_checks_the_bar(grasp_episode, tmp_path, capsys):
    import json

    from pam_engine.cli import main

    out = tmp_path / "devi.json"
    assert main(["devi-contacts", str(grasp_episode.path.parent), "--check", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["summary"]["episodes"] == 1 and report["summary"]["passed"] == 1
    assert report["episodes"][0]["episode"] == grasp_episode.name and report["episodes"][0]["passed"]
    assert grasp_episode.name in capsys.readouterr().out
    # a detector file missing from every episode: each is named as skipped, nothing to compare
    assert main(["devi-contacts", str(grasp_episode.path.parent), "--keypoints", "hand_detections.npz"]) == 1
    err = capsys.readouterr().err
    assert f"{grasp_episode.name} (no hand_detections.npz)" in err
    assert main(["devi-contacts", str(tmp_path / "nowhere")]) == 2
    assert "not a folder" in capsys.readouterr().err
