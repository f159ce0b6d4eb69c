"""``pam train-appearance`` / ``pam train-motion``: the engine's thin CLI wrappers over
``pam_diffusion.training`` (the trainers themselves are tested in tests/diffusion/test_training.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("diffusers")
sys.path.insert(0, str(Path(__file__).parent / "diffusion"))  # training_data, diffusion_refs

from pam_engine.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from training_data import write_tiny_dataset

    return write_tiny_dataset(tmp_path_factory.mktemp("tiny_dataset"), episodes=2, prompts=("red can",))


def test_cli_trains_with_overrides(dataset, tmp_path, capsys):
    code = main(["train-appearance", "--config", str(ROOT / "configs" / "train_appearance_tiny.yaml"),
                 "--set", f"data.root={dataset}", "--set", "data.video=video.mp4",
                 "--set", f"train.output_dir={tmp_path / 'out'}", "--set", "train.max_steps=2",
                 "--set", "train.progress=false", "--set", "train.validate_every=2"])
    assert code == 0
    assert "appearance: 2 steps" in capsys.readouterr().out
    assert (tmp_path / "out" / "checkpoint-000002" / "controlnet.bin").is_file()
    assert sorted((tmp_path / "out" / "validation").glob("*.png"))


def test_cli_errors_are_one_line(tmp_path, capsys):
    code = main(["train-motion", "--config", str(ROOT / "configs" / "train_motion_tiny.yaml"),
                 "--set", f"data.root={tmp_path / 'none'}", "--set", f"train.output_dir={tmp_path / 'out'}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "data.root" in err and "is not a folder" in err and len(err.strip().splitlines()) == 1
    assert main(["train-motion", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert main(["train-appearance", "--config", str(ROOT / "configs" / "train_motion_tiny.yaml")]) == 2
