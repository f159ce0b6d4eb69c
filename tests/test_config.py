from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import pytest

from pam_engine.config import apply_overrides, from_dict, load_config, parse_override, to_dict
from pam_engine.errors import ConfigError


class Mode(enum.Enum):
    FAST = "fast"
    GOOD = "good"


@dataclass
class Lights:
    intensity: float = 0.5
    colour: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass
class Render:
    width: int = 720
    height: int = 480
    lights: Lights = field(default_factory=Lights)
    extra_lights: list[Lights] = field(default_factory=list)


@dataclass
class Job:
    name: str
    frames: int = 49
    seed: Optional[int] = None
    objects: list[str] = field(default_factory=lambda: ["025_mug"])
    weights: dict[str, float] = field(default_factory=dict)
    render: Render = field(default_factory=Render)
    output: Path = Path("runs/x")
    mode: Mode = Mode.FAST
    backend: Literal["mujoco", "isaac"] = "mujoco"
    scale: float | None = 1.0
    size: tuple[int, ...] = (1, 2)


def test_nested_values_are_converted_and_checked():
    job = from_dict(Job, {
        "name": "a", "seed": 3, "objects": ["x", "y"], "weights": {"a": 1, "b": 0.5},
        "render": {"width": 640, "lights": {"intensity": 1, "colour": [0.1, 0.2, 0.3]},
                   "extra_lights": [{"intensity": 0.2}]},
        "output": "out/dir", "mode": "GOOD", "backend": "isaac", "scale": None, "size": [4, 5, 6],
    })
    assert job.render.width == 640 and job.render.height == 480
    assert job.render.lights.intensity == 1.0 and isinstance(job.render.lights.intensity, float)
    assert job.render.lights.colour == (0.1, 0.2, 0.3)
    assert job.render.extra_lights[0].intensity == 0.2
    assert job.weights == {"a": 1.0, "b": 0.5}
    assert job.output == Path("out/dir") and job.mode is Mode.GOOD and job.backend == "isaac"
    assert job.scale is None and job.size == (4, 5, 6)
    assert to_dict(job)["render"]["lights"]["colour"] == [0.1, 0.2, 0.3]
    assert to_dict(job)["mode"] == "GOOD" and to_dict(job)["output"] == "out/dir"


@pytest.mark.parametrize("data, key", [
    ({"name": "a", "framez": 3}, "'framez'"),
    ({"name": "a", "render": {"lights": {"intensty": 1.0}}}, "'render.lights.intensty'"),
    ({"name": "a", "render": {"extra_lights": [{"bad": 1}]}}, r"'render.extra_lights\[0\].bad'"),
])
def test_unknown_keys_are_named(data, key):
    with pytest.raises(ConfigError, match=f"unknown config key {key}"):
        from_dict(Job, data)


@pytest.mark.parametrize("data, key", [
    ({"name": 3}, "'name': expected str"),
    ({"name": "a", "frames": "49"}, "'frames': expected int"),
    ({"name": "a", "frames": True}, "'frames': expected int"),
    ({"name": "a", "frames": 4.5}, "'frames': expected int"),
    ({"name": "a", "seed": "x"}, "'seed'"),
    ({"name": "a", "objects": "mug"}, "'objects': expected list"),
    ({"name": "a", "objects": ["mug", 3]}, r"'objects\[1\]': expected str"),
    ({"name": "a", "render": {"lights": {"colour": [1, 2]}}}, "'render.lights.colour': expected 3 values"),
    ({"name": "a", "render": {"width": None}}, "'render.width'"),
    ({"name": "a", "render": 5}, "'render': expected a mapping"),
    ({"name": "a", "mode": "slow"}, "'mode': expected one of"),
    ({"name": "a", "backend": "unity"}, "'backend': expected one of"),
    ({"name": "a", "weights": {"a": "heavy"}}, "'weights.a': expected float"),
])
def test_wrong_types_name_the_key(data, key):
    with pytest.raises(ConfigError, match=key):
        from_dict(Job, data)


def test_missing_required_key():
    with pytest.raises(ConfigError, match="missing required config key 'name'"):
        from_dict(Job, {})


@dataclass
class Positive:
    value: int = 1

    def __post_init__(self):
        if self.value <= 0:
            raise ValueError(f"value must be positive, got {self.value}")


@dataclass
class Outer:
    inner: Positive = field(default_factory=Positive)


def test_validation_in_post_init_becomes_config_error():
    with pytest.raises(ConfigError, match="'inner'.*must be positive"):
        from_dict(Outer, {"inner": {"value": -1}})


def test_overrides_parse_yaml_values():
    assert parse_override("render.width=640") == (["render", "width"], 640)
    assert parse_override("scale=null") == (["scale"], None)
    assert parse_override("objects=[a, b]") == (["objects"], ["a", "b"])
    assert parse_override("name=hello world") == (["name"], "hello world")
    for bad in ("render.width", "=3", "a..b=1"):
        with pytest.raises(ConfigError, match="override"):
            parse_override(bad)


def test_yaml_file_with_overrides(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("name: base\nrender:\n  width: 320\n  lights:\n    intensity: 0.3\n")
    job = load_config(Job, path, ["render.lights.intensity=0.9", "frames=25", "render.height=240"])
    assert (job.name, job.frames, job.render.width, job.render.height) == ("base", 25, 320, 240)
    assert job.render.lights.intensity == 0.9
    with pytest.raises(ConfigError, match="unknown config key 'render.lights.colr'"):
        load_config(Job, path, ["render.lights.colr=[1,1,1]"])
    with pytest.raises(ConfigError, match="'frames': expected int"):
        load_config(Job, path, ["frames=many"])
    with pytest.raises(ConfigError, match="'name' is not a mapping"):
        apply_overrides({"name": "a"}, ["name.first=x"])


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Job, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Job, bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config(Job, listing)
    # YAML tags that would build Python objects are refused by the safe loader
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Job, evil)
