"""The geometry of the crops both papers use (``CropConfig``), apart from the code that cuts them: the serving
spec holds one, and the steps that only read the spec need neither OpenCV nor the detector."""

from __future__ import annotations

from dataclasses import dataclass

from .decode import MIN_SCORE

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
