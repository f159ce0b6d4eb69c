"""The hybrid imitation reward of :mod:`pam_engine.rl.imitation`, batched in torch over N
environments (the form a GPU task computes on its device). Scales come from the numpy module's
:class:`~pam_engine.rl.imitation.ImitationRewardConfig`; the formulas are the numpy ones with a
leading env axis, and ``tests/rl/test_rl_imitation.py`` checks the two agree."""

from __future__ import annotations

import torch

from pam_engine.rl.imitation import ImitationRewardConfig


def project(points_world: torch.Tensor, world_to_cam: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """(N, V, 3) world points -> (N, V, 2) pixels; ``world_to_cam`` (4, 4) or (N, 4, 4), ``K``
    (3, 3) or (N, 3, 3)."""
    rot, trans = world_to_cam[..., :3, :3], world_to_cam[..., :3, 3]
    cam = points_world @ rot.transpose(-1, -2) + trans.unsqueeze(-2)
    uv = cam @ K.transpose(-1, -2)
    return uv[..., :2] / uv[..., 2:3]


def errors(joints: torch.Tensor, object_pose: torch.Tensor, contact: torch.Tensor, ref_joints: torch.Tensor,
           ref_uv: torch.Tensor, ref_contact: torch.Tensor, points: torch.Tensor, world_to_cam: torch.Tensor,
           K: torch.Tensor) -> dict[str, torch.Tensor]:
    """(N,) hand (m), object (px) and contact (0/1) errors. ``joints`` (N, 21, 3), ``object_pose``
    (N, 4, 4), ``contact`` (N,) bool, ``ref_*`` the reference frame of each env, ``points`` (V, 3)."""
    placed = points @ object_pose[:, :3, :3].transpose(-1, -2) + object_pose[:, None, :3, 3]
    uv = project(placed, world_to_cam, K)
    return {
        "hand": torch.linalg.norm(joints - ref_joints, dim=-1).mean(dim=-1),
        "object": torch.linalg.norm(uv - ref_uv, dim=-1).mean(dim=-1),
        "contact": (contact.bool() != ref_contact.bool()).to(joints.dtype),
    }


def reward_terms(err: dict[str, torch.Tensor], cfg: ImitationRewardConfig, height: float) -> dict[str, torch.Tensor]:
    out = {
        "hand": torch.exp(-err["hand"] / cfg.sigma_hand),
        "object": torch.exp(-err["object"] / cfg.object_sigma_px(height)),
        "contact": torch.exp(-err["contact"] / cfg.sigma_contact),
    }
    out["total"] = out["hand"] * out["object"] * out["contact"]
    return out
