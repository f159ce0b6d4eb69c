"""Episodes QA rejected (``qa.json`` "passed": false) stay in the dataset, flagged, and are never
consumed as good data: the exports and the diffusion data loader leave them out, ``pam validate``
names them (docs/qa.md). Also the bad input of ``pam qa``: a missing detector environment."""

import json
import shutil
import sys

import pytest

from pam_engine.cli import main
from pam_engine.dataset.reader import is_rejected, list_good_episodes
from pam_engine.dataset.validate import validate_dataset
from pam_engine.errors import PamError
from pam_engine.qa.detector import DetectorError, find_detector_python, run_detector


@pytest.fixture
def with_rejected(demo_dataset, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(demo_dataset, root)
    (root / "episode_000000" / "qa.json").write_text(json.dumps({"passed": False, "failures": ["mirrored"]}))
    (root / "episode_000001" / "qa.json").write_text(json.dumps({"passed": True, "failures": []}))
    return root


def test_rejected_episodes_are_flagged_and_left_out_of_exports_and_training(with_rejected, tmp_path):
    root = with_rejected
    assert is_rejected(root / "episode_000000") and not is_rejected(root / "episode_000001")
    assert [p.name for p in list_good_episodes(root)] == ["episode_000001"]
    report = validate_dataset(root)
    assert report.ok and any("1 episode(s) rejected by QA" in n and "episode_000000" in n for n in report.notes)

    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    assert main(["export", "lerobot", str(root), str(tmp_path / "lerobot")]) == 0
    info = json.loads((tmp_path / "lerobot" / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 1
    assert pq.read_table(tmp_path / "lerobot" / "meta" / "episodes" / "chunk-000" / "file-000.parquet").num_rows == 1
    assert main(["export", "cosmos", str(root), str(tmp_path / "cosmos")]) == 0
    clips = json.loads((tmp_path / "cosmos" / "clips.json").read_text())["clips"]
    assert [c["episode"].rsplit("/", 1)[-1] for c in clips] == ["episode_000001"]

    from pam_diffusion.training.config import DataConfig
    from pam_diffusion.training.data import DatasetError, list_episode_dirs, scan_dataset

    assert [p.name for p in list_episode_dirs(root)] == ["episode_000001"]
    with pytest.raises(DatasetError, match="episode_000000 rejected by QA"):
        scan_dataset(DataConfig(root=str(root), episodes=["episode_000000"]), ("depth",), None)


def test_a_broken_qa_file_is_a_validation_problem(with_rejected):
    (with_rejected / "episode_000001" / "qa.json").write_text("{not json")
    problems = validate_dataset(with_rejected).episodes["episode_000001"]
    assert any(p.startswith("qa.json: unreadable") for p in problems)


def test_a_missing_detector_environment_names_how_to_install_it(tmp_path, monkeypatch, capsys, demo_dataset):
    monkeypatch.setenv("PAM_QA_PYTHON", str(tmp_path / "nowhere" / "python"))
    with pytest.raises(DetectorError, match="tools/make_qa_env.sh"):
        find_detector_python()
    # a Python without mediapipe (this one): the worker's own check, the same hint
    with pytest.raises(DetectorError, match="no working mediapipe hand model.*tools/make_qa_env.sh"):
        run_detector(demo_dataset / "episode_000000" / "sim_rgb.mp4", sys.executable)
    assert issubclass(DetectorError, PamError)
    code = main(["qa", str(demo_dataset), "--video", "sim_rgb", "--no-progress"])
    assert code == 2 and "tools/make_qa_env.sh" in capsys.readouterr().err
    monkeypatch.setenv("PAM_QA_PYTHON", sys.executable)
    code = main(["qa", str(demo_dataset), "--video", "sim_rgb", "--no-progress"])
    assert code == 2 and "has no mediapipe" in capsys.readouterr().err
    assert not (demo_dataset / "qa_summary.json").exists()  # refused before any work


def test_generate_with_qa_refuses_before_any_episode(tmp_path, monkeypatch):
    from pam_engine.config import load_config
    from pam_engine.errors import ConfigError
    from pam_engine.pipeline import GenerateConfig, Generator

    monkeypatch.setenv("PAM_QA_PYTHON", str(tmp_path / "nowhere" / "python"))
    cfg = load_config(GenerateConfig, None, ["qa.max_keypoint_error=15", "qa.video=sim_rgb"])
    with pytest.raises(DetectorError, match="tools/make_qa_env.sh"):
        Generator(cfg, tmp_path / "out")
    assert not (tmp_path / "out" / "dataset.json").exists()
    # no photoreal video will be made: checking video.mp4 is refused, naming the key to set
    with pytest.raises(ConfigError, match="qa.video=sim_rgb"):
        Generator(load_config(GenerateConfig, None, ["qa.max_keypoint_error=15"]), tmp_path / "out2")
    with pytest.raises(ConfigError, match="qa.max_keypoint_error"):
        load_config(GenerateConfig, None, ["qa.max_keypoint_error=-3"]).check()
