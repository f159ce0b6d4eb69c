"""Whole files: a hand, an object, a scene, a scene with its trajectory as animation."""

from __future__ import annotations

import os
from pathlib import Path

from pam_engine.usd.stage import add_physics_scene, check_output_path, new_stage, save_stage


def export_hand(path: str | os.PathLike, hand=None, articulation=None, *, betas=None, gains=None) -> Path:
    """The hand alone as an articulation asset (default prim ``/Hand``, base at its origin, at
    rest), e.g. for Isaac Lab's ``UsdFileCfg``. ``hand`` defaults to the engine's hand (MANO when
    ``$PAM_MANO_DIR`` is set, else the built-in one)."""
    from pam_engine.usd.hand import add_hand

    path = check_output_path(path)
    if hand is None:
        from pam_engine.pose.setup import HandCache

        hand, articulation = HandCache.get(None)
    elif articulation is None:
        from pam_engine.hand.articulation import build_articulation

        articulation = build_articulation(hand)
    stage = new_stage("Hand")
    add_hand(stage, "/Hand", hand, articulation, betas=betas, gains=gains)
    return save_stage(stage, path)


def export_object(path: str | os.PathLike, asset) -> Path:
    """One object as a rigid body at the origin (default prim ``/Object``): an ``ObjectAsset``, or
    anything ``load_object`` takes (a DexYCB id, a YCB name, a mesh file)."""
    from pam_engine.objects import ObjectAsset, load_object
    from pam_engine.usd.objects import add_object

    path = check_output_path(path)
    if not isinstance(asset, ObjectAsset):
        asset = load_object(asset)
    stage = new_stage("Object")
    add_object(stage, "/Object", asset)
    return save_stage(stage, path)


def export_table(path: str | os.PathLike, config=None) -> Path:
    """The table of a scene config alone (default prim ``/Table``, static collider, top at z = 0):
    the local ground Isaac Lab spawns offline (its stock ground plane loads from the cloud)."""
    from pam_engine.sim.base import SceneConfig
    from pam_engine.usd.scene import add_table

    path = check_output_path(path)
    stage = new_stage("Table")
    add_table(stage, "/Table/box", config or SceneConfig())
    return save_stage(stage, path)


def export_scene(path: str | os.PathLike, scene, trajectory=None) -> Path:
    """A :class:`pam_engine.usd.scene.EpisodeScene` (table, objects at o0, hand at h0, lights,
    camera), and, when given, a trajectory as time samples (see :mod:`pam_engine.usd.animation`)."""
    from pam_engine.usd.scene import add_scene

    path = check_output_path(path)
    stage = new_stage("World")
    add_physics_scene(stage, scene.gravity)
    layout = add_scene(stage, scene)
    if trajectory is not None:
        from pam_engine.usd.animation import add_trajectory

        add_trajectory(stage, layout, trajectory)
    return save_stage(stage, path)


def export_trajectory(path: str | os.PathLike, scene, trajectory) -> Path:
    return export_scene(path, scene, trajectory)
