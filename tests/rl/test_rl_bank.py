"""The shipped grasp bank: used only under the exact key the cache would use, never stale."""

import numpy as np

from pam_engine.rl import bank as B


def test_shipped_bank_is_used_only_under_its_exact_key(bank_config, env_config, bank, tmp_path, monkeypatch, caplog):
    shipped = tmp_path / "shipped.npz"
    key = B.bank_paths(bank_config, env_config.stage1)[bank[0].name].stem
    marked = [B.GraspTarget(g.wrist_in_object, g.angles + 0.001, g.approach, g.preshape, g.score, g.quality, g.parts,
                            g.family, g.squeeze) for g in bank[0].grasps]
    B.cache.write_npz_atomic(shipped, B.pack_shipped({key: (bank[0].name, marked)}))
    monkeypatch.setattr(B, "shipped_path", lambda: shipped)
    empty = B.BankConfig(objects=bank_config.objects, synthesis_seeds=bank_config.synthesis_seeds,
                         grasps_per_seed=bank_config.grasps_per_seed, cache_dir=str(tmp_path / "cold"))
    got = B.load_bank(empty, env_config.stage1, progress=False)  # cold cache: the shipped entry, no synthesis
    assert np.allclose(got[0].grasps[0].angles, marked[0].angles)
    assert not (tmp_path / "cold").exists() or not list((tmp_path / "cold").glob("*.npz"))
    assert B._read_shipped(key, "some_other_object", shipped) is None  # keyed and named
    assert B._read_shipped("0" * len(key), bank[0].name, shipped) is None  # another key: a miss
    shipped.write_bytes(b"damaged")
    assert B._read_shipped(key, bank[0].name, shipped) is None
