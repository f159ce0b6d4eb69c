"""Capture: cameras, rendering of depth / segmentation / hand image / preview, PAM-style
condition maps and ground-truth labels.

Modules: ``camera`` (Camera, CameraRange, sample_camera), ``frames`` (FrameCapture,
CaptureSequence), ``renderer`` (MujocoCapture, SegLookup; imports MuJoCo), ``style`` (preview and
hand-image looks), ``replay`` (capture_sequence, qpos_replay), ``maps`` (condition maps,
project_keypoints), ``labels`` (episode_labels). The synthetic demo scene the capture tests use lives in ``tests/``.
"""
