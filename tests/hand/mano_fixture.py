"""A synthetic MANO_RIGHT.pkl with MANO's keys, shapes and pickled types (chumpy arrays,
a scipy sparse regressor), built from the engine's hand so that its geometry is hand-like."""

from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import scipy.sparse as sp
import trimesh

from pam_engine.hand.procedural import build_builtin_hand


class Ch:  # stands for chumpy.ch.Ch; pickled by reference under chumpy's module name
    def __init__(self, x):
        self.x = x
        self._dirty_vars = set()

    def __reduce_ex__(self, protocol):
        import copyreg

        return (copyreg._reconstructor, (Ch, object, None), self.__dict__)


def make_mano_arrays(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    hand = build_builtin_hand()
    ids = np.sort(rng.choice(hand.num_vertices, 778, replace=False))
    v = hand.v_template[ids]
    faces = trimesh.convex.convex_hull(v).faces  # any valid triangles over the 778 vertices
    weights = hand.weights[ids]
    regressor = np.zeros((16, 778))
    for j in range(16):
        near = np.argsort(np.linalg.norm(v - hand.j_template[j], axis=1))[:4]
        regressor[j, near] = 0.25
    return {
        "v_template": v,
        "f": np.asarray(faces, dtype=np.uint32),
        "weights": weights,
        "J_regressor": sp.csc_matrix(regressor),
        "kintree_table": np.array([[4294967295, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14], np.arange(16)]),
        "shapedirs": rng.normal(scale=1e-3, size=(778, 3, 10)),
        "posedirs": rng.normal(scale=1e-3, size=(778, 3, 135)),
        "hands_mean": rng.normal(scale=0.1, size=45),
        "hands_components": np.linalg.qr(rng.normal(size=(45, 45)))[0],
        "hands_coeffs": rng.normal(size=(10, 45)),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


def write_mano_pkl(path, arrays: dict | None = None, chumpy_keys=("shapedirs", "J")) -> None:
    """Pickle like MANO's file: some arrays wrapped as chumpy objects (protocol 2)."""
    arrays = dict(make_mano_arrays() if arrays is None else arrays)
    arrays["J"] = arrays["J_regressor"] @ arrays["v_template"]
    fake = types.ModuleType("chumpy.ch")
    fake.Ch = Ch
    saved = Ch.__module__, Ch.__qualname__
    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    sys.modules["chumpy"] = types.ModuleType("chumpy")
    sys.modules["chumpy.ch"] = fake
    try:
        data = {k: (Ch(v) if k in chumpy_keys else v) for k, v in arrays.items()}
        with open(path, "wb") as f:
            pickle.dump(data, f, protocol=2)
    finally:
        del sys.modules["chumpy.ch"], sys.modules["chumpy"]
        Ch.__module__, Ch.__qualname__ = saved
