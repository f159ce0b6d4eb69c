"""DeVI (Dexterous Video Imitation; Kim et al., 2026): what the engine's episodes give it.

- :mod:`~pam_engine.devi.contacts`: its Algorithm 1, hand-object contact labels from 2D tracks
  alone (object-vertex tracks and hand keypoints), as it reads them off a video;
- :mod:`~pam_engine.devi.tracks`: those tracks from an engine episode's labels (object mesh
  vertices projected with ``pose_y`` and ``K``; ``joint_2d``) or from a hand detector's npz;
- :mod:`~pam_engine.devi.agreement`: how well the labels agree with the simulator's own contacts;
- :mod:`~pam_engine.devi.reference`: an imitation reference (3D hand track, 2D object-vertex track,
  contact labels) for the hybrid reward of :mod:`pam_engine.rl.imitation`.

See docs/devi.md.
"""
