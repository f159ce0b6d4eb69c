"""Grasp synthesis for any object mesh: the target hT when the user gives none.

For each candidate (approach direction x roll about it x aim point), kinematically, in the
episode's own MuJoCo scene (so the table and the object's convex decomposition are what the
hand meets later):

1. place the palm: orient the hand so its palm faces along the approach, then slide the open,
   pre-shaped hand along the approach until it first touches the object, and back off;
2. close the fingers: curl each finger (MCP, PIP, DIP together; the thumb about its CMC
   flexion, MCP and IP) until one of its segments touches the object, then keep curling the
   joints distal to the touching segment, so fingers wrap as a closing hand does;
3. score: which parts touch (the thumb opposing at least one finger, or the palm with two
   fingers), the force-closure quality of the contacts (the largest wrench ball inside the
   convex hull of their friction-cone wrenches, Ferrari-Canny), and how close the grasp is to
   the centre of mass (less torque during the lift).

Candidates that touch the table, start inside the object, or put the forearm below the table
are rejected. Everything runs on positions only (``mj_kinematics`` + ``mj_collision``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import mujoco
import numpy as np
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.transform import Rotation

from pam_engine.conventions import MANO_FINGERS
from pam_engine.errors import ConfigError, NoGraspError
from pam_engine.hand.pose import make_transform
from pam_engine.pose.grasp import families as fam
from pam_engine.pose.grasp.target import GraspTarget

if TYPE_CHECKING:  # the synthesizer queries MuJoCo collisions directly (kinematic search)
    from pam_engine.sim.mujoco.scene import HandObjectScene

#: Contact parts, as in trajectory.CONTACT_PARTS.
THUMB, PALM = 0, 5
_FINGER_PARTS = {"thumb": 0, "index": 1, "middle": 2, "ring": 3, "pinky": 4}
SEARCH_MODES = ("batched", "mujoco")


@dataclass
class Closed:
    """A candidate placed and closed, before the contact-count rule and scoring: what
    :meth:`GraspSynthesizer._accept` needs (contact points and normals on the target, world)."""

    index: int
    family: str
    wrist: np.ndarray
    d: np.ndarray
    preshape: np.ndarray
    angles: np.ndarray
    squeeze: np.ndarray
    parts: np.ndarray
    points: np.ndarray
    normals: np.ndarray


@dataclass(frozen=True)
class GraspSynthesisConfig:
    """Search space and scoring of grasp synthesis."""

    num_directions: int = 20  # approach directions over the upper hemisphere and the sides
    num_rolls: int = 6  # hand rotations about each approach direction
    aim_heights: tuple[float, ...] = (0.35, 0.6)  # aim points, fractions of the object's height
    max_tilt_below_horizon: float = 0.25  # rad; approaches from below the table are useless
    #: (pre-shape, stand-off in m): the hand slides in until it first touches the object or the
    #: table, then backs off this far; "pinch" reaches thin objects lying flat.
    approaches: tuple[tuple[str, float], ...] = (("open", 0.004), ("open", 0.025), ("pinch", 0.002))
    curl_step: float = 0.04  # rad per closing step
    friction: float = 0.8  # assumed for force closure
    cone_edges: int = 6
    min_parts: int = 3  # contact parts (fingers + palm) a grasp needs
    max_forearm_down: float = 0.35  # sin of the forearm's largest downward tilt
    #: grasp families to consider (pose.grasp.families); which of them are tried is picked from
    #: the object's geometry
    families: tuple[str, ...] = fam.FAMILIES
    family_aims: int = 4  # cross-sections each family aims at
    #: how candidates are placed and closed: "mujoco" (one candidate at a time, one MuJoCo
    #: collision call per step: the reference, and Stage I's default) or "batched" (all candidates
    #: at once, contacts from the object's signed-distance grid, MuJoCo's collision for the closed
    #: grasp that is scored; 1.6-2x faster, the grasp bank's default; see docs/stage1_grasps.md)
    search: str = "mujoco"
    seed: int = 0


class GraspSynthesizer:
    """Finds grasps of one object of a scene, in that scene (objects fixed, positions only)."""

    def __init__(self, scene: HandObjectScene, target: int = 0, config: GraspSynthesisConfig | None = None):
        self.scene = scene
        self.target = target
        self.config = config or GraspSynthesisConfig()
        self.model, self.data = scene.model, scene.data
        self._min_parts = self.config.min_parts
        art = scene.articulation
        self._names = art.names
        rest = scene.hand_info.rest_joints
        self._palm_normal = _unit(np.cross(rest[1] - rest[0], rest[7] - rest[0]))
        self._finger_dir = _unit(rest[4] - rest[0])
        # palm centre relative to the wrist (hand frame): 60% of the way to the knuckles
        self._palm_centre = 0.6 * (rest[[1, 4, 7, 10]].mean(axis=0) - rest[0])
        self._preshapes = {"open": self._open_preshape(), "pinch": self._pinch_preshape(),
                           "tripod": self._tripod_preshape(), "tripod_wide": self._wide_tripod_preshape()}
        # the point of the hand (wrist frame) aimed at the object: the palm centre for the open
        # hand, the middle of the thumb, index and middle fingertips for the pinch
        tips = self._fingertips(self._preshapes["pinch"])
        tripod = self._fingertips(self._preshapes["tripod"])
        wide = self._fingertips(self._preshapes["tripod_wide"])
        # the tripods' aim: their thumb tip (the families put it beside the object), moved
        # sideways (across the fingers) to the middle of the three tips, so the grip's centre,
        # not the thumb, lands on the section the family aims at (nearest the centre of mass:
        # less torque turning the object in the pinch)
        self._aim_points = {"open": self._palm_centre, "pinch": tips[[0, 1, 2]].mean(axis=0),
                            "tripod": self._tripod_aim(tripod), "tripod_wide": self._tripod_aim(wide)}
        open_tips = self._fingertips(self._preshapes["open"])
        #: the widest object the open hand closes across: thumb tip to the farthest fingertip;
        #: and what the pinch closes across: most of the thumb-index gap
        self._span = float(np.linalg.norm(open_tips[1:] - open_tips[0], axis=1).max())
        self._pinch_span = 0.9 * float(np.linalg.norm(tripod[1] - tripod[0]))
        self._wide_pinch_span = 0.9 * float(np.linalg.norm(wide[1] - wide[0]))
        self.families: tuple[str, ...] = ()
        self.rejections: dict[tuple[str, str], int] = {}  # (family, why) -> candidates rejected
        self._finger_geoms = {p: np.flatnonzero(scene.geom_part == p) for p in range(6)}
        self._object_geoms = set(np.flatnonzero(scene.geom_object == target).tolist())
        self._table_geom = scene.table_geom

    # -- public -----------------------------------------------------------------------------

    def synthesize(self, count: int = 1) -> list[GraspTarget]:
        """The ``count`` best grasps (best first); raises PoseError when none is feasible."""
        saved_qpos, saved_base = self.data.qpos.copy(), self.scene.base_pose()
        object_pose = self.scene.object_pose(self.target)
        m = self.model
        # while planning, objects meet only the hand (their resting contacts would cost time)
        world = self.scene.geom_part < 0
        saved_contype, saved_conaffinity = m.geom_contype.copy(), m.geom_conaffinity.copy()
        self._saved_contype, self._saved_conaffinity = saved_contype, saved_conaffinity
        objects = world & (self.scene.geom_object >= 0)
        m.geom_contype[objects], m.geom_conaffinity[objects] = 0, 2
        geo = self.geometry(object_pose)
        self.families = tuple(f for f in fam.choose_families(geo, self._span) if f in self.config.families)
        try:
            self.data.qpos[self.scene.wrist_qpos] = 0.0
            records = self.evaluate(list(self._candidates(object_pose, geo)), object_pose)
            grasps = self._accept(records, object_pose, count)
            if not grasps:  # thin or awkward objects: accept two-part pinches too
                self._min_parts = 2
                grasps = self._accept(records, object_pose, count)
        finally:
            m.geom_contype[:], m.geom_conaffinity[:] = saved_contype, saved_conaffinity
            self.data.qpos[:] = saved_qpos
            self.scene.set_base_pose(saved_base)
            self.scene.forward()
        if not grasps:
            name = self.scene.objects[self.target].asset.name
            tried = []
            for f in self.families:
                why = sorted(((n, w) for (g, w), n in self.rejections.items() if g == f), reverse=True)
                if why:
                    tried.append(f"{f} ({sum(n for n, _ in why)} candidates: " + ", ".join(f"{n} {w}" for n, w in why[:3]) + ")")
                else:
                    tried.append(f"{f} (no part of the object narrow enough for it)")
            raise NoGraspError(
                f"no feasible grasp found for object {name!r} ({geo.length * 100:.1f} x {geo.width * 100:.1f} cm "
                f"footprint, {geo.height * 100:.1f} cm tall; hand opening {self._span * 100:.0f} cm); tried "
                + ("; ".join(tried) or "no grasp family"))
        if not geo.flat:  # as before families: the power grasps' order, by quality and score
            grasps.sort(key=lambda g: (g.quality <= 0.0, -g.score))
            return grasps[:count]
        return _interleave(grasps)[:count]

    def geometry(self, object_pose: np.ndarray) -> fam.ObjectGeometry:
        """The target's principal extents, height and graspable widths where it rests."""
        asset = self.scene.objects[self.target].asset
        vertices = np.asarray(asset.mesh.vertices) @ object_pose[:3, :3].T + object_pose[:3, 3]
        com = object_pose[:3, :3] @ np.asarray(asset.com) + object_pose[:3, 3]
        return fam.measure(vertices, com, table_z=0.0)  # the table top is the world's z = 0

    # -- candidates --------------------------------------------------------------------------

    def _open_preshape(self) -> np.ndarray:
        """A wide-open hand, the thumb spread away from the fingers and turned to face them."""
        settings = {"thumb1_abd": -0.4, "thumb1_flex": 0.45, "thumb1_twist": 0.4}
        settings.update({f"{f}1_flex": 0.1 for f in ("index", "middle", "ring", "pinky")})
        return self._angles(settings)

    def _pinch_preshape(self) -> np.ndarray:
        """Fingertips pointing down and the thumb opposed: fingers reach thin objects on the table."""
        settings = {"thumb1_abd": 0.3, "thumb1_flex": 0.35, "thumb1_twist": 0.5, "thumb2_flex": 0.3, "thumb3_flex": 0.2}
        for f in ("index", "middle", "ring", "pinky"):
            settings.update({f"{f}1_flex": 0.6, f"{f}2_flex": 0.6, f"{f}3_flex": 0.2})
        return self._angles(settings)

    def _tripod_preshape(self) -> np.ndarray:
        """Thumb, index and middle tips level with each other along the palm normal, about 4 cm
        apart, the thumb opposite the index: from above, all three reach the table top together,
        so they can close on the sides of an object a few millimetres tall. (Angles from a small
        least-squares fit of the built-in hand's fingertips to those conditions.)"""
        settings = {"thumb1_abd": 0.6, "thumb1_flex": 0.3, "thumb1_twist": 0.33, "thumb2_flex": 0.34, "thumb3_flex": 0.16}
        for f, scale in (("index", 1.0), ("middle", 1.0), ("ring", 0.9), ("pinky", 0.9)):
            settings.update({f"{f}1_flex": 0.8 * scale, f"{f}2_flex": 0.35 * scale, f"{f}3_flex": 0.0})
        return self._angles(settings)

    def _tripod_aim(self, tips: np.ndarray) -> np.ndarray:
        """The thumb tip of a tripod pre-shape shifted, across the finger direction and the
        palm normal, to the mean of the thumb, index and middle tips (wrist frame)."""
        side = _unit(np.cross(self._palm_normal, self._finger_dir))
        return tips[0] + ((tips[:3].mean(axis=0) - tips[0]) @ side) * side

    def _wide_tripod_preshape(self) -> np.ndarray:
        """The tripod opened to about 6.5 cm between thumb and index tips, the three tips still
        level along the palm normal, for sections too wide for :meth:`_tripod_preshape` (a
        banana, a hammer's or a screwdriver's handle lying on the table): the index and middle
        straighter at the middle joint and bent at the end, the thumb curled (the same kind of
        least-squares fit of the built-in hand)."""
        settings = {"thumb1_abd": 0.585, "thumb1_flex": -0.21, "thumb1_twist": 0.29, "thumb2_flex": 0.93,
                    "thumb3_flex": 0.84}
        for f, scale in (("index", 1.0), ("middle", 1.0), ("ring", 0.9), ("pinky", 0.9)):
            settings.update({f"{f}1_flex": 0.65 * scale, f"{f}2_flex": -0.05 * scale if scale == 1.0 else 0.0,
                             f"{f}3_flex": 0.62 if scale == 1.0 else 0.0})
        return self._angles(settings)

    def _fingertips(self, angles: np.ndarray) -> np.ndarray:
        """Fingertip keypoints (thumb first) of the hand at ``angles``, wrist frame."""
        hand = self.scene.hand
        pose = np.concatenate([np.zeros(3), self.scene.articulation.angles_to_hand_pose(angles)])
        out = hand.forward(pose)
        return out.keypoints[[4, 8, 12, 16, 20]] - out.joints[0]

    def _angles(self, settings: dict[str, float]) -> np.ndarray:
        q = np.zeros(self.scene.articulation.size)
        for name, value in settings.items():
            q[self._names.index(name)] = value
        return self.scene.articulation.check_angles(q)

    def _candidates(self, object_pose: np.ndarray, geo: fam.ObjectGeometry):
        """(direction, hand rotation, aim, pre-shape, stand-off, family) of every candidate: the
        geometry-picked families' own, then the power search from every side."""
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        for family in self.families:
            if family == "power":
                continue
            if family == "handle":
                shapes = [("open", self._span, fam.MIN_WIDTH)]
            else:  # the tripod where it fits, else the wide tripod
                shapes = [("tripod", self._pinch_span, fam.MIN_WIDTH),
                          ("tripod_wide", self._wide_pinch_span, self._pinch_span)]
            for preshape, span, narrowest in shapes:
                for d, u, aim, shape, standoff, name in fam.family_candidates(
                        family, geo, span, rng, cfg.family_aims, shape=preshape, narrowest=narrowest):
                    yield d, self._orientation_from(d, u), aim, shape, standoff, name
        if "power" not in self.families:
            return
        asset = self.scene.objects[self.target].asset
        vertices = np.asarray(asset.mesh.vertices) @ object_pose[:3, :3].T + object_pose[:3, 3]
        lo, hi = vertices.min(axis=0), vertices.max(axis=0)
        centre = 0.5 * (lo + hi)
        # directions the hand travels: Fibonacci points, those not coming from under the table
        n = cfg.num_directions * 2
        k = np.arange(n) + 0.5
        z = 1 - 2 * k / n
        phi = np.pi * (1 + 5 ** 0.5) * k + rng.uniform(0, 2 * np.pi)
        points = np.stack([np.sqrt(1 - z * z) * np.cos(phi), np.sqrt(1 - z * z) * np.sin(phi), z], axis=1)
        directions = -points[points[:, 2] > -np.sin(cfg.max_tilt_below_horizon)][: cfg.num_directions * 2]
        directions = directions[-directions[:, 2] > -np.sin(cfg.max_tilt_below_horizon)]
        for d in directions:
            for h in cfg.aim_heights:
                aim = np.array([centre[0], centre[1], lo[2] + h * (hi[2] - lo[2])])
                for r in range(cfg.num_rolls):
                    roll = 2 * np.pi * (r + rng.uniform(0, 1)) / cfg.num_rolls
                    rot = self._orientation(d, roll)
                    for preshape, standoff in cfg.approaches:
                        yield d, rot, aim, preshape, standoff, "power"

    def _orientation(self, d: np.ndarray, roll: float) -> np.ndarray:
        ref = np.array([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
        u0 = _unit(np.cross(np.cross(d, ref), d))
        return self._orientation_from(d, Rotation.from_rotvec(roll * d).apply(u0))

    def _orientation_from(self, d: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The hand rotation whose palm faces along ``d`` and whose fingers point along ``u``."""
        u = _unit(u - (u @ d) * d)
        e1, e2 = self._palm_normal, _unit(self._finger_dir - (self._finger_dir @ self._palm_normal) * self._palm_normal)
        world = np.stack([d, u, np.cross(d, u)], axis=1)
        hand = np.stack([e1, e2, np.cross(e1, e2)], axis=1)
        return world @ hand.T

    # -- kinematic evaluation --------------------------------------------------------------

    def _set(self, position: np.ndarray, angles: np.ndarray) -> None:
        # the mocap base carries the wrist (wrist joints at zero, orientation set per
        # candidate): moving the hand is one assignment, no inverse kinematics
        self.data.mocap_pos[self.scene.base_mocap] = position
        self.data.qpos[self.scene.finger_qpos] = angles
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_collision(self.model, self.data)

    def _touching(self) -> tuple[np.ndarray, bool, float]:
        """Hand parts touching the target, whether the hand touches the table or another
        object, and the deepest penetration into the target."""
        parts = np.zeros(6, bool)
        other, depth = False, 0.0
        n = self.data.ncon
        if n:
            geoms = self.data.contact.geom[:n]
            dist = self.data.contact.dist[:n]
            part = self.scene.geom_part
            for a, b in ((0, 1), (1, 0)):
                hand = part[geoms[:, a]] >= 0
                obj = self.scene.geom_object[geoms[:, b]]
                on_target = hand & (obj == self.target)
                parts[part[geoms[on_target, a]]] = True
                if on_target.any():
                    depth = max(depth, float(-dist[on_target].min()))
                other |= bool(np.any(hand & ((geoms[:, b] == self._table_geom) | ((obj >= 0) & (obj != self.target)))))
        return parts, other, depth

    def _evaluate(self, d: np.ndarray, rot: np.ndarray, aim: np.ndarray, shape: str, standoff: float,
                  family: str, object_pose: np.ndarray) -> Closed | tuple[str, str]:
        """One candidate, one MuJoCo collision call per step: its :class:`Closed` record, or
        (family, why) when it is rejected."""
        cfg = self.config
        finger_world = rot @ self._finger_dir
        if finger_world[2] > 1.0 - cfg.max_forearm_down:  # fingers steeply up: forearm points into the table
            return (family, "forearm into the table")
        self.data.mocap_quat[self.scene.base_mocap] = Rotation.from_matrix(rot).as_quat(scalar_first=True)
        start = aim - rot @ self._aim_points[shape] - 0.25 * d
        preshape = self._preshapes[shape]
        if shape.startswith("tripod"):  # placed, not slid: the thumb tip beside the object, low over the table
            away = -(rot @ self._finger_dir)  # the thumb sits on the near side, towards the wrist
            base = aim - rot @ self._aim_points[shape]
            thumb_near = False
            for offset in np.arange(0.0, 0.016, 0.003):  # back the thumb off until it clears the object
                position = base + offset * away
                self._set(position, preshape)
                parts, other, _ = self._touching()
                thumb_near |= bool(parts[THUMB])
                if other or not parts.any():
                    break
            if parts.any() or other:
                return (family, "pre-shape does not fit beside the object")
            # the fingers will push the object the few millimetres onto the thumb
            return self._finish(position, rot, d, preshape, shape, family, object_pose, thumb_near)
        self._set(start, preshape)
        parts, other, _ = self._touching()
        if parts.any() or other:
            return (family, "start pose in contact")
        # slide in along d until the open hand touches the target (bisection on the travel)
        lo, hi = 0.0, 0.5
        for _ in range(14):
            mid = 0.5 * (lo + hi)
            self._set(start + mid * d, preshape)
            parts, other, _ = self._touching()
            if parts.any() or other:
                hi = mid
            else:
                lo = mid
        if hi >= 0.5 - 1e-6:  # never met the object
            return (family, "missed the object")
        position = start + max(lo - standoff, 0.0) * d
        self._set(position, preshape)
        parts, other, _ = self._touching()
        if other or position[2] < 0.01:
            return (family, "met the table first")
        return self._finish(position, rot, d, preshape, shape, family, object_pose)

    def _finish(self, position, rot, d, preshape, shape, family, object_pose,
                thumb_near: bool = False) -> Closed | tuple[str, str]:
        """Close the hand placed at ``position`` (see :meth:`_closed`); ``thumb_near``: the thumb
        stands just clear of the object, counted as touching it."""
        angles, squeeze = self._close(position, preshape, pinch=family != "power" and shape != "open")
        return self._closed(-1, position, rot, d, preshape, family, angles, squeeze, thumb_near)

    def _closed(self, index, position, rot, d, preshape, family, angles, squeeze,
                thumb_near: bool = False, quat: np.ndarray | None = None) -> Closed | tuple[str, str]:
        """The closed hand's contacts, from MuJoCo, with the fingers on the object pressed
        slightly so they register (the base's orientation ``quat`` set first when given)."""
        if quat is not None:
            self.data.mocap_quat[self.scene.base_mocap] = quat
        squeezed = np.minimum(angles + 0.03 * squeeze, self.scene.articulation.upper)
        self._set(position, squeezed)
        parts, other, _ = self._touching()
        if other:
            return (family, "closed onto the table")
        parts[THUMB] |= thumb_near
        points, normals = self._target_contacts()
        return Closed(index, family, make_transform(rot, position), d, preshape.copy(), angles, squeeze, parts,
                      points, normals)

    def evaluate(self, candidates: list, object_pose: np.ndarray) -> list:
        """Every candidate's :class:`Closed` record or (family, why) rejection, in order; the
        search of ``config.search`` (both find the same kind of grasp; "batched" evaluates all
        candidates together, see :mod:`pam_engine.pose.grasp.batched`)."""
        if self.config.search not in SEARCH_MODES:
            raise ConfigError(f"config key 'synthesis.search': expected one of {SEARCH_MODES}, got {self.config.search!r}")
        if self.config.search == "batched":
            from pam_engine.pose.grasp.batched import evaluate_batched

            out = evaluate_batched(self, candidates, object_pose)
        else:
            out = [self._evaluate(*c, object_pose) for c in candidates]
        for i, r in enumerate(out):
            if isinstance(r, Closed):
                r.index = i
        return out

    def _accept(self, records: list, object_pose: np.ndarray, count: int) -> list[GraspTarget]:
        """Rejections counted, the contact-count rule applied, and grasps scored: the best
        ``count`` of each family with exact force-closure quality (other candidates are dropped
        once an upper bound on their quality shows they cannot be among them)."""
        asset = self.scene.objects[self.target].asset
        com = object_pose[:3, :3] @ np.asarray(asset.com) + object_pose[:3, 3]
        extent = np.ptp(np.asarray(asset.mesh.vertices), axis=0).max() / 2
        passing = []
        for r in records:
            if not isinstance(r, Closed):
                self._reject(*r)
                continue
            parts = r.parts
            finger_parts = parts[:5].sum()
            if parts.sum() < self._min_parts or not (parts[THUMB] or parts[PALM]) or finger_parts < self._min_parts - 1:
                self._reject(r.family, "too few contacts")
                continue
            passing.append(r)
        inv = np.linalg.inv(object_pose)
        chosen = select_by_quality(passing, com, extent, self.config.friction, self.config.cone_edges, count)
        grasps = []
        for r in passing:
            if r.index not in chosen:
                continue
            quality, com_distance = chosen[r.index]
            score = quality * 10.0 + 0.3 * r.parts.sum() + 0.5 * r.parts[THUMB] - 10.0 * com_distance
            grasps.append(GraspTarget(inv @ r.wrist, r.angles, inv[:3, :3] @ r.d, r.preshape, score, quality,
                                      r.parts.copy(), r.family, r.squeeze))
        return grasps

    def _reject(self, family: str, why: str) -> None:
        self.rejections[(family, why)] = self.rejections.get((family, why), 0) + 1
        return None

    def _curl_direction(self, pinch: bool = False) -> np.ndarray:
        """Closing velocity per DoF: flexion joints, and the thumb's CMC swinging towards the
        fingers (opposition). A pinch closes differently: curling the fingers' middle and end
        joints or the thumb's flexion opens the thumb-index gap, so the index and middle bend at
        the knuckle only, pressing the object onto the thumb, which the families placed beside
        it and which stays; ring and little finger stay where they are too."""
        if pinch:
            direction = np.zeros(len(self._names))
            for name, v in (("index1_flex", 1.0), ("middle1_flex", 1.0)):
                direction[self._names.index(name)] = v
            return direction
        direction = np.array([1.0 if name.endswith("_flex") else 0.0 for name in self._names])
        direction[self._names.index("thumb1_abd")] = 0.6
        return direction

    def _close(self, position: np.ndarray, preshape: np.ndarray, pinch: bool = False) -> np.ndarray | None:
        """Curl each finger until contact, then curl what lies beyond the touching segment."""
        art = self.scene.articulation
        angles = preshape.copy()
        chains = {f: [self._names.index(f"{_joint_name(j)}_flex") for j in joints] for f, joints in MANO_FINGERS.items()}
        geom_to_dof = {}
        for f, joints in MANO_FINGERS.items():
            for j, dof in zip(joints, chains[f]):
                geom_to_dof[mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, f"hand_{_joint_name(j)}_col")] = (f, dof)
        chains["thumb"].insert(0, self._names.index("thumb1_abd"))  # swings with the CMC's flexion
        if pinch:
            chains["thumb"].insert(1, self._names.index("thumb1_twist"))
        velocity = self._curl_direction(pinch)
        active = {f: [i for i in idx if velocity[i] > 0] for f, idx in chains.items()}  # dofs still closing
        on_target: set[str] = set()  # fingers stopped by the object (not the table)
        upper = art.upper
        step = self.config.curl_step
        for _ in range(int(3.0 / step)):
            if not any(active.values()):
                break
            trial = angles.copy()
            for f, idx in active.items():
                trial[idx] = np.minimum(trial[idx] + step * velocity[idx], upper[idx])
            self._set(position, trial)
            blocked, touching_target = self._blocked_dofs(geom_to_dof, chains)
            on_target |= touching_target
            for f in list(active):
                if blocked.get(f) is not None:
                    # the touching segment and those before it stop; later ones may go on
                    stop_at = chains[f].index(blocked[f])
                    active[f] = [i for i in active[f] if chains[f].index(i) > stop_at]
                else:
                    angles[active[f]] = trial[active[f]]
                active[f] = [i for i in active[f] if angles[i] < upper[i] - 1e-9]
        squeeze = np.zeros_like(angles)
        for f in on_target:
            squeeze[chains[f]] = velocity[chains[f]]
        if pinch and on_target & {"index", "middle"}:
            squeeze += self._thumb_opposition(angles)
        return angles, squeeze

    def _thumb_opposition(self, angles: np.ndarray) -> np.ndarray:
        """The thumb joints' motion (unit rad) that moves its tip straight at the index and
        middle tips (finite-difference Jacobian, least squares): the thumb's half of a pinch."""
        names = ("thumb1_abd", "thumb1_flex", "thumb1_twist", "thumb2_flex", "thumb3_flex")
        idx = [self._names.index(n) for n in names]
        tips = self._fingertips(angles)
        goal = _unit(tips[[1, 2]].mean(axis=0) - tips[0])
        jac = np.zeros((3, len(idx)))
        for k, i in enumerate(idx):
            q = angles.copy()
            q[i] += 1e-3
            jac[:, k] = (self._fingertips(q)[0] - tips[0]) / 1e-3
        dq = np.linalg.lstsq(jac, goal * 0.03, rcond=None)[0]  # 3 cm of thumb-tip travel
        out = np.zeros_like(angles)
        out[idx] = dq / max(np.abs(dq).max(), 1e-9)
        return out

    def _blocked_dofs(self, geom_to_dof, chains) -> tuple[dict[str, int], set[str]]:
        """For each finger whose segment touches anything, the most proximal touching DoF; and
        the fingers touching the target."""
        blocked: dict[str, int] = {}
        touching_target: set[str] = set()
        n = self.data.ncon
        geoms = self.data.contact.geom[:n]
        for a, b in ((0, 1), (1, 0)):
            for g_hand, g_other in zip(geoms[:, a], geoms[:, b]):
                hit = geom_to_dof.get(int(g_hand))
                if hit is None or self.scene.geom_part[g_other] >= 0:
                    continue
                f, dof = hit
                if self.scene.geom_object[g_other] == self.target:
                    touching_target.add(f)
                if f not in blocked or chains[f].index(dof) < chains[f].index(blocked[f]):
                    blocked[f] = dof
        return blocked, touching_target

    def _target_contacts(self) -> tuple[np.ndarray, np.ndarray]:
        """Points and normals (pushing the object) of the current hand-target contacts, world."""
        n = self.data.ncon
        if not n:
            return np.zeros((0, 3)), np.zeros((0, 3))
        con = self.data.contact
        g1, g2 = con.geom[:n, 0], con.geom[:n, 1]
        obj, part = self.scene.geom_object, self.scene.geom_part
        forward = (obj[g2] == self.target) & (part[g1] >= 0)  # from geom1 (hand) to geom2 (object)
        backward = ~forward & (obj[g1] == self.target) & (part[g2] >= 0)
        keep = forward | backward
        normals = con.frame[:n, :3][keep] * np.where(forward[keep], 1.0, -1.0)[:, None]
        return con.pos[:n][keep].copy(), normals


def contact_wrenches(points: np.ndarray, normals: np.ndarray, com: np.ndarray, extent: float, friction: float,
                     edges: int) -> np.ndarray:
    """(len(points) * edges, 6) wrenches of the friction-cone edges at each contact (point-major),
    torques about ``com`` divided by ``extent``."""
    n = np.asarray(normals, dtype=np.float64)
    ref = np.where((np.abs(n[:, 0]) < 0.9)[:, None], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    t1 = np.cross(n, ref)
    t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
    t2 = np.cross(n, t1)
    a = np.linspace(0, 2 * np.pi, edges, endpoint=False)
    f = n[:, None] + friction * (np.cos(a)[None, :, None] * t1[:, None] + np.sin(a)[None, :, None] * t2[:, None])
    torque = np.cross((points - com)[:, None], f) / extent
    return np.concatenate([f, torque], axis=2).reshape(-1, 6)


def epsilon(wrenches: np.ndarray, normals_out: list | None = None) -> float:
    """Ferrari-Canny epsilon: the radius of the largest origin-centred ball inside the convex
    hull of ``wrenches`` (0 when the origin is not strictly inside). ``normals_out``: a list
    the unit normals of the hull's facets nearest the origin are appended to."""
    try:
        hull = ConvexHull(wrenches)
    except (QhullError, ValueError):
        return 0.0
    offsets = hull.equations[:, -1]
    if normals_out is not None:
        nearest = np.argsort(-offsets)[:16]
        normals_out.append(hull.equations[nearest, :-1])
    return float(-offsets.max()) if np.all(offsets < 0) else 0.0


def _directions() -> np.ndarray:
    rng = np.random.default_rng(12345)
    u = rng.normal(size=(64, 6))
    return np.concatenate([np.eye(6), -np.eye(6), u / np.linalg.norm(u, axis=1, keepdims=True)])


_DIRECTIONS = _directions()


def epsilon_bound(wrenches: np.ndarray, directions: np.ndarray = _DIRECTIONS, refine: int = 0) -> float:
    """An upper bound on :func:`epsilon`: for any unit direction u the ball's radius is at most
    the hull's support max_i w_i . u, so the least support over ``directions``; ``refine``
    steps of projected subgradient descent on the sphere from the best few of them tighten it
    (every direction visited is still a valid bound)."""
    support = wrenches @ directions.T  # (M, K)
    h = support.max(axis=0)
    best = float(h.min())
    if refine and best > 0.0:
        starts = directions[np.argsort(h)[:4]]
        u = starts.copy()
        scale = np.abs(wrenches).max()
        for k in range(refine):
            top = (wrenches @ u.T).argmax(axis=0)  # the supporting wrench of each direction
            g = wrenches[top]
            g = g - np.sum(g * u, axis=1, keepdims=True) * u  # its tangential part: the ascent
            u = u - (0.3 / (1 + k)) * g / scale
            u /= np.linalg.norm(u, axis=1, keepdims=True)
            best = min(best, float((wrenches @ u.T).max(axis=0).min()))
    return best


def select_by_quality(records: list, com: np.ndarray, extent: float, friction: float, edges: int,
                      count: int) -> dict[int, tuple[float, float]]:
    """(quality, com distance) of the records that can be among the best ``count`` of their
    family by (quality > 0 first, then score), by record index. Exact: a record is dropped only
    when an upper bound on its score (:func:`epsilon_bound`) is below the ``count``-th best
    exact score already found in its family with positive quality."""
    by_family: dict[str, list] = {}
    for r in records:
        by_family.setdefault(r.family, []).append(r)
    out: dict[int, tuple[float, float]] = {}
    for group in by_family.values():
        pending = []  # (score bound, base score, com distance, record, wrenches)
        for r in group:
            if len(r.points) < 2:  # as the scalar rule: no quality, the COM "far"
                out[r.index] = (0.0, 1.0)
                continue
            com_distance = float(np.linalg.norm(r.points.mean(axis=0) - com))
            base = 0.3 * r.parts.sum() + 0.5 * r.parts[THUMB] - 10.0 * com_distance
            w = contact_wrenches(r.points, r.normals, com, extent, friction, edges)
            bound = epsilon_bound(w)
            if bound <= 0.0:  # the origin is not inside the hull: quality 0, exactly
                out[r.index] = (0.0, com_distance)
                continue
            pending.append((base + 10.0 * (bound + 1e-9), base, com_distance, r, w))
        pending.sort(key=lambda p: -p[0])
        positive: list[float] = []  # exact scores with quality > 0, best first
        found: list[np.ndarray] = []  # facet normals of the hulls computed so far: tighter bounds
        for bound_score, base, com_distance, r, w in pending:
            if len(positive) >= count and positive[count - 1] > bound_score:
                break  # neither this nor any later one (lower bounds) can enter the best count
            if len(positive) >= count:
                pool = np.concatenate([_DIRECTIONS] + found[-12:])
                tighter = base + 10.0 * (epsilon_bound(w, pool, refine=10) + 1e-9)
                if positive[count - 1] > tighter:
                    continue  # its own, tighter bound rules it out
            q = epsilon(w, found)
            out[r.index] = (q, com_distance)
            if q > 0.0:
                positive.append(base + 10.0 * q)
                positive.sort(reverse=True)
    return out


def _interleave(grasps: list[GraspTarget]) -> list[GraspTarget]:
    """Best first within each family (force-closure grasps, then by score), the families taking
    turns (the family with the best grasp first): the physical trial then tries every family's
    best before any family's second, so one family's near-duplicates cannot use up the trial."""
    by_family: dict[str, list[GraspTarget]] = {}
    for g in sorted(grasps, key=lambda g: (g.quality <= 0.0, -g.score)):
        by_family.setdefault(g.family, []).append(g)
    queues = list(by_family.values())
    out = []
    for i in range(max(len(q) for q in queues)):
        out += [q[i] for q in queues if i < len(q)]
    return out


def _joint_name(j: int) -> str:
    from pam_engine.conventions import MANO_JOINT_NAMES

    return MANO_JOINT_NAMES[j]


def _unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, dtype=np.float64) / np.linalg.norm(v)
