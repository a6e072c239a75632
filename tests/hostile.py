"""A corpus of hostile and unusual uploads, generated here (nothing downloaded): each case is the bytes, the
model it is sent to, and what a correct server does with it (``ANSWER``: a score and a verdict, with a face found
when the case says so; otherwise a pattern the ``INVALID_ARGUMENT`` message must match)."""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import cache, cached_property
from pathlib import Path

import av
import numpy as np
from PIL import Image

from dfguard.train.scenes import Scene

os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole configuration for every encoder otherwise

ANSWER = "answer"
VIDEO, IMAGE = "deepfake_video", "deepfake_image"


@dataclass
class Case:
    """One upload: how to make its bytes, the ensemble it goes to, the expected outcome (``ANSWER`` or a regular
    expression for the error message), ``NUM_FRAMES`` (None: the default) and whether the answer must have found
    a face (a clear face in every frame). ``data`` builds the bytes once."""

    name: str
    build: Callable[[], bytes]
    model: str
    expect: str
    num_frames: int | None = None
    face: bool = False

    @cached_property
    def data(self) -> bytes:
        return self.build()


def people(width: int = 320, height: int = 240, faces: int = 1, face_px: float | None = None, seed: int = 0
           ) -> Scene:
    """A frame with ``faces`` real faces of about ``face_px`` (default a third of the height; real photos from
    installed packages)."""
    from dfguard.train.scenes import make_scene

    rng = np.random.default_rng(seed)
    face = face_px or min(height / 3, 400)
    return make_scene(rng, width=width, height=height, faces=faces, min_face_px=int(face * 0.9), max_face_px=face,
                      gray=False)


def scene(width: int = 320, height: int = 240, seed: int = 0) -> np.ndarray:
    """A frame with one real face of about a third of the height."""
    return people(width, height, seed=seed).image


def at_the_border() -> np.ndarray:
    """The one-face frame shifted so that a quarter of the face is out of the frame (the most the training scenes
    cut; BlazeFace loses faces about a third out, measured on three scenes)."""
    shot = people(480, 270)
    x0, _, x1, _ = shot.boxes[0]
    shift = int(x0 + (x1 - x0) / 4)
    image = np.zeros_like(shot.image)
    image[:, : image.shape[1] - shift] = shot.image[:, shift:]
    return image


def sideways(rotation: int) -> list[np.ndarray]:
    """The clip as a camera stores it when the display matrix says ``rotation`` (counter-clockwise) shows it
    upright: each frame turned the other way."""
    return [np.ascontiguousarray(np.rot90(frame, -rotation // 90)) for frame in [face()] * 12]


def encode(frames: list[np.ndarray], container: str = "mp4", codec: str = "libx264", pix_fmt: str = "yuv420p",
           rate: int = 25, options: dict[str, str] | None = None, container_options: dict[str, str] | None = None,
           pts: list[int] | None = None, rotation: int | None = None) -> bytes:
    """Encode RGB frames with PyAV into bytes (``pts``: explicit timestamps, in 1/``rate``·1/10 units), through a
    temporary file (MP4's faststart rewrites the file it wrote)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "video"
        write_video_file(path, frames, container, codec, pix_fmt, rate, options, container_options, pts, rotation)
        return path.read_bytes()


def write_video_file(path: Path, frames: list[np.ndarray], container: str, codec: str, pix_fmt: str, rate: int,
                     options: dict[str, str] | None, container_options: dict[str, str] | None, pts: list[int] | None,
                     rotation: int | None) -> None:
    with av.open(str(path), "w", format=container, options=container_options or {}) as output:
        stream = output.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
        stream.options = options or {}
        if pts is not None:
            stream.codec_context.time_base = stream.time_base = Fraction(1, rate * 10)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for k, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[k], Fraction(1, rate * 10)
            output.mux(stream.encode(frame))
        output.mux(stream.encode())


def image_bytes(image: np.ndarray, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def audio_only() -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as output:
        stream = output.add_stream("aac", rate=16000)
        samples = (np.sin(np.linspace(0, 400, 16000)) * 0.3).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 16000
        output.mux(stream.encode(frame))
        output.mux(stream.encode())
    return buffer.getvalue()


def no_frames() -> bytes:
    """A Matroska file with a video track and not one frame in it."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as output:
        stream = output.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        output.start_encoding()  # the header and the track, then nothing
    return buffer.getvalue()


def mjpeg_bomb(side: int = 10_000, frames: int = 2) -> bytes:
    """An MJPEG AVI of ``frames`` black ``side``² frames: a few MB on disk, 100 Mpx per frame decoded (300 MB of
    RGB each); its header declares the size, so it can be refused before a frame is decoded."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="avi") as output:
        stream = output.add_stream("mjpeg", rate=1)
        stream.width = stream.height = side
        stream.pix_fmt, stream.options = "yuvj420p", {"q:v": "31"}
        frame = av.VideoFrame(side, side, "yuvj420p")  # built in YUV: no 300 MB RGB array in the test either
        for plane in frame.planes:
            np.frombuffer(plane, np.uint8)[:] = 128 if plane is not frame.planes[0] else 0
        for k in range(frames):
            frame.pts = k
            output.mux(stream.encode(frame))
        output.mux(stream.encode())
    return buffer.getvalue()


def very_long(frames: int = 100_001) -> bytes:
    """A Matroska file of ``frames`` 16×16 MJPEG frames (one encoded frame muxed again and again: about
    200 bytes a frame, a second to build)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as output:
        stream = output.add_stream("mjpeg", rate=25)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuvj420p"
        (packet,) = stream.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24"))
        for k in range(frames):
            packet.pts = packet.dts = k
            output.mux(packet)
    return buffer.getvalue()


def flipped(data: bytes, at: float, count: int = 64, seed: int = 0) -> bytes:
    """``count`` random bytes XOR-ed at the fraction ``at`` of the file."""
    rng = np.random.default_rng(seed)
    array = np.frombuffer(data, np.uint8).copy()
    start = int(at * (len(array) - count))
    array[start:start + count] ^= rng.integers(1, 256, count, dtype=np.uint8)
    return array.tobytes()


@cache
def face() -> np.ndarray:
    return scene()


@cache
def clip_mp4() -> bytes:
    return encode([face()] * 12)


@cache
def heavy_video() -> bytes:
    """A 1080p video of 150 frames with three people: sampled at 64 frames, seconds of work for the server."""
    frames = [people(1920, 1080, faces=3, face_px=120, seed=k).image for k in range(3)]
    return encode([frames[k % 3] for k in range(150)], options={"preset": "ultrafast"})


def zipped(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("clip.mp4", data)
    return buffer.getvalue()


def corpus() -> list[Case]:
    """Every case, nothing built yet (``Case.data`` builds it: small frames and short clips, except the 8K, 4K
    and bomb cases)."""
    clip = lambda: [face()] * 12  # noqa: E731
    mp4 = clip_mp4
    png, jpeg = (lambda: image_bytes(face(), "PNG")), (lambda: image_bytes(face(), "JPEG"))
    builders: list[tuple[str, Callable[[], bytes], str, str, int | None]] = [
        ("empty", lambda: b"", VIDEO, "empty input", None),
        ("random bytes", lambda: np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes(), VIDEO,
         "not a readable video", None),
        ("text", lambda: b"hello, this is not a video\n" * 50, VIDEO, "not a readable video", None),
        ("PNG as .mp4", png, VIDEO, "still image", None),
        ("JPEG as .mp4", jpeg, VIDEO, "still image", None),
        ("GIF as .mp4", lambda: image_bytes(face(), "GIF"), VIDEO, "still image", None),
        ("PDF as .mp4", lambda: b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n" * 20, VIDEO,
         "not a readable video", None),
        ("ZIP as .mp4", lambda: zipped(mp4()), VIDEO, "not a readable video", None),
        ("MP4 cut in its header", lambda: mp4()[:40], VIDEO, "not a readable video", None),
        ("MP4 cut at the first keyframe", lambda: mp4()[: len(mp4()) // 4], VIDEO, "not a readable|truncated|no frames",
         None),
        ("MP4 cut in the middle", lambda: mp4()[: len(mp4()) // 2], VIDEO, "not a readable|truncated|no frames", None),
        ("MP4 with its header bits flipped", lambda: flipped(mp4(), 0.0), VIDEO, "not a readable|truncated|no frames",
         None),
        ("MP4 with its middle bits flipped", lambda: flipped(mp4(), 0.5), VIDEO, ANSWER + "|truncated|not a readable",
         None),
        ("moov atom at the start", lambda: encode(clip(), container_options={"movflags": "faststart"}), VIDEO, ANSWER,
         None),
        ("audio only", audio_only, VIDEO, "no video stream", None),
        ("a video track without frames", no_frames, VIDEO, "has no frames|not a readable", None),
        ("one frame", lambda: encode([face()]), VIDEO, ANSWER, None),
        ("1x1 pixels", lambda: encode([np.zeros((1, 1, 3), np.uint8)] * 3, codec="mjpeg", pix_fmt="yuvj444p",
                                     container="matroska"), VIDEO, "too small", None),
        ("16x16 pixels", lambda: encode([face()[:16, :16].copy()] * 3), VIDEO, ANSWER, None),
        ("641x361, odd sizes", lambda: encode([scene(641, 361)] * 4, pix_fmt="yuv444p"), VIDEO, ANSWER, None),
        ("8K frames", lambda: encode([scene(7680, 4320)], options={"preset": "ultrafast"}), VIDEO, ANSWER, 1),
        ("decompression bomb (MJPEG AVI, 10000x10000 frames)", mjpeg_bomb, VIDEO, "more than the limit", None),
        ("variable frame rate", lambda: encode(clip(), pts=[0, 3, 4, 10, 30, 31, 32, 60, 61, 90, 91, 120]), VIDEO,
         ANSWER, None),
        ("rotation metadata 90", lambda: encode(sideways(90), rotation=90), VIDEO, ANSWER, None),
        ("rotation metadata 180", lambda: encode(sideways(180), rotation=180), VIDEO, ANSWER, None),
        ("rotation metadata 270", lambda: encode(sideways(270), rotation=270), VIDEO, ANSWER, None),
        ("H.264 4:4:4", lambda: encode(clip(), pix_fmt="yuv444p"), VIDEO, ANSWER, None),
        ("H.264 10-bit", lambda: encode(clip(), pix_fmt="yuv420p10le"), VIDEO, ANSWER, None),
        ("HEVC in MP4", lambda: encode(clip(), codec="libx265", options={"x265-params": "log-level=error"}), VIDEO,
         ANSWER, None),
        ("HEVC in Matroska", lambda: encode(clip(), container="matroska", codec="libx265",
                                            options={"x265-params": "log-level=error"}), VIDEO, ANSWER, None),
        ("AV1 in MP4", lambda: encode(clip(), codec="libsvtav1", options={"preset": "12"}), VIDEO, ANSWER, None),
        ("AV1 in WebM", lambda: encode(clip(), container="webm", codec="libsvtav1", options={"preset": "12"}), VIDEO,
         ANSWER, None),
        ("VP9 in Matroska", lambda: encode(clip(), container="matroska", codec="libvpx-vp9"), VIDEO, ANSWER, None),
        ("several faces", lambda: encode([people(640, 360, faces=3, face_px=90).image] * 6), VIDEO, ANSWER, None),
        ("a face at the border", lambda: encode([at_the_border()] * 6), VIDEO, ANSWER, None),
        ("a crowd", lambda: encode([people(1280, 720, faces=20, face_px=70).image] * 4), VIDEO, ANSWER, None),
        ("a very long video (100001 frames)", very_long, VIDEO, "too long", None),
        ("sampled frames over the total pixel limit (25 of 7000x7000)", lambda: mjpeg_bomb(7000, 25), VIDEO,
         "pixels per video", 25),
        ("grayscale H.264", lambda: encode([np.repeat(face().mean(2, keepdims=True).astype(np.uint8), 3, 2)] * 12),
         VIDEO, ANSWER, None),
        ("VP9 in WebM", lambda: encode(clip(), container="webm", codec="libvpx-vp9"), VIDEO, ANSWER, None),
        ("MJPEG in AVI", lambda: encode(clip(), container="avi", codec="mjpeg", pix_fmt="yuvj420p"), VIDEO, ANSWER,
         None),
        ("MPEG-2 in MPEG-TS", lambda: encode(clip(), container="mpegts", codec="mpeg2video"), VIDEO, ANSWER, None),
        ("ProRes in MOV", lambda: encode(clip(), container="mov", codec="prores_ks", pix_fmt="yuv422p10le"), VIDEO,
         ANSWER, None),
        ("H.264 in Matroska", lambda: encode(clip(), container="matroska"), VIDEO, ANSWER, None),
        ("interlaced H.264", lambda: encode(clip(), options={"x264-params": "interlaced=1"}), VIDEO, ANSWER, None),
        ("NUM_FRAMES 0", mp4, VIDEO, "NUM_FRAMES must be in", 0),
        ("NUM_FRAMES -1", mp4, VIDEO, "NUM_FRAMES must be in", -1),
        ("NUM_FRAMES 10^6", mp4, VIDEO, "NUM_FRAMES must be in", 10**6),
        ("NUM_FRAMES beyond the video", mp4, VIDEO, ANSWER, 100),
        ("an image sent to the video model", png, VIDEO, "still image", None),
        ("a video sent to the image model", mp4, IMAGE, "not an image", None),
        ("empty image", lambda: b"", IMAGE, "empty input", None),
        ("truncated JPEG", lambda: jpeg()[: len(jpeg()) // 3], IMAGE, "truncated or corrupt image", None),
        ("1x1 PNG", lambda: image_bytes(np.zeros((1, 1, 3), np.uint8), "PNG"), IMAGE, "too small", None),
        ("4K JPEG", lambda: image_bytes(scene(3840, 2160), "JPEG"), IMAGE, ANSWER, None),
    ]
    faces = {"rotation metadata 90", "rotation metadata 180", "rotation metadata 270", "several faces", "a crowd",
             "a face at the border",
             "H.264 4:4:4", "H.264 10-bit", "HEVC in MP4", "HEVC in Matroska", "AV1 in MP4", "AV1 in WebM",
             "VP9 in WebM", "VP9 in Matroska", "MJPEG in AVI", "MPEG-2 in MPEG-TS", "ProRes in MOV",
             "H.264 in Matroska", "moov atom at the start", "variable frame rate", "grayscale H.264"}
    cases = [Case(name, build, model, expect, frames, name in faces) for name, build, model, expect, frames in builders]
    assert faces <= {case.name for case in cases}
    return cases
