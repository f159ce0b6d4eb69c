"""Typed configs of the engine: the generic loader (:mod:`pam_diffusion.typed_config`: YAML +
``key.sub=value`` overrides into frozen-by-convention dataclasses, errors naming the dotted key)
and the engine's resolve step (:func:`resolve`)."""

from __future__ import annotations

from pam_diffusion.typed_config import (
    apply_overrides, from_dict, load_config, load_yaml, parse_override, to_dict,
)

__all__ = ["apply_overrides", "from_dict", "load_config", "load_yaml", "parse_override", "to_dict"]
