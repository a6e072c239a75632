"""Blockwise 8×8 DCT kernels: a NumPy reference, Numba CPU, Numba CUDA and a CuPy RawKernel.

The contract (docs/architecture.md, "Kernel contract"): ``dct_highpass(x, *, cutoff=4, output="spatial",
backend="auto")`` and ``freq_vector(x)``.
"""

from .highpass import (
    BACKENDS,
    FREQ_VECTOR_SIZE,
    GPU_BACKENDS,
    array_module,
    available_backends,
    dct_highpass,
    freq_vector,
)
from .layout import LUMA_WEIGHTS
from .operators import BLOCK, block_operator, dct_matrix, low_frequency_mask

__all__ = [
    "BACKENDS",
    "BLOCK",
    "FREQ_VECTOR_SIZE",
    "GPU_BACKENDS",
    "LUMA_WEIGHTS",
    "array_module",
    "available_backends",
    "block_operator",
    "dct_highpass",
    "dct_matrix",
    "freq_vector",
    "low_frequency_mask",
]
