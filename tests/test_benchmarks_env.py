"""Benchmarks render headless without the user setting MUJOCO_GL: each one that imports MuJoCo
or the engine (at the top or inside a function) sets it, unless already set, at module level
before that import (MuJoCo picks its GL platform at import)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: an import of MuJoCo, of the engine, or of the test scenes (which import MuJoCo), at any indentation
USES_MUJOCO = re.compile(r"^\s*(import mujoco|from mujoco|from pam_engine|import pam_engine|from synthetic_scene)")
SETS_GL = 'os.environ.setdefault("MUJOCO_GL", "egl")'


def _uses_mujoco(path: Path) -> bool:
    return any(USES_MUJOCO.match(line) for line in path.read_text().splitlines())


ALL = sorted((ROOT / "benchmarks").glob("bench_*.py"))
#: the filter at collection: benchmarks that cannot reach MuJoCo (pure diffusion) are not listed
RENDERING = [p for p in ALL if _uses_mujoco(p)]


def test_the_filter_keeps_the_benchmarks_that_reach_mujoco():
    names = {p.name for p in RENDERING}
    assert {"bench_episode.py", "bench_rl.py", "bench_capture.py", "bench_isaaclab.py"} <= names
    assert "bench_diffusion.py" not in names  # pam_diffusion never imports the engine


@pytest.mark.parametrize("path", RENDERING, ids=lambda p: p.name)
def test_benchmark_sets_mujoco_gl_before_importing_mujoco(path):
    lines = path.read_text().splitlines()
    uses = [i for i, line in enumerate(lines) if USES_MUJOCO.match(line)]
    sets = [i for i, line in enumerate(lines) if line.startswith(SETS_GL)]  # module level: runs at import
    assert sets and sets[0] < uses[0], f"{path.name} imports MuJoCo (line {uses[0] + 1}) before setting MUJOCO_GL"
