"""Real photos that ship inside installed packages (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

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
