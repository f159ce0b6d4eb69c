"""What the Isaac Lab backend checks before it builds anything (no ``isaaclab`` import here, so
the engine's CLI can name a bad input, or a missing install, in any environment)."""

from __future__ import annotations

import importlib.util
import re
from typing import Sequence

from pam_engine.errors import ConfigError

#: Physics presets: Newton (MuJoCo-Warp; kit-less, CPU or CUDA) and PhysX (inside Isaac Sim).
PHYSICS_PRESETS = ("newton", "physx")
DEVICES = ("cpu", "cuda", "cuda:N")

INSTALL_HINT = (
    "Isaac Lab 3.0 is not installed in this Python environment. Build the kit-less environment with "
    "`tools/make_isaac_env.sh .venv-isaac` (torch 2.13, then `pip install --no-deps --ignore-requires-python "
    "isaaclab==3.0.0`, then newton[sim]==1.6.1, warp-lang==1.17.0, usd-exchange==3.0.1; docs/isaaclab.md) and run "
    "the command with `.venv-isaac/bin/python -m pam_engine.cli ...`, or use Isaac Sim's Python (PhysX/RTX)"
)


def isaaclab_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("isaaclab", "isaaclab_newton"))


def require_isaaclab() -> None:
    """Raise :class:`ConfigError` naming the install steps when Isaac Lab cannot be imported."""
    if not isaaclab_available():
        raise ConfigError(f"backend 'isaaclab': {INSTALL_HINT}")


def isaac_sim_available() -> bool:
    """Isaac Sim (Kit, PhysX, RTX) is present: its Python ships ``isaacsim``."""
    return importlib.util.find_spec("isaacsim") is not None


def check_num_envs(num_envs) -> int:
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs <= 0:
        raise ConfigError(f"num_envs must be a positive integer, got {num_envs!r}")
    return num_envs


def check_physics(preset: str | None) -> str:
    """The physics preset: ``newton`` (default) or ``physx`` (Isaac Sim only)."""
    preset = "newton" if preset is None else preset
    if preset not in PHYSICS_PRESETS:
        raise ConfigError(f"physics preset {preset!r}: expected one of {', '.join(PHYSICS_PRESETS)}")
    if preset == "physx" and not isaac_sim_available():
        raise ConfigError("physics preset 'physx' needs Isaac Sim (its Python, with Kit and PhysX); "
                          "kit-less Isaac Lab runs the 'newton' preset")
    return preset


def check_device(device: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` (a CUDA device must exist)."""
    if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise ConfigError(f"device {device!r}: expected one of {', '.join(DEVICES)}")
    if device.startswith("cuda"):
        import torch

        index = int(device.split(":")[1]) if ":" in device else 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: no such CUDA device here "
                              f"({torch.cuda.device_count() if torch.cuda.is_available() else 0} visible); use 'cpu'")
    return device


def check_joint_names(found: Sequence[str], expected: Sequence[str], source: str = "hand USD") -> None:
    """The articulation's joints must be the spec's, in its order; the error lists every
    difference (missing, unexpected, out of place) before any simulation starts."""
    found, expected = list(found), list(expected)
    if found == expected:
        return
    missing = [n for n in expected if n not in found]
    extra = [n for n in found if n not in expected]
    problems = []
    if missing:
        problems.append(f"missing {missing}")
    if extra:
        problems.append(f"unexpected {extra}")
    if not missing and not extra:
        moved = [f"{n} at {found.index(n)} (expected {i})" for i, n in enumerate(expected) if found[i] != n]
        problems.append(f"out of order: {', '.join(moved)}")
    raise ConfigError(f"{source}: its joints do not match the task's ({len(expected)} joints: wrist_x..wrist_rz, "
                      f"then the finger joints in HandArticulation order): {'; '.join(problems)}")
