"""Fixtures for the object-asset tests: tiny synthetic meshes and an isolated collision cache."""

import numpy as np
import pytest
import trimesh


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own PAM_CACHE_DIR, so nothing is read from or written to ~/.cache."""
    root = tmp_path / "pam_cache"
    monkeypatch.setenv("PAM_CACHE_DIR", str(root))
    return root / "collision"


def u_shape(unit: float = 0.02) -> trimesh.Trimesh:
    """A closed U (3x3 units, 1 unit thick, 1 unit deep): concave, with a 1-unit gap between arms."""
    outline = np.array([(0, 0), (3, 0), (3, 1), (3, 3), (2, 3), (2, 1), (1, 1), (1, 3), (0, 3), (0, 1)], float)
    triangles = np.array([(0, 1, 2), (0, 2, 5), (0, 5, 6), (0, 6, 9), (5, 2, 3), (5, 3, 4), (9, 6, 7), (9, 7, 8)])
    return trimesh.creation.extrude_triangulation(outline * unit, triangles, unit)


@pytest.fixture
def u_mesh():
    return u_shape()


@pytest.fixture
def u_gap_point():
    """A point in the U's gap (between the arms, mid-depth), inside the U's convex hull."""
    return np.array([0.03, 0.045, 0.01])


@pytest.fixture
def u_path(tmp_path):
    path = tmp_path / "u_shape.stl"
    u_shape().export(path)
    return path


@pytest.fixture
def count_coacd(monkeypatch):
    """Counts real CoACD runs (the call still goes through to coacd)."""
    from pam_engine.objects import collision

    calls = []
    real = collision.run_coacd

    def counting(mesh, config):
        calls.append(len(mesh.vertices))
        return real(mesh, config)

    monkeypatch.setattr(collision, "run_coacd", counting)
    return calls


@pytest.fixture
def no_coacd(monkeypatch):
    """Fails the test if CoACD is run (for paths that must use shipped hulls or fail early)."""
    from pam_engine.objects import collision

    def forbidden(mesh, config):
        raise AssertionError("CoACD was run")

    monkeypatch.setattr(collision, "run_coacd", forbidden)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """A collision cache shared by tests that only need an asset (each mesh decomposed once)."""
    return tmp_path_factory.mktemp("shared_collision_cache")
