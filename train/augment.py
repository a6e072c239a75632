"""What real uploads do to faces, as degradations of face crops: JPEG re-encoding, resampling, blur.

``degrade_jpeg`` and ``degrade_blur`` are the fixed degradations of ``dfguard eval``'s robustness sweeps;
``UploadAugment`` draws them at random for training, on real faces and fakes alike (after a fake is blended), so a
detector cannot learn a cue that the first re-encoding of a video erases (a crisp blend boundary, the grain of
one camera) and must learn one that survives it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np


def degrade_jpeg(quality: int) -> Callable[[np.ndarray], np.ndarray]:
    """Re-encode RGB CHW uint8 crops as JPEG at ``quality``."""
    from PIL import Image

    def apply(image: np.ndarray) -> np.ndarray:
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0))).save(buffer, format="JPEG", quality=quality)
        return np.array(Image.open(buffer)).transpose(2, 0, 1)  # a writable copy for torch.from_numpy
    return apply


def degrade_blur(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    """Gaussian blur of RGB CHW uint8 crops with standard deviation ``sigma`` pixels."""
    def apply(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(np.ascontiguousarray(image.transpose(1, 2, 0)), (0, 0), sigma).transpose(2, 0, 1)
    return apply


def degrade_resample(scale: float) -> Callable[[np.ndarray], np.ndarray]:
    """Downscale RGB CHW uint8 crops by ``scale`` and back up (a video stored smaller than it is shown)."""
    def apply(image: np.ndarray) -> np.ndarray:
        height, width = image.shape[1:]
        small = cv2.resize(np.ascontiguousarray(image.transpose(1, 2, 0)),
                           (max(2, round(width * scale)), max(2, round(height * scale))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
    return apply


@dataclass(frozen=True)
class UploadAugment:
    """How often (a probability each) and how strongly training crops are degraded as uploads are: resampled by a
    scale in ``resample_scale``, blurred with a sigma in ``blur_sigma``, then JPEG-encoded at a quality in
    ``jpeg_quality`` (in that order, the order a video goes through them). All 0: off."""

    jpeg: float = 0.0
    jpeg_quality: tuple[int, int] = (50, 95)
    resample: float = 0.0
    resample_scale: tuple[float, float] = (0.5, 0.9)
    blur: float = 0.0
    blur_sigma: tuple[float, float] = (0.3, 1.2)

    def __post_init__(self) -> None:
        if not all(0.0 <= p <= 1.0 for p in (self.jpeg, self.resample, self.blur)):
            raise ValueError(f"augmentation probabilities must lie in [0, 1]: {self}")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError(f"jpeg_quality must be a range within 1..100, got {self.jpeg_quality}")

    @property
    def active(self) -> bool:
        """Whether any degradation can happen."""
        return max(self.jpeg, self.resample, self.blur) > 0

    def draw(self, rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray] | None:
        """One random draw: the degradation to apply alike to a face crop and its parts (None: none)."""
        steps = []
        if rng.random() < self.resample:
            steps.append(degrade_resample(float(rng.uniform(*self.resample_scale))))
        if rng.random() < self.blur:
            steps.append(degrade_blur(float(rng.uniform(*self.blur_sigma))))
        if rng.random() < self.jpeg:
            steps.append(degrade_jpeg(int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1))))
        if not steps:
            return None

        def apply(image: np.ndarray) -> np.ndarray:
            for step in steps:
                image = step(image)
            return image
        return apply
