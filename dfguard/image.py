"""Image decoding for single-image scoring (the ``deepfake_image`` ensemble) and the image commands.

``read_image`` turns a file or its bytes into RGB uint8 ``[H, W, 3]``, upright (EXIF orientation applied), and
refuses anything else with an ``ImageError`` that names the problem.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

MAX_PIXELS = 64 * 2**20  # 64 megapixels: far above any photo, far below a decompression bomb


class ImageError(ValueError):
    """The input cannot be used as an image; the message says why."""


def read_image(source: Path | bytes, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image file (or its bytes) as upright RGB uint8 ``[H, W, 3]``; gray is repeated, alpha dropped.

    Raises:
        ImageError: empty input, not an image, more than ``max_pixels`` pixels, or a truncated file.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ImageError("empty input: 0 bytes")
        stream: Path | io.BytesIO = io.BytesIO(bytes(source))
    else:
        if not Path(source).is_file():
            raise ImageError(f"no such image file: {source}")
        stream = Path(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageError(f"image too large: {width}x{height} pixels (limit {max_pixels})")
                return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    except UnidentifiedImageError as error:
        raise ImageError("not an image (no known image format)") from error
    except (OSError, SyntaxError, Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise ImageError(f"truncated or corrupt image ({error})") from error
