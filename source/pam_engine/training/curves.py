"""Training curves of a PPO run as a PNG (success rate, critic loss and learning rate against
environment steps), written beside the policy's report so a collapse is visible at a glance."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def plot_curves(history, path: str | os.PathLike, title: str = "") -> Path:
    """Plot ``history`` (:class:`~pam_engine.training.rlgames.EpochStats` per epoch) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    frames = np.array([h.frames for h in history], dtype=float)
    rows = [("training success (last 200 episodes)", [h.success_rate for h in history], False),
            ("critic (value) loss", [h.value_loss for h in history], True),
            ("learning rate", [h.learning_rate for h in history], True)]
    fig, axes = plt.subplots(len(rows), 1, figsize=(7, 7), sharex=True)
    for ax, (label, values, log) in zip(axes, rows):
        ax.plot(frames, values, lw=1.2)
        ax.set_ylabel(label, fontsize=8)
        if log and np.isfinite(values).any() and np.nanmin(values) > 0:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("environment steps")
    if title:
        axes[0].set_title(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path
