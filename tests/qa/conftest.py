"""The detector environment for the ``qa`` tests, and one engine episode checked by it.

Tests marked ``qa`` need the mediapipe environment ``tools/make_qa_env.sh`` builds (``.venv-qa``,
or ``$PAM_QA_PYTHON``). Without it they skip, except in CI (``CI=true``) when the run selects them
with ``-m qa``: there a missing environment is a failure (``.ci/run`` builds it first)."""

import os

import pytest

from pam_engine.qa.detector import DetectorError, find_detector_python

SMALL = ["width=320", "height=240", "randomization.objects=[061_foam_brick]", "randomization.preview=false",
         "randomization.camera.distance=[0.4,0.5]", "randomization.camera.elevation_deg=[35,55]"]


@pytest.fixture(scope="session")
def qa_python(request):
    try:
        return find_detector_python()
    except DetectorError as exc:
        selected = "qa" in (request.config.getoption("-m") or "")
        if os.environ.get("CI") == "true" and selected:
            pytest.fail(f"CI runs the qa tests but the detector environment is missing: {exc}")
        pytest.skip(f"no hand-detector environment ({exc})")


@pytest.fixture(scope="session")
def checked_dataset(qa_python, tmp_path_factory):
    """One 320x240 engine episode made by ``pam generate`` with QA on its sim preview."""
    from pam_engine.config import load_config
    from pam_engine.pipeline import GenerateConfig, Generator

    out = tmp_path_factory.mktemp("qa") / "data"
    cfg = load_config(GenerateConfig, None, SMALL + ["episodes=1", "seed=3", "qa.video=sim_rgb",
                                                     "qa.max_keypoint_error=20"])
    summary = Generator(cfg, out).run(progress=False)
    assert summary.written == 1, (out / "failures.jsonl").read_text() if (out / "failures.jsonl").exists() else ""
    return out, summary
