"""Grasp families, picked from the object's geometry as it rests on the table.

A power grasp (palm and wrapping fingers) cannot take an object lying flat: its fingers would
have to pass under it, through the table. So before synthesis the object is measured
(:func:`measure`): its principal horizontal axes, its height above the table and its graspable
widths along its long axis (cross-sections). :func:`choose_families` then names the families
worth trying, and each family proposes its own approach directions, hand orientations and aim
points (:func:`family_candidates`), all expressed in world axes:

- ``power``: the open hand, from every side and from above (the original search);
- ``handle``: the open hand wrapped across the long axis of a graspable section (a handle, a
  bottle neck), fingers closing around it;
- ``pinch``: a tripod pinch (thumb against index and middle) from above, across the narrow
  side of a flat or thin object, aimed at cross-sections near the centre of mass;
- ``lateral``: a key grasp on an edge: the pinch tilted steeply, from the side the object's
  narrow axis points to, so the thumb presses the top edge and the fingers the side;
- ``along_table``: for objects lying flat, approaches that travel nearly along the table top,
  low and across the long axis, with the pinch pre-shape.

Each candidate is ``(direction, finger_axis, aim, preshape, standoff, family)``: the hand travels
along ``direction`` (palm facing it), its fingers point along ``finger_axis`` (perpendicular to
the direction), and ``aim`` is the point its pre-shape's aim point is brought to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FAMILIES = ("power", "handle", "pinch", "lateral", "along_table")


@dataclass(frozen=True)
class ObjectGeometry:
    """What grasp choice needs of a resting object, world frame (metres)."""

    centre: np.ndarray  # (3,) bounding-box centre
    com: np.ndarray  # (3,) centre of mass
    long_axis: np.ndarray  # (3,) horizontal unit vector, the footprint's principal axis
    short_axis: np.ndarray  # (3,) horizontal unit vector perpendicular to it
    length: float  # extent along long_axis
    width: float  # extent along short_axis
    height: float  # top above the table
    bottom: float  # lowest point (z)
    #: cross-sections along the long axis: (k, 3) centroids (z at half the section's height),
    #: (k,) widths across, (k,) heights above the table
    sections: np.ndarray
    section_widths: np.ndarray
    section_heights: np.ndarray
    #: (k,) vertical extent of each section (top minus bottom): what fingertips pressing across
    #: it meet (a knife's raised blade is 2 mm of it, its handle 15)
    section_thickness: np.ndarray | None = None

    @property
    def flat(self) -> bool:
        return self.height < FLAT_HEIGHT

    def graspable(self, span: float, narrowest: float | None = None, thinnest: float = 0.0) -> np.ndarray:
        """Indices of sections a hand of opening ``span`` can close across (wider than
        ``narrowest``, default :data:`MIN_WIDTH`, and at least ``thinnest`` thick), nearest the
        COM first."""
        lo = MIN_WIDTH if narrowest is None else max(narrowest, MIN_WIDTH)
        fits = (self.section_widths > lo) & (self.section_widths < span)
        if thinnest > 0 and self.section_thickness is not None:
            fits &= self.section_thickness >= thinnest
        ok = np.flatnonzero(fits)
        d = np.linalg.norm(self.sections[ok, :2] - self.com[:2], axis=1)
        return ok[np.argsort(d)]


#: an object whose top is lower than this lies flat: a power grasp cannot wrap it
FLAT_HEIGHT = 0.045
#: sections thinner than this are no grip for a pinch (a blade's edge)
MIN_WIDTH = 0.004
#: the pinching thumb tip's height, as a multiple of the section's mid-height
THUMB_HEIGHT = 1.2
#: fingertips pressing across a section need this much of its side to press on: squeezed on
#: its edges, a thin plate (a knife's blade, a scissor blade) rotates out of the pinch
MIN_THICKNESS = 0.007


def measure(vertices: np.ndarray, com: np.ndarray, table_z: float = 0.0, bins: int = 12) -> ObjectGeometry:
    """Principal axes, height and per-section widths of world-frame ``vertices``."""
    v = np.asarray(vertices, dtype=np.float64)
    xy = v[:, :2] - v[:, :2].mean(axis=0)
    _, vecs = np.linalg.eigh(xy.T @ xy)
    a1 = np.array([vecs[0, 1], vecs[1, 1], 0.0])
    a2 = np.array([-a1[1], a1[0], 0.0])
    s1, s2 = v @ a1, v @ a2
    lo, hi = v.min(axis=0), v.max(axis=0)
    edges = np.linspace(s1.min(), s1.max(), bins + 1)
    idx = np.clip(np.searchsorted(edges, s1, side="right") - 1, 0, bins - 1)
    cents, widths, heights, thick = [], [], [], []
    for k in range(bins):
        m = idx == k
        if m.sum() < 3:
            continue
        pts = v[m]
        w_lo, w_hi = s2[m].min(), s2[m].max()
        top = pts[:, 2].max()
        c = 0.5 * (edges[k] + edges[k + 1]) * a1 + 0.5 * (w_lo + w_hi) * a2
        cents.append([c[0], c[1], 0.5 * (pts[:, 2].min() + top)])
        widths.append(w_hi - w_lo)
        heights.append(top - table_z)
        thick.append(top - pts[:, 2].min())
    return ObjectGeometry(
        centre=0.5 * (lo + hi), com=np.asarray(com, dtype=np.float64), long_axis=a1, short_axis=a2,
        length=float(np.ptp(s1)), width=float(np.ptp(s2)), height=float(hi[2] - table_z), bottom=float(lo[2]),
        sections=np.array(cents).reshape(-1, 3), section_widths=np.array(widths), section_heights=np.array(heights),
        section_thickness=np.array(thick))


def choose_families(geo: ObjectGeometry, span: float) -> tuple[str, ...]:
    """The families worth trying on ``geo`` for a hand that opens to ``span`` (m), best first."""
    families = []
    if geo.flat:  # fingertip grasps first: a power grasp would have to reach under it
        families += ["pinch", "lateral", "along_table"]
    if geo.length > 2.0 * max(geo.width, 1e-6) and len(geo.graspable(span)):
        families.append("handle")
    # the open hand closes across the footprint's narrow side, or across the height of an
    # object standing up (it cannot wrap the height of one lying flat)
    if geo.width < span or (not geo.flat and geo.height < span):
        families.append("power")
    return tuple(dict.fromkeys(families))


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def _tilted(down: np.ndarray, side: np.ndarray, angle: float) -> np.ndarray:
    """``down`` (unit) turned by ``angle`` towards ``side`` (unit, perpendicular)."""
    return _unit(np.cos(angle) * down + np.sin(angle) * side)


def _beside(centre: np.ndarray, fingers: np.ndarray, width: float, gap: float = 0.0,
            low: float = 0.009) -> np.ndarray:
    """Where the thumb tip goes for a pinch across a section of ``width`` centred at ``centre``:
    beside its near side (towards the wrist; the curled index and middle tips reach farther
    along ``fingers``), so the curling fingertips press it onto the thumb; a little above the
    section's middle (the thumb pressing down on the near side keeps the fingers from squeezing
    the object up past it), but at least ``low`` above the table."""
    out = centre - (0.5 * width + gap) * fingers
    out[2] = max(THUMB_HEIGHT * centre[2], low)
    return out


def family_candidates(family: str, geo: ObjectGeometry, span: float, rng: np.random.Generator, aims: int = 4,
                      shape: str | None = None, narrowest: float | None = None):
    """Candidates of one family (see the module docstring) with pre-shape ``shape`` (default
    the family's: "open" for ``handle``, "tripod" for the fingertip families), aimed at sections
    narrower than ``span`` and wider than ``narrowest``; empty for ``power``, which the
    synthesizer's own search covers."""
    down = np.array([0.0, 0.0, -1.0])
    tripod = shape or "tripod"
    # none: nothing this family can close across (fingertip families: nor press on)
    sections = geo.graspable(span, narrowest, 0.0 if family == "handle" else MIN_THICKNESS)[:aims]
    points, widths = geo.sections[sections].copy(), geo.section_widths[sections]
    # within its section, each aim moves along the object as near the centre of mass as it can
    # (a section is a twelfth of the object long): the less torque about the grip, the less the
    # object turns in it during the lift
    half = 0.5 * geo.length / max(len(geo.section_widths), 1)
    along = (geo.com - points) @ geo.long_axis
    points += np.clip(along, -half, half)[:, None] * geo.long_axis
    jitter = lambda: rng.uniform(-0.08, 0.08)  # noqa: E731 - radians of variety between seeds
    a1, a2 = geo.long_axis, geo.short_axis
    if family == "pinch":
        # tilted along the object (fingers stay across it) or across it (so the thumb and the
        # fingertips, not level in every pre-shape, reach the table top together)
        tilts = [(a1, 0.0), (a1, 0.3), (a1, -0.3), (a2, 0.25), (a2, -0.25)]
        for p, w in zip(points, widths):
            for axis, tilt in tilts:
                d = _tilted(down, axis, tilt + jitter())
                for sign in (1.0, -1.0):
                    u = _unit(np.cross(d, sign * a1))  # fingers point across the narrow side
                    # the thumb tip just beside the near side; closing, the tips sink about a
                    # centimetre, so the hand stops that far above the table
                    yield d, u, _beside(p, u, w), tripod, 0.011, family
    elif family == "lateral":
        for p, w in zip(points, widths):
            for sign in (1.0, -1.0):
                d = _tilted(down, sign * a2, 0.6 + jitter())  # steep, from the side across the object
                for turn in (1.0, -1.0):
                    u = _unit(np.cross(d, turn * a1))
                    yield d, u, _beside(p, u, w), tripod, 0.008, family
    elif family == "along_table":
        for p, w in zip(points, widths):
            for sign in (1.0, -1.0):
                d = _tilted(down, sign * a2, 1.1 + jitter())  # nearly along the table top
                u = _unit(np.cross(d, a1))
                for turn in (1.0, -1.0):
                    yield d, turn * u, _beside(p, turn * u, w), tripod, 0.008, family
    elif family == "handle":
        for p in points:
            for tilt in (0.0, 0.5, -0.5):
                d = _tilted(down, a2, tilt + jitter())
                for sign in (1.0, -1.0):
                    u = _unit(np.cross(d, sign * a1))  # fingers wrap across the handle
                    yield d, u, p, shape or "open", 0.004, family
