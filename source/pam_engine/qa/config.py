"""``qa.*`` config keys of ``pam generate`` and the thresholds of ``pam qa`` (docs/qa.md)."""

from __future__ import annotations

from dataclasses import dataclass

from pam_engine.dataset.format import MAP_VIDEOS
from pam_engine.errors import ConfigError

#: Videos QA may check: the photoreal ``video`` or any map video (``sim_rgb`` is the hand video with exact labels).
QA_VIDEOS = ("video", *MAP_VIDEOS)


@dataclass(frozen=True)
class QaConfig:
    """What a video must satisfy to pass. ``max_keypoint_error`` None: the error is reported but
    not judged (``pam generate`` runs QA only when it is set)."""

    #: px at the episode's resolution: mean 2D error over visible joints of detected frames
    max_keypoint_error: float | None = None
    #: fraction of the frames showing the hand (>= ``min_joints_in_view`` labelled joints in the image)
    #: where the detector finds it
    min_detection_rate: float = 0.25
    #: which video to check: "video" (video.mp4) or a map video name, e.g. "sim_rgb"
    video: str = "video"
    #: temporal alignment: lags searched on each side, and how much lower (fraction of the error at
    #: the labels' frame, and at least ``shift_min_gain_px``) the error at another lag must be to
    #: call the video shifted
    max_lag: int = 6
    shift_rel_gain: float = 0.15
    shift_min_gain_px: float = 1.0
    #: frames count as showing the hand with at least this many of the 21 labelled joints in the image
    min_joints_in_view: int = 15
    #: Python of the detector environment (default: $PAM_QA_PYTHON, else the repo's .venv-qa)
    detector_python: str | None = None

    @property
    def enabled(self) -> bool:
        return self.max_keypoint_error is not None

    def check(self, where: str = "config key 'qa.{}'") -> None:
        """ConfigError naming the key (``where`` formats a field name: the config key, or ``--{}``
        for the command's flags)."""
        if self.max_keypoint_error is not None and not self.max_keypoint_error > 0:
            raise ConfigError(f"{_name(where, 'max_keypoint_error')}: expected pixels > 0 or null (off), "
                              f"got {self.max_keypoint_error}")
        if not 0 <= self.min_detection_rate <= 1:
            raise ConfigError(f"{_name(where, 'min_detection_rate')}: expected a fraction in [0, 1], "
                              f"got {self.min_detection_rate}")
        if self.video not in QA_VIDEOS:
            raise ConfigError(f"{_name(where, 'video')}: unknown video {self.video!r}; expected one of "
                              f"{list(QA_VIDEOS)}")
        if not 0 <= self.max_lag <= 30:
            raise ConfigError(f"{_name(where, 'max_lag')}: expected 0..30 frames, got {self.max_lag}")
        if not 0 <= self.shift_rel_gain < 1 or self.shift_min_gain_px < 0:
            raise ConfigError(f"{_name(where, 'shift_rel_gain')} / {_name(where, 'shift_min_gain_px')}: expected a "
                              f"fraction in [0, 1) and pixels >= 0, got {self.shift_rel_gain}, {self.shift_min_gain_px}")
        if not 1 <= self.min_joints_in_view <= 21:
            raise ConfigError(f"{_name(where, 'min_joints_in_view')}: expected 1..21, got {self.min_joints_in_view}")


def _name(where: str, key: str) -> str:
    return where.format(key.replace("_", "-") if where.startswith("--") else key)
