"""How well Algorithm 1's labels agree with the simulator's own contacts.

The simulator reports per-part contacts (``labels.contacts``, (T, 6): thumb, index, middle,
ring, little, palm touching the target object); DeVI's labels are hand-level, so the reference
is their ``any`` over parts. Per episode: the fraction of frames on which the two agree, and the
contact-onset error, ``|first DeVI contact frame - first simulator contact frame|`` (frames; None
when either never turns on).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pam_engine.devi.contacts import ContactRuleConfig, contact_labels
from pam_engine.devi.tracks import DEFAULT_POINTS, Tracks, episode_tracks

#: The Proof bar of issue 15 (DeVI): agreement on at least this fraction of frames ...
FRAME_ACCURACY_BAR = 0.90
#: ... and contact onset within this many frames.
ONSET_BAR = 2


def hand_level(contacts: np.ndarray) -> np.ndarray:
    """(T, 6) per-part simulator contacts -> (T,) hand-level: any part touches."""
    c = np.asarray(contacts, dtype=bool)
    if c.ndim != 2:
        raise ValueError(f"per-part contacts have shape {c.shape}, expected (T, parts)")
    return c.any(axis=1)


def onset(contact: np.ndarray) -> int | None:
    """First frame in contact, None if never."""
    idx = np.flatnonzero(np.asarray(contact, dtype=bool))
    return int(idx[0]) if idx.size else None


@dataclass(frozen=True)
class Agreement:
    """One episode's comparison."""

    episode: str
    frames: int
    accuracy: float  # fraction of frames where DeVI's label equals the simulator's
    onset_devi: int | None
    onset_sim: int | None
    onset_error: int | None  # frames; None when either side never turns on
    success: bool  # the episode's grasp succeeded

    @property
    def passed(self) -> bool:
        return (self.accuracy >= FRAME_ACCURACY_BAR and self.onset_error is not None
                and self.onset_error <= ONSET_BAR)

    def to_dict(self) -> dict:
        return asdict(self) | {"passed": self.passed}


def compare(name: str, devi: np.ndarray, sim: np.ndarray, success: bool = True) -> Agreement:
    devi, sim = np.asarray(devi, bool), np.asarray(sim, bool)
    if devi.shape != sim.shape:
        raise ValueError(f"{name}: DeVI labels have shape {devi.shape}, simulator contacts {sim.shape}")
    a, b = onset(devi), onset(sim)
    return Agreement(name, int(len(sim)), float(np.mean(devi == sim)), a, b,
                     None if a is None or b is None else abs(a - b), bool(success))


def track_contacts(tracks: Tracks, config: ContactRuleConfig | None = None) -> np.ndarray:
    """Algorithm 1 on an episode's tracks, with the thresholds scaled to its size and rate."""
    cfg = (config or ContactRuleConfig()).scaled(tracks.height, tracks.fps)
    return contact_labels(tracks.object, tracks.hand, cfg, hand_valid=tracks.hand_valid).contact


def episode_agreement(episode, config: ContactRuleConfig | None = None, points: int = DEFAULT_POINTS,
                      keypoints: str | Path | None = None) -> tuple[Agreement, np.ndarray]:
    """Algorithm 1 on an episode (labels' tracks, or a detector's ``keypoints`` npz for the
    hand) against its simulator contacts; returns the comparison and DeVI's labels."""
    tracks = episode_tracks(episode, points, keypoints=keypoints)
    devi = track_contacts(tracks, config)
    sim = hand_level(episode.labels["contacts"])
    return compare(episode.name, devi, sim, episode.meta.success), devi


@dataclass(frozen=True)
class Summary:
    episodes: int
    mean_accuracy: float
    min_accuracy: float
    mean_onset_error: float
    max_onset_error: int | None
    passed: int  # episodes meeting both bars

    def to_dict(self) -> dict:
        return asdict(self)


def summarize(results: list[Agreement]) -> Summary:
    if not results:
        return Summary(0, float("nan"), float("nan"), float("nan"), None, 0)
    acc = [r.accuracy for r in results]
    errs = [r.onset_error for r in results if r.onset_error is not None]
    return Summary(len(results), float(np.mean(acc)), float(np.min(acc)),
                   float(np.mean(errs)) if errs else float("nan"),
                   # an episode where either side never turns on has no onset error: count it as failing
                   max(errs) if errs and len(errs) == len(results) else None,
                   sum(r.passed for r in results))


def format_table(results: list[Agreement]) -> str:
    lines = [f"{'episode':<16} {'frames':>6} {'accuracy':>8} {'onset devi':>10} {'onset sim':>9} {'error':>5}  ok"]
    for r in results:
        lines.append(f"{r.episode:<16} {r.frames:>6} {r.accuracy:>8.3f} {str(r.onset_devi):>10} "
                     f"{str(r.onset_sim):>9} {str(r.onset_error):>5}  {'yes' if r.passed else 'NO'}")
    s = summarize(results)
    lines.append(f"{s.episodes} episodes: mean accuracy {s.mean_accuracy:.3f} (min {s.min_accuracy:.3f}), "
                 f"onset error mean {s.mean_onset_error:.2f} max {s.max_onset_error} frames; "
                 f"{s.passed}/{s.episodes} meet >= {FRAME_ACCURACY_BAR:.0%} and <= {ONSET_BAR} frames")
    return "\n".join(lines)
