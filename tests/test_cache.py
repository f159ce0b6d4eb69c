"""The cache module: one root, atomic writes, keys from values (never source files), a logged
line on every miss, and damaged files named instead of silently recomputed."""

import logging

import numpy as np
import pytest

from pam_engine import cache
from pam_engine.pose.request import Stage1Config
from pam_engine.pose.setup import HandCache, load_objects
from pam_engine.pose.request import ObjectSpec
from pam_engine.rl.bank import bank_key
from pam_engine.sim.base import SceneConfig


def test_root_follows_pam_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PAM_CACHE_DIR", str(tmp_path))
    assert cache.cache_dir("grasp_bank") == tmp_path / "grasp_bank"
    assert cache.cache_dir("grasp_bank", tmp_path / "mine") == tmp_path / "mine"
    monkeypatch.delenv("PAM_CACHE_DIR")
    assert cache.cache_root().parts[-2:] == (".cache", "pam_engine")


def test_keys_digest_values_exactly():
    a = np.arange(6.0).reshape(2, 3)
    assert cache.cache_key(x=a, cfg=SceneConfig()) == cache.cache_key(x=a.copy(), cfg=SceneConfig())
    assert cache.cache_key(x=a) != cache.cache_key(x=a + 1e-12)  # floats by their bits
    assert cache.cache_key(x=a) != cache.cache_key(x=a.astype(np.float32))
    assert cache.cache_key(cfg=SceneConfig()) != cache.cache_key(cfg=SceneConfig(substeps=5))
    with pytest.raises(TypeError, match="cannot digest"):
        cache.cache_key(x=object())


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    def broken(file, **arrays):
        file.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", broken)
    with pytest.raises(OSError, match="disk full"):
        cache.write_npz_atomic(tmp_path / "c" / "x.npz", {"a": np.zeros(3)})
    assert list((tmp_path / "c").iterdir()) == []


def test_the_grasp_bank_key_covers_physics_and_hand_not_source_files():
    cfg = Stage1Config()
    hand, art = HandCache.get(None)
    (asset,) = load_objects([ObjectSpec("061_foam_brick")])
    key = bank_key(asset, [100], 1, cfg, hand, art)
    assert key == bank_key(asset, [100], 1, Stage1Config(), hand, art)
    heavier = Stage1Config(scene=SceneConfig(gravity=(0.0, 0.0, -12.0)))
    assert key != bank_key(asset, [100], 1, heavier, hand, art)  # scene physics
    from dataclasses import replace

    stiffer = replace(art, dofs=(replace(art.dofs[0], upper=art.dofs[0].upper + 0.1),) + art.dofs[1:])
    assert key != bank_key(asset, [100], 1, cfg, hand, stiffer)  # the hand's description
    assert key != bank_key(asset, [101], 1, cfg, hand, art)
    (other,) = load_objects([ObjectSpec("061_foam_brick", scale=1.1)])
    assert key != bank_key(other, [100], 1, cfg, hand, art)


def test_misses_and_damaged_files_are_logged(tmp_path, caplog):
    from pam_engine.objects import hull_store
    from pam_engine.objects.collision import CollisionConfig

    path = tmp_path / "hulls.npz"
    with caplog.at_level(logging.INFO, logger="pam_engine.cache"):
        assert hull_store.read_cached(path, CollisionConfig(), "thing") is None
    assert "cache miss (collision) for thing" in caplog.text
    path.write_bytes(b"PK\x03\x04 truncated")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pam_engine.cache"):
        assert hull_store.read_cached(path, CollisionConfig(), "thing") is None
    assert "is unreadable" in caplog.text and str(path) in caplog.text


def test_a_bug_while_reading_is_not_taken_for_a_damaged_file(tmp_path, monkeypatch):
    """Only damaged-file errors mean "recompute"; anything else propagates (no silent CoACD)."""
    from pam_engine.objects import hull_store
    from pam_engine.objects.collision import CollisionConfig

    box = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]]) * 0.02
    path = tmp_path / "hulls.npz"
    cache.write_npz_atomic(path, {"verts": box.astype(np.float32), "counts": np.array([4], np.int32)})

    def buggy(*a, **k):
        raise TypeError("a bug")

    monkeypatch.setattr(hull_store, "clean_hulls", buggy)
    with pytest.raises(TypeError, match="a bug"):
        hull_store.read_cached(path, CollisionConfig(), "thing")
