"""Typed configs: dataclasses filled from YAML files and ``key.sub=value`` command-line overrides.

Generic (nothing here knows the engine or diffusion): it lives in ``pam_diffusion`` so the
diffusion backend stays usable on its own, and the engine imports it from here
(:mod:`pam_engine.config` adds the engine's resolve step on top).

``from_dict(Cls, data)`` builds a (possibly nested) dataclass from plain data, checking every
value against the field's annotation (int, float, str, bool, Path, Enum, Literal, Optional /
unions, list[...], tuple[...], dict[...], nested dataclasses). Unknown keys, missing required
keys and wrong types raise ``ConfigError`` naming the dotted key, before any work starts.
Values are data: nothing read is evaluated (YAML is loaded with ``safe_load``).
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pam_diffusion.errors import ConfigError

T = TypeVar("T")

_NONE = type(None)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else str(key)


def _type_name(tp: Any) -> str:
    if tp is _NONE:
        return "null"
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _fail(key: str, tp: Any, value: Any) -> ConfigError:
    return ConfigError(f"config key {key!r}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__})")


def _convert(tp: Any, value: Any, key: str) -> Any:
    """Check ``value`` against annotation ``tp`` and return it converted (e.g. list -> tuple)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    if tp is Any:
        return value
    if origin is typing.Union or (hasattr(types, "UnionType") and isinstance(tp, types.UnionType)):
        if value is None:
            if _NONE in args:
                return None
            raise _fail(key, tp, value)
        errors = []
        for arg in args:
            if arg is _NONE:
                continue
            try:
                return _convert(arg, value, key)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise _fail(key, tp, value)
    if origin is typing.Literal:
        for allowed in args:
            if value == allowed and type(value) is type(allowed):  # True must not match 1
                return value
        raise ConfigError(f"config key {key!r}: expected one of {list(args)}, got {value!r}")
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return from_dict(tp, value, path=key)
    if origin in (list, Sequence) or tp in (list,):
        if not isinstance(value, (list, tuple)):
            raise _fail(key, tp, value)
        item = args[0] if args else Any
        return [_convert(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is tuple or tp is tuple:
        if not isinstance(value, (list, tuple)):
            raise _fail(key, tp, value)
        if not args:
            return tuple(value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"config key {key!r}: expected {len(args)} values ({_type_name(tp)}), got {len(value)}")
        return tuple(_convert(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise _fail(key, tp, value)
        kt, vt = args if args else (Any, Any)
        return {_convert(kt, k, f"{key}.<key {k!r}>"): _convert(vt, v, _join(key, str(k))) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _fail(key, tp, value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _fail(key, tp, value)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _fail(key, tp, value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _fail(key, tp, value)
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise _fail(key, tp, value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if isinstance(value, tp):
            return value
        for member in tp:
            if value == member.name or value == member.value:
                return member
        raise ConfigError(f"config key {key!r}: expected one of {[m.name for m in tp]}, got {value!r}")
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _fail(key, tp, value)
    raise ConfigError(f"config key {key!r}: unsupported annotation {tp!r}")


def from_dict(cls: type[T], data: Any, *, path: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, recursively, rejecting unknown keys and wrong
    types with a ``ConfigError`` that names the dotted key (prefixed by ``path``)."""
    if not (dataclasses.is_dataclass(cls) and isinstance(cls, type)):
        raise TypeError(f"from_dict needs a dataclass type, got {cls!r}")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"config {'key ' + repr(path) if path else cls.__name__}: expected a mapping, "
                          f"got {data!r} ({type(data).__name__})")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise ConfigError(f"unknown config key {_join(path, str(key))!r} "
                              f"(known keys{' of ' + repr(path) if path else ''}: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, f in fields.items():
        key = _join(path, name)
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required config key {key!r}")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config {'key ' + repr(path) if path else cls.__name__}: {exc}") from exc


def to_dict(obj: Any) -> Any:
    """Dataclass -> plain JSON/YAML-ready data (tuples become lists, paths strings, enums names)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k) if not isinstance(k, (int, float, bool)) else k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.name
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return obj.tolist()
    return obj


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b.c=value"`` -> (["a", "b", "c"], value); the value is YAML (``1`` int, ``0.5``
    float, ``true`` bool, ``null``, ``[1, 2]`` list, anything else a string)."""
    if "=" not in text:
        raise ConfigError(f"config override {text!r}: expected key.sub=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not key.strip() or any(not p for p in parts):
        raise ConfigError(f"config override {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"config override {text!r}: value is not valid YAML ({exc})") from exc
    return parts, value


def apply_overrides(data: Mapping | None, overrides: Sequence[str]) -> dict:
    """A copy of ``data`` with each ``key.sub=value`` override set (creating nested mappings)."""
    out = _copy(dict(data or {}))
    for text in overrides:
        parts, value = parse_override(text)
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"config override {text!r}: {'.'.join(parts[:i + 1])!r} is not a mapping")
            node = child
        node[parts[-1]] = value
    return out


def _copy(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {k: _copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy(v) for v in data]
    return data


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping (safe loader); an empty file is an empty mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Dataclass ``cls`` from an optional YAML file plus ``key.sub=value`` overrides."""
    data = load_yaml(path) if path is not None else {}
    return from_dict(cls, apply_overrides(data, overrides))
