"""Label consistency of an episode's video: ``pam qa`` (docs/qa.md;
docs/design.md, "Label consistency of generated video"). A 2D hand detector run in its own
environment (``detector``), its keypoints compared with the labels (``metrics``), and the
figures written per episode and summarised per dataset (``check``)."""
