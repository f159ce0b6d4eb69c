"""Bytes and write time of one 49-frame 720x480 episode, in format 2 (depth as FFV1 uint16 in
0.1 mm) and in format 1 (depth as float32 npz), measured in the same run on the same episode.

    python benchmarks/bench_write.py [--rounds 3] [--object 006_mustard_bottle]
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering (EGL) unless the user chose otherwise

import argparse  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from pam_engine.config import load_config  # noqa: E402
from pam_engine.dataset.format import save_npz  # noqa: E402
from pam_engine.dataset.writer import EpisodeWriter  # noqa: E402
from pam_engine.pipeline import GenerateConfig, Generator  # noqa: E402


class Format1Writer(EpisodeWriter):
    """The writer as format 1 stored depth (float32 npz, deflate level 1), for comparison."""

    def _write_files(self, folder, ep):
        super()._write_files(folder, ep)
        (folder / "depth_raw.mkv").unlink()
        save_npz(folder / "depth_raw.npz", 1, depth=ep.depth)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--object", default="006_mustard_bottle")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pam-bench-write-"))
    try:
        cfg = load_config(GenerateConfig, None, ["episodes=1", f"randomization.objects=[{args.object}]", "keep_failed=true"])
        generator = Generator(cfg, work / "src")
        captured = []  # the episode as the pipeline hands it to the writer: the renderer's float depth
        write = generator.writer.write
        generator.writer.write = lambda episode, **kw: (captured.append(episode), write(episode, **kw))[1]
        generator.run(progress=False)
        data = captured[0]
        print(f"episode: {data.meta.num_frames} frames, {data.meta.width}x{data.meta.height}, {os.cpu_count()} CPU(s)")
        for name, writer_cls in (("format 2 (depth FFV1 uint16)", EpisodeWriter),
                                 ("format 1 (depth float32 npz)", Format1Writer)):
            times, sizes = [], []
            for r in range(args.rounds):
                writer = writer_cls(work / f"{writer_cls.__name__}-{r}")
                t0 = time.perf_counter()
                folder = writer.write(data, index=0)
                times.append(time.perf_counter() - t0)
                sizes.append(_size(folder))
            depth = [p for p in folder.iterdir() if p.name.startswith("depth_raw")][0]
            print(f"{name}: {sizes[-1] / 1e6:.2f} MB per episode ({depth.name} {depth.stat().st_size / 1e6:.2f} MB); "
                  f"write {statistics.median(times):.2f} s median of {args.rounds} (min {min(times):.2f} s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
