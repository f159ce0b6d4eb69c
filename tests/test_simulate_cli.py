"""``pam simulate`` checks every number and file before simulating: no traceback, exit code 2,
nothing written."""

import json
import os

import numpy as np
import pytest

import pam_engine.pose as stage1
from pam_engine.cli import main


@pytest.fixture
def no_simulation(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the simulation must not start on bad input")

    monkeypatch.setattr(stage1, "simulate", refuse)


@pytest.mark.parametrize("flags, expected", [
    (["--fps", "0"], "--fps"), (["--fps", "nan"], "--fps"), (["--fps", "-15"], "--fps"),
    (["--fps", "inf"], "--fps"), (["--lift", "nan"], "--lift"), (["--lift", "-0.2"], "--lift"),
    (["--frames", "1"], "--frames"),
])
def test_bad_numbers_are_refused(tmp_path, capsys, no_simulation, flags, expected):
    out = tmp_path / "traj.npz"
    assert main(["simulate", "--object", "061_foam_brick", "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert not out.exists()


def test_unwritable_output_is_found_before_simulating(tmp_path, capsys, no_simulation):
    assert main(["simulate", "--object", "061_foam_brick", "--out", "/proc/traj.npz"]) == 2
    assert "cannot be written" in capsys.readouterr().err
    if os.geteuid() != 0:  # root writes anywhere else
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert main(["simulate", "--object", "061_foam_brick", "--out", str(locked / "t.npz")]) == 2
        assert "cannot be written" in capsys.readouterr().err


@pytest.mark.parametrize("name, content, expected", [
    ("grasp.json", json.dumps([1, 2, 3]), "expected a JSON object"),
    ("grasp.json", "{not json", "not valid JSON"),
    ("grasp.json", json.dumps({"wrist_in_object": [["a"] * 4] * 4}), "numeric"),
    ("grasp.json", json.dumps({"wrist_in_object": np.full((4, 4), np.nan).tolist(), "angles": [0.0] * 20,
                               "approach": [0, 0, 1]}), "wrist_in_object"),
    ("grasp.npz", b"\x00garbage" * 10, "not a readable .npz"),
    ("grasp.npz", b"", "not a readable .npz"),
])
def test_bad_grasp_files_are_refused(tmp_path, capsys, no_simulation, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    assert main(["simulate", "--object", "061_foam_brick", "--out", str(tmp_path / "t.npz"), "--grasp", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_mano_file_with_nan_values_is_refused(tmp_path, capsys, no_simulation):
    from hand.mano_fixture import make_mano_arrays, write_mano_pkl

    arrays = make_mano_arrays()
    arrays["v_template"] = arrays["v_template"].copy()
    arrays["v_template"][10, 1] = np.nan
    path = tmp_path / "MANO_RIGHT.pkl"
    write_mano_pkl(path, arrays)
    assert main(["simulate", "--object", "061_foam_brick", "--out", str(tmp_path / "t.npz"), "--mano", str(path)]) == 2
    err = capsys.readouterr().err
    assert "v_template" in err and "NaN" in err and "Traceback" not in err
