"""The window's stage work in plain USD (``pxr``, no ``omni.*``): put an episode's scene and its
trajectory (time samples) into a stage, read the semantic labels and, at a time code, the
hand's articulation state and the objects' poses for the Replicator writer.

Scene authoring is ``pam_engine.usd``'s (the USD assets: hand articulation, objects, labels);
this module only calls it. Kit's stage is a ``pxr.Usd.Stage``, so the same calls work in the
window and in tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pam_engine.errors import PamError

#: Where the window puts the episode scene in the open stage.
SCENE_ROOT = "/World/PAM"


class UsdUnavailableError(PamError, ImportError):
    """The USD scene authoring (``pam_engine.usd``, ``pxr``) is not importable here."""


def usd_authoring():
    """``(scene_from_trajectory, add_scene, add_trajectory)`` of ``pam_engine.usd``, or a clear
    error saying what is missing (the window greys its USD buttons out with this message)."""
    try:
        from pam_engine.usd.animation import add_trajectory
        from pam_engine.usd.scene import add_scene, scene_from_trajectory
    except ImportError as exc:
        raise UsdUnavailableError(
            f"USD scene authoring is unavailable ({exc}): it needs pam_engine.usd (the USD assets) and pxr "
            "(usd-core outside Isaac Sim)") from exc
    return scene_from_trajectory, add_scene, add_trajectory


@dataclass(frozen=True)
class StageScene:
    """Paths of an episode scene in a stage: the hand's root, its wrist link and finger joints
    (engine joint names), the objects in order, the camera (if any)."""

    hand_root: str
    wrist_link: str
    finger_joints: tuple[str, ...]
    objects: tuple[str, ...]
    camera: str | None


def load_trajectory(stage, trajectory, camera=None, root: str = SCENE_ROOT) -> StageScene:
    """Author the trajectory's scene under ``root`` (replacing a previous one) with the trajectory
    as time samples (the stage's time codes become its frames), so the timeline plays it back."""
    scene_from_trajectory, add_scene, add_trajectory = usd_authoring()
    from pxr import UsdGeom

    if stage.GetPrimAtPath(root):
        stage.RemovePrim(root)
    UsdGeom.Xform.Define(stage, root)
    layout = add_scene(stage, scene_from_trajectory(trajectory, camera=camera), root=root)
    add_trajectory(stage, layout, trajectory)
    hand = layout.hand
    return StageScene(hand_root=hand.root, wrist_link=hand.link_path(hand.rig.body_names[0]),
                      finger_joints=tuple(rj.name for rj in hand.rig.finger_joints), objects=tuple(layout.objects),
                      camera=layout.camera)


def semantics_from_stage(stage, root: str = "/") -> dict[str, str]:
    """Prim path -> ``class`` semantic label of every labelled prim under ``root``
    (``UsdSemantics.LabelsAPI``, or the older ``Semantics.SemanticsAPI`` where present)."""
    from pxr import Usd

    out: dict[str, str] = {}
    start = stage.GetPrimAtPath(root)
    for prim in Usd.PrimRange(start) if start else stage.Traverse():
        label = _class_label(prim)
        if label:
            out[str(prim.GetPath())] = label
    return out


def _class_label(prim) -> str:
    attr = prim.GetAttribute("semantics:labels:class")  # UsdSemantics.LabelsAPI, instance "class"
    if attr and attr.HasValue():
        values = list(attr.Get() or [])
        return str(values[0]) if values else ""
    for name in prim.GetPropertyNames():  # Semantics.SemanticsAPI: semantic:<inst>:params:semanticType/Data
        if name.startswith("semantic:") and name.endswith(":params:semanticType"):
            if prim.GetAttribute(name).Get() == "class":
                data = prim.GetAttribute(name.replace("semanticType", "semanticData")).Get()
                return str(data or "")
    return ""


def world_pose(stage, path: str, time) -> np.ndarray:
    """Column-vector 4x4 local->world transform of a prim at ``time`` (stage units)."""
    from pxr import Usd, UsdGeom

    prim = stage.GetPrimAtPath(path)
    if not prim:
        raise PamError(f"the stage has no prim {path!r}")
    code = Usd.TimeCode(time) if not isinstance(time, Usd.TimeCode) else time
    return np.array(UsdGeom.Xformable(prim).ComputeLocalToWorldTransform(code), dtype=np.float64).T


def articulation_state(stage, scene: StageScene, time):
    """The ``ArticulationState`` at ``time``: the wrist link's world pose, the finger joints'
    ``state:angular:physics:position`` (degrees in USD) in radians, the objects' world poses."""
    from pxr import Usd

    from pam_engine.kitless.replicator_format import ArticulationState

    code = Usd.TimeCode(time)
    joints = {}
    for name in scene.finger_joints:
        path = f"{scene.hand_root}/joints/{name}"
        attr = stage.GetPrimAtPath(path).GetAttribute("state:angular:physics:position")
        if not attr:
            raise PamError(f"hand joint {path!r} has no state:angular:physics:position")
        joints[name] = float(np.radians(attr.Get(code)))
    return ArticulationState(wrist_pose=world_pose(stage, scene.wrist_link, code), joint_positions=joints,
                             object_poses=[world_pose(stage, p, code) for p in scene.objects])


def apply_draws(stage, scene: StageScene, draws, root: str = SCENE_ROOT) -> None:
    """Put one episode's random look (``kitless.randomization.ReplicatorDraws``, drawn from
    ``pam generate``'s randomisation config) on the stage: the camera (re-authored at the scene's
    camera path), the key light's direction and intensity, the dome light's intensity, and the
    display colours of the objects and the table. Replicator renders whatever the stage holds."""
    from pxr import Gf, UsdGeom, UsdLux
    from scipy.spatial.transform import Rotation

    if scene.camera is not None:
        from pam_engine.usd.camera import add_camera

        add_camera(stage, scene.camera, draws.camera)
    if draws.light_direction is None:
        return
    key = UsdLux.DistantLight(stage.GetPrimAtPath(f"{root}/Lights/key"))
    if key:
        # a distant light shines along its -Z: rotate -Z onto the drawn direction
        rot, _ = Rotation.align_vectors([-np.asarray(draws.light_direction)], [[0.0, 0.0, 1.0]])
        pose = np.eye(4)
        pose[:3, :3] = rot.as_matrix()
        xform = UsdGeom.Xformable(key.GetPrim())
        xform.ClearXformOpOrder()
        xform.AddTransformOp().Set(Gf.Matrix4d(pose.T.tolist()))
        key.CreateIntensityAttr().Set(float(draws.key_intensity))
    dome = UsdLux.DomeLight(stage.GetPrimAtPath(f"{root}/Lights/ambient"))
    if dome:
        dome.CreateIntensityAttr().Set(float(draws.dome_intensity))
    from pxr import Usd

    def paint(path: str, colour) -> None:
        start = stage.GetPrimAtPath(path)
        for prim in Usd.PrimRange(start) if start else ():
            gprim = UsdGeom.Gprim(prim)
            if gprim:
                gprim.CreateDisplayColorAttr().Set([Gf.Vec3f(*colour)])

    for path, colour in zip(scene.objects, draws.object_colours):
        paint(path, colour)
    if draws.table_colour is not None:
        paint(f"{root}/Table", draws.table_colour)
