"""The Replicator writer: annotator data + the hand's articulation state -> engine episodes,
through ``pam_engine.kitless.replicator_format`` (all conversion and checks live there)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import carb
import omni.replicator.core as rep
from omni.replicator.core import AnnotatorRegistry, Writer, WriterRegistry

from pam_engine.errors import PamError
from pam_engine.kitless.replicator_format import ANNOTATORS, ReplicatorEpisodeBuilder, ReplicatorScene


class PamEpisodeWriter(Writer):
    """Writes every ``frames`` captured frames as one episode into the dataset folder
    ``output_dir`` (atomically, as ``pam generate`` does: ``pam validate``/``pam view`` work on it).

    ``state_reader()`` returns the ``ArticulationState`` of the frame being written (the window
    reads it from the stage's time samples; a live simulation from its articulation view). A
    frame that cannot be converted (missing annotator, unknown label) stops the clip: the error is
    kept in ``last_error`` and nothing of that clip is written.
    """

    def __init__(self, output_dir: str, scene: ReplicatorScene, state_reader: Callable[[], object], frames: int = 49,
                 on_episode: Callable[[Path], None] | None = None, on_error: Callable[[str], None] | None = None):
        self.version = "0.1.0"
        self.output_dir = str(Path(output_dir).expanduser())
        self.annotators = [
            AnnotatorRegistry.get_annotator(name, init_params={"colorize": False})
            if name == "instance_id_segmentation_fast" else AnnotatorRegistry.get_annotator(name)
            for name in ANNOTATORS
        ]
        self._builder = ReplicatorEpisodeBuilder(scene)
        self._state_reader = state_reader
        self._frames = int(frames)
        self._on_episode, self._on_error = on_episode, on_error
        self.last_error = ""
        self.episodes: list[Path] = []
        self._failed = False

    def write(self, data: dict) -> None:
        if self._failed:
            return
        try:
            self._builder.add_frame(data, self._state_reader())
            if self._builder.num_frames == self._frames:
                path = self._builder.write(self.output_dir)
                self._builder.reset()
                self.episodes.append(path)
                if self._on_episode is not None:
                    self._on_episode(path)
        except PamError as exc:
            self._failed = True
            self.last_error = str(exc)
            carb.log_error(f"[pam_kit] episode not written: {exc}")
            if self._on_error is not None:
                self._on_error(self.last_error)

    def next_clip(self) -> None:
        """Drop a partial clip and start a new one (e.g. after the scene was re-randomised)."""
        self._builder.reset()
        self._failed = False

    def on_final_frame(self) -> None:
        if 0 < self._builder.num_frames < self._frames:
            carb.log_warn(f"[pam_kit] {self._builder.num_frames} frames of an unfinished clip were dropped")
        self._builder.reset()


def register() -> None:
    """Make ``rep.WriterRegistry.get("PamEpisodeWriter")`` available."""
    WriterRegistry.register(PamEpisodeWriter)


__all__ = ["PamEpisodeWriter", "register", "rep"]
