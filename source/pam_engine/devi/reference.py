"""An imitation reference (:class:`pam_engine.rl.imitation.ImitationReference`) made from an
engine episode, as DeVI makes one from a video: the hand's 3D track (``joint_3d_world``; for a
generated video a hand pose estimator's), the object's 2D track (its surface points projected
with ``pose_y`` and ``K``) and contact labels from Algorithm 1 on those 2D tracks, never the
simulator's contacts."""

from __future__ import annotations

import numpy as np

from pam_engine.devi.agreement import track_contacts
from pam_engine.devi.contacts import ContactRuleConfig
from pam_engine.devi.tracks import DEFAULT_POINTS, episode_tracks
from pam_engine.errors import ConfigError
from pam_engine.rl.imitation import ImitationReference


def episode_reference(episode, points: int = DEFAULT_POINTS, rule: ContactRuleConfig | None = None,
                      mano: str | None = None) -> ImitationReference:
    """The reference of an episode (:class:`pam_engine.dataset.reader.Episode`); ``mano`` is the
    hand model the simulator uses (None: the configured or built-in one)."""
    from pam_engine.pose.setup import HandCache

    labels = episode.labels
    for key in ("joint_3d_world", "pose_m_world", "pose_y_world", "wrist_pose_world"):
        if key not in labels:
            raise ConfigError(f"{episode.path}: labels.npz has no {key!r}, needed for an imitation reference")
    tracks = episode_tracks(episode, points)
    contact = track_contacts(tracks, rule)
    _, articulation = HandCache.get(mano)
    # the simulator's joint angles of the MANO pose (joints a little past their soft limits stay there)
    angles = articulation.hand_pose_to_raw_angles(np.asarray(labels["pose_m_world"], np.float64)[:, 3:48])
    target = int(episode.meta.target_object)
    start = np.eye(4)
    start[:3] = np.asarray(labels["pose_y_world"][0, target], dtype=np.float64)
    return ImitationReference(
        joints=np.asarray(labels["joint_3d_world"], dtype=np.float64), object_uv=tracks.object, contact=contact,
        points=tracks.points, K=episode.K, world_to_cam=episode.world_to_cam, height=tracks.height,
        fps=tracks.fps, wrist=np.asarray(labels["wrist_pose_world"], dtype=np.float64), angles=angles,
        object_start=start, object_name=episode.meta.object_names[target])

