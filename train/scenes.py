"""Scenes like real uploads, for measuring face detection: 1-3 people from real photos at random sizes and places
on real backgrounds, frames from 360p to 4K, some grayscale, faces partly out of frame (up to a quarter).

Every face is a head-and-shoulders cut of a real portrait (``source_photos``: matplotlib's Grace Hopper,
scikit-image's astronaut, mirrored too) with a feathered edge, scaled so its face box is ``min_face_px`` up to
half the frame's height (log-uniform: small faces as often as large ones), with a random brightness and
contrast; the ground truth is the source's face box carried along. Backgrounds are photos without people
(scikit-image's coffee, rocket, brick, grass, gravel, and a plain gradient). Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from dfguard.faces.decode import pairwise_iou

if TYPE_CHECKING:
    from .synthetic import VideoSpec

RESOLUTIONS = ((640, 360), (1280, 720), (1920, 1080), (3840, 2160))
BACKGROUNDS = ("coffee", "rocket", "brick", "grass", "gravel", "gradient")


@dataclass(frozen=True)
class Scene:
    """A frame and the boxes ``[K, 4]`` (x0, y0, x1, y1, frame pixels, clipped to the frame) of its faces."""

    image: np.ndarray
    boxes: np.ndarray
    gray: bool


@cache
def background_photos() -> dict[str, np.ndarray]:
    """The backgrounds as RGB uint8 (gray textures repeated into three channels)."""
    import skimage.data

    photos = {}
    for name in BACKGROUNDS[:-1]:
        image = getattr(skimage.data, name)()
        photos[name] = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
    return photos


def background(name: str, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A ``width × height`` background: a photo scaled to cover the frame and cut at random, or a gradient."""
    return BackgroundCut.draw(name, width, height, rng).render()


@dataclass(frozen=True)
class BackgroundCut:
    """Where a background comes from, drawn before any pixel is made: the gradient's end colours, or the photo's
    scale and the corner of the cut."""

    name: str
    width: int
    height: int
    start: tuple[int, ...] = ()
    end: tuple[int, ...] = ()
    scale: float = 1.0
    corner: tuple[int, int] = (0, 0)

    @classmethod
    def draw(cls, name: str, width: int, height: int, rng: np.random.Generator) -> BackgroundCut:
        """Draw a background of ``name`` (a key of ``BACKGROUNDS``)."""
        if name == "gradient":
            start, end = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
            return cls(name, width, height, tuple(int(v) for v in start), tuple(int(v) for v in end))
        photo = background_photos()[name]
        scale = max(width / photo.shape[1], height / photo.shape[0]) * rng.uniform(1.0, 1.5)
        big_height, big_width = round(photo.shape[0] * scale), round(photo.shape[1] * scale)  # cv2.resize's size
        y, x = rng.integers(0, big_height - height + 1), rng.integers(0, big_width - width + 1)
        return cls(name, width, height, scale=float(scale), corner=(int(y), int(x)))

    def render(self) -> np.ndarray:
        """The background's pixels, RGB uint8 ``[height, width, 3]``."""
        if self.name == "gradient":
            start, end = np.array(self.start), np.array(self.end)
            ramp = np.linspace(0, 1, self.width)[None, :, None]
            return np.broadcast_to(start + (end - start) * ramp, (self.height, self.width, 3)).astype(np.uint8).copy()
        big = cv2.resize(background_photos()[self.name], None, fx=self.scale, fy=self.scale,
                         interpolation=cv2.INTER_LINEAR)
        y, x = self.corner
        return np.ascontiguousarray(big[y:y + self.height, x:x + self.width])


def head_and_shoulders(photo: np.ndarray, box: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The region around a face box (2× its side, more below for the shoulders), clipped to the photo, and the
    face box in that region's pixels."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = int(max(cx - side, 0)), int(max(cy - 1.1 * side, 0))
    right, bottom = int(min(cx + side, photo.shape[1])), int(min(cy + 1.4 * side, photo.shape[0]))
    return photo[top:bottom, left:right], np.array([x0 - left, y0 - top, x1 - left, y1 - top], np.float32)


def feathered_mask(height: int, width: int) -> np.ndarray:
    """An elliptical alpha mask ``[H, W, 1]`` in 0..1 with a soft edge, so no cut line frames the face."""
    y, x = np.mgrid[0:height, 0:width]
    distance = ((x + 0.5) / width * 2 - 1) ** 2 + ((y + 0.5) / height * 2 - 1) ** 2
    return np.clip((1.0 - distance) / 0.25, 0, 1)[..., None].astype(np.float32)


def overlaps(box: np.ndarray, boxes: list[np.ndarray], gap: float) -> bool:
    """Whether ``box`` grown by ``gap`` of its side intersects any of ``boxes``."""
    grow = gap * (box[2] - box[0])
    return any(box[0] - grow < b[2] and b[0] < box[2] + grow and box[1] - grow < b[3] and b[1] < box[3] + grow
               for b in boxes)


def make_scene(rng: np.random.Generator, *, width: int | None = None, height: int | None = None,
               faces: int | None = None, min_face_px: int = 48, max_face_px: float | None = None,
               gray: bool | None = None) -> Scene:
    """One scene; unset arguments are drawn: a resolution of ``RESOLUTIONS``, 1-3 faces (of ``min_face_px`` up
    to ``max_face_px``, by default half the frame's height), grayscale with probability 1/4."""
    return plan_scene(rng, width=width, height=height, faces=faces, min_face_px=min_face_px,
                      max_face_px=max_face_px, gray=gray).render()


@dataclass(frozen=True)
class Pasted:
    """A head-and-shoulders cut placed in a scene: its region of the source photo (a view), scale, top-left
    corner, gain and offset."""

    region: np.ndarray
    scale: float
    corner: tuple[int, int]
    gain: float
    offset: float


@dataclass(frozen=True)
class ScenePlan:
    """A scene drawn but not rendered: its background, what is pasted where, its face boxes (clipped to the
    frame) and whether it is grayscale. Rendering costs milliseconds; drawing, microseconds, so a caller that
    rejects scenes (``make_people_video``) looks at the boxes first."""

    background: BackgroundCut
    pasted: tuple[Pasted, ...]
    boxes: np.ndarray
    gray: bool

    def render(self) -> Scene:
        """The scene's pixels."""
        frame = self.background.render().astype(np.float32)
        for item in self.pasted:
            cut = cv2.resize(item.region, None, fx=item.scale, fy=item.scale,
                             interpolation=cv2.INTER_AREA if item.scale < 1 else cv2.INTER_LINEAR).astype(np.float32)
            paste(frame, cut * item.gain + item.offset, *item.corner)
        image = np.clip(frame, 0, 255).astype(np.uint8)
        if self.gray:
            image = np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
        return Scene(image, self.boxes, self.gray)


def plan_scene(rng: np.random.Generator, *, width: int | None = None, height: int | None = None,
               faces: int | None = None, min_face_px: int = 48, max_face_px: float | None = None,
               gray: bool | None = None) -> ScenePlan:
    """Draw a scene as ``make_scene`` does (the same draws from ``rng``, so the same scene), without rendering."""
    from .synthetic import source_photos

    if width is None or height is None:
        width, height = RESOLUTIONS[rng.integers(len(RESOLUTIONS))]
    faces = int(rng.integers(1, 4)) if faces is None else faces
    gray = bool(rng.random() < 0.25) if gray is None else gray
    backdrop = BackgroundCut.draw(BACKGROUNDS[rng.integers(len(BACKGROUNDS))], width, height, rng)
    sources, placed, pasted = source_photos(), [], []
    for _ in range(faces):
        for _attempt in range(50):
            source = sources[rng.integers(len(sources))]
            region, face = head_and_shoulders(source.image, source.face_box)
            size = np.exp(rng.uniform(np.log(min_face_px), np.log(max_face_px or height / 2)))
            scale = size / (face[3] - face[1])
            face = face * scale
            # anywhere, a quarter of the face at most out of the frame (a camera's edge cuts people too)
            side = face[2] - face[0]
            cx = rng.uniform(side / 4, width - side / 4) if width > side / 2 else width / 2
            cy = rng.uniform(side / 4, height - side / 4) if height > side / 2 else height / 2
            left, top = round(cx - (face[0] + face[2]) / 2), round(cy - (face[1] + face[3]) / 2)
            box = face + np.array([left, top, left, top], np.float32)
            if overlaps(box, placed, 0.3):
                continue
            gain = rng.uniform(0.7, 1.2)
            pasted.append(Pasted(region, float(scale), (left, top), gain, rng.uniform(-20, 20)))
            placed.append(box)
            break
    return ScenePlan(backdrop, tuple(pasted), clip_boxes(placed, height, width), gray)


def clip_boxes(boxes: object, height: int, width: int) -> np.ndarray:
    """Boxes (any sequence of x0, y0, x1, y1) as float32 ``[K, 4]`` clipped to a ``height × width`` frame: what a
    face partly out of frame shows, and what ``match`` compares."""
    return np.clip(np.asarray(boxes, np.float32).reshape(-1, 4), 0, [width, height, width, height])


def paste(frame: np.ndarray, cut: np.ndarray, left: int, top: int) -> None:
    """Blend ``cut`` into ``frame`` at ``(left, top)`` with a feathered mask, clipped to the frame."""
    height, width = cut.shape[:2]
    alpha = feathered_mask(height, width)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + height, frame.shape[0]), min(left + width, frame.shape[1])
    if y1 <= y0 or x1 <= x0:
        return
    piece, weight = cut[y0 - top:y1 - top, x0 - left:x1 - left], alpha[y0 - top:y1 - top, x0 - left:x1 - left]
    frame[y0:y1, x0:x1] = weight * np.clip(piece, 0, 255) + (1 - weight) * frame[y0:y1, x0:x1]


def match(truth: np.ndarray, found: np.ndarray, threshold: float = 0.4) -> tuple[int, int]:
    """(true faces found, detections that are no true face): greedy one-to-one matching at IoU ≥ ``threshold``
    of the boxes clipped to the frame."""
    if not len(truth) or not len(found):
        return 0, len(found)
    overlap = pairwise_iou(truth, found)
    hits = 0
    while overlap.size and overlap.max() >= threshold:
        i, j = np.unravel_index(overlap.argmax(), overlap.shape)
        hits += 1
        overlap[i, :], overlap[:, j] = -1, -1
    return hits, len(found) - hits


@dataclass(frozen=True)
class PeopleVideo:
    """A rendered video of a scene: its file, the people's face boxes in its first frame, which person was
    forged (None for a real video) with which family, and how far the camera moved (x, y) from the first frame
    to the last."""

    path: Path
    boxes: np.ndarray
    forged: int | None
    family: str
    camera_move: np.ndarray

    def boxes_at(self, frame: int, frames: int) -> np.ndarray:
        """The face boxes ``[K, 4]`` in frame ``frame`` of the video's ``frames`` (within a pixel: the camera's
        position is rounded per frame)."""
        move = self.camera_move * (frame / max(frames - 1, 1))
        return self.boxes - np.array([*move, *move], np.float32)


def make_people_video(path: Path, spec: VideoSpec, rng: np.random.Generator, *, people: int | None = None,
                      family: str | None = None, pan: int = 120, min_face_px: int = 64,
                      max_face_px: float | None = None) -> PeopleVideo:
    """Film a scene of ``people`` (drawn: 1-3) with a camera that pans ``pan`` pixels over the video's length,
    frames streamed to the encoder (a 10 s 1080p video never sits in memory); with ``family``, one person
    (drawn) is forged in every frame by ``dfguard.train.synthetic.Forger``. Every face lies wholly inside every
    frame, so the ground truth is exact."""
    from .synthetic import Forger, write_video

    width, height = spec.width, spec.height
    for _ in range(500):
        plan = plan_scene(rng, width=width + pan, height=height + pan, faces=people, min_face_px=min_face_px,
                          max_face_px=max_face_px, gray=False)
        boxes = plan.boxes
        inside = (boxes[:, 0] > pan) & (boxes[:, 1] > pan) & (boxes[:, 2] < width) & (boxes[:, 3] < height)
        if len(boxes) and inside.all() and (people is None or len(boxes) == people):
            scene = plan.render()
            break
    else:
        raise ValueError(f"no scene of {people} people fits a {width}×{height} frame panned by {pan} px")
    start, end = rng.integers(0, pan + 1, (2, 2))
    forged = int(rng.integers(len(boxes))) if family else None
    forger = Forger(family, rng) if family else None

    def frames():
        for t in np.linspace(0.0, 1.0, spec.frames):
            x, y = np.round(start + (end - start) * t).astype(int)
            frame = np.ascontiguousarray(scene.image[y:y + height, x:x + width])
            if forger is not None:
                frame = forger(frame, boxes[forged] - np.array([x, y, x, y], np.float32))
            yield frame

    write_video(path, frames(), spec)
    return PeopleVideo(path, boxes - np.array([*start, *start], np.float32), forged, family or "real",
                       (end - start).astype(np.float32))
