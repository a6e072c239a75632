"""Video decoding and frame sampling, shared by data preparation, the in-process pipeline and serving.

``read_frames`` decodes the frames at ``sample_indices(total, count)``: ``count`` indices spread evenly over the
whole video (``linspace`` from the first to the last frame), not the first ``count`` frames. Anything that is
not a usable video raises ``VideoError`` with a message that names the problem. Frames come out as stored;
``upright`` turns them the way the container's display matrix says a player shows them (a phone held upright
stores its frames sideways), which ``read_frames`` does and, when serving, ``face_finder``.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

# FFmpeg demuxers that read still images: FFmpeg happily opens a PNG as a one-frame "video"
IMAGE_DEMUXERS = frozenset({"image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe", "gif", "tiff_pipe",
                            "jpegls_pipe", "pam_pipe", "ppm_pipe", "pgm_pipe", "qoi_pipe", "svg_pipe", "j2k_pipe"})


DEFAULT_FRAMES = 32  # frames sampled per video when the caller does not say (the ensemble's NUM_FRAMES default)
MAX_FRAME_PIXELS = 64 * 2**20  # pixels per frame (8K is 33 Mpx): above it a header declares a decompression bomb
MAX_VIDEO_FRAMES = 100_000  # frames in a video (an hour at 25 fps is 90,000)
MAX_TOTAL_PIXELS = 2**30  # pixels of a video's sampled frames together (3 GiB of RGB: 32 8K or 128 4K frames)
MAX_DECODE_SECONDS = 60.0  # wall-clock seconds one video may take to decode


class VideoError(ValueError):
    """The input cannot be used as a video; the message says why."""


@dataclass(frozen=True)
class Frames:
    """Decoded frames ``[F, H, W, 3]`` RGB uint8, their indices in the video, and the video's frame count."""

    images: np.ndarray
    indices: np.ndarray
    total: int


@dataclass(frozen=True)
class VideoInfo:
    """What the container says of a video: its frame count (from its packets), the frame size its header
    declares, and ``rotation``, the counter-clockwise quarter turn in degrees (0, 90, 180, 270) that shows its
    frames upright (the display matrix, read from the first frame)."""

    frames: int
    width: int
    height: int
    rotation: int = 0


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


def probe_video(source: Path | bytes, *, max_frames: int = MAX_VIDEO_FRAMES, max_pixels: int = MAX_FRAME_PIXELS,
                sampled: int = 1, max_total_pixels: int = MAX_TOTAL_PIXELS) -> VideoInfo:
    """What the container says of a video (``VideoInfo``): its packets that are shown (``presented``) are counted
    and only its first frame is decoded (for the display matrix), after the header's frame size has passed
    ``max_pixels`` and ``sampled`` frames of that size ``max_total_pixels``.

    Raises:
        VideoError: not a video (or a still image), no video stream, frames declared larger than ``max_pixels``,
            ``sampled`` frames of that size over ``max_total_pixels``, zero frames, more than ``max_frames``
            frames (the header's count or the packets', counting stops there), or a file FFmpeg cannot open.
    """
    try:
        with _open(source) as container:
            stream = _video_stream(container)
            width, height = stream.codec_context.width, stream.codec_context.height
            check_frame_size(width, height, max_pixels, "declares")
            if stream.frames > max_frames:
                raise VideoError(f"too long: its header declares {stream.frames} frames (limit {max_frames})")
            if stream.frames:  # a header that counts its frames: refused before reading them
                check_total_pixels(min(sampled, stream.frames) * width * height, max_total_pixels)
            total = 0
            for packet in container.demux(stream):
                total += presented(packet)
                if total > max_frames:
                    raise VideoError(f"too long: more than {max_frames} frames (limit {max_frames})")
            check_total_pixels(min(sampled, total) * width * height, max_total_pixels)
            rotation = _first_frame_rotation(container) if total else 0
    except av.error.FFmpegError as error:
        raise VideoError(f"not a readable video ({type(error).__name__}: {error.strerror or error})") from error
    if total == 0:
        raise VideoError("the video has no frames")
    return VideoInfo(total, width, height, rotation)


def presented(packet: av.Packet) -> bool:
    """Whether a packet is a frame a player shows: not the empty flush packet, and not one the container's edit
    list cuts away (MP4 files trimmed without re-encoding keep the frames before the cut, flagged discard; the
    decoder drops them, so counting them would promise frames that never come: 158 packets, 55 frames shown)."""
    return packet.size > 0 and not packet.is_discard


def _first_frame_rotation(container: av.container.InputContainer) -> int:
    """The display rotation of the first frame that decodes (0 when none does: the decoder judges those)."""
    try:
        container.seek(0)
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1  # one frame: a thread pool would cost more than it saves
        for frame in container.decode(stream):
            return round(frame.rotation / 90) % 4 * 90
    except av.error.FFmpegError:
        pass
    return 0


def upright(frames: np.ndarray, rotation: int) -> np.ndarray:
    """Frames ``[F, H, W, 3]`` turned counter-clockwise by ``rotation`` degrees (a multiple of 90), as a player
    shows them; a view, no copy, for 0."""
    if rotation % 90:
        raise VideoError(f"rotation must be a multiple of 90 degrees, got {rotation}")
    turns = rotation // 90 % 4
    return frames if turns == 0 else np.ascontiguousarray(np.rot90(frames, turns, axes=(1, 2)))


def check_frame_size(width: int, height: int, max_pixels: int, verb: str = "has") -> None:
    """Refuse frames of more than ``max_pixels`` (a size of 0 is unknown yet, and passes)."""
    if width * height > max_pixels:
        raise VideoError(f"the video {verb} frames of {width}x{height} pixels, more than the limit of {max_pixels} "
                         f"pixels per frame")


def check_total_pixels(pixels: int, max_total_pixels: int) -> None:
    """Refuse sampled frames of more than ``max_total_pixels`` together."""
    if pixels > max_total_pixels:
        raise VideoError(f"the sampled frames hold {pixels} pixels, more than the limit of {max_total_pixels} "
                         f"pixels per video: sample fewer frames")


@dataclass(frozen=True)
class DecodeLimits:
    """What one video may cost to decode: pixels per decoded frame, pixels of the kept frames together, and
    wall-clock seconds."""

    frame_pixels: int = MAX_FRAME_PIXELS
    total_pixels: int = MAX_TOTAL_PIXELS
    seconds: float = MAX_DECODE_SECONDS


def decode_frames(source: Path | bytes, indices: np.ndarray, *, threads: int = 0,
                  limits: DecodeLimits = DecodeLimits()) -> np.ndarray:
    """The RGB frames ``[F, H, W, 3]`` at ``indices`` (ascending, distinct) of a video already probed, as stored
    (``upright`` turns them); ``threads`` for FFmpeg's decoder (0: as many as it likes).

    Raises:
        VideoError: a frame could not be decoded (a truncated or corrupt file), a decoded frame is larger than
            ``limits.frame_pixels`` or the kept ones together than ``limits.total_pixels`` (a header may lie
            about the size), or decoding took longer than ``limits.seconds``.
    """
    indices = np.asarray(indices)
    if indices.ndim != 1 or len(indices) == 0 or indices.min() < 0 or np.any(np.diff(indices) <= 0):
        raise VideoError(f"frame indices must be distinct, ascending and non-negative, got {indices.tolist()}")
    try:
        images = _decode(source, indices, threads, limits)
    except av.error.FFmpegError as error:
        raise VideoError(f"not a readable video ({type(error).__name__}: {error.strerror or error})") from error
    if len(images) < len(indices):
        raise VideoError(f"truncated or corrupt video: only {len(images)} of the {len(indices)} sampled frames "
                         f"(indices up to {int(indices[-1])}) could be decoded")
    return np.stack(images)


def read_frames(source: Path | bytes, count: int = DEFAULT_FRAMES, *, max_frames: int = MAX_VIDEO_FRAMES) -> Frames:
    """Decode ``count`` evenly spaced RGB frames of a video file or of its bytes, upright (``probe_video``, then
    ``decode_frames`` at ``sample_indices``, then ``upright``).

    Raises:
        VideoError: as ``probe_video`` and ``decode_frames``.
    """
    info = probe_video(source, max_frames=max_frames, sampled=count)
    wanted = sample_indices(info.frames, count)
    return Frames(upright(decode_frames(source, wanted), info.rotation), wanted, info.frames)


def _video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The first video stream, refusing still images and containers without video."""
    demuxer = container.format.name
    if set(demuxer.split(",")) & IMAGE_DEMUXERS:
        raise VideoError(f"a still image ({demuxer}), not a video")
    if not container.streams.video:
        raise VideoError(f"no video stream in the {demuxer} container")
    return container.streams.video[0]


def _decode(source: Path | bytes, wanted: np.ndarray, threads: int, limits: DecodeLimits) -> list[np.ndarray]:
    """Decode sequentially and keep the frames whose index is in ``wanted`` (stops after the last one)."""
    from av.video.reformatter import VideoReformatter

    keep = set(wanted.tolist())
    last = int(wanted[-1])
    images, kept_pixels, deadline = [], 0, time.monotonic() + limits.seconds
    reformatter = VideoReformatter()  # one for all frames: frame.to_ndarray builds a new swscale context each call
    with _open(source) as container:
        stream = _video_stream(container)
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        try:
            for index, frame in enumerate(container.decode(stream)):
                check_frame_size(frame.width, frame.height, limits.frame_pixels)
                if index in keep:
                    kept_pixels += frame.width * frame.height
                    check_total_pixels(kept_pixels, limits.total_pixels)
                    images.append(reformatter.reformat(frame, format="rgb24", threads=threads).to_ndarray())
                if index >= last:
                    break
                if time.monotonic() > deadline:
                    raise VideoError(f"decoding took longer than the limit of {limits.seconds:g} s per video "
                                     f"(stopped at frame {index} of the {last + 1} needed)")
        except av.error.FFmpegError:
            pass  # a truncated tail: what was decoded is judged by the caller
    return images
