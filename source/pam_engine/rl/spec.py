"""The grasp-policy task as data: observation and action layouts, the action-to-servo mapping,
the reward terms (the success rule is GraspXL's, in :mod:`pam_engine.pose.success`). Pure
numpy, no simulator: the MuJoCo environment (:mod:`pam_engine.rl.env`), the deployed policy
(:mod:`pam_engine.policy.learned`) and the Isaac Lab task of a later issue all build on these
functions, so they stay identical.

The task (GraspXL family, residual form): a scripted :class:`~pam_engine.pose.grasp.plan.GraspPlan`
gives per-control-step servo targets for approach, reach, close, lift and hold; the policy adds a
bounded residual to them. It decides once per capture frame (every ``control_per_frame`` = 7
control steps, 15 Hz) and only from the reach phase on: the approach is free-space motion the
plan already does well, and leaving it out keeps the horizon at 33 decisions.

Frames. Every observed quantity is expressed in the *current wrist frame* (MANO joint 0, rest
aligned): positions relative to the wrist, directions rotated into it. The wrist residual acts on
the wrist joints of the scene, whose frame is the grasp wrist hT (the plan anchors them there), so
it is a translation and small rotation of the hand in the hand's own frame.

Everything is described by :class:`GraspState`, a snapshot of world-frame quantities that any
simulator can fill; :func:`observation` and :func:`reward_terms` turn it into the vectors.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from pam_engine.pose.success import GRASPXL_HAND_DISTANCE, GRASPXL_RISE, graspxl_rule

#: Bumped whenever a layout, scale or formula below changes; checkpoints record it.
SPEC_VERSION = 2

#: Phases of the plan (pam_engine.pose.grasp.plan.PHASES), as indices.
APPROACH, REACH, CLOSE, LIFT, HOLD = range(5)
NUM_PHASES = 5
#: The first phase in which the residual acts.
FIRST_ACTIVE_PHASE = REACH

#: Hand parts, in CONTACT_PARTS order; the five fingertips and the palm centre are the probes
#: whose vectors to the object surface are observed.
NUM_PARTS = 6
NUM_PROBES = 6

#: The task's success rule is GraspXL's (:func:`pam_engine.pose.success.graspxl_rule`).
SUCCESS_RISE = GRASPXL_RISE
SUCCESS_HAND_DISTANCE = GRASPXL_HAND_DISTANCE

GRAVITY = 9.81


@dataclass(frozen=True)
class Term:
    """One named block of a vector."""

    name: str
    size: int
    doc: str


def observation_terms(n_dof: int, action_size: int) -> tuple[Term, ...]:
    """The observation layout, in order (all in the current wrist frame)."""
    return (
        Term("object_position", 3, "object centre of mass relative to the wrist (m)"),
        Term("object_rotation", 6, "object rotation, first two columns of its matrix"),
        Term("object_velocity", 6, "object linear (m/s) and angular (rad/s) velocity"),
        Term("wrist_velocity", 3, "wrist linear velocity (m/s)"),
        Term("finger_angles", n_dof, "finger joint angles mapped from their limits to [-1, 1]"),
        Term("tip_to_surface", 3 * NUM_PROBES, "from each fingertip (thumb..little) and the palm centre to the nearest object surface point (m)"),
        Term("contacts", NUM_PARTS, "1 where a hand part (thumb..little, palm) touches the object"),
        Term("plan_wrist_error", 6, "plan's wrist target at this step: position (m) and rotation vector (rad)"),
        Term("grasp_wrist_error", 6, "hT carried with the object: position (m) and rotation vector (rad)"),
        Term("finger_error", n_dof, "plan's finger targets minus the finger angles (rad)"),
        Term("phase", NUM_PHASES + 1, "one-hot plan phase and the episode's progress in [0, 1]"),
        Term("lift", 4, "object rise above its start height (m) and gravity's direction"),
        Term("previous_action", action_size, "the last action"),
    )


def action_terms() -> tuple[Term, ...]:
    """The action layout: residuals in [-1, 1], scaled by :class:`ActionConfig`."""
    return (
        Term("wrist_translation", 3, "wrist residual along the grasp frame's axes"),
        Term("wrist_rotation", 3, "wrist residual on the wrist's X-Y-Z hinges"),
        Term("finger_synergies", len(SYNERGIES), "curl per finger, thumb opposition, finger spread"),
    )


def size(terms: tuple[Term, ...]) -> int:
    return sum(t.size for t in terms)


def slices(terms: tuple[Term, ...]) -> dict[str, slice]:
    out, start = {}, 0
    for t in terms:
        out[t.name] = slice(start, start + t.size)
        start += t.size
    return out


def action_size() -> int:
    return size(action_terms())


def observation_size(n_dof: int) -> int:
    return size(observation_terms(n_dof, action_size()))


# -- action -----------------------------------------------------------------------------------

#: Finger synergies: weights per finger DoF name. Curls follow the closing direction grasp
#: synthesis uses (flexion, plus the thumb's CMC swinging towards the fingers); opposition turns
#: the thumb towards the fingers; spread fans the fingers apart (abduction is positive towards
#: the little finger). Low-dimensional residuals learn faster than 21 independent joints and
#: cannot produce anatomically odd finger shapes.
SYNERGIES: tuple[tuple[str, dict[str, float]], ...] = (
    ("curl_thumb", {"thumb1_flex": 1.0, "thumb1_abd": 0.6, "thumb2_flex": 1.0, "thumb3_flex": 1.0}),
    ("curl_index", {"index1_flex": 1.0, "index2_flex": 1.0, "index3_flex": 1.0}),
    ("curl_middle", {"middle1_flex": 1.0, "middle2_flex": 1.0, "middle3_flex": 1.0}),
    ("curl_ring", {"ring1_flex": 1.0, "ring2_flex": 1.0, "ring3_flex": 1.0}),
    ("curl_little", {"pinky1_flex": 1.0, "pinky2_flex": 1.0, "pinky3_flex": 1.0}),
    ("thumb_opposition", {"thumb1_abd": 1.0, "thumb1_twist": 1.0}),
    ("spread", {"index1_abd": -1.0, "ring1_abd": 0.5, "pinky1_abd": 1.0}),
)


@dataclass(frozen=True)
class ActionConfig:
    """Scale of each residual at action +-1 (metres, radians)."""

    wrist_translation: float = 0.03
    wrist_rotation: float = 0.20
    curl: float = 0.6
    thumb_opposition: float = 0.4
    spread: float = 0.3


def synergy_matrix(dof_names: list[str]) -> np.ndarray:
    """(num synergies, n_dof) weights; raises KeyError naming a DoF the hand lacks."""
    index = {n: i for i, n in enumerate(dof_names)}
    matrix = np.zeros((len(SYNERGIES), len(dof_names)))
    for row, (name, weights) in enumerate(SYNERGIES):
        for dof, w in weights.items():
            if dof not in index:
                raise KeyError(f"synergy {name!r} needs finger joint {dof!r}, which the hand lacks")
            matrix[row, index[dof]] = w
    return matrix


def synergy_scales(cfg: ActionConfig) -> np.ndarray:
    return np.array([cfg.curl] * 5 + [cfg.thumb_opposition, cfg.spread])


@functools.lru_cache(maxsize=16)
def _scales(cfg: ActionConfig) -> tuple[np.ndarray, np.ndarray]:
    """(6,) wrist and (num synergies,) synergy scales of a config, built once (this runs at
    every control step)."""
    wrist = np.array([cfg.wrist_translation] * 3 + [cfg.wrist_rotation] * 3)
    syn = synergy_scales(cfg)
    wrist.flags.writeable = syn.flags.writeable = False
    return wrist, syn


def residual_targets(action: np.ndarray, plan_wrist_q: np.ndarray, plan_fingers: np.ndarray,
                     synergies: np.ndarray, cfg: ActionConfig, lower: np.ndarray,
                     upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Servo targets = plan + scaled residual: wrist joints (6,) and finger joints (n_dof,)."""
    wrist_scale, syn_scale = _scales(cfg)
    a = np.minimum(np.maximum(np.asarray(action, dtype=np.float64), -1.0), 1.0)  # np.clip, without its overhead
    wrist = plan_wrist_q + wrist_scale * a[:6]
    fingers = plan_fingers + (syn_scale * a[6:]) @ synergies
    return wrist, np.minimum(np.maximum(fingers, lower), upper)


def blend(previous: np.ndarray, new: np.ndarray, substep: int, substeps: int) -> np.ndarray:
    """The residual applied at control step ``substep`` (0-based) of a decision: a linear ramp
    from the previous action to the new one over the frame, so targets never jump."""
    return previous + (substep + 1) / substeps * (new - previous)


# -- state, observation, reward ---------------------------------------------------------------

@dataclass
class GraspState:
    """World-frame quantities at a decision point: what a simulator must provide."""

    wrist: np.ndarray  # (4, 4) wrist pose
    wrist_linvel: np.ndarray  # (3,)
    finger_angles: np.ndarray  # (n_dof,)
    object_pose: np.ndarray  # (4, 4) object (mesh) frame
    object_com: np.ndarray  # (3,) centre of mass in the object frame
    object_linvel: np.ndarray  # (3,) of the centre of mass
    object_angvel: np.ndarray  # (3,)
    probes: np.ndarray  # (6, 3) fingertips thumb..little, palm centre
    nearest: np.ndarray  # (6, 3) nearest object surface point to each probe
    contacts: np.ndarray  # (6,) bool, hand parts touching the object
    contact_force: np.ndarray  # (6,) normal force of each part on the object (N)
    penetration: float  # deepest hand-object penetration (m)
    plan_wrist: np.ndarray  # (4, 4) plan's wrist target at this step
    plan_fingers: np.ndarray  # (n_dof,) plan's finger targets at this step
    grasp_in_object: np.ndarray  # (4, 4) hT in the object frame
    grasp_angles: np.ndarray  # (n_dof,)
    grasp_parts: np.ndarray  # (6,) bool, parts hT touches with (the target contact regions)
    phase: int
    progress: float  # step / last step of the plan
    start_height: float  # object COM height at the episode's start
    object_mass: float
    lower: np.ndarray  # (n_dof,) joint limits
    upper: np.ndarray

    def com_world(self) -> np.ndarray:
        return self.object_pose[:3, :3] @ self.object_com + self.object_pose[:3, 3]

    def rise(self) -> float:
        return float(self.com_world()[2] - self.start_height)

    def grasp_world(self) -> np.ndarray:
        """hT carried with the object's current pose."""
        return self.object_pose @ self.grasp_in_object

    def hand_error(self) -> float:
        """Distance (m) of the wrist from hT carried with the object."""
        return float(np.linalg.norm(self.wrist[:3, 3] - self.grasp_world()[:3, 3]))


def _pose_error(wrist: np.ndarray, target: np.ndarray) -> np.ndarray:
    rot = wrist[:3, :3]
    return np.concatenate([rot.T @ (target[:3, 3] - wrist[:3, 3]),
                           Rotation.from_matrix(rot.T @ target[:3, :3]).as_rotvec()])


def observation(s: GraspState, previous_action: np.ndarray) -> np.ndarray:
    """The observation vector (float32), in :func:`observation_terms` order."""
    rot, pos = s.wrist[:3, :3], s.wrist[:3, 3]
    obj_rot = rot.T @ s.object_pose[:3, :3]
    one_hot = np.zeros(NUM_PHASES)
    one_hot[int(s.phase)] = 1.0
    parts = [
        rot.T @ (s.com_world() - pos),
        obj_rot[:, :2].T.ravel(),
        rot.T @ s.object_linvel, rot.T @ s.object_angvel,
        rot.T @ s.wrist_linvel,
        2.0 * (s.finger_angles - s.lower) / (s.upper - s.lower) - 1.0,
        ((s.nearest - s.probes) @ rot).ravel(),
        s.contacts.astype(np.float64),
        _pose_error(s.wrist, s.plan_wrist),
        _pose_error(s.wrist, s.grasp_world()),
        s.plan_fingers - s.finger_angles,
        one_hot, [s.progress],
        [s.rise()], rot.T @ np.array([0.0, 0.0, -1.0]),
        np.asarray(previous_action, dtype=np.float64),
    ]
    return np.concatenate([np.ravel(p) for p in parts]).astype(np.float32)


@dataclass
class GraspStates:
    """:class:`GraspState` with a leading ``(N,)`` axis on every field: the batch the training
    environment fills once per step for all its envs (:func:`observation_batch`,
    :func:`reward_terms_batch`). Row ``i`` gives bit for bit what :func:`observation` gives for
    state ``i`` (``tests/rl/test_rl_spec.py``)."""

    wrist: np.ndarray  # (N, 4, 4)
    wrist_linvel: np.ndarray  # (N, 3)
    finger_angles: np.ndarray  # (N, n_dof)
    object_pose: np.ndarray  # (N, 4, 4)
    object_com: np.ndarray  # (N, 3)
    object_linvel: np.ndarray  # (N, 3)
    object_angvel: np.ndarray  # (N, 3)
    probes: np.ndarray  # (N, 6, 3)
    nearest: np.ndarray  # (N, 6, 3)
    contacts: np.ndarray  # (N, 6) bool
    contact_force: np.ndarray  # (N, 6)
    penetration: np.ndarray  # (N,)
    plan_wrist: np.ndarray  # (N, 4, 4)
    plan_fingers: np.ndarray  # (N, n_dof)
    grasp_in_object: np.ndarray  # (N, 4, 4)
    grasp_angles: np.ndarray  # (N, n_dof)
    grasp_parts: np.ndarray  # (N, 6) bool
    phase: np.ndarray  # (N,) int
    progress: np.ndarray  # (N,)
    start_height: np.ndarray  # (N,)
    object_mass: np.ndarray  # (N,)
    lower: np.ndarray  # (N, n_dof)
    upper: np.ndarray

    @classmethod
    def stack(cls, states: list[GraspState]) -> "GraspStates":
        return cls(**{name: np.stack([np.asarray(getattr(s, name)) for s in states]) for name in _STATE_FIELDS})

    def com_world(self) -> np.ndarray:
        return (self.object_pose[:, :3, :3] @ self.object_com[:, :, None])[:, :, 0] + self.object_pose[:, :3, 3]

    def rise(self) -> np.ndarray:
        return self.com_world()[:, 2] - self.start_height

    def grasp_world(self) -> np.ndarray:
        return self.object_pose @ self.grasp_in_object

    def hand_error(self) -> np.ndarray:
        return _norm(self.wrist[:, :3, 3] - self.grasp_world()[:, :3, 3])


_STATE_FIELDS = tuple(GraspState.__dataclass_fields__)
_DOWN = np.array([0.0, 0.0, -1.0])


def _norm(v: np.ndarray) -> np.ndarray:
    """Euclidean norm over the last axis (as ``np.linalg.norm`` of each row: bit for bit)."""
    return np.linalg.norm(v, axis=-1)


def _rotate_t(rot: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``rot.T @ v`` per env: (N, 3, 3), (N, 3) -> (N, 3)."""
    return (rot.transpose(0, 2, 1) @ v[:, :, None])[:, :, 0]


def _pose_error_batch(wrist: np.ndarray, target: np.ndarray) -> np.ndarray:
    """:func:`_pose_error` of N pose pairs, (N, 6)."""
    rot_t = wrist[:, :3, :3].transpose(0, 2, 1)
    position = (rot_t @ (target[:, :3, 3] - wrist[:, :3, 3])[:, :, None])[:, :, 0]
    return np.concatenate([position, Rotation.from_matrix(rot_t @ target[:, :3, :3]).as_rotvec()], axis=1)


def observation_batch(s: GraspStates, previous_action: np.ndarray) -> np.ndarray:
    """(N, obs_size) float32: :func:`observation` of every env in one pass (same formulas, a
    leading env axis)."""
    rot, pos = s.wrist[:, :3, :3], s.wrist[:, :3, 3]
    n = rot.shape[0]
    rot_t = rot.transpose(0, 2, 1)
    obj_rot = rot_t @ s.object_pose[:, :3, :3]
    one_hot = np.zeros((n, NUM_PHASES))
    one_hot[np.arange(n), s.phase.astype(int)] = 1.0
    parts = [
        _rotate_t(rot, s.com_world() - pos),
        obj_rot[:, :, :2].transpose(0, 2, 1).reshape(n, 6),
        _rotate_t(rot, s.object_linvel), _rotate_t(rot, s.object_angvel),
        _rotate_t(rot, s.wrist_linvel),
        2.0 * (s.finger_angles - s.lower) / (s.upper - s.lower) - 1.0,
        ((s.nearest - s.probes) @ rot).reshape(n, -1),
        s.contacts.astype(np.float64),
        _pose_error_batch(s.wrist, s.plan_wrist),
        _pose_error_batch(s.wrist, s.grasp_world()),
        s.plan_fingers - s.finger_angles,
        one_hot, np.asarray(s.progress, dtype=np.float64)[:, None],
        s.rise()[:, None], rot_t @ _DOWN,
        np.asarray(previous_action, dtype=np.float64).reshape(n, -1),
    ]
    return np.concatenate(parts, axis=1).astype(np.float32)


@dataclass(frozen=True)
class RewardConfig:
    """Weights of the reward terms (GraspXL family) and their scales."""

    contact: float = 0.5  # x fraction of hT's contact parts touching, from the close phase on
    impulse: float = 0.5  # x grip force / (object weight x impulse_cap), capped at 1
    impulse_cap: float = 3.0
    joint: float = 0.5  # x mean |finger angle - target| (rad): hT's angles from close on, the plan's before
    hand: float = 5.0  # x wrist distance (m) from hT carried with the object (the plan's target before close)
    #: distances beyond this count as this (m). A knocked-off object drags hT metres away (and
    #: falls ever faster): unbounded, one such episode outweighed a whole batch and wrecked the
    #: value normalisation (epoch means of -2000 were logged before the caps)
    hand_cap: float = 0.1
    object_velocity: float = 0.5  # x object speed (m/s) before the lift; its speed relative to the wrist after
    angular_lever: float = 0.1  # m: angular velocity counts as lever x omega
    speed_cap: float = 1.0  # m/s, as hand_cap
    lift: float = 2.0  # x object rise / 0.1 m during lift and hold, capped at lift_cap
    lift_cap: float = 0.2  # m
    penetration: float = 100.0  # x deepest hand-object penetration (m)
    action: float = 0.05  # x mean squared action
    action_rate: float = 0.1  # x mean squared action change
    success: float = 10.0  # once, at the end, when GraspXL's rule holds
    diverged: float = 10.0  # once, when the simulation blows up


REWARD_TERMS = ("contact", "impulse", "joint", "hand", "object_velocity", "lift", "penetration",
                "action", "action_rate", "success", "diverged")


def reward_terms(s: GraspState | None, action: np.ndarray, previous_action: np.ndarray, cfg: RewardConfig,
                 final: bool = False, diverged: bool = False) -> dict[str, float]:
    """Each weighted reward term of one decision (their sum is the reward)."""
    out = dict.fromkeys(REWARD_TERMS, 0.0)
    if diverged:
        out["diverged"] = -cfg.diverged
        return out
    closing, lifting = s.phase >= CLOSE, s.phase >= LIFT
    if closing:
        wanted = s.grasp_parts.astype(bool)
        out["contact"] = cfg.contact * float((s.contacts.astype(bool) & wanted).sum()) / max(int(wanted.sum()), 1)
        grip = float(np.sum(s.contact_force)) / (s.object_mass * GRAVITY * cfg.impulse_cap)
        out["impulse"] = cfg.impulse * min(grip, 1.0)
    target = s.grasp_angles if closing else s.plan_fingers
    out["joint"] = -cfg.joint * float(np.mean(np.abs(s.finger_angles - target)))
    hand = s.hand_error() if closing else float(np.linalg.norm(s.wrist[:3, 3] - s.plan_wrist[:3, 3]))
    out["hand"] = -cfg.hand * min(hand, cfg.hand_cap)
    linvel = s.object_linvel - (s.wrist_linvel if lifting else 0.0)
    speed = float(np.linalg.norm(linvel) + cfg.angular_lever * np.linalg.norm(s.object_angvel))
    out["object_velocity"] = -cfg.object_velocity * min(speed, cfg.speed_cap)
    if lifting:
        out["lift"] = cfg.lift * min(max(s.rise(), 0.0), cfg.lift_cap) / 0.1
    out["penetration"] = -cfg.penetration * max(float(s.penetration), 0.0)
    a, prev = np.asarray(action, dtype=np.float64), np.asarray(previous_action, dtype=np.float64)
    out["action"] = -cfg.action * float(np.mean(a * a))
    out["action_rate"] = -cfg.action_rate * float(np.mean((a - prev) ** 2))
    if final and graspxl_rule(s.rise(), s.hand_error()):
        out["success"] = cfg.success
    return out


def reward_terms_batch(s: GraspStates | None, action: np.ndarray, previous_action: np.ndarray, cfg: RewardConfig,
                       final: np.ndarray | bool = False, diverged: np.ndarray | bool = False) -> dict[str, np.ndarray]:
    """:func:`reward_terms` of N envs at once: each term (N,) float64. A diverged env gets only
    ``-cfg.diverged`` (its state row may hold anything: every other term is zero); ``s`` may be
    None when every env diverged."""
    a = np.asarray(action, dtype=np.float64)
    prev = np.asarray(previous_action, dtype=np.float64)
    n = a.shape[0]
    diverged = np.broadcast_to(np.asarray(diverged, dtype=bool), (n,))
    final = np.broadcast_to(np.asarray(final, dtype=bool), (n,))
    out = {k: np.zeros(n) for k in REWARD_TERMS}
    out["diverged"][diverged] = -cfg.diverged
    if s is None or diverged.all():
        return out
    live = ~diverged
    closing, lifting = s.phase >= CLOSE, s.phase >= LIFT
    wanted = s.grasp_parts.astype(bool)
    touching = (s.contacts.astype(bool) & wanted).sum(axis=1).astype(np.float64)
    grip = s.contact_force.sum(axis=1) / (s.object_mass * GRAVITY * cfg.impulse_cap)
    target = np.where(closing[:, None], s.grasp_angles, s.plan_fingers)
    with np.errstate(invalid="ignore", over="ignore"):  # diverged rows may hold NaN: masked below
        rise, hand_error = s.rise(), s.hand_error()
        hand = np.where(closing, hand_error, _norm(s.wrist[:, :3, 3] - s.plan_wrist[:, :3, 3]))
        linvel = s.object_linvel - np.where(lifting[:, None], s.wrist_linvel, 0.0)
        speed = _norm(linvel) + cfg.angular_lever * _norm(s.object_angvel)
        terms = {
            "contact": np.where(closing, cfg.contact * touching / np.maximum(wanted.sum(axis=1), 1), 0.0),
            "impulse": np.where(closing, cfg.impulse * np.minimum(grip, 1.0), 0.0),
            "joint": -cfg.joint * np.mean(np.abs(s.finger_angles - target), axis=1),
            "hand": -cfg.hand * np.minimum(hand, cfg.hand_cap),
            "object_velocity": -cfg.object_velocity * np.minimum(speed, cfg.speed_cap),
            "lift": np.where(lifting, cfg.lift * np.minimum(np.maximum(rise, 0.0), cfg.lift_cap) / 0.1, 0.0),
            "penetration": -cfg.penetration * np.maximum(np.asarray(s.penetration, dtype=np.float64), 0.0),
            "action": -cfg.action * np.mean(a * a, axis=1),
            "action_rate": -cfg.action_rate * np.mean((a - prev) ** 2, axis=1),
            "success": np.where(final & (rise > SUCCESS_RISE) & (hand_error < SUCCESS_HAND_DISTANCE), cfg.success, 0.0),
        }
    for key, value in terms.items():
        out[key][live] = value[live]
    return out


@dataclass(frozen=True)
class TaskConfig:
    """What the environment and the deployed policy must agree on (stored in checkpoints)."""

    action: ActionConfig = field(default_factory=ActionConfig)
    surface_points: int = 1024  # object surface samples for the tip-to-surface vectors
    num_frames: int = 49  # the clip length the plan is timed for (Stage I's default)
