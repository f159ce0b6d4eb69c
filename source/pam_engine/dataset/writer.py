"""Atomic episode writer: each episode is written into a ``.tmp-*`` sibling folder and renamed to
``episode_NNNNNN`` only when complete, so an interrupted or killed run never leaves a partial
episode (a killed run may leave a ``.tmp-*`` folder, which readers ignore and ``pam validate``
reports)."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from pam_engine.config import to_dict
from pam_engine.dataset.episode import EpisodeData
from pam_engine.dataset.format import (
    DEPTH_RAW_FILE,
    DEPTH_UNITS_PER_METRE,
    EPISODE_RE,
    FAILURES_DIR,
    FAILURES_FILE,
    LABELS_FILE,
    MAP_VIDEOS,
    META_FILE,
    ROOT_FILES,
    SEG_RAW_FILE,
    TMP_PREFIX,
    VIDEO_FILE,
    WORLD_MODEL_VIDEOS,
    ACTIONS_FILE,
    ACTIONS_MASK_FILE,
    episode_name,
    is_allowed_root_entry,
    save_npz,
)
from pam_engine.dataset.videoio import write_depth, write_video
from pam_engine.errors import OutputError


def check_output_dir(root: str | Path) -> Path:
    """Make sure ``root`` can hold a dataset: it is absent (and creatable) or a folder holding
    only episodes and dataset files, and it is writable. Creates it. Raises OutputError."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise OutputError(f"output {root} exists and is not a folder")
    if root.is_dir():
        foreign = sorted(p.name for p in root.iterdir() if not is_allowed_root_entry(p))
        if foreign:
            shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
            raise OutputError(
                f"output folder {root} holds files that are not episodes ({shown}); "
                f"expected an empty folder or a dataset (episode_NNNNNN/ folders, {', '.join(sorted(ROOT_FILES))})")
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f"{TMP_PREFIX}probe-{uuid.uuid4().hex[:8]}"
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        raise OutputError(f"output folder {root} cannot be written: {exc.strerror or exc}") from exc
    return root


def _usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, where the OS tells)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class ParallelWrites:
    """Runs file writes on a thread pool: ``run(fn, *args)`` queues one; leaving the ``with``
    block waits for all of them and re-raises the first failure (after every started write
    has finished, so the caller may delete the folder; writes not started yet are cancelled)."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list = []

    def __enter__(self) -> "ParallelWrites":
        if self.jobs > 1:
            self._pool = ThreadPoolExecutor(self.jobs, thread_name_prefix="pam-write")
        return self

    def __call__(self, fn, *args, **kwargs) -> None:
        if self._pool is None:
            fn(*args, **kwargs)
        else:
            self._futures.append(self._pool.submit(fn, *args, **kwargs))

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._pool is None:
            return
        first = None
        try:
            for future in self._futures:
                try:
                    future.result()
                except BaseException as error:  # noqa: BLE001 - re-raised below
                    if first is None:
                        first = error
                        for other in self._futures:
                            other.cancel()
        finally:
            self._pool.shutdown(wait=True)
        if first is not None and exc is None:
            raise first


class EpisodeWriter:
    """Writes episodes into one dataset folder (checked when the writer is created)."""

    def __init__(self, root: str | Path, crf: int = 18, jobs: int | None = None) -> None:
        """``jobs``: files encoded at once (default: one per CPU this process may use; 1 writes
        them in turn)."""
        self.root = check_output_dir(root)
        self.crf = crf
        self.jobs = max(1, int(jobs)) if jobs is not None else _usable_cpus()

    def next_index(self) -> int:
        """One past the highest episode index present (0 for an empty dataset)."""
        indices = [int(p.name.split("_")[1]) for p in self.root.iterdir() if EPISODE_RE.match(p.name)]
        return max(indices, default=-1) + 1

    def write(self, episode: EpisodeData, index: int | None = None, tmp_name: str | None = None) -> Path:
        """Write one episode atomically; returns its folder. Nothing named ``episode_*`` exists
        unless every file was written. ``tmp_name`` names the temporary folder (a
        ``ClaimStore.tmp_name``, so that other runs know whose it is)."""
        episode.check()
        index = self.next_index() if index is None else index
        final = self.root / episode_name(index)
        if final.exists():
            raise OutputError(f"episode {final} already exists")
        tmp = self.root / (tmp_name or f"{TMP_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}")
        tmp.mkdir()
        try:
            self._write_files(tmp, episode)
            try:
                os.rename(tmp, final)
            except OSError as exc:
                raise OutputError(f"cannot move finished episode to {final}: {exc.strerror or exc}") from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def record_failure(self, index: int, reason: str, traceback: str | None = None, **info) -> None:
        """Append a line to ``failures.jsonl`` for an episode that could not be produced
        (docs/design.md, "Bad input and user files": a failed episode is recorded and the batch
        goes on). ``info`` must be JSON data; a ``traceback`` goes to
        ``failures/episode_NNNNNN.txt``, named in the line."""
        entry = {"episode": episode_name(index), "reason": str(reason), **to_dict(info)}
        if traceback is not None:
            folder = self.root / FAILURES_DIR
            folder.mkdir(exist_ok=True)
            path = folder / f"{episode_name(index)}.txt"
            tmp = folder / f"{TMP_PREFIX}{path.name}-{uuid.uuid4().hex[:8]}"
            tmp.write_text(traceback, encoding="utf-8")
            tmp.replace(path)
            entry["traceback"] = f"{FAILURES_DIR}/{path.name}"
        line = json.dumps(entry, allow_nan=False) + "\n"
        with open(self.root / FAILURES_FILE, "a", encoding="utf-8") as f:
            f.write(line)  # one short append: whole lines even with several writer processes

    def _write_files(self, folder: Path, ep: EpisodeData) -> None:
        fps = ep.meta.fps
        # every file is independent of the others: encode them side by side (PyAV and zlib
        # release the GIL), each file byte for byte what a serial write gives
        with ParallelWrites(self.jobs) as run:
            run(write_video, folder / MAP_VIDEOS["sim_rgb"], ep.sim_rgb, fps, self.crf)
            for name, frames in ep.maps.items():
                run(write_video, folder / MAP_VIDEOS[name], frames, fps, self.crf)
            if ep.video is not None:
                run(write_video, folder / VIDEO_FILE, ep.video, fps, self.crf)
            run(write_depth, folder / DEPTH_RAW_FILE, ep.depth, fps, DEPTH_UNITS_PER_METRE)
            run(save_npz, folder / SEG_RAW_FILE, 6, seg=ep.seg)
            run(save_npz, folder / LABELS_FILE, 6, **{k: v for k, v in ep.labels.items()})
            if ep.static_rgb is not None:  # the world-model files (docs/worldmodels.md)
                run(write_video, folder / WORLD_MODEL_VIDEOS["static"], ep.static_rgb, fps, self.crf)
            if ep.actions is not None:
                run(np.save, folder / ACTIONS_FILE, ep.actions, allow_pickle=False)
                run(np.save, folder / ACTIONS_MASK_FILE, ep.actions_mask, allow_pickle=False)
        # meta.json last: its presence marks a complete folder even for readers of a .tmp copy
        with open(folder / META_FILE, "w", encoding="utf-8") as f:
            json.dump(to_dict(ep.meta), f, indent=2, allow_nan=False)

