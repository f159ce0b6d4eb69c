"""MP4 (H.264, yuv420p) writing and reading with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from pam_engine.errors import OutputError


#: x264 threads (= slices) per video; fixed so that the bytes do not depend on the machine.
X264_THREADS = 2


def write_video(path: str | Path, frames: np.ndarray, fps: float = 15.0, crf: int = 18,
                preset: str = "veryfast") -> Path:
    """Encode RGB uint8 frames (T, H, W, 3) to an H.264 mp4 (H and W must be even)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"write_video {path}: expected uint8 frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
    t, h, w, _ = frames.shape
    if t == 0 or h % 2 or w % 2:
        raise ValueError(f"write_video {path}: need at least one frame of even size, got {frames.shape}")
    path = Path(path)
    try:
        with av.open(str(path), mode="w") as container:
            stream = container.add_stream("libx264", rate=_rate(fps))
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            # mbtree off: x264's macroblock tree reads uninitialised memory, so the same frames
            # encoded to different bytes depending on the heap (found with MALLOC_PERTURB_)
            stream.options = {"crf": str(crf), "preset": preset, "x264-params": "mbtree=0"}
            # two slices, always: x264's thread count sets its slice count, and left automatic
            # it follows the core count, so the same frames gave other bytes on another machine
            # (2 is what 2-core machines always wrote; files are encoded side by side anyway)
            stream.codec_context.thread_type = "SLICE"
            stream.codec_context.thread_count = X264_THREADS
            convert = _converter(w, h)
            for i, frame in enumerate(frames):
                for packet in stream.encode(convert(frame, i, stream.codec_context.time_base)):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    except OSError as exc:
        raise OutputError(f"cannot write video {path}: {exc}") from exc
    return path


def _converter(width: int, height: int):
    """``convert(rgb, index, time_base)`` -> the yuv420p frame to encode, for one video: the RGB
    frame it converts from is allocated once and refilled (a fresh one per frame cost more in
    page faults than the conversion itself)."""
    source = av.VideoFrame(width, height, "rgb24")
    plane = source.planes[0]
    buffer = np.frombuffer(plane, np.uint8)
    buffer[:] = 0  # row padding included: what the conversion reads is never uninitialised
    rows = buffer.reshape(-1, plane.line_size)[:height, : width * 3]

    def convert(rgb: np.ndarray, index: int, time_base) -> av.VideoFrame:
        rows[:] = rgb.reshape(height, width * 3)
        return _zero_padding(source.reformat(format="yuv420p"), index, time_base)

    return convert


def _zero_padding(out: av.VideoFrame, index: int, time_base) -> av.VideoFrame:
    """The frame with its row padding zeroed (in place), timed. x264 reads the padding beyond
    each row, and FFmpeg leaves it uninitialised: without this, the same frames encode to
    different bytes from run to run (an episode would not be reproducible)."""
    for plane in out.planes:
        if plane.line_size > plane.width:
            np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:, plane.width:] = 0
    out.pts = index
    if time_base is not None:
        out.time_base = time_base
    return out


def _rate(fps: float):
    from fractions import Fraction

    return Fraction(fps).limit_denominator(1001)


def _decode(path: str | Path, pix_fmt: str, what: str) -> np.ndarray:
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format=pix_fmt) for f in container.decode(video=0)]
    if not frames:
        raise ValueError(f"{what} {path} has no frames")
    return np.stack(frames)


def read_video(path: str | Path) -> np.ndarray:
    """Decode an mp4 to RGB uint8 frames (T, H, W, 3)."""
    return _decode(path, "rgb24", "video")


def probe_video(path: str | Path, count_frames: bool = True) -> dict:
    """Frame count, width, height and fps of a video (frames counted by decoding when asked,
    since container headers may omit or misstate them)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = {"width": stream.codec_context.width, "height": stream.codec_context.height,
                "fps": float(stream.average_rate) if stream.average_rate else 0.0, "frames": stream.frames,
                "codec": stream.codec_context.name}
        if count_frames:
            info["frames"] = sum(1 for _ in container.decode(video=0))
    return info


def write_depth(path: str | Path, depth_m: np.ndarray, fps: float = 15.0, units_per_metre: int = 10000) -> Path:
    """Metric depth (T, H, W) float metres, 0 = no surface, as lossless FFV1 gray16le in Matroska:
    value = round(depth * units_per_metre). Any ffmpeg reads it back exactly (``read_depth``)."""
    depth_m = np.asarray(depth_m)
    if depth_m.ndim != 3 or depth_m.shape[0] == 0:
        raise ValueError(f"write_depth {path}: expected depth (T, H, W), got {depth_m.shape}")
    limit = 65535 / units_per_metre
    if not np.all(np.isfinite(depth_m)) or depth_m.min() < 0 or depth_m.max() > limit:
        raise ValueError(f"write_depth {path}: expected finite depths in [0, {limit:g}] m, got "
                         f"[{np.nanmin(depth_m):g}, {np.nanmax(depth_m):g}]")
    path = Path(path)
    try:
        # bitexact: no random segment UID or date, so the same depth gives the same bytes
        with av.open(str(path), mode="w", format="matroska", options={"fflags": "+bitexact"}) as container:
            stream = container.add_stream("ffv1", rate=_rate(fps))
            stream.width, stream.height, stream.pix_fmt = depth_m.shape[2], depth_m.shape[1], "gray16le"
            stream.options = {"level": "3", "coder": "1", "context": "0", "slices": "4", "slicecrc": "1"}
            for i, frame in enumerate(depth_m):
                units = np.rint(frame.astype(np.float64) * units_per_metre).astype(np.uint16)
                vf = av.VideoFrame.from_ndarray(units, format="gray16le")
                vf.pts = i
                for packet in stream.encode(vf):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    except OSError as exc:
        raise OutputError(f"cannot write depth {path}: {exc}") from exc
    return path


def read_depth_units(path: str | Path) -> np.ndarray:
    """The stored uint16 values (T, H, W) of a ``write_depth`` file."""
    return _decode(path, "gray16le", "depth video")


def read_depth(path: str | Path, units_per_metre: int = 10000) -> np.ndarray:
    """Depth in metres (T, H, W) float32 from a ``write_depth`` file (0 = no surface)."""
    return (read_depth_units(path) / np.float32(units_per_metre)).astype(np.float32)
