"""read_image: upright RGB from any common format, a named ImageError for anything else."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dfguard.image import ImageError, read_image


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_png_round_trips_and_gray_or_alpha_become_rgb(rng):
    pixels = rng.integers(0, 256, (40, 60, 3), np.uint8)
    np.testing.assert_array_equal(read_image(encoded(Image.fromarray(pixels), "PNG")), pixels)
    gray = rng.integers(0, 256, (40, 60), np.uint8)
    np.testing.assert_array_equal(read_image(encoded(Image.fromarray(gray), "PNG")), np.repeat(gray[..., None], 3, 2))
    rgba = Image.fromarray(np.dstack([pixels, np.full((40, 60), 7, np.uint8)]))
    np.testing.assert_array_equal(read_image(encoded(rgba, "PNG")), pixels)


def test_exif_orientation_is_applied(rng):
    pixels = rng.integers(0, 256, (40, 60, 3), np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    upright = read_image(encoded(Image.fromarray(pixels), "PNG", exif=exif))
    np.testing.assert_array_equal(upright, np.rot90(pixels, k=-1))


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty input"),
    (b"GIF89a" + bytes(10), "truncated or corrupt|not an image"),
    (bytes(range(256)), "not an image"),
])
def test_what_is_not_an_image_gets_a_named_error(data, message):
    with pytest.raises(ImageError, match=message):
        read_image(data)


def test_too_many_pixels_and_truncation_are_refused(rng):
    data = encoded(Image.fromarray(rng.integers(0, 256, (64, 64, 3), np.uint8)), "JPEG")
    with pytest.raises(ImageError, match=r"image too large: 64x64 pixels \(limit 1000\)"):
        read_image(data, max_pixels=1000)
    with pytest.raises(ImageError, match="truncated or corrupt"):
        read_image(data[: len(data) // 2])
