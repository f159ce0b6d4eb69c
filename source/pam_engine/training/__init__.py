"""Training Stage I's grasp policy: ``pam train-policy`` (:mod:`~pam_engine.training.policy`)
runs rl-games PPO (:mod:`~pam_engine.training.rlgames`) on a registered grasp task
(:mod:`pam_engine.rl`) and exports the actor as a policy checkpoint (:mod:`pam_engine.policy`).
It sits above both: the task and the checkpoint format know nothing of training."""
