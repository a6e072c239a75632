"""Validation of kernel inputs: one place that turns a shape and dtype into a ``Layout`` or a clear error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .operators import BLOCK, OUTPUTS

LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # BT.601, applied in float32 by every backend
SUPPORTED_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32))
MIN_SIZE = BLOCK


@dataclass(frozen=True)
class Layout:
    """How an input array is read: leading batch shape, image size and whether the last axis holds RGB."""

    lead_shape: tuple[int, ...]
    height: int
    width: int
    rgb: bool

    @property
    def num_images(self) -> int:
        """Number of images in the batch (the product of the leading dimensions)."""
        return int(np.prod(self.lead_shape, dtype=np.int64))

    @property
    def channels(self) -> int:
        """Channels per pixel as stored: 3 for RGB, 1 for grayscale."""
        return 3 if self.rgb else 1

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Shape of the float32 result: ``[..., H, W]``."""
        return (*self.lead_shape, self.height, self.width)

    @property
    def padded_height(self) -> int:
        """Height rounded up to a multiple of 8."""
        return -(-self.height // BLOCK) * BLOCK

    @property
    def padded_width(self) -> int:
        """Width rounded up to a multiple of 8."""
        return -(-self.width // BLOCK) * BLOCK


def describe(shape: tuple[int, ...], dtype: Any) -> Layout:
    """Check ``shape``/``dtype`` against the kernel contract and return the layout, or raise a clear error.

    ``[..., H, W, 3]`` is RGB (converted to BT.601 luma), anything else is ``[..., H, W]`` grayscale;
    both uint8 or float32, ``H, W >= 8``.
    """
    dtype = np.dtype(dtype)
    if dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"dct_highpass takes uint8 or float32 images, got dtype {dtype} (convert with .astype)")
    if len(shape) < 2:
        raise ValueError(f"dct_highpass needs an image of at least 2 dimensions [..., H, W], got shape {shape}")
    rgb = len(shape) >= 3 and shape[-1] == 3
    lead, (height, width) = (shape[:-3], shape[-3:-1]) if rgb else (shape[:-2], shape[-2:])
    if height < MIN_SIZE or width < MIN_SIZE:
        kind = "RGB [..., H, W, 3]" if rgb else "grayscale [..., H, W]"
        raise ValueError(f"images must be at least {MIN_SIZE}x{MIN_SIZE}; shape {shape} read as {kind} "
                         f"gives H={height}, W={width}")
    return Layout(tuple(int(d) for d in lead), int(height), int(width), rgb)


def check_cutoff(cutoff: int) -> None:
    """The one check of a DCT cutoff, for the kernels and every config that carries one: an int in 0..8, the
    number of lowest frequencies per axis taken out of each 8×8 block (0: none, the whole signal)."""
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, np.integer)):
        raise TypeError(f"cutoff must be an int in 0..{BLOCK}, got {cutoff!r}")
    if not 0 <= cutoff <= BLOCK:
        raise ValueError(f"cutoff must be in 0..{BLOCK}, got {cutoff}")


def check_options(cutoff: int, output: str) -> None:
    """Raise ``ValueError``/``TypeError`` unless ``cutoff`` passes ``check_cutoff`` and ``output`` is a known
    mode."""
    check_cutoff(cutoff)
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")


def host_array(x: Any) -> np.ndarray:
    """Return ``x`` as a C-contiguous NumPy array for a CPU backend, or raise ``TypeError`` for GPU arrays."""
    if hasattr(x, "__cuda_array_interface__"):
        raise TypeError(f"{type(x).__name__} lives on the GPU; use backend='cupy' or 'numba-cuda' (or 'auto')")
    if not isinstance(x, np.ndarray):
        raise TypeError(f"expected a numpy.ndarray, got {type(x).__name__}")
    return np.ascontiguousarray(x)


def output_array(out: Any, layout: Layout, xp: Any = np) -> Any:
    """Return ``out`` after checking it can take the result (float32, ``layout.out_shape``, C-contiguous),
    or a new ``xp.empty`` array when ``out`` is None. ``xp`` is ``numpy`` or ``cupy``."""
    if out is None:
        return xp.empty(layout.out_shape, xp.float32)
    if not isinstance(out, xp.ndarray):
        raise TypeError(f"out must be a {xp.__name__}.ndarray, got {type(out).__name__}")
    if out.dtype != xp.float32 or tuple(out.shape) != layout.out_shape or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {layout.out_shape}, got "
                         f"{out.dtype} {tuple(out.shape)}{'' if out.flags.c_contiguous else ' (not contiguous)'}")
    return out


def raise_if_not_finite(bad_images: np.ndarray) -> None:
    """Raise ``ValueError`` naming the first image whose flag in ``bad_images`` is set (NaN or inf found)."""
    flagged = np.flatnonzero(bad_images)
    if flagged.size:
        raise ValueError(f"input contains NaN or infinite values (first in image {int(flagged[0])} of the "
                         f"flattened batch, {flagged.size} image(s) affected)")
