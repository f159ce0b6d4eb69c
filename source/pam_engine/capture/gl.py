"""Headless OpenGL for MuJoCo rendering, set up by the code that renders (and the ``pam``
command), never by ``import pam_engine``: inside a host process such as Isaac Sim's Kit the
engine must leave the environment alone."""

from __future__ import annotations

import os


def configure_headless_gl() -> str:
    """Default ``MUJOCO_GL`` to EGL (Mesa on CPU machines, the NVIDIA driver on GPU ones) and
    ``PYOPENGL_PLATFORM`` to match, keeping values the user set; returns the backend name.
    PyOpenGL reads ``PYOPENGL_PLATFORM`` when first imported, so call this before that."""
    backend = os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", backend if backend in ("egl", "osmesa") else "egl")
    return backend.lower()
