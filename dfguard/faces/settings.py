"""How faces are found, linked and cropped, apart from the code that does it: the serving spec holds these
settings, and the steps that only read the spec need neither OpenCV nor the detector.

``DetectorConfig``: which BlazeFace, the smallest face to find and the score to keep (``dfguard.faces.tiles``);
``TrackConfig``: how many faces per frame and how they are linked into tracks (``dfguard.faces.tracks``);
``CropConfig``: the geometry of the crops both papers use (``dfguard.faces.crops``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .decode import MIN_SCORE
from .weights import DETECTORS

PART_KEYPOINTS = (0, 1, 2, 3)  # right eye, left eye, nose tip, mouth centre
PART_NAMES = ("right_eye", "left_eye", "nose", "mouth")


@dataclass(frozen=True)
class CropConfig:
    """Sizes of the crops: face side ``size`` (a multiple of 8 for the DCT), the face margin, part side and scale."""

    size: int = 256
    margin: float = 1.3
    part_size: int = 64
    part_scale: float = 0.35
    min_score: float = MIN_SCORE

    def __post_init__(self) -> None:
        if self.size % 8 or self.size < 8:
            raise ValueError(f"face crop size must be a positive multiple of 8, got {self.size}")
        if self.margin < 1.0 or not 0.0 < self.part_scale <= 1.0 or self.part_size < 8:
            raise ValueError(f"bad crop geometry: margin {self.margin} (≥ 1), part_scale {self.part_scale} "
                             f"(0..1], part_size {self.part_size} (≥ 8)")


MIN_FACE_PX = 48
# Tiles look at a frame dozens of times, and each look can raise a false alarm, so the tiled detector keeps a
# higher score than mediapipe's 0.5, on every level: keeping 0.5 on the whole frame alone was measured worse
# (benchmarks.scenes, seed 0: 182/184 faces, 7 false in scenes and 3 on 32 frames without people, against
# 183/184, 3 and 0 at 0.65 everywhere). Measured at 0.5 on scenes of train/scenes.py (seed 1, 40 scenes): the 11
# false detections scored 0.505-0.607, the 85 true ones 0.549 once and 0.713 and up; on frames without people
# (seeds 1 and 2, 52 frames) false ones scored 0.51-0.80, at every level, the whole frame included.
TILED_MIN_SCORE = 0.65
SEARCH_EVERY = 4


@dataclass(frozen=True)
class DetectorConfig:
    """Which detector finds the faces (``blazeface_full_range``, the serving default, or ``blazeface_short_range``,
    the CDNet paper's), the smallest face height to find in frame pixels at any resolution, the detector score
    a face needs, and how often the fine tiles run: on each shot's first and last sampled frame and every
    ``search_every``-th one (1: every frame); the frames between get the whole frame and windows around the faces
    found in the searched frames on either side (``dfguard.faces.search``)."""

    name: str = "blazeface_full_range"
    min_face_px: float = MIN_FACE_PX
    min_score: float = TILED_MIN_SCORE
    search_every: int = SEARCH_EVERY

    def __post_init__(self) -> None:
        if self.name not in DETECTORS:
            raise ValueError(f"unknown face detector {self.name!r}; known: {sorted(DETECTORS)}")
        if not self.min_face_px >= 1 or not 0.0 < self.min_score < 1.0 or self.search_every < 1:
            raise ValueError(f"min_face_px must be at least 1 pixel, min_score in (0, 1) and search_every at "
                             f"least 1: {self}")


@dataclass(frozen=True)
class TrackConfig:
    """How faces are capped and linked, and how many faces a track needs to count for the verdict.

    ``max_faces`` per frame, and ``max_video_faces`` per video: the model steps' batch is a video's faces, and a
    TensorRT plan's batch has a fixed maximum (the GPU configs' ``max_batch_size``, 256), so with many sampled
    frames each keeps fewer faces (``faces_per_frame``), never fewer than one."""

    max_faces: int = 8
    max_video_faces: int = 256
    min_track_faces: int = 2
    max_shift: float = 1.5
    max_scale: float = 1.6
    min_appearance: float = 0.0
    min_shot_correlation: float = 0.5
    max_gap: int = 3

    def __post_init__(self) -> None:
        if self.max_faces < 1 or self.min_track_faces < 1 or self.max_gap < 0 or self.max_video_faces < 1:
            raise ValueError(f"max_faces, max_video_faces and min_track_faces must be at least 1 and max_gap at "
                             f"least 0: {self}")

    def shift(self, a: Sequence[float], b: Sequence[float]) -> float | None:
        """How far box ``b`` lies from box ``a`` (x0, y0, x1, y1): the distance of their centres in sides of the
        larger; None when one is more than ``max_scale`` times the other's size or lies beyond ``max_shift``."""
        side_a, side_b = max(a[2] - a[0], a[3] - a[1], 1e-6), max(b[2] - b[0], b[3] - b[1], 1e-6)
        if max(side_a, side_b) / min(side_a, side_b) > self.max_scale:
            return None
        shift = math.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2) / max(side_a, side_b)
        return shift if shift <= self.max_shift else None

    def faces_per_frame(self, sampled_frames: int) -> int:
        """How many faces each of ``sampled_frames`` frames keeps, the largest first."""
        return max(1, min(self.max_faces, self.max_video_faces // max(sampled_frames, 1)))

    def counts(self, track_faces: int, sampled_frames: int) -> bool:
        """Whether a track of ``track_faces`` faces counts for the verdict: ``min_track_faces`` faces, or every
        sampled frame when there are fewer (an image is one frame, and its one face counts). A face seen in one
        frame of many may be a false detection."""
        return track_faces >= min(self.min_track_faces, sampled_frames)
