"""One small engine episode of a successful grasp (the quickstart's mug, 352x240, no preview),
generated once per session for the DeVI tests."""

import pytest

from pam_engine.config import load_config
from pam_engine.dataset.reader import list_episodes, load_episode
from pam_engine.pipeline import GenerateConfig, Generator

SETTINGS = ["episodes=1", "seed=0", "width=352", "height=240", "randomization.objects=[025_mug]",
            "randomization.preview=false"]


@pytest.fixture(scope="session")
def grasp_episode(tmp_path_factory):
    out = tmp_path_factory.mktemp("devi") / "data"
    summary = Generator(load_config(GenerateConfig, None, SETTINGS), out).run(progress=False)
    assert summary.written == 1
    episode = load_episode(list_episodes(out)[0])
    assert episode.meta.success, episode.meta.failure_reason  # the agreement bar is about successful grasps
    return episode
