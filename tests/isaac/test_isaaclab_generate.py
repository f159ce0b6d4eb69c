"""`standalone/generate.py` (= `pam generate` with ``backend=isaaclab``) on kit-less Isaac Lab:
a tiny batch (2 episodes, 2 envs, 160x128, 9 frames) whose episodes pass `pam validate` and record
the backend and physics preset, and a rerun that resumes (complete episodes are skipped, nothing is
rewritten; a lost episode is made again and only it).

Isaac Lab environment only (marker ``isaaclab``; ``tools/make_isaac_env.sh``), skipped elsewhere.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.isaaclab
pytest.importorskip("isaaclab_newton")

ROOT = Path(__file__).resolve().parents[2]
MUSTARD = "006_mustard_bottle"
CONFIG = {"episodes": 2, "seed": 3, "width": 160, "height": 128, "keep_failed": True,
          "stage1": {"num_frames": 9}, "isaaclab": {"num_envs": 2},
          "randomization": {"objects": [MUSTARD], "camera": {"preset": "square"}}}


def _standalone():
    spec = importlib.util.spec_from_file_location("standalone_generate", ROOT / "standalone" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    import yaml

    root = tmp_path_factory.mktemp("isaac_generate")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    out = root / "data"
    assert _standalone()(["--headless", "--config", str(config), "--out", str(out), "--no-progress"]) == 0
    return config, out


def test_isaac_episodes_pass_validate_and_record_the_backend(dataset):
    from pam_engine.cli import main
    from pam_engine.dataset.reader import load_episode

    _, out = dataset
    episodes = sorted(p.name for p in out.iterdir() if p.name.startswith("episode_"))
    assert episodes == ["episode_000000", "episode_000001"]
    assert main(["validate", str(out)]) == 0
    for name in episodes:
        meta = json.loads((out / name / "meta.json").read_text())
        assert meta["extra"]["backend"] == "isaaclab" and meta["extra"]["physics"] == "newton"
        assert meta["object_names"] == [MUSTARD] and meta["num_frames"] == 9
        assert (meta["width"], meta["height"]) == (160, 128)
    identity = json.loads((out / "dataset.json").read_text())["config"]
    assert identity["backend"] == "isaaclab" and identity["isaaclab"]["physics"] == "newton"
    assert "num_envs" not in identity["isaaclab"]  # runtime: a resume may use another number of envs
    ep = load_episode(out / "episode_000000")
    seg = ep.seg
    assert set(np.unique(seg)) <= {0, 5, 255} and (seg == 255).any() and (seg == 5).any()
    depth = ep.depth
    assert depth.max() > 0.1 and np.all(depth[seg > 0] > 0)  # metric depth wherever the hand or object is


def test_a_rerun_resumes_the_batch(dataset, capsys):
    config, out = dataset
    stamps = {p.name: (p / "meta.json").stat().st_mtime_ns for p in out.iterdir() if p.name.startswith("episode_")}
    main = _standalone()
    # everything complete: nothing is simulated or rewritten (no Isaac task is even built)
    assert main(["--headless", "--config", str(config), "--out", str(out), "--no-progress", "--num_envs", "1"]) == 0
    assert "skipped (already done): 2" in capsys.readouterr().out
    assert {p: (out / p / "meta.json").stat().st_mtime_ns for p in stamps} == stamps
    # a config that changes the data is refused, naming the key
    assert main(["--headless", "--config", str(config), "--out", str(out), "--set", "stage1.num_frames=5"]) == 2
    assert "stage1.num_frames" in capsys.readouterr().err


def test_pam_simulate_records_a_trajectory_through_the_isaac_task(tmp_path):
    """`pam simulate --backend isaaclab`: Stage I's trajectory file, its keypoints from the
    articulation state through the engine's hand model, its contacts from the contact sensor,
    close to the embedded run of the same request (same set-up, two physics engines)."""
    from pam_engine.cli import main
    from pam_engine.trajectory import Trajectory

    args = ["simulate", "--object", MUSTARD, "--seed", "5", "--frames", "9"]
    assert main([*args, "--out", str(tmp_path / "isaac.npz"), "--backend", "isaaclab"]) == 0
    assert main([*args, "--out", str(tmp_path / "mujoco.npz")]) == 0
    isaac, mujoco = Trajectory.load(tmp_path / "isaac.npz"), Trajectory.load(tmp_path / "mujoco.npz")
    assert isaac.num_frames == mujoco.num_frames == 9 and isaac.policy == "scripted-1"
    np.testing.assert_allclose(isaac.joint_3d[0], mujoco.joint_3d[0], atol=2e-3)  # the same start state
    assert np.abs(isaac.joint_3d - mujoco.joint_3d).max() < 0.03  # and the same grasp, on another engine
    rise = [t.pose_y[-1, 0, 2, 3] - t.pose_y[0, 0, 2, 3] for t in (isaac, mujoco)]
    assert abs(rise[0] - rise[1]) < 0.03, rise
    # contacts come from the contact sensor (links against the object): the engine's rule (lifted
    # and held: thumb or palm plus another finger) judges both runs alike
    assert isaac.success and mujoco.success, (isaac.failure_reason, mujoco.failure_reason)
    # the hand closes on the object at the same frame, and the thumb (which the geometric read
    # lost) holds it at the end in both; which fingers touch flickers frame to frame in both engines
    onset = [int(np.flatnonzero(t.contacts.any(1))[0]) for t in (isaac, mujoco)]
    assert abs(onset[0] - onset[1]) <= 1, (isaac.contacts, mujoco.contacts)
    assert isaac.contacts[-1, 0] and mujoco.contacts[-1, 0] and isaac.contacts[-1].sum() >= 2
