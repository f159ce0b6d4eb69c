"""Agent configs of the grasp tasks, found through each task's ``rl_games_cfg_entry_point``
(as Isaac Lab's task packages keep theirs)."""
