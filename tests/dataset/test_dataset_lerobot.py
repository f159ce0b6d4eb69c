"""``pam export lerobot``: the LeRobot v3.0 layout, read back with pyarrow and PyAV and checked
against LeRobot's documented schema (``lerobot/datasets/utils.py``: INFO_PATH, DEFAULT_DATA_PATH,
DEFAULT_VIDEO_PATH, DEFAULT_EPISODES_PATH, DEFAULT_TASKS_PATH, DEFAULT_FEATURES,
create_empty_dataset_info)."""

import json

import numpy as np
import pytest

from pam_engine.cli import main
from pam_engine.dataset.reader import list_episodes, load_episode
from pam_engine.dataset.videoio import probe_video
from pam_engine.dataset.writer import EpisodeWriter

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

INFO_KEYS = {"codebase_version", "robot_type", "total_episodes", "total_frames", "total_tasks", "chunks_size",
             "data_files_size_in_mb", "video_files_size_in_mb", "fps", "splits", "data_path", "video_path", "features"}
DEFAULTS = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64", "index": "int64",
            "task_index": "int64"}
EPISODE_COLUMNS = {"episode_index", "tasks", "length", "data/chunk_index", "data/file_index", "dataset_from_index",
                   "dataset_to_index", "meta/episodes/chunk_index", "meta/episodes/file_index"}


@pytest.fixture
def exported(tmp_path, synthetic_episode, capsys):
    root = tmp_path / "pam"
    writer = EpisodeWriter(root)
    writer.write(synthetic_episode(seed=0, prompt="grasp the can"))
    writer.write(synthetic_episode(seed=1, t=7, prompt="grasp the box"))
    writer.write(synthetic_episode(seed=2, prompt="grasp the can"))
    out = tmp_path / "lerobot"
    assert main(["export", "lerobot", str(root), str(out)]) == 0
    return root, out


def test_layout_and_info_follow_lerobot_v3(exported):
    root, out = exported
    info = json.loads((out / "meta" / "info.json").read_text())
    assert INFO_KEYS <= set(info)
    assert info["codebase_version"] == "v3.0" and info["fps"] == 15
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    assert info["total_episodes"] == 3 and info["total_frames"] == 5 + 7 + 5 and info["total_tasks"] == 2
    assert info["splits"] == {"train": "0:3"}
    for name, dtype in DEFAULTS.items():
        assert info["features"][name] == {"dtype": dtype, "shape": [1], "names": None}
    for key, ft in info["features"].items():
        assert "/" not in key and isinstance(ft["shape"], list)
        if ft["dtype"] == "video":
            assert ft["shape"] == [48, 64, 3] and ft["names"] == ["height", "width", "channels"]
    assert {"observation.state", "action", "observation.images.sim_rgb"} <= set(info["features"])
    assert (out / "meta" / "stats.json").is_file()
    assert not list(out.parent.glob(".tmp-*"))


def test_frames_parquet_matches_the_features_and_the_episodes(exported):
    root, out = exported
    info = json.loads((out / "meta" / "info.json").read_text())
    table = pq.read_table(out / info["data_path"].format(chunk_index=0, file_index=0))
    assert table.num_rows == info["total_frames"]
    for key, ft in info["features"].items():
        if ft["dtype"] == "video":
            assert key not in table.column_names
            continue
        column = table.column(key)
        arrow = {"float32": pa.float32(), "int64": pa.int64(), "bool": pa.bool_()}[ft["dtype"]]
        if ft["shape"] == [1]:
            assert column.type == arrow, key
        else:
            assert pa.types.is_fixed_size_list(column.type) and column.type.list_size == ft["shape"][0], key
            assert column.type.value_type == arrow, key
    assert table.column("index").to_pylist() == list(range(17))
    assert table.column("frame_index").to_pylist()[:7] == [0, 1, 2, 3, 4, 0, 1]
    # the values are the episode's labels
    ep = load_episode(list_episodes(root)[1])
    state = np.array(table.column("observation.state").to_pylist(), dtype=np.float32)[5:12]
    np.testing.assert_array_equal(state, ep.labels["pose_m"])
    np.testing.assert_array_equal(np.array(table.column("observation.joint_3d").to_pylist())[5:12].reshape(7, 21, 3),
                                  ep.labels["joint_3d"])
    np.testing.assert_allclose(table.column("timestamp").to_pylist()[5:8], [0, 1 / 15, 2 / 15], rtol=1e-6)


def test_episodes_tasks_and_videos_point_at_the_right_frames(exported):
    root, out = exported
    info = json.loads((out / "meta" / "info.json").read_text())
    episodes = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [e["episode_index"] for e in episodes] == [0, 1, 2]
    assert EPISODE_COLUMNS <= set(episodes[0])
    assert [(e["dataset_from_index"], e["dataset_to_index"], e["length"]) for e in episodes] == \
        [(0, 5, 5), (5, 12, 7), (12, 17, 5)]
    assert episodes[1]["tasks"] == ["grasp the box"]
    tasks = pq.read_table(out / "meta" / "tasks.parquet")
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    assert dict(zip(tasks.column("task").to_pylist(), tasks.column("task_index").to_pylist())) == \
        {"grasp the can": 0, "grasp the box": 1}
    video_keys = [k for k, ft in info["features"].items() if ft["dtype"] == "video"]
    for e in episodes:
        for key in video_keys:
            path = out / info["video_path"].format(video_key=key, chunk_index=e[f"videos/{key}/chunk_index"],
                                                   file_index=e[f"videos/{key}/file_index"])
            probe = probe_video(path)
            assert probe["frames"] == e["length"] and (probe["width"], probe["height"]) == (64, 48)
            assert e[f"videos/{key}/to_timestamp"] == pytest.approx(e["length"] / info["fps"])


def test_existing_output_is_refused(exported, capsys):
    root, out = exported
    assert main(["export", "lerobot", str(root), str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
