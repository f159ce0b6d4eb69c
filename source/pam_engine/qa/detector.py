"""The 2D hand detector, run as a subprocess in its own environment: mediapipe 0.10.14 pins
numpy<2 and protobuf<5, which the engine's environment cannot hold, so ``detector_worker.py`` (a
standalone script) runs under the Python of ``tools/make_qa_env.sh``'s venv (docs/qa.md)."""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pam_engine.errors import PamError

#: The worker script (run by the detector environment's Python, never imported here).
WORKER = Path(__file__).with_name("detector_worker.py")
#: The repository's default detector environment (``tools/make_qa_env.sh`` builds it).
REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_VENV = REPO_ROOT / ".venv-qa"
ENV_VAR = "PAM_QA_PYTHON"
INSTALL_HINT = ("build the detector environment with `tools/make_qa_env.sh` (mediapipe 0.10.14 in .venv-qa), "
                f"or point --detector-python / ${ENV_VAR} at a Python that has mediapipe 0.10.14")
#: Exit codes of the worker (detector_worker.EXIT_*).
_EXIT_NO_DETECTOR, _EXIT_BAD_VIDEO = 3, 4
#: Handedness codes of the worker: mediapipe labels assume a mirrored (selfie) image, so on the
#: engine's unmirrored cameras "Left" (2) is a right hand.
MP_RIGHT, MP_LEFT = 1, 2


class DetectorError(PamError, RuntimeError):
    """The detector environment is missing or broken."""


class VideoUnreadableError(DetectorError, ValueError):
    """One video the detector cannot decode (that episode is skipped; the others go on)."""


@dataclass
class Detections:
    """Per frame up to H hands: ``keypoints`` (T, H, 21, 2) px (NaN: no hand in that slot),
    ``score`` (T, H), ``is_right`` (T, H) bool (a right hand in an unmirrored image)."""

    keypoints: np.ndarray
    score: np.ndarray
    is_right: np.ndarray
    width: int
    height: int

    @property
    def num_frames(self) -> int:
        return self.keypoints.shape[0]

    @property
    def present(self) -> np.ndarray:
        """(T, H) bool: a hand in that slot."""
        return np.isfinite(self.keypoints[..., 0, 0])


def find_detector_python(explicit: str | os.PathLike | None = None) -> Path:
    """The detector environment's Python: ``explicit`` (``--detector-python``, ``qa.detector_python``),
    else ``$PAM_QA_PYTHON``, else the repository's ``.venv-qa``. DetectorError naming
    ``tools/make_qa_env.sh`` when none exists."""
    for source, value in (("--detector-python / qa.detector_python", explicit), (f"${ENV_VAR}", os.environ.get(ENV_VAR))):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise DetectorError(f"{source} = {str(value)!r}: no such Python; {INSTALL_HINT}")
            return path
    path = DEFAULT_VENV / "bin" / "python"
    if path.is_file():
        return path
    raise DetectorError(f"no hand-detector environment: {DEFAULT_VENV} does not exist and ${ENV_VAR} is unset; "
                        f"{INSTALL_HINT}")


def run_detector(video: str | os.PathLike, python: str | os.PathLike | None = None, max_hands: int = 2,
                 min_confidence: float = 0.5, timeout: float | None = None) -> Detections:
    """Detect hands in every frame of ``video`` (DetectorError naming the video or the install step)."""
    python = find_detector_python(python)
    video = Path(video)
    with tempfile.TemporaryDirectory(prefix="pam-qa-") as tmp:
        out = Path(tmp) / "detections.npz"
        cmd = [str(python), str(WORKER), str(video), str(out), "--max-hands", str(max_hands),
               "--min-confidence", str(min_confidence)]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env.setdefault("GLOG_minloglevel", "2")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        except OSError as exc:
            raise DetectorError(f"cannot run the detector Python {python} ({exc}); {INSTALL_HINT}") from exc
        err = _last_lines(proc.stderr)
        if proc.returncode == _EXIT_NO_DETECTOR:
            raise DetectorError(f"the detector Python {python} has no working mediapipe hand model ({err}); "
                                f"{INSTALL_HINT}")
        if proc.returncode == _EXIT_BAD_VIDEO:
            raise VideoUnreadableError(f"video {video} cannot be decoded by the detector ({err})")
        if proc.returncode != 0 or not out.is_file():
            raise DetectorError(f"the hand detector failed on {video} (exit {proc.returncode}: {err})")
        with np.load(out, allow_pickle=False) as data:
            handedness = data["handedness"]
            return Detections(keypoints=data["keypoints"].astype(np.float64), score=data["score"].astype(np.float64),
                              is_right=handedness == MP_LEFT, width=int(data["size"][0]), height=int(data["size"][1]))


def detector_version(python: str | os.PathLike | None = None) -> str:
    """``mediapipe X.Y.Z`` of the detector environment (for ``qa.json``); DetectorError naming
    ``tools/make_qa_env.sh`` when that Python has no mediapipe (checked before any work)."""
    return _version(str(find_detector_python(python)))


@functools.lru_cache(maxsize=8)
def _version(python: str) -> str:
    proc = subprocess.run([str(python), "-c", "from importlib.metadata import version; print(version('mediapipe'))"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise DetectorError(f"the detector Python {python} has no mediapipe ({_last_lines(proc.stderr)}); {INSTALL_HINT}")
    return f"mediapipe {proc.stdout.strip()}"


def _last_lines(text: str, n: int = 3) -> str:
    lines = [ln for ln in (text or "").strip().splitlines()
             if ln.startswith("detector_worker:") or "Error" in ln]
    return " | ".join(lines[-n:]) or (text or "").strip()[-300:] or "no message"


__all__ = ["DEFAULT_VENV", "DetectorError", "Detections", "VideoUnreadableError", "find_detector_python",
           "run_detector"]
