"""The USD files the Isaac Lab task spawns, written by the engine's USD package from the same
descriptions that build the MuJoCo scene (``sim.rig``, the object assets, the scene config):
the hand articulation, one rigid body per object and the table. Written atomically into one
folder per hand and object set; a folder that is complete is reused."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from pam_engine.isaaclab.checks import check_joint_names
from pam_engine.sim.rig import WRIST_JOINTS


@dataclass(frozen=True)
class TaskAssets:
    hand: str  # hand.usda
    objects: tuple[str, ...]  # one .usda per object, in the task's object order
    table: str
    names: tuple[str, ...]  # object (YCB) names
    seg_ids: tuple[int, ...]  # their DexYCB ids


def usd_joint_names(path: str) -> list[str]:
    """The non-fixed joints of the hand USD, in prim order (the rig's: wrist, then fingers)."""
    from pxr import Usd, UsdPhysics

    stage = Usd.Stage.Open(str(path))
    names = []
    for prim in stage.Traverse():
        if prim.IsA(UsdPhysics.Joint) and not prim.IsA(UsdPhysics.FixedJoint):
            names.append(prim.GetName())
    return names


def expected_joint_names(articulation) -> list[str]:
    return [*WRIST_JOINTS, *articulation.names]


def write_task_assets(folder: str | Path, hand, articulation, assets, scene_config) -> TaskAssets:
    """Hand, objects and table as USD under ``folder`` (a subfolder keyed by their inputs)."""
    from pam_engine.usd import export_hand, export_object, export_table

    key = hashlib.sha256(json.dumps({
        "joints": expected_joint_names(articulation), "lower": articulation.lower.tolist(),
        "upper": articulation.upper.tolist(), "gains": asdict(scene_config.gains),
        "table": [list(scene_config.table_half_size), scene_config.table_friction],
        "objects": [[a.name, str(a.source), float(a.scale), float(a.mass)] for a in assets],
        "rest": hand.shaped(None)[1].round(6).tolist(), "format": 2,  # 2: hand condim 4, torsional friction
    }, sort_keys=True).encode()).hexdigest()[:16]
    root = Path(folder) / key
    root.mkdir(parents=True, exist_ok=True)
    hand_path = root / "hand.usda"
    if not hand_path.exists():
        export_hand(hand_path, hand, articulation, gains=scene_config.gains)
    objects = []
    for asset in assets:
        path = root / f"{asset.name}.usda"
        if not path.exists():
            export_object(path, asset)
        objects.append(str(path))
    table = root / "table.usda"
    if not table.exists():
        export_table(table, scene_config)
    check_hand_usd(hand_path, articulation)
    return TaskAssets(str(hand_path), tuple(objects), str(table), tuple(a.name for a in assets),
                      tuple(int(a.seg_id) for a in assets))


def check_hand_usd(path: str | Path, articulation) -> None:
    """The hand USD's joints must be the task's, by name and order, before the sim starts."""
    check_joint_names(usd_joint_names(str(path)), expected_joint_names(articulation), source=f"hand USD {path}")
