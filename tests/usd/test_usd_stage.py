"""Saving is atomic: a write that fails leaves neither a partial file nor a temporary one, and an
existing file stays as it was."""

import os

import pytest
from pxr import Usd

from pam_engine.errors import OutputError
from pam_engine.usd.stage import check_output_path, new_stage, save_stage


@pytest.mark.parametrize("name", ["a.usd", "a.usda", "a.usdc", "A.USDA"])
def test_usd_suffixes_are_accepted(tmp_path, name):
    assert check_output_path(tmp_path / name) == tmp_path / name


@pytest.mark.parametrize("name", ["a.usdz", "a.obj", "a"])
def test_other_suffixes_are_named(tmp_path, name):
    with pytest.raises(OutputError, match=name):
        check_output_path(tmp_path / name)


def test_a_failed_write_changes_nothing(tmp_path, monkeypatch):
    out = tmp_path / "scene.usda"
    save_stage(new_stage("Before"), out)
    before = out.read_bytes()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save_stage(new_stage("After"), out)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["scene.usda"]


def test_saved_files_open_in_every_format(tmp_path):
    for name in ("a.usd", "a.usda", "a.usdc"):
        save_stage(new_stage("Thing"), tmp_path / name)
        stage = Usd.Stage.Open(str(tmp_path / name))
        assert stage.GetDefaultPrim().GetName() == "Thing"
    assert (tmp_path / "a.usda").read_text().startswith("#usda")
    assert not (tmp_path / "a.usdc").read_bytes().startswith(b"#usda")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.usda").stat().st_mode & 0o777 == 0o666 & ~umask  # as open() makes files, not mkstemp's 0600
