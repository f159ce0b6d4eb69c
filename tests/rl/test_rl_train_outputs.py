"""``pam train-policy`` never overwrites: the shipped policy is never written, an existing output
or run folder needs ``--force``, and by default the policy goes under the run folder. All refusals
happen before any training starts (these tests train nothing)."""

import hashlib
from pathlib import Path

import pytest

from pam_engine.cli import main
from pam_engine.errors import OutputError
from pam_engine.training.policy import TrainConfig, check_outputs, shipped_policy_dir, train

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "policies" / "grasp_residual.pth"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_readme_command_does_not_touch_the_shipped_policy(tmp_path, monkeypatch):
    cfg_path = REPO / "policies" / "grasp_residual.yaml"
    from pam_engine.training.policy import load_train_config

    monkeypatch.chdir(tmp_path)
    cfg = load_train_config(cfg_path)
    assert cfg.output_path == Path("runs/policies/grasp_residual/grasp_residual.pth")
    assert cfg.output_path.resolve() != SHIPPED.resolve()


@pytest.mark.parametrize("force", [False, True])
def test_shipped_policy_is_refused_even_with_force(force, capsys):
    assert shipped_policy_dir() == REPO / "policies"
    before = _digest(SHIPPED)
    args = ["train-policy", "--config", str(REPO / "policies" / "grasp_residual.yaml"), "--no-progress",
            "--set", f"output={SHIPPED}"] + (["--force"] if force else [])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "shipped policies folder" in err and str(SHIPPED) in err
    assert _digest(SHIPPED) == before


def test_existing_output_needs_force(tmp_path):
    out = tmp_path / "mine.pth"
    out.write_bytes(b"previous run")
    cfg = TrainConfig(output=str(out), train_dir=str(tmp_path / "runs"))
    with pytest.raises(OutputError, match="already exists.*--force"):
        train(cfg, progress=False)  # refused before the grasp bank or any environment is built
    assert out.read_bytes() == b"previous run"
    check_outputs(cfg, force=True)  # allowed when asked for


def test_existing_run_folder_needs_force(tmp_path):
    cfg = TrainConfig(name="mine", train_dir=str(tmp_path))
    assert cfg.output_path == tmp_path / "mine" / "mine.pth"
    check_outputs(cfg)  # nothing there yet
    (tmp_path / "mine" / "nn").mkdir(parents=True)
    (tmp_path / "mine" / "nn" / "mine.pth").write_bytes(b"rl-games checkpoint")
    with pytest.raises(OutputError, match="already holds a training run"):
        check_outputs(cfg)
    check_outputs(cfg, force=True)
