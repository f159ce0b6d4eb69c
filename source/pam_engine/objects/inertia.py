"""Mass, centre of mass and inertia of an object of uniform density.

Rule for the volume: a closed (watertight) mesh is integrated directly; an open scan (many
YCB scans have holes, e.g. the mug and the bowl) has no inside to integrate, so the union of its
convex collision parts is used instead (the sum over parts; CoACD's parts barely overlap).
The simulator then sees a body whose mass matches the shape it collides with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from pam_engine.errors import AssetError

#: Default density (kg/m^3). YCB items are mostly partly-filled containers, cardboard boxes,
#: plastic and wood whose mass divided by their outer volume spans roughly 100-1200 kg/m^3;
#: 500 sits in the middle and keeps objects liftable by a simulated hand.
DEFAULT_DENSITY = 500.0


@dataclass(frozen=True)
class MassProperties:
    mass: float
    com: np.ndarray  # (3,)
    inertia: np.ndarray  # (3, 3) about the COM
    volume: float
    volume_source: str  # "mesh" or "collision"


def _integrate(meshes, density: float) -> tuple[float, np.ndarray, np.ndarray, float]:
    """Combined mass, COM, inertia about that COM and volume of closed ``meshes``."""
    props = [trimesh.triangles.mass_properties(m.triangles, density=density) for m in meshes]
    masses = np.array([p.mass for p in props])
    total = float(masses.sum())
    com = (masses[:, None] * np.array([p.center_mass for p in props])).sum(axis=0) / total
    inertia = np.zeros((3, 3))
    for p in props:  # parallel-axis theorem, each part moved to the common COM
        d = np.asarray(p.center_mass) - com
        inertia += np.asarray(p.inertia) + p.mass * (d @ d * np.eye(3) - np.outer(d, d))
    return total, com, inertia, float(sum(p.volume for p in props))


def check_inertia(inertia: np.ndarray, what: str) -> None:
    """Raise unless ``inertia`` is symmetric positive definite and its principal moments obey the
    triangle inequality (A + B >= C), as MuJoCo requires of every body."""
    if not np.isfinite(inertia).all() or not np.allclose(inertia, inertia.T, rtol=1e-9, atol=1e-15):
        raise AssetError(f"{what}: inertia tensor is not finite and symmetric: {inertia.tolist()}")
    moments = np.linalg.eigvalsh(inertia)
    if moments[0] <= 0:
        raise AssetError(f"{what}: inertia tensor is not positive definite (principal moments {moments.tolist()})")
    if moments[0] + moments[1] < moments[2] * (1 - 1e-9):
        raise AssetError(f"{what}: principal moments {moments.tolist()} violate A + B >= C")


def mass_properties(mesh: trimesh.Trimesh, hulls, density: float, what: str) -> MassProperties:
    """Mass properties of ``mesh`` at ``density`` (kg/m^3), falling back on ``hulls`` when the
    mesh is open (see the module docstring)."""
    if mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0:
        parts, source = [mesh], "mesh"
    else:
        parts, source = list(hulls), "collision"
    mass, com, inertia, volume = _integrate(parts, density)
    inertia = 0.5 * (inertia + inertia.T)
    if not (np.isfinite(mass) and mass > 0 and np.isfinite(com).all()):
        raise AssetError(f"{what}: mass {mass!r} / centre of mass {com!r} are not positive and finite")
    check_inertia(inertia, what)
    return MassProperties(mass=mass, com=com, inertia=inertia, volume=volume, volume_source=source)
