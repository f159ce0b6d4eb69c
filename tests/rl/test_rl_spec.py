"""The task definition: layouts, the action mapping, reward terms and the success rule."""

import numpy as np
import pytest

from pam_engine.pose.success import graspxl_rule
from pam_engine.rl import spec
from pam_engine.pose import HandCache


@pytest.fixture(scope="module")
def articulation():
    return HandCache.get(None)[1]


def _state(articulation, **changes) -> spec.GraspState:
    """A hand holding an object 5 cm in front of the wrist, everything at rest."""
    n = articulation.size
    obj = np.eye(4)
    obj[:3, 3] = [0.3, 0.0, 0.0]
    wrist = np.eye(4)
    wrist[:3, 3] = [0.25, 0.0, 0.0]
    grasp_in_object = np.linalg.inv(obj) @ wrist
    base = dict(
        wrist=wrist, wrist_linvel=np.zeros(3), finger_angles=np.full(n, 0.5),
        object_pose=obj, object_com=np.zeros(3), object_linvel=np.zeros(3), object_angvel=np.zeros(3),
        probes=np.zeros((6, 3)), nearest=np.zeros((6, 3)), contacts=np.zeros(6, bool), contact_force=np.zeros(6),
        penetration=0.0, plan_wrist=wrist, plan_fingers=np.full(n, 0.5), grasp_in_object=grasp_in_object,
        grasp_angles=np.full(n, 0.5), grasp_parts=np.array([1, 1, 1, 0, 0, 1], bool), phase=spec.LIFT,
        progress=0.8, start_height=0.0, object_mass=0.1, lower=articulation.lower, upper=articulation.upper)
    base.update(changes)
    return spec.GraspState(**base)


def test_layout_sizes_are_consistent(articulation):
    n = articulation.size
    obs_terms = spec.observation_terms(n, spec.action_size())
    assert spec.observation_size(n) == sum(t.size for t in obs_terms) == 119
    assert spec.action_size() == 13
    sl = spec.slices(obs_terms)
    assert sl["object_position"] == slice(0, 3) and sl["previous_action"].stop == spec.observation_size(n)
    assert len({t.name for t in obs_terms}) == len(obs_terms)


def test_observation_matches_layout(articulation):
    s = _state(articulation, contacts=np.array([1, 0, 1, 0, 0, 1], bool), phase=spec.CLOSE)
    prev = np.linspace(-1, 1, spec.action_size())
    obs = spec.observation(s, prev)
    sl = spec.slices(spec.observation_terms(articulation.size, spec.action_size()))
    assert obs.dtype == np.float32 and obs.shape == (spec.observation_size(articulation.size),)
    np.testing.assert_allclose(obs[sl["object_position"]], [0.05, 0, 0], atol=1e-7)
    np.testing.assert_array_equal(obs[sl["contacts"]], [1, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(obs[sl["phase"]][:5], [0, 0, 1, 0, 0])
    np.testing.assert_allclose(obs[sl["previous_action"]], prev, atol=1e-7)
    np.testing.assert_allclose(obs[sl["lift"]][1:], [0, 0, -1], atol=1e-7)  # gravity, wrist = world here


def test_observation_is_expressed_in_the_wrist_frame(articulation):
    """Turning the whole scene about the vertical leaves the observation unchanged."""
    from scipy.spatial.transform import Rotation

    turn = np.eye(4)
    turn[:3, :3] = Rotation.from_euler("z", 0.7).as_matrix()
    a = _state(articulation, object_linvel=np.array([0.1, 0.2, 0.0]))
    b = _state(articulation, wrist=turn @ a.wrist, object_pose=turn @ a.object_pose, plan_wrist=turn @ a.plan_wrist,
               object_linvel=turn[:3, :3] @ a.object_linvel)
    np.testing.assert_allclose(spec.observation(a, np.zeros(13)), spec.observation(b, np.zeros(13)), atol=1e-6)


def test_residual_targets_and_blend(articulation):
    n = articulation.size
    syn = spec.synergy_matrix(articulation.names)
    cfg = spec.ActionConfig()
    wrist_q, fingers = np.zeros(6), np.clip(np.full(n, 0.3), articulation.lower, articulation.upper)
    w, f = spec.residual_targets(np.zeros(13), wrist_q, fingers, syn, cfg, articulation.lower, articulation.upper)
    np.testing.assert_array_equal(w, wrist_q)
    np.testing.assert_array_equal(f, fingers)
    action = np.zeros(13)
    action[0], action[7] = 1.0, 1.0  # +x, curl the index
    w, f = spec.residual_targets(action * 3, wrist_q, fingers, syn, cfg, articulation.lower, articulation.upper)
    assert w[0] == pytest.approx(cfg.wrist_translation)  # clipped to the +-1 range first
    index = [articulation.names.index(f"index{k}_flex") for k in (1, 2, 3)]
    np.testing.assert_allclose(f[index], 0.3 + cfg.curl)
    others = [i for i in range(n) if i not in index]
    np.testing.assert_array_equal(f[others], fingers[others])
    ramp = [spec.blend(np.zeros(1), np.ones(1), j, 7)[0] for j in range(7)]
    assert ramp[-1] == 1.0 and np.all(np.diff(ramp) > 0)


def test_synergies_name_missing_joints():
    with pytest.raises(KeyError, match="thumb1_abd.*lacks"):
        spec.synergy_matrix(["thumb1_flex"])


def test_lift_bonus_grows_with_the_rise(articulation):
    cfg = spec.RewardConfig()
    lifts = []
    for z in (0.0, 0.05, 0.1, 0.15):
        obj = np.eye(4)
        obj[:3, 3] = [0.3, 0.0, z]
        wrist = obj @ _state(articulation).grasp_in_object
        s = _state(articulation, object_pose=obj, wrist=wrist, plan_wrist=wrist)
        lifts.append(spec.reward_terms(s, np.zeros(13), np.zeros(13), cfg)["lift"])
    assert lifts[0] == 0.0 and np.all(np.diff(lifts) > 0)
    before = _state(articulation, phase=spec.CLOSE, object_pose=obj, wrist=wrist, plan_wrist=wrist)
    assert spec.reward_terms(before, np.zeros(13), np.zeros(13), cfg)["lift"] == 0.0  # only once lifting


def test_reward_terms_reward_and_penalise_the_right_things(articulation):
    cfg = spec.RewardConfig()
    zero = np.zeros(13)
    rest = spec.reward_terms(_state(articulation), zero, zero, cfg)
    touching = spec.reward_terms(_state(articulation, contacts=np.array([1, 1, 0, 0, 0, 1], bool),
                                        contact_force=np.full(6, 1.0)), zero, zero, cfg)
    assert touching["contact"] == pytest.approx(cfg.contact * 3 / 4) and rest["contact"] == 0.0
    assert touching["impulse"] == pytest.approx(cfg.impulse)  # 6 N >> 3 x the weight: capped
    moved = _state(articulation)
    moved.wrist = moved.wrist.copy()
    moved.wrist[:3, 3] += [0.0, 0.02, 0.0]
    assert spec.reward_terms(moved, zero, zero, cfg)["hand"] == pytest.approx(-cfg.hand * 0.02)
    sliding = spec.reward_terms(_state(articulation, object_linvel=np.array([0.0, 0.0, -0.5])), zero, zero, cfg)
    assert sliding["object_velocity"] == pytest.approx(-cfg.object_velocity * 0.5)
    flung = _state(articulation, object_linvel=np.array([0.0, 0.0, -30.0]))
    flung.wrist = flung.wrist.copy()
    flung.wrist[:3, 3] += [0.0, 5.0, 0.0]  # an object knocked off the table drags hT metres away
    far = spec.reward_terms(flung, zero, zero, cfg)
    assert far["hand"] == pytest.approx(-cfg.hand * cfg.hand_cap)
    assert far["object_velocity"] == pytest.approx(-cfg.object_velocity * cfg.speed_cap)
    deep = spec.reward_terms(_state(articulation, penetration=0.004), zero, zero, cfg)
    assert deep["penetration"] == pytest.approx(-cfg.penetration * 0.004)
    jerky = spec.reward_terms(_state(articulation), np.ones(13), -np.ones(13), cfg)
    assert jerky["action"] < 0 and jerky["action_rate"] == pytest.approx(-cfg.action_rate * 4.0)
    assert spec.reward_terms(None, zero, zero, cfg, diverged=True)["diverged"] == -cfg.diverged


def test_success_rule():
    assert graspxl_rule(0.11, 0.05)
    assert not graspxl_rule(0.09, 0.05)  # not lifted enough
    assert not graspxl_rule(0.2, 0.12)  # the hand left its target (object dropped or pushed)


def test_success_bonus_only_at_the_end(articulation):
    cfg = spec.RewardConfig()
    obj = np.eye(4)
    obj[:3, 3] = [0.3, 0.0, 0.15]
    wrist = obj @ _state(articulation).grasp_in_object
    s = _state(articulation, object_pose=obj, wrist=wrist, plan_wrist=wrist, phase=spec.HOLD)
    assert spec.reward_terms(s, np.zeros(13), np.zeros(13), cfg, final=True)["success"] == cfg.success
    assert spec.reward_terms(s, np.zeros(13), np.zeros(13), cfg, final=False)["success"] == 0.0
    s.wrist = s.wrist.copy()
    s.wrist[:3, 3] += [0.0, 0.0, 0.2]
    assert spec.reward_terms(s, np.zeros(13), np.zeros(13), cfg, final=True)["success"] == 0.0


def test_batched_observation_and_rewards_equal_the_per_state_ones_bit_for_bit(articulation):
    """The training environment computes every env's observation and reward terms in one batched
    pass; the deployed policy computes one state at a time. Both must agree exactly."""
    from tests.rl.test_rl_spec_torch import _random_state

    rng = np.random.default_rng(1)
    n = 48
    states = [_random_state(rng, articulation) for _ in range(n)]
    actions = rng.uniform(-1.2, 1.2, (n, spec.action_size()))
    previous = rng.uniform(-1, 1, (n, spec.action_size()))
    final = rng.random(n) < 0.5
    diverged = rng.random(n) < 0.15
    batch = spec.GraspStates.stack(states)
    obs = spec.observation_batch(batch, previous)
    terms = spec.reward_terms_batch(batch, actions, previous, spec.RewardConfig(), final=final, diverged=diverged)
    assert obs.shape == (n, spec.observation_size(articulation.size)) and obs.dtype == np.float32
    assert tuple(terms) == spec.REWARD_TERMS
    for i, s in enumerate(states):
        np.testing.assert_array_equal(obs[i], spec.observation(s, previous[i]))
        want = spec.reward_terms(None if diverged[i] else s, actions[i], previous[i], spec.RewardConfig(),
                                 final=bool(final[i]), diverged=bool(diverged[i]))
        assert {k: float(v[i]) for k, v in terms.items()} == want, i
    assert diverged.any() and (~diverged).any() and (terms["success"] > 0).any()
    # all diverged: no state needed
    none = spec.reward_terms_batch(None, actions[:2], previous[:2], spec.RewardConfig(), diverged=True)
    assert none["diverged"].tolist() == [-spec.RewardConfig().diverged] * 2 and not none["hand"].any()


def test_residual_targets_equal_the_plain_formula_bit_for_bit(articulation):
    """The per-control-step form (cached scales, no np.clip/concatenate) computes exactly the
    formula as written: plan + clipped action x scales, synergies, clipped to the limits."""
    rng = np.random.default_rng(3)
    syn = spec.synergy_matrix(articulation.names)
    cfg = spec.ActionConfig(wrist_translation=0.021, curl=0.7)
    lo, hi = articulation.lower, articulation.upper
    for _ in range(200):
        a = rng.uniform(-1.5, 1.5, 13)
        wrist_q, fingers = rng.normal(size=6), rng.uniform(lo - 0.2, hi + 0.2)
        w, f = spec.residual_targets(a, wrist_q, fingers, syn, cfg, lo, hi)
        c = np.clip(a, -1.0, 1.0)
        np.testing.assert_array_equal(w, wrist_q + np.concatenate([cfg.wrist_translation * c[:3], cfg.wrist_rotation * c[3:6]]))
        np.testing.assert_array_equal(f, np.clip(fingers + (spec.synergy_scales(cfg) * c[6:]) @ syn, lo, hi))
