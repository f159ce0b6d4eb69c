"""The grasp task of :mod:`pam_engine.rl.spec`, batched in torch over N environments: the form the
Isaac Lab task (:mod:`pam_engine.isaaclab`) computes on its device, thousands of envs in one call.

Layouts, scales, weights and thresholds are *read from* :mod:`pam_engine.rl.spec` (never
restated), and every formula here is the numpy one line for line with a leading env axis;
``tests/rl/test_rl_spec_torch.py`` checks both forms agree to 1e-5 on random states. Bump
``spec.SPEC_VERSION`` with any change to either.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from pam_engine.rl import spec


@dataclass
class GraspStateBatch:
    """:class:`~pam_engine.rl.spec.GraspState` with a leading ``(N,)`` axis on every field."""

    wrist: torch.Tensor  # (N, 4, 4)
    wrist_linvel: torch.Tensor  # (N, 3)
    finger_angles: torch.Tensor  # (N, n_dof)
    object_pose: torch.Tensor  # (N, 4, 4)
    object_com: torch.Tensor  # (N, 3)
    object_linvel: torch.Tensor  # (N, 3)
    object_angvel: torch.Tensor  # (N, 3)
    probes: torch.Tensor  # (N, 6, 3)
    nearest: torch.Tensor  # (N, 6, 3)
    contacts: torch.Tensor  # (N, 6) bool
    contact_force: torch.Tensor  # (N, 6)
    penetration: torch.Tensor  # (N,)
    plan_wrist: torch.Tensor  # (N, 4, 4)
    plan_fingers: torch.Tensor  # (N, n_dof)
    grasp_in_object: torch.Tensor  # (N, 4, 4)
    grasp_angles: torch.Tensor  # (N, n_dof)
    grasp_parts: torch.Tensor  # (N, 6) bool
    phase: torch.Tensor  # (N,) int
    progress: torch.Tensor  # (N,)
    start_height: torch.Tensor  # (N,)
    object_mass: torch.Tensor  # (N,)
    lower: torch.Tensor  # (N, n_dof)
    upper: torch.Tensor  # (N, n_dof)

    @classmethod
    def stack(cls, states: list[spec.GraspState], dtype=torch.float64, device="cpu") -> "GraspStateBatch":
        """Batch numpy states (tests, and a backend reading per-env states)."""
        out = {}
        for f in fields(cls):
            values = np.stack([np.asarray(getattr(s, f.name)) for s in states])
            t = torch.as_tensor(values, device=device)
            out[f.name] = t if t.dtype in (torch.bool, torch.int64, torch.int32) else t.to(dtype)
        return cls(**out)

    def com_world(self) -> torch.Tensor:
        return (self.object_pose[:, :3, :3] @ self.object_com[..., None])[..., 0] + self.object_pose[:, :3, 3]

    def rise(self) -> torch.Tensor:
        return self.com_world()[:, 2] - self.start_height

    def grasp_world(self) -> torch.Tensor:
        return self.object_pose @ self.grasp_in_object

    def hand_error(self) -> torch.Tensor:
        return torch.linalg.norm(self.wrist[:, :3, 3] - self.grasp_world()[:, :3, 3], dim=-1)


def matrix_to_rotvec(rot: torch.Tensor) -> torch.Tensor:
    """Rotation vectors (..., 3) of rotation matrices (..., 3, 3), angle in [0, pi] as scipy's
    ``Rotation.as_rotvec`` (through the quaternion, largest-component branch for stability)."""
    m = rot
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    candidates = torch.stack([
        torch.stack([1 + trace, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
        torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + 2 * m[..., 0, 0] - trace, m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
        torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0], 1 + 2 * m[..., 1, 1] - trace, m[..., 1, 2] + m[..., 2, 1]], -1),
        torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1], 1 + 2 * m[..., 2, 2] - trace], -1),
    ], -2)  # (..., 4, 4): row k is 4 |q_k| q (w, x, y, z)
    diag = torch.stack([trace, m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]], -1)
    best = diag.argmax(-1)
    q = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4))[..., 0, :]
    q = q / torch.linalg.norm(q, dim=-1, keepdim=True)
    q = torch.where(q[..., :1] < 0, -q, q)  # w >= 0: the angle in [0, pi]
    w, v = q[..., 0], q[..., 1:]
    s = torch.linalg.norm(v, dim=-1)
    angle = 2 * torch.atan2(s, w)
    small = s < 1e-8
    scale = torch.where(small, 2.0 / w.clamp_min(1e-12), angle / torch.where(small, torch.ones_like(s), s))
    return v * scale[..., None]


def _pose_error(wrist: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    rot_t = wrist[:, :3, :3].transpose(-1, -2)
    position = (rot_t @ (target[:, :3, 3] - wrist[:, :3, 3])[..., None])[..., 0]
    return torch.cat([position, matrix_to_rotvec(rot_t @ target[:, :3, :3])], -1)


def _rotate_t(rot: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``rot.T @ v`` per env: (N, 3, 3), (N, 3) -> (N, 3)."""
    return (rot.transpose(-1, -2) @ v[..., None])[..., 0]


def observation(s: GraspStateBatch, previous_action: torch.Tensor) -> torch.Tensor:
    """(N, obs_size) float32 observations, in :func:`spec.observation_terms` order."""
    rot, pos = s.wrist[:, :3, :3], s.wrist[:, :3, 3]
    n = rot.shape[0]
    obj_rot = rot.transpose(-1, -2) @ s.object_pose[:, :3, :3]
    one_hot = torch.nn.functional.one_hot(s.phase.long(), spec.NUM_PHASES).to(rot.dtype)
    down = torch.tensor([0.0, 0.0, -1.0], dtype=rot.dtype, device=rot.device).expand(n, 3)
    parts = [
        _rotate_t(rot, s.com_world() - pos),
        obj_rot[:, :, :2].transpose(-1, -2).reshape(n, 6),
        _rotate_t(rot, s.object_linvel), _rotate_t(rot, s.object_angvel),
        _rotate_t(rot, s.wrist_linvel),
        2.0 * (s.finger_angles - s.lower) / (s.upper - s.lower) - 1.0,
        ((s.nearest - s.probes) @ rot).reshape(n, -1),
        s.contacts.to(rot.dtype),
        _pose_error(s.wrist, s.plan_wrist),
        _pose_error(s.wrist, s.grasp_world()),
        s.plan_fingers - s.finger_angles,
        one_hot, s.progress[:, None].to(rot.dtype),
        s.rise()[:, None], _rotate_t(rot, down),
        previous_action.to(rot.dtype),
    ]
    return torch.cat(parts, -1).to(torch.float32)


def graspxl_rule(rise: torch.Tensor, hand_error: torch.Tensor) -> torch.Tensor:
    return (rise > spec.SUCCESS_RISE) & (hand_error < spec.SUCCESS_HAND_DISTANCE)


def reward_terms(s: GraspStateBatch, action: torch.Tensor, previous_action: torch.Tensor, cfg: spec.RewardConfig,
                 final: torch.Tensor | bool = False, diverged: torch.Tensor | bool = False) -> dict[str, torch.Tensor]:
    """Each weighted reward term, (N,) per term; a diverged env gets only ``-cfg.diverged``
    (its state may be NaN, so every other term is masked to zero, as the numpy form returns)."""
    dtype, device = s.wrist.dtype, s.wrist.device
    n = s.wrist.shape[0]
    final = torch.as_tensor(final, device=device).expand(n)
    diverged = torch.as_tensor(diverged, device=device).expand(n)
    zero = torch.zeros(n, dtype=dtype, device=device)
    closing, lifting = s.phase >= spec.CLOSE, s.phase >= spec.LIFT
    wanted = s.grasp_parts.bool()
    touching = (s.contacts.bool() & wanted).sum(-1).to(dtype) / wanted.sum(-1).clamp_min(1).to(dtype)
    grip = s.contact_force.sum(-1) / (s.object_mass * spec.GRAVITY * cfg.impulse_cap)
    target = torch.where(closing[:, None], s.grasp_angles, s.plan_fingers)
    hand = torch.where(closing, s.hand_error(), torch.linalg.norm(s.wrist[:, :3, 3] - s.plan_wrist[:, :3, 3], dim=-1))
    linvel = s.object_linvel - torch.where(lifting[:, None], s.wrist_linvel, torch.zeros_like(s.wrist_linvel))
    speed = torch.linalg.norm(linvel, dim=-1) + cfg.angular_lever * torch.linalg.norm(s.object_angvel, dim=-1)
    a, prev = action.to(dtype), previous_action.to(dtype)
    out = {
        "contact": torch.where(closing, cfg.contact * touching, zero),
        "impulse": torch.where(closing, cfg.impulse * grip.clamp(max=1.0), zero),
        "joint": -cfg.joint * (s.finger_angles - target).abs().mean(-1),
        "hand": -cfg.hand * hand.clamp(max=cfg.hand_cap),
        "object_velocity": -cfg.object_velocity * speed.clamp(max=cfg.speed_cap),
        "lift": torch.where(lifting, cfg.lift * s.rise().clamp(min=0.0, max=cfg.lift_cap) / 0.1, zero),
        "penetration": -cfg.penetration * s.penetration.to(dtype).clamp(min=0.0),
        "action": -cfg.action * (a * a).mean(-1),
        "action_rate": -cfg.action_rate * ((a - prev) ** 2).mean(-1),
        "success": torch.where(final.bool() & graspxl_rule(s.rise(), s.hand_error()), cfg.success + zero, zero),
    }
    out = {k: torch.where(diverged.bool(), zero, torch.nan_to_num(v)) for k, v in out.items()}
    out["diverged"] = torch.where(diverged.bool(), -cfg.diverged + zero, zero)
    return out


def residual_targets(action: torch.Tensor, plan_wrist_q: torch.Tensor, plan_fingers: torch.Tensor,
                     synergies: torch.Tensor, cfg: spec.ActionConfig, lower: torch.Tensor,
                     upper: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Servo targets (N, 6) and (N, n_dof) = plan + scaled residual, clipped to the limits."""
    a = action.clamp(-1.0, 1.0).to(plan_wrist_q.dtype)
    wrist = plan_wrist_q + torch.cat([cfg.wrist_translation * a[:, :3], cfg.wrist_rotation * a[:, 3:6]], -1)
    scales = torch.as_tensor(spec.synergy_scales(cfg), dtype=a.dtype, device=a.device)
    fingers = plan_fingers + (scales * a[:, 6:]) @ synergies.to(a.dtype)
    return wrist, torch.maximum(torch.minimum(fingers, upper), lower)


def blend(previous: torch.Tensor, new: torch.Tensor, substep: torch.Tensor | int, substeps: int) -> torch.Tensor:
    """The ramp of :func:`spec.blend`; ``substep`` may differ per env, shape (N,)."""
    k = torch.as_tensor(substep, dtype=previous.dtype, device=previous.device)
    if k.ndim == 1:
        k = k[:, None]
    return previous + (k + 1) / substeps * (new - previous)
