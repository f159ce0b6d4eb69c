"""The grasp task of Stage I's reinforcement-learning policy (GraspXL family, residual on the
scripted plan).

- :mod:`~pam_engine.rl.spec`: observation/action layouts, reward terms (pure numpy; the Isaac
  Lab task mirrors it); the success rule is GraspXL's (:mod:`pam_engine.pose.success`);
- :mod:`~pam_engine.rl.features`: reading that state from a scene (the simulator seam),
  residual control;
- :mod:`~pam_engine.rl.bank`: synthesized grasps per training object, cached on disk;
- :mod:`~pam_engine.rl.env`: the batched gymnasium environment; :mod:`~pam_engine.rl.workers`
  spreads it over processes;
- :mod:`~pam_engine.rl.tasks`: gymnasium registration (Isaac Lab style), agent settings in
  :mod:`pam_engine.rl.agents`.
- :mod:`~pam_engine.rl.imitation` (+ :mod:`~pam_engine.rl.imitation_torch`): DeVI's hybrid
  imitation reward (3D hand x 2D object x contact tracking), and
  :mod:`~pam_engine.rl.imitation_env`, a gymnasium env that imitates a reference with it
  (references from episodes: :mod:`pam_engine.devi.reference`; docs/devi.md).

Training lives in :mod:`pam_engine.training`; the trained policy runs in Stage I as
:class:`pam_engine.policy.learned.LearnedPolicy` (``pam_engine.policy.loading.load_policy``).
"""
