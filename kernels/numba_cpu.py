"""Numba CPU backend: one fused pass per strip of 8 image rows, parallel over images and strips.

Each parallel job reads one 8-row strip of one image (luma conversion, edge replication and the NaN/inf check
happen during the load), centres every 8×8 block on its rounded mean, applies ``left·X·right`` to every block
and writes ``keep·X + weight⊙(left·X·right)`` straight into the output (see ``operators`` for the centring).
Scratch is a few strip-sized buffers per job (8 × W floats, in L1), never a full-size intermediate.

Both matrix products run as ``dst[i, :] = Σₖ m[i, k]·src[k, :]`` along whole strip rows, the form LLVM
vectorises best; the product on the right becomes that form by transposing each 8×8 block in between
(``X·R = ((Rᵀ·Xᵀ))ᵀ``). Measured on the 2-core dev machine this beat per-block loops, a block-interleaved
layout and BLAS ``sgemm`` calls by 1.5–4× (see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import numba
import numpy as np

from .layout import LUMA_WEIGHTS, Layout, output_array, raise_if_not_finite
from .operators import BLOCK, block_operator

_R, _G, _B = (np.float32(w) for w in LUMA_WEIGHTS)
# No "nnan"/"ninf": the finiteness check must survive optimisation.
_FASTMATH = {"contract", "reassoc", "nsz", "arcp"}


@numba.njit(inline="always")
def _load_strip(x, n, y0, height, width, strip, check_finite, bad):
    """Read 8 rows from ``y0`` of image ``n`` (``x`` is ``[N, H, W, C]``) into ``strip`` as float32 luma.

    Rows and columns past the image edge repeat the last row/column (edge replication).
    """
    padded_width = strip.shape[1]
    for r in range(BLOCK):
        y = min(y0 + r, height - 1)
        if x.shape[3] == 3:
            for c in range(width):
                strip[r, c] = (_R * np.float32(x[n, y, c, 0]) + _G * np.float32(x[n, y, c, 1])
                               + _B * np.float32(x[n, y, c, 2]))
        else:
            for c in range(width):
                strip[r, c] = np.float32(x[n, y, c, 0])
        for c in range(width, padded_width):
            strip[r, c] = strip[r, width - 1]
        if check_finite:
            for c in range(width):
                if not np.isfinite(strip[r, c]):
                    bad[n] = 1


@numba.njit(inline="always", fastmath=_FASTMATH)
def _center_blocks(strip, means):
    """Subtract from every 8×8 block of ``strip`` its rounded mean, kept per column in ``means``."""
    padded_width = strip.shape[1]
    for c in range(padded_width):  # column sums first: vectorises along the strip
        means[c] = strip[0, c]
    for r in range(1, BLOCK):
        for c in range(padded_width):
            means[c] += strip[r, c]
    for b0 in range(0, padded_width, BLOCK):
        total = means[b0]
        for j in range(1, BLOCK):
            total += means[b0 + j]
        mean = np.float32(np.floor(total * np.float32(1.0 / (BLOCK * BLOCK)) + np.float32(0.5)))  # integer
        for j in range(BLOCK):
            means[b0 + j] = mean
    for r in range(BLOCK):
        for c in range(padded_width):
            strip[r, c] -= means[c]


@numba.njit(inline="always", fastmath=_FASTMATH)
def _rows_product(m, src, dst):
    """``dst = m · src`` for ``[8, W]`` strips, one register accumulator per output."""
    for i in range(BLOCK):
        m0, m1, m2, m3 = m[i, 0], m[i, 1], m[i, 2], m[i, 3]
        m4, m5, m6, m7 = m[i, 4], m[i, 5], m[i, 6], m[i, 7]
        for c in range(dst.shape[1]):
            dst[i, c] = (m0 * src[0, c] + m1 * src[1, c] + m2 * src[2, c] + m3 * src[3, c]
                         + m4 * src[4, c] + m5 * src[5, c] + m6 * src[6, c] + m7 * src[7, c])


@numba.njit(inline="always")
def _transpose_blocks(src, dst):
    """Transpose every 8×8 block of an ``[8, W]`` strip: ``dst[j, b+i] = src[i, b+j]``."""
    for b0 in range(0, src.shape[1], BLOCK):
        for i in range(BLOCK):
            for j in range(BLOCK):
                dst[j, b0 + i] = src[i, b0 + j]


@numba.njit(parallel=True, cache=True, fastmath=_FASTMATH)
def _highpass_strips(x, out, left, right_t, weight_row, offset_row, keep, check_finite, bad):
    """Apply the block operator to every strip of every image: ``x`` is ``[N, H, W, C]``, ``out`` ``[N, H, W]``.

    ``right_t`` is ``rightᵀ``; ``weight_row`` and ``offset_row`` are the 8×8 matrices tiled to ``[8, padded W]``.
    """
    n_images, height, width = out.shape
    strips = -(-height // BLOCK)
    padded_width = weight_row.shape[1]
    for job in numba.prange(n_images * strips):
        n = job // strips
        y0 = (job % strips) * BLOCK
        strip = np.empty((BLOCK, padded_width), np.float32)
        work = np.empty((BLOCK, padded_width), np.float32)
        work_t = np.empty((BLOCK, padded_width), np.float32)
        means = np.empty(padded_width, np.float32)
        _load_strip(x, n, y0, height, width, strip, check_finite, bad)
        _center_blocks(strip, means)
        _rows_product(left, strip, work)         # L·X
        _transpose_blocks(work, work_t)          # (L·X)ᵀ per block
        _rows_product(right_t, work_t, work)     # Rᵀ·(L·X)ᵀ = (L·X·R)ᵀ per block
        _transpose_blocks(work, work_t)          # L·X·R
        for i in range(min(BLOCK, height - y0)):
            for c in range(width):
                out[n, y0 + i, c] = keep * strip[i, c] + weight_row[i, c] * work_t[i, c] + means[c] * offset_row[i, c]


def highpass(x: np.ndarray, layout: Layout, cutoff: int, output: str, out: np.ndarray | None = None) -> np.ndarray:
    """Blockwise DCT high-pass of ``x`` per the kernel contract (float32 ``[..., H, W]``), into ``out`` if given."""
    op = block_operator(cutoff, output)
    images = x.reshape(layout.num_images, layout.height, layout.width, layout.channels)
    result = output_array(out, layout)
    bad = np.zeros(layout.num_images, np.uint8)
    blocks_per_row = layout.padded_width // BLOCK
    weight_row, offset_row = np.tile(op.weight, (1, blocks_per_row)), np.tile(op.offset, (1, blocks_per_row))
    _highpass_strips(images, result.reshape(-1, layout.height, layout.width), op.left,
                     np.ascontiguousarray(op.right.T), weight_row, offset_row,
                     np.float32(op.keep), x.dtype == np.float32, bad)
    raise_if_not_finite(bad)
    return result
