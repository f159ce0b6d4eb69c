"""Benchmarks render headless without the user setting MUJOCO_GL: each sets it (unless already
set) before MuJoCo or the engine is imported (MuJoCo picks its GL platform at import)."""

from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("bench_*.py"))


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_benchmark_sets_mujoco_gl_before_importing_mujoco(path):
    lines = path.read_text().splitlines()
    uses = [i for i, line in enumerate(lines) if line.startswith(("import mujoco", "from pam_engine", "import pam_engine"))]
    if not uses:
        pytest.skip("renders nothing")
    sets = [i for i, line in enumerate(lines) if 'os.environ.setdefault("MUJOCO_GL", "egl")' in line]
    assert sets and sets[0] < uses[0], f"{path.name} imports MuJoCo before setting MUJOCO_GL"
