"""Typed configs of the engine: the generic loader (:mod:`pam_diffusion.typed_config`: YAML +
``key.sub=value`` overrides into frozen-by-convention dataclasses, errors naming the dotted key)
and the engine's resolve step (:func:`derive`): values that follow others (the video's size and
frame count from the capture's, ...) are computed once into a new config, never written over a
value the user set."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from pam_diffusion.typed_config import (
    apply_overrides, from_dict, load_config, load_yaml, parse_override, to_dict,
)
from pam_engine.errors import ConfigError

T = TypeVar("T")

__all__ = ["apply_overrides", "derive", "from_dict", "get_key", "has_key", "load_config", "load_yaml",
           "parse_override", "to_dict"]


def get_key(obj: Any, key: str) -> Any:
    """The value at dotted ``key`` of a nested dataclass or mapping."""
    for part in key.split("."):
        obj = obj[part] if isinstance(obj, Mapping) else getattr(obj, part)
    return obj


def has_key(data: Mapping | None, key: str) -> bool:
    """Whether the user's raw mapping sets dotted ``key``."""
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _replace_key(obj: Any, key: str, value: Any) -> Any:
    head, _, rest = key.partition(".")
    child = value if not rest else _replace_key(getattr(obj, head), rest, value)
    return dataclasses.replace(obj, **{head: child})


def _default_at(cls: type, key: str) -> Any:
    """The dataclass default of dotted ``key`` (following nested dataclass fields)."""
    obj = cls()
    return get_key(obj, key)


def derive(cfg: T, derived: Mapping[str, tuple[Any, str]], given: Mapping | None = None) -> T:
    """A copy of config ``cfg`` with each derived ``key -> (value, source)`` set, never
    overwriting a value the user chose: a user value that differs from the derived one is a
    :class:`ConfigError` naming both keys. The user's choices are the keys of ``given`` (their raw
    mapping) when known, else the values that differ from the defaults."""
    out = cfg
    for key, (value, source) in derived.items():
        current = get_key(cfg, key)
        user_set = has_key(given, key) if given is not None else current != _default_at(type(cfg), key)
        if user_set and current != value:
            raise ConfigError(f"config key {key!r} = {current!r} conflicts with {source} = {value!r}: "
                              f"{key!r} follows it; leave {key!r} unset or make them agree")
        if current != value:
            out = _replace_key(out, key, value)
    return out
