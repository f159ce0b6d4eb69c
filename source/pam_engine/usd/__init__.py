"""USD authoring of the hand, the objects and whole scenes (UsdPhysics), omni-free.

    export_hand("hand.usda")                      # the built-in hand (or a MANO model)
    export_object("mustard.usda", load_object(5))
    export_scene("scene.usda", build_episode_scene(...))
    export_trajectory("episode.usda", trajectory, scene)

Everything is built from the descriptions that build the MuJoCo model (``sim.rig``, the object
assets, the scene config), written with ``pxr`` (``usd-core``, or the ``pxr`` ``usd-exchange``
ships), in SI units, Z up; files are written atomically.
"""

from pam_engine.usd.export import export_hand, export_object, export_scene, export_table, export_trajectory
from pam_engine.usd.stage import USD_SUFFIXES, check_output_path

__all__ = ["USD_SUFFIXES", "check_output_path", "export_hand", "export_object", "export_scene", "export_table",
           "export_trajectory"]
