"""Stage I's reinforcement-learning grasp policy (GraspXL family, residual on the scripted plan).

- :mod:`~pam_engine.rl.spec`: observation/action layouts, reward terms, success rule (pure
  numpy; the Isaac Lab task mirrors it);
- :mod:`~pam_engine.rl.features`: reading that state from the MuJoCo scene, residual control;
- :mod:`~pam_engine.rl.bank`: synthesized grasps per training object, cached on disk;
- :mod:`~pam_engine.rl.env`: the batched gymnasium environment; :mod:`~pam_engine.rl.workers`
  spreads it over processes;
- :mod:`~pam_engine.training.rlgames`: rl-games glue; :mod:`~pam_engine.training.policy`: ``pam train-policy``.

The trained policy runs in Stage I as :class:`pam_engine.policy.learned.LearnedPolicy`
(``pam_engine.policy.loading.load_policy``).
"""
