"""The public kernel API: ``dct_highpass`` and ``freq_vector``, dispatched over a registry of backends."""

from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np

from .layout import check_options, describe, host_array
from .operators import BLOCK

# name -> module implementing ``highpass(x, layout, cutoff, output)``; fastest first within each device
BACKENDS: dict[str, str] = {
    "numba": "numba_cpu",
    "numpy": "reference",
    "cupy": "cupy_backend",
    "numba-cuda": "numba_cuda",
}
GPU_BACKENDS = ("cupy", "numba-cuda")
FREQ_VECTOR_SIZE = 2 * BLOCK * BLOCK


def _backend_module(name: str) -> ModuleType:
    """Import the module of backend ``name`` (``ValueError`` for unknown names)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {['auto', *BACKENDS]}")
    return importlib.import_module(f".{BACKENDS[name]}", __package__)


@cache
def backend_available(name: str) -> bool:
    """True when backend ``name`` can run here (its packages import and, for GPU backends, a GPU is visible)."""
    try:
        module = _backend_module(name)
    except ImportError:
        return False
    is_available = getattr(module, "is_available", None)
    return True if is_available is None else bool(is_available())


def available_backends() -> list[str]:
    """Names of the backends that can run on this machine, fastest first for each device."""
    return [name for name in BACKENDS if backend_available(name)]


def _is_gpu_array(x: Any) -> bool:
    """True for arrays that live on a GPU (CUDA array interface, or a DLPack device other than the CPU)."""
    if hasattr(x, "__cuda_array_interface__"):
        return True
    if hasattr(x, "__dlpack_device__") and not isinstance(x, np.ndarray):
        return x.__dlpack_device__()[0] != 1  # kDLCPU == 1
    return False


def resolve_backend(backend: str, x: Any) -> str:
    """Turn ``"auto"`` into the fastest available backend for where ``x`` lives; check explicit names."""
    if backend != "auto":
        _backend_module(backend)
        if not backend_available(backend):
            raise RuntimeError(f"backend {backend!r} is not available here (available: {available_backends()})")
        return backend
    wanted = GPU_BACKENDS if _is_gpu_array(x) else tuple(b for b in BACKENDS if b not in GPU_BACKENDS)
    for name in wanted:
        if backend_available(name):
            return name
    raise RuntimeError(f"no backend can take a {type(x).__name__} here (available: {available_backends()})")


def dct_highpass(x: Any, *, cutoff: int = 4, output: str = "spatial", backend: str = "auto", out: Any = None) -> Any:
    """Blockwise 8×8 DCT high-pass of grayscale or RGB images.

    Args:
        x: ``[..., H, W]`` grayscale (uint8 or float32) or ``[..., H, W, 3]`` RGB (converted to BT.601 luma
            0.299/0.587/0.114 first). ``H, W >= 8``; sizes that are not multiples of 8 are padded by edge
            replication, processed and cropped back. NumPy for CPU backends; CuPy/DLPack GPU arrays (or NumPy,
            copied) for GPU backends.
        cutoff: 0..8; per block, the orthonormal DCT-II coefficients with ``u < cutoff and v < cutoff`` are
            zeroed (4 = the top-left quadrant). ``cutoff=0`` keeps everything.
        output: ``"spatial"``: the inverse DCT of each masked block (the high-pass residual);
            ``"coefficients"``: the masked coefficients in place of their block.
        backend: ``"numpy"`` (reference), ``"numba"``, ``"numba-cuda"``, ``"cupy"`` or ``"auto"`` (the fastest
            available for where ``x`` lives).
        out: optional C-contiguous float32 array of the output shape to write into (NumPy for CPU backends,
            a GPU array for GPU backends): saves the allocation, and its page faults, in steady-state serving.

    Returns:
        float32 ``[..., H, W]``: NumPy for NumPy input; for GPU input, the GPU backend's array type.

    Raises:
        TypeError: unsupported dtype or array type. ValueError: bad shape, NaN/inf values, bad options.
    """
    check_options(cutoff, output)
    name = resolve_backend(backend, x)
    if name not in GPU_BACKENDS:
        x = host_array(x)
    elif not hasattr(x, "shape") or not hasattr(x, "dtype"):
        x = _backend_module(name).to_cupy(x) if name == "cupy" else np.asarray(x)
    layout = describe(tuple(x.shape), x.dtype)
    return _backend_module(name).highpass(x, layout, cutoff, output, out)


def freq_vector(x: Any, *, backend: str = "auto") -> Any:
    """CDNet's frequency vector: 128 float32 values per image (``[..., 128]``).

    How the 128 values are formed:
        1. the image is converted to luma like ``dct_highpass`` (BT.601 for RGB) and padded by edge
           replication to multiples of 8;
        2. every 8×8 block gets its orthonormal DCT-II (all 64 coefficients, nothing masked);
        3. each coefficient becomes a log-amplitude ``a = log(1 + |c|)``;
        4. values ``0..63`` are the mean of ``a`` over all blocks for frequency ``(u, v)`` at index ``8·u + v``
           (the "average amplitude of each frequency" of the paper), values ``64..127`` the standard deviation
           of ``a`` over blocks, in the same order.

    Args:
        x: images as for ``dct_highpass``.
        backend: as for ``dct_highpass``; the statistics run where the coefficients are (NumPy or CuPy).
    """
    if not _is_gpu_array(x):
        x = host_array(x)
    elif not type(x).__module__.startswith("cupy"):
        x = _backend_module("cupy").to_cupy(x)
    xp = array_module(x)
    layout = describe(tuple(x.shape), x.dtype)
    pad_h, pad_w = layout.padded_height - layout.height, layout.padded_width - layout.width
    if pad_h or pad_w:
        spatial_axes = [(0, pad_h), (0, pad_w), *([(0, 0)] if layout.rgb else [])]
        x = xp.pad(x, [(0, 0)] * len(layout.lead_shape) + spatial_axes, mode="edge")
    coefficients = dct_highpass(x, cutoff=0, output="coefficients", backend=backend)
    cp = array_module(coefficients)
    hp, wp = coefficients.shape[-2:]
    blocks = coefficients.reshape(-1, hp // BLOCK, BLOCK, wp // BLOCK, BLOCK)
    amplitude = cp.log1p(cp.abs(blocks))
    mean = amplitude.mean(axis=(1, 3)).reshape(-1, BLOCK * BLOCK)
    std = amplitude.std(axis=(1, 3)).reshape(-1, BLOCK * BLOCK)
    vector = cp.concatenate([mean, std], axis=1).astype(cp.float32)
    return vector.reshape(*layout.lead_shape, FREQ_VECTOR_SIZE)


def array_module(a: Any) -> ModuleType:
    """``cupy`` for CuPy arrays, else ``numpy`` (without importing CuPy when it is not already loaded)."""
    module = type(a).__module__
    if module.startswith("cupy"):
        return importlib.import_module("cupy")
    return np
