"""Outputs and tools for the world models next to PAM (docs/worldmodels.md): DWM-style scoring of
candidate actions (``score``, ``goals``) and the LPIPS metric it can rank by (``lpips``). The
per-episode files (HandWorld's actions, DWM's static scene) live in ``dataset`` and ``sim``."""
