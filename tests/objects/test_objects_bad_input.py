"""Bad meshes and options fail with an AssetError/ConfigError naming the input, before CoACD runs."""

import numpy as np
import pytest
import trimesh

from pam_engine.errors import AssetError, ConfigError
from pam_engine.objects import CollisionConfig, load_object


def test_missing_file_names_the_path(tmp_path, no_coacd):
    path = tmp_path / "nowhere" / "cup.obj"
    with pytest.raises(AssetError, match="does not exist") as info:
        load_object(path)
    assert str(path) in str(info.value)


def test_missing_file_given_as_string(tmp_path, no_coacd):
    with pytest.raises(AssetError, match="does not exist"):
        load_object(str(tmp_path / "cup.stl"))


@pytest.mark.parametrize(
    "filename, content",
    [
        ("broken.stl", b"\x00\x01garbage" * 7),
        ("broken.obj", b"v 1 2\nf 1 2 9\n"),
        ("broken.ply", b"not a ply at all"),
        ("broken.glb", b"glTF\x02\x00\x00\x00junk"),
        ("empty.obj", b""),
    ],
)
def test_corrupt_file_names_the_path(tmp_path, no_coacd, filename, content):
    path = tmp_path / filename
    path.write_bytes(content)
    with pytest.raises(AssetError) as info:
        load_object(path)
    assert str(path) in str(info.value)


def test_unsupported_extension(tmp_path, no_coacd):
    path = tmp_path / "model.txt"
    path.write_text("hello")
    with pytest.raises(AssetError, match="unsupported type '.txt'"):
        load_object(path)


def test_directory_is_not_a_mesh(tmp_path, no_coacd):
    folder = tmp_path / "folder.obj"
    folder.mkdir()
    with pytest.raises(AssetError, match="not a file"):
        load_object(folder)


def test_flat_plane_has_zero_volume(tmp_path, no_coacd):
    path = tmp_path / "plane.obj"
    corners = [[0, 0, 0], [0.1, 0, 0], [0.1, 0.1, 0], [0, 0.1, 0]]
    plane = trimesh.Trimesh(vertices=corners, faces=[[0, 1, 2], [0, 2, 3]])
    plane.export(path)
    with pytest.raises(AssetError, match="zero volume") as info:
        load_object(path)
    assert "plane" in str(info.value)


def test_sliver_below_a_cubic_millimetre_has_zero_volume(tmp_path, no_coacd):
    path = tmp_path / "sliver.stl"
    trimesh.creation.box([0.1, 0.1, 1e-8]).export(path)
    with pytest.raises(AssetError, match="zero volume"):
        load_object(path)


def test_non_finite_vertices(tmp_path, no_coacd):
    path = tmp_path / "nan.obj"
    path.write_text("v 0 0 0\nv 0.1 0 0\nv 0 0.1 0\nv 0 0 nan\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n")
    with pytest.raises(AssetError) as info:
        load_object(path)
    assert str(path) in str(info.value) and "non-finite" in str(info.value)


@pytest.mark.parametrize("scale, size", [(100.0, "is 6 m"), (0.01, "is 0.0006 m")])
def test_absurd_size_names_the_size(u_path, no_coacd, scale, size):
    # the U is 6 cm across: x100 is 6 m, x0.01 is 0.6 mm
    with pytest.raises(AssetError, match="largest extent") as info:
        load_object(u_path, scale=scale)
    assert "u_shape" in str(info.value) and size in str(info.value)


@pytest.mark.parametrize("kwargs", [{"scale": 0}, {"scale": -1.0}, {"scale": float("nan")}, {"density": 0},
                                    {"density": float("inf")}, {"mass": -2.0}, {"density": 500, "mass": 1.0}])
def test_bad_numbers_are_config_errors(u_path, no_coacd, kwargs):
    with pytest.raises(ConfigError):
        load_object(u_path, **kwargs)


@pytest.mark.parametrize("kwargs", [{"threshold": 0.0}, {"max_hulls": 0}, {"preprocess": "maybe"},
                                    {"max_hull_vertices": 3}, {"resolution": 2}])
def test_bad_collision_config(kwargs):
    with pytest.raises(ConfigError):
        CollisionConfig(**kwargs)


def test_a_single_triangle_is_called_flat_not_empty(tmp_path, no_coacd):
    path = tmp_path / "tri.obj"
    trimesh.Trimesh(vertices=[[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0]], faces=[[0, 1, 2]]).export(path)
    with pytest.raises(AssetError, match="flat") as info:
        load_object(path)
    assert "no triangles" not in str(info.value)


def test_millimetre_mesh_names_a_scale_that_exists(tmp_path, no_coacd):
    path = tmp_path / "mm_box.stl"
    trimesh.creation.box(extents=(60.0, 40.0, 120.0)).export(path)  # a box in millimetres
    with pytest.raises(AssetError, match="millimetres") as info:
        load_object(path)
    message = str(info.value)
    assert "--scale" not in message and "scale=0.001" in message
