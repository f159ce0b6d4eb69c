"""The logic of the Omniverse Kit extension, written without Kit (nothing here imports
``omni.*``), so it runs and is tested on any CPU machine:

- ``replicator_format``: Replicator annotator data (``rgb``, ``distance_to_image_plane``,
  ``instance_id_segmentation_fast``, ``camera_params``) plus the hand's articulation state ->
  the engine's episode, written by the engine's atomic writer;
- ``controller``: the PAM window's state -> a validated job spec, and the job itself (Stage I,
  capture, writing, optional diffusion) on a worker thread with progress events and cancel.

The Kit module in ``exts/pam_kit`` only wires these to widgets, the stage and Replicator.
"""
