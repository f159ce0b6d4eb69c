"""Export a PAM dataset to the LeRobot dataset format, version 3.0, so robot-learning users can
load its episodes with ``lerobot.datasets.lerobot_dataset.LeRobotDataset(repo_id, root=OUT)``.

Layout written (as LeRobot's ``datasets/utils.py`` defines it):

- ``meta/info.json``: ``codebase_version`` "v3.0", totals, ``fps``, ``splits``, the
  ``data_path``/``video_path`` templates and the ``features`` schema (dtype, shape, names);
- ``meta/tasks.parquet``: one row per distinct prompt (index ``task``, column ``task_index``);
- ``meta/episodes/chunk-000/file-000.parquet``: per episode its length, tasks, the rows it
  spans in the data files and where its frames lie in each video file;
- ``meta/stats.json``: min, max, mean, std and count of every numeric feature;
- ``data/chunk-000/file-000.parquet``: one row per frame: ``observation.state`` (MANO ``pose_m``
  in the camera frame), ``action`` (the next frame's ``pose_m``), keypoints, object poses,
  contacts, and LeRobot's ``timestamp``/``frame_index``/``episode_index``/``index``/``task_index``;
- ``videos/observation.images.<name>/chunk-CCC/file-FFF.mp4``: the episode's H.264 videos, one
  file per episode (copied, not re-encoded).

Raw metric depth and segmentation ids have no LeRobot feature type and stay in the PAM episodes.
Only ``pyarrow`` is needed (not ``lerobot``, which pulls torchvision).
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import numpy as np

from pam_engine.dataset.format import MAP_VIDEOS
from pam_engine.dataset.reader import Episode, list_episodes, list_good_episodes
from pam_engine.errors import ConfigError, OutputError

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DEFAULT_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
_ARROW = {"float32": "float32", "int64": "int64", "bool": "bool_"}


def _numeric_features(ep: Episode) -> dict[str, np.ndarray]:
    """Per-frame arrays (T, n) of one episode, by LeRobot feature name."""
    lab = ep.labels
    t = ep.num_frames
    pose_m = lab["pose_m"].astype(np.float32)
    return {
        "observation.state": pose_m,
        "action": np.concatenate([pose_m[1:], pose_m[-1:]]),  # the pose the hand moves to next
        "observation.joint_3d": lab["joint_3d"].reshape(t, -1).astype(np.float32),
        "observation.joint_2d": lab["joint_2d"].reshape(t, -1).astype(np.float32),
        "observation.joint_visible": lab["joint_visible"].reshape(t, -1).astype(bool),
        "observation.object_pose": lab["pose_y"].reshape(t, -1).astype(np.float32),
        "observation.contacts": lab["contacts"].reshape(t, -1).astype(bool),
        "observation.wrist_pose_world": lab["wrist_pose_world"].reshape(t, -1).astype(np.float32),
    }


def _names(key: str, size: int) -> list[str]:
    if key in ("observation.state", "action"):
        return [f"pose_m_{i}" for i in range(size)]
    if key == "observation.joint_3d":
        return [f"k{i // 3}_{'xyz'[i % 3]}" for i in range(size)]
    if key == "observation.joint_2d":
        return [f"k{i // 2}_{'uv'[i % 2]}" for i in range(size)]
    return [f"{key.rsplit('.', 1)[-1]}_{i}" for i in range(size)]


def export_lerobot(root: str | Path, out: str | Path, repo_id: str | None = None) -> Path:
    """Write dataset ``root`` as a LeRobot v3.0 dataset at ``out`` (which must not exist);
    returns ``out``. The folder appears complete or not at all."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist or is not a folder")
    if out.exists():
        raise OutputError(f"export folder {out} already exists; choose a new one")
    paths = list_good_episodes(root)  # episodes QA rejected are never exported (docs/qa.md)
    if not paths:
        rejected = len(list_episodes(root))
        raise ConfigError(f"dataset {root} holds no episodes to export"
                          + (f" ({rejected} rejected by QA: qa.json 'passed': false)" if rejected else ""))
    episodes = []
    for path in paths:
        try:
            episodes.append((path, Episode(path)))
        except Exception as exc:  # noqa: BLE001 - name the episode, whatever broke
            raise ConfigError(f"{path.name} cannot be exported ({type(exc).__name__}: {exc}); "
                              f"run `pam validate {root}`") from exc
    first = episodes[0][1].meta
    fps = float(first.fps)
    if abs(fps - round(fps)) > 1e-6:
        raise ConfigError(f"LeRobot needs an integer frame rate, the dataset has {fps} fps")
    videos = dict(MAP_VIDEOS)
    if all(ep.has_video for _, ep in episodes):
        videos = {"video": "video.mp4", **videos}

    tmp = out.with_name(f".tmp-{out.name}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    try:
        columns: dict[str, list] = {}
        ep_rows: dict[str, list] = {}
        tasks: dict[str, int] = {}
        stats_values: dict[str, list[np.ndarray]] = {}
        shapes: dict[str, int] = {}
        index = 0
        for ep_index, (path, ep) in enumerate(episodes):
            meta = ep.meta
            if (meta.width, meta.height, float(meta.fps)) != (first.width, first.height, fps):
                raise ConfigError(f"{path.name}: {meta.width}x{meta.height} at {meta.fps} fps, but the first episode is "
                                  f"{first.width}x{first.height} at {fps} fps; LeRobot needs one size and rate")
            t = meta.num_frames
            arrays = _numeric_features(ep)
            for key, value in arrays.items():
                if shapes.setdefault(key, value.shape[1]) != value.shape[1]:
                    raise ConfigError(f"{path.name}: {key} has {value.shape[1]} values per frame, other episodes "
                                      f"{shapes[key]} (a different number of objects?)")
                columns.setdefault(key, []).append(value)
                stats_values.setdefault(key, []).append(value)
            task = meta.prompt or "grasp and lift the object"
            task_index = tasks.setdefault(task, len(tasks))
            columns.setdefault("timestamp", []).append((np.arange(t) / fps).astype(np.float32))
            columns.setdefault("frame_index", []).append(np.arange(t, dtype=np.int64))
            columns.setdefault("episode_index", []).append(np.full(t, ep_index, np.int64))
            columns.setdefault("index", []).append(np.arange(index, index + t, dtype=np.int64))
            columns.setdefault("task_index", []).append(np.full(t, task_index, np.int64))
            chunk, file = divmod(ep_index, CHUNKS_SIZE)
            row = {"episode_index": ep_index, "tasks": [task], "length": t,
                   "data/chunk_index": 0, "data/file_index": 0,
                   "dataset_from_index": index, "dataset_to_index": index + t}
            for name, filename in videos.items():
                key = f"observation.images.{name}"
                target = tmp / VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(ep.path / filename, target)
                row.update({f"videos/{key}/chunk_index": chunk, f"videos/{key}/file_index": file,
                            f"videos/{key}/from_timestamp": 0.0, f"videos/{key}/to_timestamp": t / fps})
            row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
                        "pam/episode": path.name, "pam/success": bool(meta.success)})
            for k, v in row.items():
                ep_rows.setdefault(k, []).append(v)
            index += t

        features = {}
        for key, size in shapes.items():
            dtype = "bool" if columns[key][0].dtype == bool else "float32"
            features[key] = {"dtype": dtype, "shape": [size], "names": _names(key, size)}
        for name in videos:
            features[f"observation.images.{name}"] = {
                "dtype": "video", "shape": [first.height, first.width, 3], "names": ["height", "width", "channels"],
                "info": {"video.height": first.height, "video.width": first.width, "video.codec": "h264",
                         "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": int(round(fps)),
                         "video.channels": 3, "has_audio": False}}
        features.update(DEFAULT_FEATURES)

        table = {}
        for key, parts in columns.items():
            value = np.concatenate(parts)
            if value.ndim == 1:
                table[key] = pa.array(value)
            else:
                arrow_type = getattr(pa, _ARROW[features[key]["dtype"]])()
                table[key] = pa.FixedSizeListArray.from_arrays(pa.array(value.reshape(-1), type=arrow_type),
                                                               value.shape[1])
        data_file = tmp / DATA_PATH.format(chunk_index=0, file_index=0)
        data_file.parent.mkdir(parents=True)
        pq.write_table(pa.table(table), data_file)
        episodes_file = tmp / EPISODES_PATH.format(chunk_index=0, file_index=0)
        episodes_file.parent.mkdir(parents=True)
        pq.write_table(pa.table(ep_rows), episodes_file)
        _write_tasks(tmp / "meta" / "tasks.parquet", tasks)
        stats = {}
        for key, parts in stats_values.items():
            v = np.concatenate(parts).astype(np.float64)
            stats[key] = {"min": v.min(0).tolist(), "max": v.max(0).tolist(), "mean": v.mean(0).tolist(),
                          "std": v.std(0).tolist(), "count": [int(len(v))]}
        (tmp / "meta" / "stats.json").write_text(json.dumps(stats, indent=2))
        info = {
            "codebase_version": CODEBASE_VERSION, "robot_type": "mano_right_hand",
            "total_episodes": len(episodes), "total_frames": index, "total_tasks": len(tasks),
            "chunks_size": CHUNKS_SIZE, "data_files_size_in_mb": 100, "video_files_size_in_mb": 500,
            "fps": int(round(fps)), "splits": {"train": f"0:{len(episodes)}"},
            "data_path": DATA_PATH, "video_path": VIDEO_PATH, "features": features,
            "pam": {"source": str(root.resolve().name), "repo_id": repo_id or out.name},
        }
        (tmp / "meta" / "info.json").write_text(json.dumps(info, indent=4))
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_tasks(path: Path, tasks: dict[str, int]) -> None:
    """``tasks.parquet`` as pandas writes ``DataFrame({"task_index": ...}, index=Index(tasks,
    name="task"))``, which is what LeRobot reads back with ``pd.read_parquet``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = list(tasks)
    table = pa.table({"task_index": pa.array([tasks[n] for n in names], pa.int64()), "task": pa.array(names)})
    pandas_meta = {
        "index_columns": ["task"], "column_indexes": [],
        "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
                     "metadata": None},
                    {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object",
                     "metadata": None}],
        "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.0",
    }
    table = table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})
    pq.write_table(table, path)
