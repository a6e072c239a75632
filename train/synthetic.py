"""Synthetic forgeries for tests, the demo and optional augmentation.

* **Real** videos: a real photo (matplotlib's Grace Hopper, scikit-image's astronaut, and their mirror images)
  filmed by a virtual camera: slow pan, zoom and small rotations, lighting drift, sensor noise; H.264 through
  PyAV, like the footage of FaceForensics++ and Celeb-DF.
* **Fake** videos: the same footage, every frame's face self-blended with a copy of itself that went through a
  generator-like resampling family, with colour jitter and a soft elliptical mask (the idea of self-blended
  images, Shiohara & Yamasaki, CVPR 2022). The families are a registry, so a test can train on some and test on
  the others: the small-scale version of the papers' cross-data-set table.
* **Family-only** fakes (``forgery="family-only"``): the whole frame resampled by the family, no colour jitter,
  no mask, so nothing but the resampling trace separates them from the real videos: the blended fakes also
  differ by a blend boundary and colour, cues any detector (and self-blended training) learns, which is why every
  model scores 1.000 on them.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np

from dfguard.progress import progress_bar

Resampler = Callable[[np.ndarray, np.random.Generator], np.ndarray]
FAMILIES: dict[str, Resampler] = {}
Forgery = Literal["blend", "family-only"]


def family(name: str) -> Callable[[Resampler], Resampler]:
    """Register a resampling family under ``name`` (a name may be registered once)."""
    def register(fn: Resampler) -> Resampler:
        if name in FAMILIES:
            raise ValueError(f"resampling family {name!r} registered twice")
        FAMILIES[name] = fn
        return fn
    return register


def _downscale(face: np.ndarray, factor: float) -> np.ndarray:
    height, width = face.shape[:2]
    return cv2.resize(face, (max(4, round(width / factor)), max(4, round(height / factor))),
                      interpolation=cv2.INTER_AREA)


def _fit(image: np.ndarray, like: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """``image`` resized to the size of ``like`` (no-op when it already matches)."""
    height, width = like.shape[:2]
    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=interpolation)


@family("nearest")
def nearest_upsampling(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Down by 2–3.5×, back up by nearest neighbour: blocky edges."""
    return _fit(_downscale(face, rng.uniform(2.0, 3.5)), face, cv2.INTER_NEAREST)


@family("bilinear")
def bilinear_upsampling(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Down by 2–3.5×, back up bilinearly: missing high frequencies."""
    return _fit(_downscale(face, rng.uniform(2.0, 3.5)), face, cv2.INTER_LINEAR)


@family("transposed_conv")
def transposed_conv_upsampling(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Down by 2, up by a stride-2 transposed convolution with a random 4×4 kernel whose four phases carry
    slightly different gains: the checkerboard of GAN decoders."""
    small = _downscale(face, 2.0).astype(np.float32)
    height, width = small.shape[:2]
    zeros = np.zeros((2 * height, 2 * width, 3), np.float32)
    zeros[::2, ::2] = small
    kernel = np.outer([1, 3, 3, 1], [1, 3, 3, 1]).astype(np.float32) * rng.uniform(0.7, 1.3, (4, 4))
    kernel *= 4.0 / kernel.sum()  # one input pixel in four is non-zero
    upsampled = cv2.filter2D(zeros, -1, kernel, borderType=cv2.BORDER_REFLECT)
    return np.clip(_fit(upsampled, face), 0, 255).astype(np.uint8)


@family("pixel_shuffle")
def pixel_shuffle_upsampling(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Down by 2, up by sub-pixel convolution: four random 3×3 filters, one per output phase, interleaved."""
    small = _downscale(face, 2.0).astype(np.float32)
    height, width = small.shape[:2]
    out = np.empty((2 * height, 2 * width, 3), np.float32)
    for dy in range(2):
        for dx in range(2):
            kernel = rng.uniform(0.0, 1.0, (3, 3)).astype(np.float32) + 2.0 * np.eye(3, dtype=np.float32)[1:2].T @ \
                np.eye(3, dtype=np.float32)[1:2]
            kernel *= rng.uniform(0.93, 1.07) / kernel.sum()
            out[dy::2, dx::2] = cv2.filter2D(small, -1, kernel, borderType=cv2.BORDER_REFLECT)
    return np.clip(_fit(out, face), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class SourcePhoto:
    """A real photo and the face box in it (x0, y0, x1, y1, pixels)."""

    name: str
    image: np.ndarray
    face_box: tuple[float, float, float, float]


@cache
def source_photos() -> tuple[SourcePhoto, ...]:
    """The real portraits that ship in installed packages, and their mirror images (four identities); read, and
    their faces found, once per process (scenes draw from them hundreds of times), so their pixels are
    read-only."""
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    from dfguard.faces.detect import detect_whole_image

    grace = np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
                       .convert("RGB"))
    photos = []
    for name, image in (("grace_hopper", grace), ("astronaut", skimage.data.astronaut())):
        for suffix, variant in (("", image), ("_mirrored", np.ascontiguousarray(image[:, ::-1]))):
            (face, *_) = detect_whole_image(variant)
            variant.flags.writeable = False
            photos.append(SourcePhoto(name + suffix, variant, face.box))
    return tuple(photos)


@dataclass(frozen=True)
class VideoSpec:
    """What to render: size, length, frame rate, codec (a key of ``CODECS``), quality (CRF), and the keyframe
    interval in frames (None: the encoder's default; phone and web video put one every 1-2 s)."""

    width: int = 256
    height: int = 256
    frames: int = 16
    fps: int = 25
    crf: int = 20
    codec: str = "h264"
    keyframe_interval: int | None = None


def camera_path(photo: SourcePhoto, spec: VideoSpec, rng: np.random.Generator) -> list[np.ndarray]:
    """Per-frame affine matrices (photo → frame): the face framed with a slow pan, zoom and rotation drift."""
    x0, y0, x1, y1 = photo.face_box
    center = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    base_scale = min(spec.width, spec.height) * rng.uniform(0.45, 0.6) / max(x1 - x0, y1 - y0)
    start, end = rng.uniform(-1, 1, (2, 4)) * [0.06 * spec.width, 0.06 * spec.height, 0.08, 3.0]
    matrices = []
    for t in np.linspace(0.0, 1.0, spec.frames):
        dx, dy, dzoom, angle = start + (end - start) * t
        matrix = cv2.getRotationMatrix2D(tuple(center), angle, base_scale * (1 + dzoom))
        matrix[:, 2] += np.array([spec.width / 2 + dx, spec.height / 2 + dy]) - center
        matrices.append(matrix)
    return matrices


def render_real(photo: SourcePhoto, spec: VideoSpec, rng: np.random.Generator) -> tuple[list[np.ndarray],
                                                                                          list[np.ndarray]]:
    """Frames of a real video and the face box (x0, y0, x1, y1) in each of them."""
    gain0, gain1 = rng.uniform(0.85, 1.15, 2)
    noise = rng.uniform(1.0, 3.0)
    frames, boxes = [], []
    corners = np.array(photo.face_box, np.float64).reshape(2, 2)
    for t, matrix in zip(np.linspace(0, 1, spec.frames), camera_path(photo, spec, rng), strict=True):
        frame = cv2.warpAffine(photo.image, matrix, (spec.width, spec.height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT).astype(np.float32)
        frame = frame * (gain0 + (gain1 - gain0) * t) + rng.normal(0, noise, frame.shape)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
        mapped = corners @ matrix[:, :2].T + matrix[:, 2]
        boxes.append(np.concatenate([mapped.min(axis=0), mapped.max(axis=0)]))
    return frames, boxes


def blend_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A soft ellipse ``[H, W, 1]`` in [0, 1] covering the central part of a face box."""
    mask = np.zeros((height, width), np.float32)
    axes = (int(width * rng.uniform(0.32, 0.42)), int(height * rng.uniform(0.38, 0.48)))
    cv2.ellipse(mask, (width // 2, int(height * 0.52)), axes, 0, 0, 360, 1.0, -1)
    sigma = max(1.0, 0.06 * max(height, width))
    return cv2.GaussianBlur(mask, (0, 0), sigma)[..., None]


class Forger:
    """One forged video's generator: a ``family_name`` resampling with fixed colour jitter and fixed "weights"
    (the same random state for every frame), applied to one face per frame; ``forger(frame, box)``. With
    ``forgery="family-only"`` the whole frame is resampled, without jitter or mask."""

    def __init__(self, family_name: str, rng: np.random.Generator, forgery: Forgery = "blend") -> None:
        if forgery not in ("blend", "family-only"):
            raise ValueError(f"forgery must be blend or family-only, got {forgery!r}")
        self.resample, self.forgery = FAMILIES[family_name], forgery
        self.gain = rng.uniform(0.95, 1.05, 3).astype(np.float32)
        self.bias = rng.uniform(-6, 6, 3).astype(np.float32)
        self.seed = int(rng.integers(2**31))

    def __call__(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        """``frame`` with the face in ``box`` (x0, y0, x1, y1) self-blended with its resampled copy (or, family
        only, the whole frame resampled)."""
        if self.forgery == "family-only":
            return self.resample(frame, np.random.default_rng(self.seed)).astype(np.uint8)
        height, width = frame.shape[:2]
        x0, y0 = np.clip(np.floor(box[:2] - 0.1 * (box[2:] - box[:2])).astype(int), 0, [width - 8, height - 8])
        x1, y1 = np.clip(np.ceil(box[2:] + 0.1 * (box[2:] - box[:2])).astype(int), [x0 + 8, y0 + 8], [width, height])
        face = frame[y0:y1, x0:x1]
        frame_rng = np.random.default_rng(self.seed)  # the same generator "weights" for every frame of the video
        fake = self.resample(face, frame_rng).astype(np.float32) * self.gain + self.bias
        mask = blend_mask(*face.shape[:2], frame_rng)
        forged = frame.copy()
        forged[y0:y1, x0:x1] = np.clip(mask * fake + (1 - mask) * face, 0, 255).astype(np.uint8)
        return forged


def forge(frames: list[np.ndarray], boxes: list[np.ndarray], family_name: str,
          rng: np.random.Generator, forgery: Forgery = "blend") -> list[np.ndarray]:
    """Self-blend every frame's face with its ``family_name``-resampled, colour-jittered copy (or resample whole
    frames, ``family-only``)."""
    forger = Forger(family_name, rng, forgery)
    return [forger(frame, box) for frame, box in zip(frames, boxes, strict=True)]


# codec → (FFmpeg encoder, its options beside the CRF); the container follows the file's suffix (.mp4, .webm)
CODECS = {
    "h264": ("libx264", {"preset": "veryfast"}),  # FaceForensics++ and Celeb-DF are H.264
    "vp9": ("libvpx-vp9", {"b:v": "0", "deadline": "realtime", "cpu-used": "8"}),  # what DALI's CPU decoder reads
}


def write_video(path: Path, frames: Iterable[np.ndarray], spec: VideoSpec) -> Path:
    """Encode RGB frames (yuv420p; any iterable, so long videos need not fit in memory) with PyAV in the codec of
    ``spec`` and the container of ``path``'s suffix."""
    if spec.codec not in CODECS:
        raise ValueError(f"unknown codec {spec.codec!r}; known: {sorted(CODECS)}")
    encoder, options = CODECS[spec.codec]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(encoder, rate=spec.fps)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        stream.options = {"crf": str(spec.crf), **options}
        if spec.keyframe_interval:
            stream.codec_context.gop_size = spec.keyframe_interval
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@dataclass(frozen=True)
class SyntheticRecord:
    """One generated video: where it is, its label (1 = fake), split, and family ("real" for real videos)."""

    path: Path
    label: int
    split: str
    family: str


def make_dataset(out_dir: Path, *, families: tuple[str, ...] = tuple(FAMILIES), videos_per_class: int = 8,
                 splits: dict[str, float] | None = None, spec: VideoSpec = VideoSpec(), seed: int = 0,
                 progress: bool = True, forgery: Forgery = "blend") -> Path:
    """Render ``videos_per_class`` real videos and as many fakes per family (``forgery``: blended faces, or
    whole frames resampled), split them, write ``manifest.csv`` (``path,label,split,family``; the generic CSV
    layout of ``dfguard.train.datasets``) and return its path."""
    unknown = set(families) - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown resampling families {sorted(unknown)}; known: {sorted(FAMILIES)}")
    splits = splits or {"train": 0.6, "val": 0.2, "test": 0.2}
    rng = np.random.default_rng(seed)
    photos = source_photos()
    out_dir = Path(out_dir)
    records: list[SyntheticRecord] = []
    split_of = split_names(videos_per_class, splits)
    jobs = [("real", i) for i in range(videos_per_class)] + [(f, i) for f in families for i in range(videos_per_class)]
    for kind, index in progress_bar(jobs, desc="synthetic videos", unit="video", disable=not progress):
        photo = photos[index % len(photos)]
        frames, boxes = render_real(photo, spec, rng)
        split = split_of[index]
        if kind != "real":
            frames = forge(frames, boxes, kind, rng, forgery)
        path = write_video(out_dir / split / kind / f"{photo.name}_{index:03d}.mp4", frames, spec)
        records.append(SyntheticRecord(path.relative_to(out_dir), int(kind != "real"), split, kind))
    manifest = out_dir / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "split", "family"])
        writer.writerows((r.path.as_posix(), r.label, r.split, r.family) for r in records)
    return manifest


def split_names(count: int, splits: dict[str, float]) -> list[str]:
    """The split of each of ``count`` videos of a class: sizes rounded from the fractions, at least one video per
    split when there are enough, the first split taking what rounding leaves over."""
    sizes = [round(fraction * count) for fraction in splits.values()]
    if count >= len(sizes):
        sizes = [max(1, size) for size in sizes]
    while sum(sizes) > count:
        sizes[sizes.index(max(sizes))] -= 1
    sizes[0] += count - sum(sizes)
    return [name for name, size in zip(splits, sizes, strict=True) for _ in range(size)]
