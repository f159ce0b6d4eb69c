"""Load the real MANO right hand from the user's ``MANO_RIGHT.pkl``, without chumpy.

MANO's pickle stores some arrays as chumpy objects and the joint regressor as a scipy sparse
matrix, and chumpy no longer imports on current numpy. The file is user data, never code: a
restricted unpickler admits numpy's array reconstruction and replaces every other class it
references (chumpy's, scipy's sparse matrices) by an inert record of its pickled state, which
is then turned into plain numpy arrays.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from pam_engine.conventions import MANO_PARENTS, MANO_TIP_VERTEX_IDS
from pam_engine.errors import AssetError
from pam_engine.hand.model import NUM_BETAS, NUM_JOINTS, HandModel

MANO_DIR_ENV = "PAM_MANO_DIR"
MANO_FILENAME = "MANO_RIGHT.pkl"
NUM_VERTICES = 778

#: Keys MANO_RIGHT.pkl must hold, with the shapes the engine needs (None: any length).
REQUIRED_KEYS: dict[str, tuple] = {
    "v_template": (NUM_VERTICES, 3),
    "f": (None, 3),
    "weights": (NUM_VERTICES, NUM_JOINTS),
    "J_regressor": (NUM_JOINTS, NUM_VERTICES),
    "kintree_table": (2, NUM_JOINTS),
    "shapedirs": (NUM_VERTICES, 3, NUM_BETAS),
    "posedirs": (NUM_VERTICES, 3, (NUM_JOINTS - 1) * 9),
    "hands_mean": (45,),
    "hands_components": (45, 45),
}

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray

_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): __import__("codecs").encode,  # bytes in pickles written by Python 3
}
_SAFE_BUILTINS = {"object": object, "set": set, "frozenset": frozenset}  # chumpy keeps sets in its state
_STAND_IN_MODULES = ("chumpy", "scipy.sparse")


class _PickledRecord:
    """Inert stand-in for a chumpy or scipy object: keeps the pickled state, runs nothing."""

    kind = ""

    def __init__(self, *args, **kwargs):
        self.args = args
        self.state: dict = {}

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {"state": state}


def _reconstructor(cls, base, state=None):  # copyreg._reconstructor with stand-ins only
    if not (isinstance(cls, type) and issubclass(cls, _PickledRecord)):
        raise pickle.UnpicklingError(f"object reconstruction of {cls!r} is not allowed")
    return cls()


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY_GLOBALS:
            return _NUMPY_GLOBALS[(module, name)]
        if (module, name) in (("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor")):
            return _reconstructor
        if module in ("__builtin__", "builtins") and name in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[name]
        if module.startswith(_STAND_IN_MODULES):
            return type(name, (_PickledRecord,), {"kind": f"{module}.{name}"})
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a MANO model file")


def _to_array(value, key: str):
    """Plain numpy from an array, a chumpy record (its ``x``) or a sparse-matrix record."""
    if isinstance(value, _PickledRecord):
        state = value.state
        if "sparse" in value.kind:
            shape = state.get("_shape", state.get("shape"))
            if value.kind.endswith("csc_matrix"):
                return sp.csc_matrix((state["data"], state["indices"], state["indptr"]), shape=shape).toarray()
            if value.kind.endswith("csr_matrix"):
                return sp.csr_matrix((state["data"], state["indices"], state["indptr"]), shape=shape).toarray()
            raise AssetError(f"MANO key {key!r}: unsupported sparse type {value.kind}")
        if "x" in state:
            return np.asarray(state["x"])
        raise AssetError(f"MANO key {key!r}: chumpy object {value.kind} holds no array")
    return np.asarray(value)


def resolve_mano_path(mano: str | os.PathLike | None = None) -> Path | None:
    """The MANO_RIGHT.pkl to use: the given file or folder, else ``$PAM_MANO_DIR``, else None."""
    location = mano if mano is not None else os.environ.get(MANO_DIR_ENV)
    if not location:
        return None
    path = Path(location).expanduser()
    if path.is_dir():
        path = path / MANO_FILENAME
    if not path.is_file():
        source = "the MANO path" if mano is not None else f"${MANO_DIR_ENV}"
        raise AssetError(f"{source} points to {path}, which does not exist; expected {MANO_FILENAME} "
                         "(downloaded from https://mano.is.tue.mpg.de) or a folder holding it")
    return path


def load_mano_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of a MANO pickle as plain numpy, checked against MANO's keys and shapes."""
    path = Path(path)
    try:
        raw = _RestrictedUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, OverflowError) as exc:
        raise AssetError(f"{path} is not a readable MANO model file: {exc}") from exc
    if not isinstance(raw, dict):
        raise AssetError(f"{path} holds a {type(raw).__name__}, expected MANO's dict of arrays")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise AssetError(f"{path} lacks MANO keys {missing}")
    arrays = {k: _to_array(raw[k], k) for k in REQUIRED_KEYS}
    for key, shape in REQUIRED_KEYS.items():
        got = arrays[key].shape
        if len(got) != len(shape) or any(s is not None and g != s for g, s in zip(got, shape)):
            raise AssetError(f"{path}: MANO key {key!r} has shape {got}, expected {shape}")
    for key, value in arrays.items():
        if key not in ("f", "kintree_table") and (value.dtype.kind not in "fiub" or
                                                   not np.all(np.isfinite(value.astype(np.float64)))):
            raise AssetError(f"{path}: MANO key {key!r} holds NaN, inf or non-numeric values; expected the "
                             "model's finite arrays (the file is damaged)")
    if not (np.issubdtype(arrays["f"].dtype, np.integer) and arrays["f"].min() >= 0
            and arrays["f"].max() < len(arrays["v_template"])):
        raise AssetError(f"{path}: MANO key 'f' must hold vertex indices 0..{len(arrays['v_template']) - 1}")
    parents = arrays["kintree_table"][0].astype(np.int64)
    parents[0] = -1
    if tuple(parents.tolist()) != MANO_PARENTS:
        raise AssetError(f"{path}: kintree_table parents {parents.tolist()} are not MANO's {list(MANO_PARENTS)}")
    return arrays


def load_mano(path: str | os.PathLike) -> HandModel:
    """The real MANO right hand as a :class:`HandModel` (shape, pose blend shapes, PCA basis)."""
    arrays = load_mano_arrays(path)
    regressor = arrays["J_regressor"].astype(np.float64)
    shapedirs = arrays["shapedirs"].astype(np.float64)
    return HandModel(
        name="mano",
        v_template=arrays["v_template"].astype(np.float64),
        faces=arrays["f"].astype(np.int64),
        weights=arrays["weights"].astype(np.float64),
        j_template=regressor @ arrays["v_template"].astype(np.float64),
        tip_vertex_ids=MANO_TIP_VERTEX_IDS,
        shapedirs=shapedirs,
        joint_shapedirs=np.einsum("jv,vdk->jdk", regressor, shapedirs),
        posedirs=arrays["posedirs"].astype(np.float64),
        hands_mean=arrays["hands_mean"].astype(np.float64),
        hands_components=arrays["hands_components"].astype(np.float64),
    )


def load_hand_model(mano: str | os.PathLike | None = None) -> HandModel:
    """MANO when a MANO_RIGHT.pkl is given (argument or ``$PAM_MANO_DIR``), else the built-in hand."""
    path = resolve_mano_path(mano)
    if path is None:
        from pam_engine.hand.procedural import build_builtin_hand

        return build_builtin_hand()
    return load_mano(path)
