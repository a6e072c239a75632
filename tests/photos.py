"""Real photos that ship inside installed packages (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib.cbook
import numpy as np
import skimage.data
from PIL import Image

GRACE_HOPPER_PATH = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def grace_hopper() -> np.ndarray:
    """matplotlib's portrait of Grace Hopper, RGB uint8 600×512."""
    return np.asarray(Image.open(GRACE_HOPPER_PATH).convert("RGB"))


def astronaut() -> np.ndarray:
    """scikit-image's portrait of Eileen Collins, RGB uint8 512×512."""
    return skimage.data.astronaut()


def no_face_photos() -> dict[str, np.ndarray]:
    """Real photos without a human face (a cup of coffee, a rocket on its pad)."""
    return {"coffee": skimage.data.coffee(), "rocket": skimage.data.rocket()}


def face_filling_the_frame(photo: np.ndarray, box: np.ndarray, fraction: float, side: int = 224) -> np.ndarray:
    """A ``side``-px square frame cut from a photo around a face's box so the box fills ``fraction`` of it (a
    VoxCeleb-style crop, where the face is the frame)."""
    centre, size = (box[:2] + box[2:]) / 2, max(box[2] - box[0], box[3] - box[1]) / fraction
    scale = side / size
    matrix = np.array([[scale, 0, side / 2 - centre[0] * scale], [0, scale, side / 2 - centre[1] * scale]])
    return cv2.warpAffine(photo, matrix, (side, side), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
