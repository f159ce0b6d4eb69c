"""Runs sharing one dataset folder: claims, ownership of temporary folders, kills and resumes.

The batches are tiny (96x64, 9 frames, a small grasp search), so real ``pam generate``
processes can be started, killed and resumed within seconds."""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pam_engine.dataset.claims import ClaimStore
from pam_engine.dataset.format import CLAIMS_DIR, TMP_PREFIX

TINY = ["width=96", "height=64", "stage1.num_frames=9", "randomization.objects=[061_foam_brick]",
        "randomization.preview=false", "randomization.camera.distance=[0.5,0.6]", "keep_failed=true",
        "stage1.synthesis.num_directions=6", "stage1.synthesis.num_rolls=2", "stage1.check.candidates=2"]
REPO = Path(__file__).resolve().parents[1]


def _command(out: Path, episodes: int) -> list[str]:
    cmd = [sys.executable, "-m", "pam_engine.cli", "generate", "--out", str(out), "--no-progress",
           "--episodes", str(episodes), "--seed", "7"]
    for item in TINY:
        cmd += ["--set", item]
    return cmd


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "source"), str(REPO / "diffusion"), env.get("PYTHONPATH", "")])
    env.setdefault("MUJOCO_GL", "egl")
    return env


def _start(out: Path, episodes: int) -> subprocess.Popen:
    return subprocess.Popen(_command(out, episodes), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _written(output: str) -> int:
    line = next(line for line in output.splitlines() if line.startswith("episodes written:"))
    return int(line.split(":")[1].split(",")[0])


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _same_dataset(a: Path, b: Path) -> None:
    """Every file byte-identical: labels, raw depth and segmentation, meta, all videos."""
    fa, fb = _files(a), _files(b)
    assert sorted(fa) == sorted(fb)
    assert [name for name in fa if fa[name] != fb[name]] == []


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(TMP_PREFIX) or p.name == CLAIMS_DIR)


def _wait_for_claim(root: Path, proc: subprocess.Popen, timeout: float = 60.0) -> bool:
    """Wait until ``proc`` holds an episode claim (it is then inside an episode)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if list((root / CLAIMS_DIR).glob("episode_*.json")) if (root / CLAIMS_DIR).is_dir() else []:
            return True
        time.sleep(0.01)
    return False


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of 4 episodes."""
    out = tmp_path_factory.mktemp("ref") / "data"
    done = subprocess.run(_command(out, 4), env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _written(done.stdout) == 4
    return out


def test_two_runs_on_one_folder_make_each_episode_exactly_once(tmp_path, reference):
    out = tmp_path / "shared"
    a, b = _start(out, 4), _start(out, 4)
    out_a, out_b = a.communicate(timeout=300)[0], b.communicate(timeout=300)[0]
    assert a.returncode == 0 and b.returncode == 0, out_a + out_b
    assert _written(out_a) + _written(out_b) == 4, out_a + out_b  # nobody made one twice, none failed
    assert "failed: 0" in out_a and "failed: 0" in out_b
    assert _leftovers(out) == []
    _same_dataset(out, reference)


def test_sigkill_mid_episode_then_resume_is_byte_identical(tmp_path, reference):
    out = tmp_path / "killed"
    rng = random.Random(16)
    kills = 0
    for _ in range(4):
        proc = _start(out, 4)
        if not _wait_for_claim(out, proc):
            proc.communicate(timeout=60)
            break  # it finished the batch before it could be killed
        time.sleep(rng.uniform(0.0, 0.6))  # somewhere inside Stage I, capture or writing
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        kills += int(proc.returncode == -signal.SIGKILL)
    assert kills >= 2
    done = subprocess.run(_command(out, 4), env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _leftovers(out) == []  # the dead runs' claims, owner records and temporary folders are gone
    _same_dataset(out, reference)


def test_sigterm_discards_the_episode_in_flight_and_exits_cleanly(tmp_path):
    out = tmp_path / "term"
    proc = _start(out, 20)
    assert _wait_for_claim(out, proc)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 143, output
    assert "SIGTERM" in output and "resume" in output
    assert _leftovers(out) == []
    for episode in out.glob("episode_*"):
        assert (episode / "meta.json").is_file()  # finished ones are whole


def test_a_live_runs_temporary_folder_and_claim_are_left_alone(tmp_path):
    """The old start-up deleted every .tmp-* folder, including one a live run was writing."""
    from pam_engine.config import load_config
    from pam_engine.pipeline import GenerateConfig, Generator

    out = tmp_path / "data"
    cfg = load_config(GenerateConfig, None, TINY + ["episodes=2", "seed=7"])
    generator = Generator(cfg, out)
    with ClaimStore(out) as other:  # another run, alive, in the middle of episode 1
        assert other.claim(1)
        busy = out / other.tmp_name("episode_000001")
        busy.mkdir()
        (busy / "labels.npz").write_bytes(b"being written")
        summary = generator.run(progress=False)
        assert busy.is_dir() and (busy / "labels.npz").read_bytes() == b"being written"
        assert summary.busy == 1 and summary.written == 1
        assert not (out / "episode_000001").exists()
    assert not (out / CLAIMS_DIR).exists()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _fake_owner(root: Path, token: str, **fields) -> Path:
    (root / CLAIMS_DIR).mkdir(parents=True, exist_ok=True)
    record = {"token": token, "host": socket.gethostname(), "boot_id": Path("/proc/sys/kernel/random/boot_id")
              .read_text().strip(), "pid": os.getpid(), "start": "", "lease_s": 600.0, **fields}
    path = root / CLAIMS_DIR / f"owner-{token}.json"
    path.write_text(json.dumps(record))
    (root / CLAIMS_DIR / "episode_000003.json").write_text(json.dumps({"token": token}))
    (root / f"{TMP_PREFIX}{token}-episode_000003").mkdir()
    return path


def test_only_provably_dead_owners_are_swept(tmp_path):
    live = "a" * 16
    _fake_owner(tmp_path, live)  # this very process: alive
    with ClaimStore(tmp_path) as store:
        assert not store.owner_dead(live) and not store.claim(3)
        assert (tmp_path / f"{TMP_PREFIX}{live}-episode_000003").is_dir()
    for token, fields in [("b" * 16, {"pid": _dead_pid()}),  # same host, pid gone
                          ("c" * 16, {"start": "1"}),  # same host, our pid but another start time: reused
                          ("d" * 16, {"host": "elsewhere", "boot_id": "x", "lease_s": 1.0})]:  # lease lapsed
        root = tmp_path / token
        owner = _fake_owner(root, token, **fields)
        os.utime(owner, (time.time() - 5, time.time() - 5))
        with ClaimStore(root) as store:
            assert store.owner_dead(token), fields
            assert not (root / f"{TMP_PREFIX}{token}-episode_000003").exists()
            assert store.claim(3)
        assert sorted(p.name for p in root.iterdir()) == []
    root = tmp_path / "fresh"
    _fake_owner(root, "e" * 16, host="elsewhere", boot_id="x")  # another host, recent heartbeat
    with ClaimStore(root) as store:
        assert not store.owner_dead("e" * 16) and not store.claim(3)
