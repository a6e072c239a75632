"""The NumPy reference backend: the definition, written for clarity, not speed.

Per 8×8 block: forward orthonormal DCT-II (``C·X·Cᵀ``), zero the ``cutoff × cutoff`` low-frequency corner,
and for ``output="spatial"`` the inverse DCT (``Cᵀ·Y·C``). Tests check it against ``scipy.fft.dctn``.
"""

from __future__ import annotations

import numpy as np

from .layout import LUMA_WEIGHTS, Layout, output_array, raise_if_not_finite
from .operators import BLOCK, dct_matrix, low_frequency_mask


def to_luma(x: np.ndarray, layout: Layout) -> np.ndarray:
    """Return the float32 grayscale images ``[N, H, W]`` (BT.601 luma for RGB, computed in float32)."""
    x = x.reshape(layout.num_images, layout.height, layout.width, layout.channels).astype(np.float32)
    if not layout.rgb:
        return x[..., 0]
    r, g, b = (np.float32(w) for w in LUMA_WEIGHTS)
    return r * x[..., 0] + g * x[..., 1] + b * x[..., 2]


def highpass(x: np.ndarray, layout: Layout, cutoff: int, output: str, out: np.ndarray | None = None) -> np.ndarray:
    """Blockwise DCT high-pass of ``x`` per the kernel contract (float32 ``[..., H, W]``)."""
    gray = to_luma(x, layout)
    raise_if_not_finite(~np.isfinite(gray).all(axis=(1, 2)))
    pad = ((0, 0), (0, layout.padded_height - layout.height), (0, layout.padded_width - layout.width))
    padded = np.pad(gray, pad, mode="edge").astype(np.float64)
    n, hp, wp = padded.shape
    blocks = padded.reshape(n, hp // BLOCK, BLOCK, wp // BLOCK, BLOCK).transpose(0, 1, 3, 2, 4)

    c = dct_matrix()
    coefficients = c @ blocks @ c.T
    coefficients[..., low_frequency_mask(cutoff)] = 0.0
    result = coefficients if output == "coefficients" else c.T @ coefficients @ c

    image = result.transpose(0, 1, 3, 2, 4).reshape(n, hp, wp)[:, : layout.height, : layout.width]
    target = output_array(out, layout)
    np.copyto(target, image.reshape(layout.out_shape), casting="same_kind")
    return target
