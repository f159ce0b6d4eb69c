"""The torch form of the task spec (the Isaac Lab task's) equals the numpy form on the same
random states: observation, every reward term, success, the residual targets and the ramp."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pam_engine.pose import HandCache
from pam_engine.rl import spec, spec_torch

N = 64


@pytest.fixture(scope="module")
def articulation():
    return HandCache.get(None)[1]


def _pose(rng, scale=0.3):
    out = np.eye(4)
    out[:3, :3] = Rotation.random(random_state=rng).as_matrix()
    out[:3, 3] = rng.normal(scale=scale, size=3)
    return out


def _random_state(rng, art) -> spec.GraspState:
    n = art.size
    obj = _pose(rng)
    if rng.random() < 0.5:  # a wrist near hT, so success holds in some states
        grasp_in_object = _pose(rng, 0.05)
        wrist = obj @ grasp_in_object
        wrist[:3, 3] += rng.normal(scale=0.03, size=3)
    else:
        wrist, grasp_in_object = _pose(rng), _pose(rng, 0.1)
    plan = wrist.copy() if rng.random() < 0.1 else _pose(rng)  # identity rotation error: the small-angle branch
    return spec.GraspState(
        wrist=wrist, wrist_linvel=rng.normal(size=3), finger_angles=rng.uniform(art.lower, art.upper),
        object_pose=obj, object_com=rng.normal(scale=0.02, size=3), object_linvel=rng.normal(size=3),
        object_angvel=rng.normal(scale=3, size=3), probes=rng.normal(scale=0.1, size=(6, 3)),
        nearest=rng.normal(scale=0.1, size=(6, 3)), contacts=rng.random(6) < 0.5, contact_force=rng.exponential(2.0, 6),
        penetration=float(rng.normal(scale=0.003)), plan_wrist=plan, plan_fingers=rng.uniform(art.lower, art.upper),
        grasp_in_object=grasp_in_object, grasp_angles=rng.uniform(art.lower, art.upper),
        grasp_parts=rng.random(6) < 0.6, phase=int(rng.integers(spec.NUM_PHASES)), progress=float(rng.random()),
        start_height=float(obj[2, 3] - rng.uniform(-0.05, 0.3)), object_mass=float(rng.uniform(0.05, 0.6)),
        lower=art.lower, upper=art.upper)


def test_observation_and_rewards_equal_the_numpy_spec(articulation):
    rng = np.random.default_rng(0)
    states = [_random_state(rng, articulation) for _ in range(N)]
    actions = rng.uniform(-1.2, 1.2, (N, spec.action_size()))
    previous = rng.uniform(-1, 1, (N, spec.action_size()))
    final = rng.random(N) < 0.5
    diverged = rng.random(N) < 0.1
    batch = spec_torch.GraspStateBatch.stack(states)
    obs = spec_torch.observation(batch, torch.as_tensor(previous)).numpy()
    terms = spec_torch.reward_terms(batch, torch.as_tensor(actions), torch.as_tensor(previous), spec.RewardConfig(),
                                    final=torch.as_tensor(final), diverged=torch.as_tensor(diverged))
    assert tuple(terms) == spec.REWARD_TERMS
    successes = 0
    for i, s in enumerate(states):
        np.testing.assert_allclose(obs[i], spec.observation(s, previous[i]), atol=1e-5, rtol=0)
        want = spec.reward_terms(None if diverged[i] else s, actions[i], previous[i], spec.RewardConfig(),
                                 final=bool(final[i]), diverged=bool(diverged[i]))
        got = {k: float(v[i]) for k, v in terms.items()}
        assert got == pytest.approx(want, abs=1e-5), i
        successes += want["success"] > 0
    assert obs.shape == (N, spec.observation_size(articulation.size)) and obs.dtype == np.float32
    assert successes > 0  # the success branch was exercised


def test_rotvec_matches_scipy_near_zero_and_pi():
    rng = np.random.default_rng(1)
    vecs = np.concatenate([rng.normal(size=(50, 3)), 1e-9 * rng.normal(size=(5, 3)), np.zeros((1, 3))])
    near_pi = rng.normal(size=(5, 3))
    vecs = np.concatenate([vecs, (np.pi - 1e-6) * near_pi / np.linalg.norm(near_pi, axis=1, keepdims=True)])
    mats = Rotation.from_rotvec(vecs).as_matrix()
    got = spec_torch.matrix_to_rotvec(torch.as_tensor(mats)).numpy()
    want = Rotation.from_matrix(mats).as_rotvec()
    # rotations, not vectors, must agree (at pi, v and -v are the same rotation)
    np.testing.assert_allclose(Rotation.from_rotvec(got).as_matrix(), mats, atol=1e-7)
    np.testing.assert_allclose(got[:-5], want[:-5], atol=1e-7)


def test_residual_targets_and_blend_equal_the_numpy_spec(articulation):
    rng = np.random.default_rng(2)
    art, cfg = articulation, spec.ActionConfig()
    syn = spec.synergy_matrix(art.names)
    action = rng.uniform(-2, 2, (N, spec.action_size()))
    wrist_q, fingers = rng.normal(size=(N, 6)), rng.uniform(art.lower, art.upper, (N, art.size))
    t = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float64))  # noqa: E731
    w, f = spec_torch.residual_targets(t(action), t(wrist_q), t(fingers), t(syn), cfg,
                                       t(art.lower).expand(N, -1), t(art.upper).expand(N, -1))
    substep = rng.integers(0, 7, N)
    previous = rng.uniform(-1, 1, action.shape)
    ramp = spec_torch.blend(t(previous), t(action), torch.as_tensor(substep), 7).numpy()
    for i in range(N):
        wn, fn = spec.residual_targets(action[i], wrist_q[i], fingers[i], syn, cfg, art.lower, art.upper)
        np.testing.assert_allclose(w[i].numpy(), wn, atol=1e-12)
        np.testing.assert_allclose(f[i].numpy(), fn, atol=1e-12)
        np.testing.assert_allclose(ramp[i], spec.blend(previous[i], action[i], int(substep[i]), 7), atol=1e-12)
