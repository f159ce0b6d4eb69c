"""CI smoke test of training: rl-games PPO on the real environment for about a thousand steps
on a fixed seed. The losses must stay finite and the reward must improve.

A few hundred steps are too few for the full grasp reward to move reliably (its returns swing
by ~80 between a held and a dropped object). So the run keeps the physics, observations and
PPO as they are and trims the task: the reward is the action penalty alone, the policy starts
from a residual of +0.5 on every action, gamma is 0 and actor and critic are separate MLPs (so the
critic's early, random value estimates do not move the residual). The best action is then the plan
itself, every step says so, and PPO must walk the residual back: a broken action path, reward
sign, advantage or optimiser step makes this fail.
"""

import glob
import math

import numpy as np
import pytest

from pam_engine.config import from_dict, to_dict
from pam_engine.policy.loading import load_policy
from pam_engine.training.policy import TrainConfig, train

REWARD_OFF = {k: 0.0 for k in ("contact", "impulse", "joint", "hand", "object_velocity", "lift", "penetration",
                                "action_rate", "success")}
ENVS, EPISODE, EPOCHS = 4, 33, 8


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, bank_config):
    out = tmp_path_factory.mktemp("train")
    cfg = from_dict(TrainConfig, {
        "name": "smoke", "seed": 0, "num_envs": ENVS, "num_workers": 0,
        "output": str(out / "smoke.pth"), "train_dir": str(out / "runs"),
        "env": {"bank": to_dict(bank_config), "grasp_noise": {"position": 0.0, "rotation": 0.0},
                "reward": {**REWARD_OFF, "action": 1.0}},
        "ppo": {"horizon_length": EPISODE, "minibatch_size": 2 * EPISODE, "mini_epochs": 4,
                "max_frames": ENVS * EPISODE * EPOCHS, "learning_rate": 0.005, "lr_schedule": "identity",
                "gamma": 0.0},
        "network": {"hidden": [64, 64], "initial_log_std": -2.0, "initial_residual": [0.5], "separate": True},
    })
    return cfg, train(cfg, command="pytest smoke", progress=False)


def test_training_improves_the_reward(smoke):
    _, result = smoke
    returns = [h.mean_reward * EPISODE for h in result.history]  # one whole episode per slot per epoch
    assert len(returns) == EPOCHS and all(math.isfinite(r) for r in returns)
    first, last = np.mean(returns[:2]), np.mean(returns[-2:])
    assert last > first + 0.2 * abs(first), returns
    assert result.frames >= ENVS * EPISODE * EPOCHS


def test_history_carries_value_loss_and_learning_rate_and_curves_are_drawn(smoke):
    cfg, result = smoke
    assert all(math.isfinite(h.value_loss) for h in result.history[1:])
    assert all(h.learning_rate == pytest.approx(0.005) for h in result.history)  # identity schedule
    curves = result.output.with_name("smoke_curves.png")
    assert curves.is_file() and curves.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_losses_stay_finite_in_the_tensorboard_log(smoke):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg, result = smoke
    events = EventAccumulator(str(result.log_dir / "summaries"), size_guidance={"scalars": 0})
    events.Reload()
    tags = events.Tags()["scalars"]
    for tag in ("losses/a_loss", "losses/c_loss", "grasp/step_reward"):
        assert tag in tags, tags
        values = [e.value for e in events.Scalars(tag)]
        assert len(values) >= EPOCHS - 1 and all(math.isfinite(v) for v in values), (tag, values)


def test_training_writes_checkpoints_that_load(smoke):
    cfg, result = smoke
    assert glob.glob(str(result.log_dir / "nn" / "*.pth"))  # rl-games' own checkpoints
    policy = load_policy(result.output)
    provenance = __import__("torch").load(result.output, weights_only=True)["provenance"]
    assert provenance["command"] == "pytest smoke" and provenance["config"]["name"] == "smoke"
    # the exported actor is the trained one: its residual moved back from the initial +0.5
    obs = np.zeros(policy.network.obs_size, np.float32)
    assert np.abs(policy.network.act(obs)).mean() < 0.5


def test_the_adaptive_rate_is_capped():
    """rl-games' adaptive schedule grows the rate x1.5 per quiet mini-epoch up to 1e-2; the cap
    (ppo.max_learning_rate) holds it."""
    from rl_games.common.schedulers import AdaptiveScheduler

    from pam_engine.training.rlgames import GraspObserver

    class Algo:
        writer = None
        scheduler = AdaptiveScheduler(0.016)

        class model:  # noqa: N801 - the attribute path rl-games uses
            class a2c_network:  # noqa: N801
                mu = __import__("torch").nn.Linear(2, 2)

    lr = 3e-4
    for _ in range(10):  # ten quiet mini-epochs (two PPO epochs): uncapped, the rate hits 1e-2
        lr, _ = Algo.scheduler.update(lr, 0.0, 0, 0, 0.0)
    assert lr == pytest.approx(1e-2)
    GraspObserver(max_learning_rate=1e-3).after_init(Algo)
    lr = 3e-4
    for _ in range(10):
        lr, _ = Algo.scheduler.update(lr, 0.0, 0, 0, 0.0)
    assert lr == pytest.approx(1e-3)


def test_snapshot_choice_must_use_objects_and_seeds_training_never_sees():
    from pam_engine.errors import ConfigError

    with pytest.raises(ConfigError, match="select_objects.*061_foam_brick"):
        from_dict(TrainConfig, {"env": {"bank": {"objects": ["061_foam_brick"]}},
                                "select_objects": ["061_foam_brick"]}).check()
    with pytest.raises(ConfigError, match="select_seeds"):
        from_dict(TrainConfig, {"env": {"bank": {"objects": ["061_foam_brick"], "synthesis_seeds": [100]}},
                                "select_objects": ["013_apple"], "select_seeds": [100]}).check()
    with pytest.raises(ConfigError, match="max_learning_rate"):
        from_dict(TrainConfig, {"ppo": {"learning_rate": 3e-4, "max_learning_rate": 1e-4}}).check()


def test_the_best_held_out_snapshot_is_chosen_ties_to_the_earlier(monkeypatch, tmp_path):
    from pam_engine.training import select

    scores = {"a": 0.5, "b": 0.8, "c": 0.8, "d": 0.2}
    # the episodes' grasps are synthesized once, by the scripted run, and handed to every candidate
    monkeypatch.setattr(select, "_run", lambda tasks, jobs: [(t[2] == 1000, f"hT {t[1]} {t[2]}") for t in tasks])
    seen = []

    def evaluate(path, objects, seeds, jobs, grasps):
        seen.append(grasps)
        return scores[path]

    monkeypatch.setattr(select, "evaluate", evaluate)
    sel = select.choose(["a", "b", "c", "d"], ["013_apple"], [1000, 1001])
    assert sel.chosen == "b" and {k: v for k, v in sel.scores.items() if k != "scripted"} == scores
    assert sel.scores["scripted"] == 0.5
    assert all(g == {("013_apple", 1000): "hT 013_apple 1000", ("013_apple", 1001): "hT 013_apple 1001"} for g in seen)
    out = sel.write(tmp_path / "x.selection.json")
    assert '"chosen": "b"' in out.read_text() and not list(tmp_path.glob("*.partial"))


def test_held_out_objects_are_real_and_never_in_the_training_set():
    from pam_engine.objects import dexycb_object_names, ycb_object_names
    from pam_engine.training.objects import HELD_OUT_OBJECTS, THIN_FLAT_OBJECTS, training_objects

    train_set = training_objects()
    assert len(HELD_OUT_OBJECTS) >= 15 and set(HELD_OUT_OBJECTS) <= set(ycb_object_names())
    assert not set(HELD_OUT_OBJECTS) & set(train_set)
    assert train_set[:21] == list(dexycb_object_names()) and len(train_set) > 21
    assert set(train_set) | set(HELD_OUT_OBJECTS) == set(ycb_object_names())
    assert set(THIN_FLAT_OBJECTS) <= set(ycb_object_names())
