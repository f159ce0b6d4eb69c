"""USD's own validators (UsdValidation: the UsdPhysics articulation, joint, collider and rigid-body
checkers, UsdGeom stage metadata, UsdSkel bindings, UsdShade material bindings, ...) find nothing
in the files the engine writes; and they do find a broken file."""

import numpy as np
import pytest
from pxr import Usd, UsdGeom, UsdPhysics

from pam_engine.hand.pose import HandPose, make_transform
from pam_engine.objects import load_object
from pam_engine.sim.base import PlacedObject, SceneSpec
from pam_engine.usd import export_hand, export_object, export_scene
from pam_engine.usd.scene import EpisodeScene, scene_from_trajectory

UsdValidation = pytest.importorskip("pxr.UsdValidation")


def problems(stage):
    context = UsdValidation.ValidationContext(UsdValidation.ValidationRegistry().GetOrLoadAllValidators())
    return [f"{e.GetName()}: {e.GetMessage()}" for e in context.Validate(stage)]


def test_the_validators_catch_a_broken_articulation():
    stage = Usd.Stage.CreateInMemory()
    UsdGeom.Xform.Define(stage, "/W")
    UsdPhysics.ArticulationRootAPI.Apply(UsdGeom.Xform.Define(stage, "/W/a").GetPrim())
    UsdPhysics.ArticulationRootAPI.Apply(UsdGeom.Xform.Define(stage, "/W/a/b").GetPrim())
    assert any("NestedArticulation" in p for p in problems(stage))


def test_hand_object_scene_and_animation_files_validate(tmp_path, builtin_hand, mano_hand, recorded):
    hand, art = builtin_hand
    mustard = load_object("006_mustard_bottle")
    export_hand(tmp_path / "hand.usda", hand, art)
    export_hand(tmp_path / "mano.usdc", *mano_hand)
    export_object(tmp_path / "mustard.usdc", mustard)
    h0 = HandPose(make_transform(None, [0.0, 0.1, 0.2]), np.zeros(art.size))
    export_scene(tmp_path / "scene.usda", EpisodeScene(SceneSpec(hand, art, (PlacedObject(mustard, np.eye(4)),)), h0))
    traj, _ = recorded
    export_scene(tmp_path / "episode.usdc", scene_from_trajectory(traj, hand, art), traj)
    for name in ("hand.usda", "mano.usdc", "mustard.usdc", "scene.usda", "episode.usdc"):
        assert problems(Usd.Stage.Open(str(tmp_path / name))) == [], name
