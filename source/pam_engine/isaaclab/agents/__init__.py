"""Agent configs of the Isaac Lab task (rl-games PPO), found by Isaac Lab through the gym
registration's ``rl_games_cfg_entry_point``."""
