"""The Kit extension's files: extension.toml holds only fields Kit reads and names modules that
exist; omni.* is imported nowhere but exts/; the UI module compiles."""

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Fields of an extension.toml that Kit's extension system reads (Kit manual, "Extensions in-depth").
PACKAGE_KEYS = {"version", "title", "description", "category", "keywords", "authors", "readme", "repository",
                "changelog", "preview_image", "icon", "feature", "app", "toggleable", "writeTarget", "target",
                "exclude-pip-packages", "support_level"}
TOP_KEYS = {"package", "dependencies", "python", "native", "settings", "core", "test", "documentation"}
PYTHON_MODULE_KEYS = {"name", "path", "public", "searchExt"}
KIT_DEPENDENCIES = {"omni.ui", "omni.usd", "omni.replicator.core", "isaacsim.core.api"}


def load():
    return tomllib.loads((ROOT / "extension.toml").read_text())


def test_extension_toml_holds_only_fields_kit_reads():
    toml = load()
    assert set(toml) <= TOP_KEYS, set(toml) - TOP_KEYS
    package = toml["package"]
    assert set(package) <= PACKAGE_KEYS, set(package) - PACKAGE_KEYS
    for key in ("title", "version", "description", "category", "keywords", "readme", "preview_image"):
        assert package.get(key), key
    assert package["version"].count(".") == 2 and isinstance(package["keywords"], list)
    for key in ("readme", "preview_image", "icon"):
        assert (ROOT / package[key]).is_file(), package[key]
    assert KIT_DEPENDENCIES <= set(toml["dependencies"])
    assert all(v == {} or isinstance(v, dict) for v in toml["dependencies"].values())
    assert set(toml["python"]) <= {"module", "pipapi"}


def test_every_python_module_it_names_exists():
    modules = load()["python"]["module"]
    named = [m for m in modules if "name" in m]
    assert [m["name"] for m in named] == ["pam_kit"]
    for module in modules:
        assert set(module) <= PYTHON_MODULE_KEYS, module
        folder = ROOT / module.get("path", ".")
        assert folder.is_dir(), module
        if "name" in module:
            base = folder.joinpath(*module["name"].split("."))
            assert (base / "__init__.py").is_file() or base.with_suffix(".py").is_file(), module
    paths = {m.get("path") for m in modules}
    assert {"source", "diffusion"} <= paths  # pam_engine and pam_diffusion import from the checkout
    assert (ROOT / "source" / "pam_engine" / "__init__.py").is_file()


def test_one_extension_config_only():
    assert not (ROOT / "config" / "extension.toml").exists()
    # virtual environments (.venv, and .venv-isaac where Isaac Lab ships template extensions) are not ours
    ours = [p.relative_to(ROOT) for p in ROOT.rglob("extension.toml")
            if not any(part.startswith(".venv") for part in p.relative_to(ROOT).parts)]
    assert ours == [Path("extension.toml")]


def _omni_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "omni"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "omni":
            found.append(node.module)
    return found


def test_omni_is_imported_only_in_exts():
    offenders = {str(p.relative_to(ROOT)): _omni_imports(p)
                 for folder in ("source", "diffusion", "tests", "benchmarks", "tools")
                 for p in (ROOT / folder).rglob("*.py") if _omni_imports(p)}
    assert offenders == {}
    ui = [p for p in (ROOT / "exts").rglob("*.py") if _omni_imports(p)]
    assert {p.name for p in ui} >= {"extension.py", "writer.py"}


def test_the_ui_module_compiles_and_names_an_iext():
    for path in (ROOT / "exts").rglob("*.py"):
        compile(path.read_text(), str(path), "exec")
    tree = ast.parse((ROOT / "exts" / "pam_kit" / "extension.py").read_text())
    classes = {n.name: [ast.unparse(b) for b in n.bases] for n in tree.body if isinstance(n, ast.ClassDef)}
    assert classes["PamKitExtension"] == ["omni.ext.IExt"]
    init = (ROOT / "exts" / "pam_kit" / "__init__.py").read_text()
    assert "PamKitExtension" in init


def test_pam_engine_imports_without_omni():
    import subprocess
    import sys

    code = ("import sys, pam_engine, pam_engine.kitless.controller, pam_engine.kitless.replicator_format, "
            "pam_engine.kitless.usd_stage, pam_engine.dataset.cosmos; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('omni', 'carb')]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
