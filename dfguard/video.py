"""Video decoding and frame sampling, shared by data preparation, the in-process pipeline and serving.

``read_frames`` decodes the frames at ``sample_indices(total, count)``: ``count`` indices spread evenly over the
whole video (``linspace`` from the first to the last frame), not the first ``count`` frames. Anything that is
not a usable video raises ``VideoError`` with a message that names the problem.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

# FFmpeg demuxers that read still images: FFmpeg happily opens a PNG as a one-frame "video"
IMAGE_DEMUXERS = frozenset({"image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe", "gif", "tiff_pipe",
                            "jpegls_pipe", "pam_pipe", "ppm_pipe", "pgm_pipe", "qoi_pipe", "svg_pipe", "j2k_pipe"})


DEFAULT_FRAMES = 32  # frames sampled per video when the caller does not say (the ensemble's NUM_FRAMES default)
MAX_FRAME_PIXELS = 64 * 2**20  # pixels per frame (8K is 33 Mpx): above it a header declares a decompression bomb


class VideoError(ValueError):
    """The input cannot be used as a video; the message says why."""


@dataclass(frozen=True)
class Frames:
    """Decoded frames ``[F, H, W, 3]`` RGB uint8, their indices in the video, and the video's frame count."""

    images: np.ndarray
    indices: np.ndarray
    total: int


def sample_indices(total: int, count: int) -> np.ndarray:
    """``count`` frame indices spread evenly from the first to the last of ``total`` frames (all when fewer)."""
    if total <= 0:
        raise VideoError("the video has no frames")
    if count <= 0:
        raise ValueError(f"count must be positive, got {count}")
    if total <= count:
        return np.arange(total)
    return np.round(np.linspace(0, total - 1, count)).astype(np.int64)  # spacing ≥ 1: no duplicates


def _open(source: Path | bytes) -> av.container.InputContainer:
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise VideoError("empty input: 0 bytes")
        return av.open(io.BytesIO(bytes(source)), "r")
    if not Path(source).is_file():
        raise VideoError(f"no such video file: {source}")
    return av.open(str(source), "r")


def probe_video(source: Path | bytes, *, max_frames: int = 100_000, max_pixels: int = MAX_FRAME_PIXELS) -> int:
    """The number of frames of a video (counted from its packets, nothing decoded).

    Raises:
        VideoError: not a video (or a still image), no video stream, frames declared larger than ``max_pixels``,
            zero frames, more than ``max_frames`` frames, or a file FFmpeg cannot open.
    """
    try:
        with _open(source) as container:
            stream = _video_stream(container)
            check_frame_size(stream.codec_context.width, stream.codec_context.height, max_pixels, "declares")
            total = sum(1 for packet in container.demux(stream) if packet.size)
    except av.error.FFmpegError as error:
        raise VideoError(f"not a readable video ({type(error).__name__}: {error.strerror or error})") from error
    if total == 0:
        raise VideoError("the video has no frames")
    if total > max_frames:
        raise VideoError(f"too long: {total} frames (limit {max_frames})")
    return total


def check_frame_size(width: int, height: int, max_pixels: int, verb: str = "has") -> None:
    """Refuse frames of more than ``max_pixels`` (a size of 0 is unknown yet, and passes)."""
    if width * height > max_pixels:
        raise VideoError(f"the video {verb} frames of {width}x{height} pixels, more than the limit of {max_pixels} "
                         f"pixels per frame")


def decode_frames(source: Path | bytes, indices: np.ndarray, *, threads: int = 0,
                  max_pixels: int = MAX_FRAME_PIXELS) -> np.ndarray:
    """The RGB frames ``[F, H, W, 3]`` at ``indices`` (ascending, distinct) of a video already probed;
    ``threads`` for FFmpeg's decoder (0: as many as it likes).

    Raises:
        VideoError: a frame could not be decoded (a truncated or corrupt file), or a decoded frame is larger
            than ``max_pixels`` (a header may lie about the size).
    """
    indices = np.asarray(indices)
    if indices.ndim != 1 or len(indices) == 0 or indices.min() < 0 or np.any(np.diff(indices) <= 0):
        raise VideoError(f"frame indices must be distinct, ascending and non-negative, got {indices.tolist()}")
    try:
        images = _decode(source, indices, threads, max_pixels)
    except av.error.FFmpegError as error:
        raise VideoError(f"not a readable video ({type(error).__name__}: {error.strerror or error})") from error
    if len(images) < len(indices):
        raise VideoError(f"truncated or corrupt video: only {len(images)} of the {len(indices)} sampled frames "
                         f"(indices up to {int(indices[-1])}) could be decoded")
    return np.stack(images)


def read_frames(source: Path | bytes, count: int = DEFAULT_FRAMES, *, max_frames: int = 100_000) -> Frames:
    """Decode ``count`` evenly spaced RGB frames of a video file or of its bytes (``probe_video``, then
    ``decode_frames`` at ``sample_indices``).

    Raises:
        VideoError: as ``probe_video`` and ``decode_frames``.
    """
    total = probe_video(source, max_frames=max_frames)
    wanted = sample_indices(total, count)
    return Frames(decode_frames(source, wanted), wanted, total)


def _video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The first video stream, refusing still images and containers without video."""
    demuxer = container.format.name
    if set(demuxer.split(",")) & IMAGE_DEMUXERS:
        raise VideoError(f"a still image ({demuxer}), not a video")
    if not container.streams.video:
        raise VideoError(f"no video stream in the {demuxer} container")
    return container.streams.video[0]


def _decode(source: Path | bytes, wanted: np.ndarray, threads: int = 0, max_pixels: int = MAX_FRAME_PIXELS
            ) -> list[np.ndarray]:
    """Decode sequentially and keep the frames whose index is in ``wanted`` (stops after the last one)."""
    from av.video.reformatter import VideoReformatter

    keep = set(wanted.tolist())
    last = int(wanted[-1])
    images = []
    reformatter = VideoReformatter()  # one for all frames: frame.to_ndarray builds a new swscale context each call
    with _open(source) as container:
        stream = _video_stream(container)
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        try:
            for index, frame in enumerate(container.decode(stream)):
                check_frame_size(frame.width, frame.height, max_pixels)
                if index in keep:
                    images.append(reformatter.reformat(frame, format="rgb24", threads=threads).to_ndarray())
                if index >= last:
                    break
        except av.error.FFmpegError:
            pass  # a truncated tail: what was decoded is judged by the caller
    return images
