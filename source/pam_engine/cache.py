"""The engine's disk cache: one root, atomic writes, keys from every input that changes a result.

Three things are cached because they take seconds to minutes to compute: CoACD convex
decompositions of object meshes (``collision/``), the built-in hand's skinned mesh (``hand/``) and
the grasp bank of the RL environment (``grasp_bank/``). Each entry is one ``.npz`` named by
:func:`cache_key` of its inputs; the root is ``$PAM_CACHE_DIR``, else ``~/.cache/pam_engine``.

- Keys are digests of *values* (configs, mesh arrays, hand descriptions, format versions), never
  of source files: a comment edit keeps every entry, a changed setting makes a new one.
- Writes go to a temporary file in the same folder and are renamed: a crash never leaves half a
  file under the final name.
- Every miss logs one line (logger ``pam_engine.cache``), so a slow run says why it is slow; a
  file that exists but cannot be read is a miss that says so (warning), never a silent rebuild.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

CACHE_ENV = "PAM_CACHE_DIR"
log = logging.getLogger("pam_engine.cache")

#: What a damaged cache file raises when read (anything else is a bug and propagates).
UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def cache_root() -> Path:
    """``$PAM_CACHE_DIR``, else ``~/.cache/pam_engine``."""
    root = os.environ.get(CACHE_ENV)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "pam_engine"


def cache_dir(kind: str, override: str | os.PathLike | None = None) -> Path:
    """The folder of one kind of entry: ``override`` when given, else ``<root>/<kind>``."""
    return Path(override).expanduser() if override is not None else cache_root() / kind


def canonical(value: Any) -> Any:
    """``value`` as plain JSON data for a key: dataclasses by field, arrays by a digest of their
    dtype, shape and bytes, floats by ``repr`` (exact), paths and enums as strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        return {"array": hashlib.sha256(a.tobytes()).hexdigest(), "dtype": str(a.dtype), "shape": list(a.shape)}
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"cache key: cannot digest a {type(value).__name__}")


def cache_key(length: int = 24, **inputs: Any) -> str:
    """SHA-256 (hex, first ``length`` characters) of the canonical form of ``inputs``."""
    text = json.dumps(canonical(inputs), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def write_npz_atomic(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], compressed: bool = True) -> Path:
    """Write ``arrays`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            (np.savez_compressed if compressed else np.savez)(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a cache may be shared between users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def log_miss(kind: str, what: str, path: Path, reason: str = "not cached yet") -> None:
    """The one line every miss logs."""
    log.info("cache miss (%s) for %s: %s; computing it (%s)", kind, what, reason, path)


def log_unreadable(kind: str, what: str, path: Path, exc: BaseException) -> None:
    log.warning("cache file %s (%s for %s) is unreadable (%s: %s); computing it again",
                path, kind, what, type(exc).__name__, exc)
