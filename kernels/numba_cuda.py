"""Numba CUDA backend: one CUDA block per 64×64-pixel tile (8×8 DCT blocks), mirroring ``dct8x8.cu``.

64×8 threads per block: thread ``(tx, ty)`` loads pixel column ``tx`` of rows ``ty, ty+8, …, ty+56`` of the
tile into shared memory (consecutive ``tx`` read consecutive addresses: coalesced); the block means are
reduced in shared memory; each thread computes ``L·(X−c)`` for its column, then ``(L·(X−c))·R`` inside its 8×8
block and writes ``keep·(X−c) + weight⊙(…) + c·offset`` (coalesced again; the centring is in ``operators``).
Runs under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) for CI.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
from numba import cuda, float32

from .layout import LUMA_WEIGHTS, Layout, raise_if_not_finite
from .operators import BLOCK, block_operator

TILE = 64
THREADS = (TILE, BLOCK)
MAX_GRID_Z = 65535
_R, _G, _B = LUMA_WEIGHTS


@cuda.jit
def _highpass_tiles(x, out, ops, keep, check_finite, bad):
    """``x`` ``[N, H, W, C]``, ``out`` ``[N, H, W]`` float32, ``ops`` ``[4, 8, 8]`` = (left, right, weight, offset)."""
    xs = cuda.shared.array((TILE, TILE), float32)
    ts = cuda.shared.array((TILE, TILE), float32)
    column_sums = cuda.shared.array((BLOCK, TILE), float32)
    means = cuda.shared.array((BLOCK, BLOCK), float32)  # rounded mean of each 8×8 block of the tile
    m = cuda.shared.array((4, BLOCK, BLOCK), float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    tid = ty * TILE + tx
    if tid < 4 * BLOCK * BLOCK:
        m[tid // 64, (tid // BLOCK) % BLOCK, tid % BLOCK] = ops[tid // 64, (tid // BLOCK) % BLOCK, tid % BLOCK]
    n_images, height, width = out.shape
    x0 = cuda.blockIdx.x * TILE
    y0 = cuda.blockIdx.y * TILE
    col = min(x0 + tx, width - 1)
    b = tx // BLOCK
    j = tx % BLOCK
    for n in range(cuda.blockIdx.z, n_images, cuda.gridDim.z):
        cuda.syncthreads()  # shared tiles are free again (and m is loaded on the first pass)
        for r in range(BLOCK):
            yy = ty + BLOCK * r
            row = min(y0 + yy, height - 1)
            if x.shape[3] == 3:
                v = float32(_R * float32(x[n, row, col, 0]) + _G * float32(x[n, row, col, 1])
                            + _B * float32(x[n, row, col, 2]))
            else:
                v = float32(x[n, row, col, 0])
            if check_finite and (math.isnan(v) or math.isinf(v)):
                bad[n] = 1
            xs[yy, tx] = v
        cuda.syncthreads()
        total = float32(0.0)  # column tx of block row ty
        for k in range(BLOCK):
            total += xs[BLOCK * ty + k, tx]
        column_sums[ty, tx] = total
        cuda.syncthreads()
        if tid < BLOCK * BLOCK:
            total = float32(0.0)
            for k in range(BLOCK):
                total += column_sums[tid // BLOCK, BLOCK * (tid % BLOCK) + k]
            mean = total / float32(BLOCK * BLOCK) + float32(0.5)
            finite = not (math.isnan(mean) or math.isinf(mean))  # a NaN/inf block is reported through bad[]
            means[tid // BLOCK, tid % BLOCK] = math.floor(mean) if finite else float32(0.0)
        cuda.syncthreads()
        for r in range(BLOCK):  # L·(X − c) down each column of each block
            c = means[r, b]
            acc = float32(0.0)
            for k in range(BLOCK):
                acc += m[0, ty, k] * (xs[BLOCK * r + k, tx] - c)
            ts[BLOCK * r + ty, tx] = acc
        cuda.syncthreads()
        for r in range(BLOCK):  # (L·(X − c))·R along each row of each block, then the constant's share
            yy = BLOCK * r + ty
            c = means[r, b]
            acc = float32(0.0)
            for k in range(BLOCK):
                acc += ts[yy, BLOCK * b + k] * m[1, k, j]
            if y0 + yy < height and x0 + tx < width:
                out[n, y0 + yy, x0 + tx] = keep * (xs[yy, tx] - c) + m[2, ty, j] * acc + c * m[3, ty, j]


@cache
def _device_ops(cutoff: int, output: str) -> Any:
    """The packed block operator, copied to the device once per (cutoff, output)."""
    return cuda.to_device(block_operator(cutoff, output).packed())


def is_available() -> bool:
    """True when Numba sees a CUDA GPU (or runs its CUDA simulator)."""
    return bool(cuda.is_available())


def highpass(x: Any, layout: Layout, cutoff: int, output: str, out: Any = None) -> Any:
    """Blockwise DCT high-pass of ``x`` (NumPy in → NumPy out; CuPy or other CUDA arrays in → device out).

    ``out``, when given, is a C-contiguous float32 device array of the output shape (CUDA array interface)."""
    on_device = hasattr(x, "__cuda_array_interface__")
    if out is not None and not (on_device and hasattr(out, "__cuda_array_interface__")):
        raise TypeError("out= with backend 'numba-cuda' takes a device array, and the input must be one too")
    d_x = cuda.as_cuda_array(x) if on_device else cuda.to_device(np.ascontiguousarray(x))
    if not d_x.is_c_contiguous():
        raise ValueError("numba-cuda needs a C-contiguous device array (use cupy.ascontiguousarray)")
    images = d_x.reshape(layout.num_images, layout.height, layout.width, layout.channels)
    if out is None:
        d_out = cuda.device_array((layout.num_images, layout.height, layout.width), np.float32)
    else:
        d_out = cuda.as_cuda_array(out)
        if d_out.dtype != np.float32 or tuple(d_out.shape) != layout.out_shape or not d_out.is_c_contiguous():
            raise ValueError(f"out must be a C-contiguous float32 device array of shape {layout.out_shape}")
        d_out = d_out.reshape(layout.num_images, layout.height, layout.width)
    d_bad = cuda.to_device(np.zeros(layout.num_images, np.uint8))
    grid = (-(-layout.width // TILE), -(-layout.height // TILE), min(layout.num_images, MAX_GRID_Z))
    keep = np.float32(block_operator(cutoff, output).keep)
    _highpass_tiles[grid, THREADS](images, d_out, _device_ops(cutoff, output), keep,
                                   np.dtype(d_x.dtype) == np.float32, d_bad)
    raise_if_not_finite(d_bad.copy_to_host())
    d_out = d_out.reshape(layout.out_shape)
    if not on_device:
        return d_out.copy_to_host()
    if out is not None:
        return out
    if type(x).__module__.startswith("cupy"):
        import cupy

        return cupy.asarray(d_out)
    return d_out
