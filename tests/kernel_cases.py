"""Inputs and an independent SciPy reference shared by the kernel tests and ``benchmarks.gpu_check`` (which runs
the same cases on a GPU machine: NumPy and SciPy only here, no pytest)."""

from __future__ import annotations

import os

import numpy as np
import scipy.fft

CUDA_SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"  # set by conftest.py without a GPU
LUMA = np.array([0.299, 0.587, 0.114])
OUTPUTS = ("spatial", "coefficients")

# name -> (shape, dtype): grayscale and RGB, uint8 and float32, batched, sizes on and off the 8-pixel grid
INPUT_KINDS: dict[str, tuple[tuple[int, ...], str]] = {
    "u8-gray": ((3, 64, 48), "uint8"),
    "f32-gray-odd": ((2, 37, 50), "float32"),
    "f32-unit-range": ((2, 45, 64), "float32-unit"),
    "u8-rgb": ((2, 40, 56, 3), "uint8"),
    "f32-rgb-odd": ((29, 31, 3), "float32"),
    "u8-batched-4d": ((2, 3, 16, 24), "uint8"),
    "u8-single-block": ((8, 8), "uint8"),
}

# small cases for Numba's CUDA simulator, which runs every GPU thread as a Python thread
SIMULATOR_KINDS: dict[str, tuple[tuple[int, ...], str]] = {
    "u8-gray": ((2, 16, 24), "uint8"),
    "f32-rgb-odd": ((13, 21, 3), "float32"),
    "u8-rgb-tall": ((1, 70, 9, 3), "uint8"),
}


def make_input(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Random pixels: uint8 in 0..255; float32 in [0, 255) (8-bit scale, the worst case for float32 error);
    ``float32-unit`` in [0, 1)."""
    if dtype == "uint8":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    scale = 1.0 if dtype == "float32-unit" else 255.0
    return (rng.random(shape) * scale).astype(np.float32)


def scipy_luma(x: np.ndarray) -> np.ndarray:
    """Grayscale float64 images ``[..., H, W]`` (BT.601 for a trailing RGB axis)."""
    x = x.astype(np.float64)
    return x @ LUMA if x.ndim >= 3 and x.shape[-1] == 3 else x


def scipy_highpass(x: np.ndarray, cutoff: int, output: str) -> np.ndarray:
    """The kernel contract computed with ``scipy.fft.dctn``/``idctn`` (float64), independent of dfguard."""
    gray = scipy_luma(x)
    h, w = gray.shape[-2:]
    hp, wp = -(-h // 8) * 8, -(-w // 8) * 8
    pad = [(0, 0)] * (gray.ndim - 2) + [(0, hp - h), (0, wp - w)]
    padded = np.pad(gray, pad, mode="edge")
    blocks = padded.reshape(*padded.shape[:-2], hp // 8, 8, wp // 8, 8).swapaxes(-3, -2)
    coefficients = scipy.fft.dctn(blocks, axes=(-2, -1), norm="ortho")
    coefficients[..., :cutoff, :cutoff] = 0.0
    result = coefficients if output == "coefficients" else scipy.fft.idctn(coefficients, axes=(-2, -1), norm="ortho")
    return result.swapaxes(-3, -2).reshape(padded.shape)[..., :h, :w]


def assert_matches(actual: np.ndarray, expected: np.ndarray) -> None:
    """Max abs error < 1e-4, or 4 float32 steps where a value is too large for float32 to resolve 1e-4.

    DCT coefficients of 8-bit blocks reach 2040, where one float32 step is 1.2e-4: no float32 result, however
    computed, is within 1e-4 of the exact value there. Below 256 four steps are < 1e-4, so 8-bit spatial maps
    and every [0, 1] input are held to 1e-4 absolute."""
    assert actual.dtype == np.float32
    assert actual.shape == expected.shape
    tolerance = np.maximum(1e-4, 1 * np.spacing(np.abs(expected).astype(np.float32)))
    error = np.abs(actual.astype(np.float64) - expected)
    worst = np.unravel_index(np.argmax(error - tolerance), error.shape)
    assert np.all(error < tolerance), (
        f"max abs error {error.max():.3g}; worst at {worst}: {actual[worst]} vs {expected[worst]}")
