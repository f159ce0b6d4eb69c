"""Grasps for Stage I: the target type (:mod:`~pam_engine.pose.grasp.target`), synthesis for any
mesh (:mod:`~pam_engine.pose.grasp.synthesis`), the physical trial that picks a synthesized grasp
that holds (:mod:`~pam_engine.pose.grasp.trial`) and the reference motion to it
(:mod:`~pam_engine.pose.grasp.plan`)."""
