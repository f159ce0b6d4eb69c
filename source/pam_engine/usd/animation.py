"""A trajectory as USD time samples (one time code per frame, at the trajectory's fps), so an
episode plays in usdview or Isaac Sim without simulating:

- every hand link's transform (the kinematics of the wrist joints and finger angles), the
  joints' ``state:*:physics:position`` (the wrist's six values relative to the hand's anchor,
  then the finger angles; degrees for revolute joints, as USD has them);
- the ``UsdSkel`` skin's animation (the same joint rotations), so the skinned mesh follows;
- every object's transform (``pose_y``).
"""

from __future__ import annotations

import numpy as np
from pxr import Usd, UsdGeom

from pam_engine.errors import PoseError
from pam_engine.sim.rig import wrist_joint_values
from pam_engine.usd.hand import link_poses, pose_skin
from pam_engine.usd.stage import DEG, set_pose


def add_trajectory(stage: Usd.Stage, layout, trajectory) -> None:
    """Time samples of ``trajectory`` on a scene written by :func:`pam_engine.usd.scene.add_scene`."""
    hand = layout.hand
    rig = hand.rig
    if list(trajectory.joint_names) != [rj.name for rj in rig.finger_joints]:
        raise PoseError(f"the trajectory's joints {trajectory.joint_names} are not the scene hand's")
    if trajectory.pose_y.shape[1] != len(layout.objects):
        raise PoseError(f"the trajectory has {trajectory.pose_y.shape[1]} objects, the scene {len(layout.objects)}")
    n = trajectory.num_frames
    stage.SetStartTimeCode(0)
    stage.SetEndTimeCode(max(n - 1, 0))
    stage.SetTimeCodesPerSecond(float(trajectory.fps))
    stage.SetFramesPerSecond(float(trajectory.fps))

    wrist_q = wrist_joint_values(layout.anchor, np.asarray(trajectory.wrist_pose, dtype=np.float64))
    angles = np.asarray(trajectory.joint_angles, dtype=np.float64)
    links = {link.name: stage.GetPrimAtPath(hand.link_path(link.name)) for link in hand.links}
    joints = [(rj, stage.GetPrimAtPath(hand.joint_path(rj.name))) for rj in rig.joints]
    for t in range(n):
        poses = link_poses(hand.links, rig, wrist_q[t], angles[t])
        for name, prim in links.items():
            set_pose(UsdGeom.Xformable(prim), poses[name], time=t)
        values = np.concatenate([wrist_q[t], angles[t]])
        for (rj, prim), value in zip(joints, values):
            kind = "linear" if rj.kind == "slide" else "angular"
            prim.GetAttribute(f"state:{kind}:physics:position").Set(float(value * (1.0 if kind == "linear" else DEG)), t)
        pose_skin(stage, hand, poses, time=t)
        for k, path in enumerate(layout.objects):
            pose = np.vstack([trajectory.pose_y[t, k], [0.0, 0.0, 0.0, 1.0]])
            set_pose(UsdGeom.Xformable(stage.GetPrimAtPath(path)), pose, time=t)
