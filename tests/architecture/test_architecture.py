"""The shape of the code: no import cycles (between files or between parts), a diffusion
backend that stands on its own, and an engine whose import has no side effects."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"pam_engine": ROOT / "source" / "pam_engine", "pam_diffusion": ROOT / "diffusion" / "pam_diffusion"}


def _modules() -> dict[str, Path]:
    out = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder.parent).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` (a module or ``module.attribute``) names."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    """module -> modules it imports, from the AST: every ``import`` statement counts, at module
    level or inside functions and ``if TYPE_CHECKING`` blocks alike. An import of ``a.b.c`` is an
    edge to ``a.b.c`` only (Python also runs the parents' ``__init__``, which is how packages
    re-export; a parent importing its children is not a cycle)."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".")
                    base = base if is_package else base[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                # ``from pkg import sub`` names the submodule; ``from mod import name`` the module
                targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in modules else prefix for a in node.names]
            for target in targets:
                hit = _resolve(target, modules)
                if hit and hit != module:
                    graph[module].add(hit)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def part_of(module: str) -> str:
    """The part a module belongs to: ``pam_engine.<part>`` (a subpackage or a top-level module)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def part_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    parts: dict[str, set[str]] = {}
    for module, targets in graph.items():
        if module.startswith("pam_engine.") and module.count(".") >= 1:
            src = part_of(module)
            parts.setdefault(src, set())
            for t in targets:
                if t.startswith("pam_engine.") and part_of(t) != src:
                    parts[src].add(part_of(t))
    return parts


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_counts_imports_inside_functions():
    graph = import_graph()
    # pose.setup imports the objects package only inside load_objects()
    assert "pam_engine.objects" in graph["pam_engine.pose.setup"]


def test_no_import_cycle_between_files():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_import_cycle_between_parts():
    cycle = find_cycle(part_graph(import_graph()))
    assert cycle is None, "import cycle between parts: " + " -> ".join(cycle)


def test_pam_diffusion_imports_nothing_from_pam_engine():
    graph = import_graph()
    for module, targets in graph.items():
        if module.startswith("pam_diffusion"):
            bad = sorted(t for t in targets if t.startswith("pam_engine"))
            assert not bad, f"{module} imports {bad}"


def test_only_the_mujoco_backend_and_its_users_import_mujoco():
    """policy/, rl/, Stage I's set-up and rollout and the pipeline are written against the
    simulator seam, never against MuJoCo."""
    for part in ("policy", "rl", "pose/rollout.py", "pose/setup.py", "pose/stage.py", "pose/request.py",
                 "pose/grasp/trial.py", "pose/grasp/plan.py", "pipeline.py", "distributed.py"):
        root = PACKAGES["pam_engine"] / part
        for path in ([root] if root.is_file() else root.rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            tree = ast.parse(text)
            for node in ast.walk(tree):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                for name in names:
                    assert not name.startswith("mujoco"), f"{path} imports {name}"
                    assert not name.startswith("pam_engine.sim.mujoco"), f"{path} imports {name}"


def _run(code: str) -> dict:
    env = {k: v for k, v in os.environ.items()}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "source"), str(ROOT / "diffusion"), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_pam_diffusion_loads_without_pam_engine():
    code = ("import json, sys, pam_diffusion, pam_diffusion.typed_config, pam_diffusion.scoring, "
            "pam_diffusion.conditions, pam_diffusion.errors;"
            "from pam_diffusion import DiffusionConfig; DiffusionConfig();"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('pam_engine'))))")
    assert _run(code) == []


def test_pam_diffusion_test_suite_runs_without_pam_engine():
    """The diffusion tests use only pam_diffusion: their sources never name pam_engine, and a
    run of one of their files (a subprocess, to start clean) leaves pam_engine unimported. (The
    whole diffusion suite run that way takes minutes; one file proves the path.)"""
    for path in (ROOT / "tests" / "diffusion").glob("*.py"):
        assert "pam_engine" not in path.read_text(encoding="utf-8"), f"{path} uses pam_engine"
    target = ROOT / "tests" / "diffusion" / "test_diffusion_config.py"
    code = ("import json, sys, pytest;"
            f"rc = pytest.main(['-q', '-p', 'no:cacheprovider', '-p', 'no:xdist', {str(target)!r}]);"
            "print(json.dumps([int(rc), sorted(m for m in sys.modules if m.startswith('pam_engine'))]))")
    assert _run(code) == [0, []]


def test_import_pam_engine_changes_no_environment_variable():
    """Not even MUJOCO_GL: inside Isaac Sim's Kit process that would change its renderer."""
    # third-party libraries load first: OpenCV's import edits LD_LIBRARY_PATH, which is not ours
    code = ("import json, os, cv2, mujoco, scipy.spatial, trimesh; before = dict(os.environ);"
            "import pam_engine, pam_engine.pose, pam_engine.sim, "
            "pam_engine.pose.stage, pam_engine.pipeline, pam_engine.capture.renderer;"
            "print(json.dumps({k: [before.get(k), os.environ.get(k)] for k in set(before) | set(os.environ) "
            "if before.get(k) != os.environ.get(k)}))")
    env_free = _run("import os, json; [os.environ.pop(k, None) for k in ('MUJOCO_GL', 'PYOPENGL_PLATFORM')];" + code)
    assert env_free == {}


def test_import_pam_engine_installs_no_mujoco_hook():
    code = ("import json, mujoco; import pam_engine.pose.stage, pam_engine.sim.mujoco.scene, pam_engine.pipeline;"
            "print(json.dumps(mujoco.get_mju_user_warning() is None))")
    assert _run(code) is True


@pytest.mark.parametrize("name", ["pam_engine.conventions", "pam_diffusion.scoring"])
def test_pam_map_colours_agree_between_the_packages(name):
    import importlib

    import numpy as np

    from pam_engine.conventions import SEG_HAND_COLOR

    np.testing.assert_array_equal(importlib.import_module(name).SEG_HAND_COLOR, SEG_HAND_COLOR)


def test_every_design_doc_reference_names_a_section_that_exists():
    import re

    doc = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    headings = {line.lstrip("#").strip() for line in doc.splitlines() if line.startswith("#")}
    cited = set()
    for folder in ("source", "diffusion", "tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            cited |= set(re.findall(r'docs/design\.md, "([^"]+)"', path.read_text(encoding="utf-8")))
    assert cited, "the code cites the design doc"
    assert not cited - headings, f"sections cited but missing from docs/design.md: {sorted(cited - headings)}"
