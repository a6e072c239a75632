"""The 8×8 DCT matrix and the per-block linear operators every backend applies.

All backends except the NumPy reference compute one formula per 8×8 block ``X``::

    out = keep * X + weight ⊙ (left · X · right)

and they compute it on the block minus a constant ``c`` (its rounded mean), adding the constant's share back
exactly: ``out = keep·(X−c) + weight⊙(left·(X−c)·right) + c·offset`` with ``offset = keep + weight⊙(left·1·right)``
(``1`` the all-ones block). The products then see values around 0 instead of 0..255, which keeps float32
within 1e-4 of the exact result on 8-bit images; for the spatial high-pass ``offset`` is 0.

* ``output="spatial"``: ``left = right = A``, the projector onto the kept low frequencies
  (``A = Cᵀ·D·C`` with ``C`` the orthonormal DCT-II matrix and ``D = diag(u < cutoff)``), ``keep = 1`` and
  ``weight = -1``, so ``out = X − A·X·A``: the block minus its low-pass part, i.e. the high-pass residual.
* ``output="coefficients"``: ``left = C``, ``right = Cᵀ`` (the forward DCT), ``keep = 0`` and ``weight`` the
  0/1 mask that zeroes the ``cutoff × cutoff`` low-frequency corner.

Two 8×8 matrix products per block, whatever the cutoff.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

BLOCK = 8
OUTPUTS = ("spatial", "coefficients")


def dct_matrix(n: int = BLOCK) -> np.ndarray:
    """Return the orthonormal DCT-II matrix ``C`` (float64, ``[n, n]``).

    ``C @ v`` equals ``scipy.fft.dct(v, norm="ortho")`` and ``C @ X @ C.T`` equals
    ``scipy.fft.dctn(X, norm="ortho")`` for an ``n × n`` block ``X``.
    """
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    c = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    c[0] /= np.sqrt(2.0)
    return c


def low_frequency_mask(cutoff: int) -> np.ndarray:
    """Return the ``[8, 8]`` boolean mask of the coefficients zeroed by ``cutoff`` (``u < cutoff and v < cutoff``)."""
    kept = np.arange(BLOCK) < cutoff
    return kept[:, None] & kept[None, :]


@dataclass(frozen=True)
class BlockOperator:
    """``out = keep * X + weight ⊙ (left · X · right)`` for each 8×8 block ``X`` (float32 matrices).

    ``offset = keep + weight ⊙ (left · 1 · right)`` is the output for an all-ones block (see the module docstring).
    """

    left: np.ndarray
    right: np.ndarray
    weight: np.ndarray
    offset: np.ndarray
    keep: float

    def packed(self) -> np.ndarray:
        """``[left, right, weight, offset]`` as one contiguous float32 ``[4, 8, 8]`` array (what GPU kernels take)."""
        return np.ascontiguousarray(np.stack([self.left, self.right, self.weight, self.offset]), dtype=np.float32)


@cache
def block_operator(cutoff: int, output: str) -> BlockOperator:
    """Build the per-block operator for ``cutoff`` and ``output`` (see the module docstring)."""
    c = dct_matrix()
    if output == "spatial":
        projector = c.T @ np.diag((np.arange(BLOCK) < cutoff).astype(np.float64)) @ c
        left = right = projector
        weight = -np.ones((BLOCK, BLOCK))
        keep = 1.0
    elif output == "coefficients":
        left, right = c, c.T
        weight = (~low_frequency_mask(cutoff)).astype(np.float64)
        keep = 0.0
    else:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    offset = keep + weight * (left @ np.ones((BLOCK, BLOCK)) @ right)
    as32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    return BlockOperator(as32(left), as32(right), as32(weight), as32(offset), keep)
