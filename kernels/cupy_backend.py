"""CuPy backend: the CUDA kernels of ``dct8x8.cu``, compiled once per process (and cached on disk by CuPy).

Takes CuPy arrays, NumPy arrays (copied to the GPU and back) and any GPU array with ``__dlpack__`` (for
example a torch CUDA tensor or a Triton Python-backend tensor); GPU inputs are read without a copy and the
result is a CuPy array (``torch.from_dlpack`` or ``pb_utils.Tensor.from_dlpack`` take it without a copy).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from .layout import Layout, output_array, raise_if_not_finite
from .operators import BLOCK, block_operator

SOURCE = Path(__file__).with_name("dct8x8.cu")
TILE = 64
MAX_GRID_Z = 65535
KERNEL_NAMES = {
    (np.dtype(np.uint8), False): "dct8x8_highpass_u8_gray",
    (np.dtype(np.uint8), True): "dct8x8_highpass_u8_rgb",
    (np.dtype(np.float32), False): "dct8x8_highpass_f32_gray",
    (np.dtype(np.float32), True): "dct8x8_highpass_f32_rgb",
}


def is_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # ImportError, or CUDARuntimeError without a driver/GPU
        return False


@cache
def _module() -> Any:
    """Compile ``dct8x8.cu`` once; later calls (and processes, via CuPy's cache) reuse the binary."""
    import cupy

    return cupy.RawModule(code=SOURCE.read_text(), options=("-std=c++14",))


@cache
def _device_ops(cutoff: int, output: str, device_id: int) -> Any:
    """The packed block operator on GPU ``device_id``, uploaded once per (cutoff, output)."""
    import cupy

    return cupy.asarray(block_operator(cutoff, output).packed())


def to_cupy(x: Any) -> Any:
    """View ``x`` as a C-contiguous CuPy array (zero-copy for CuPy/DLPack GPU arrays, a copy for NumPy)."""
    import cupy

    if isinstance(x, cupy.ndarray):
        array = x
    elif isinstance(x, np.ndarray):
        array = cupy.asarray(x)
    elif hasattr(x, "__dlpack__"):
        array = cupy.from_dlpack(x)
    elif hasattr(x, "__cuda_array_interface__"):
        array = cupy.asarray(x)
    else:
        raise TypeError(f"backend 'cupy' takes CuPy, NumPy or DLPack arrays, got {type(x).__name__}")
    return cupy.ascontiguousarray(array)


def highpass(x: Any, layout: Layout, cutoff: int, output: str, out: Any = None) -> Any:
    """Blockwise DCT high-pass of ``x`` (NumPy in → NumPy out, any GPU array in → CuPy out, or into the CuPy
    array ``out``)."""
    import cupy

    array = to_cupy(x)
    kernel = _module().get_function(KERNEL_NAMES[(np.dtype(array.dtype), layout.rgb)])
    if isinstance(x, np.ndarray) and out is not None:
        raise TypeError("out= with backend 'cupy' takes a CuPy array; pass a CuPy input too")
    out = output_array(out, layout, cupy)
    bad = cupy.zeros(layout.num_images, cupy.uint8)
    grid = (-(-layout.width // TILE), -(-layout.height // TILE), min(max(layout.num_images, 1), MAX_GRID_Z))
    ops = _device_ops(cutoff, output, cupy.cuda.runtime.getDevice())
    keep = np.float32(block_operator(cutoff, output).keep)
    kernel(grid, (TILE, BLOCK), (array, out, ops, keep, np.int32(layout.num_images), np.int32(layout.height),
                                 np.int32(layout.width), bad))
    if array.dtype == cupy.float32:
        raise_if_not_finite(cupy.asnumpy(bad))
    return cupy.asnumpy(out) if isinstance(x, np.ndarray) else out
