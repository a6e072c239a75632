"""Numba CPU backend: one fused pass per strip of 8 image rows, parallel over images and strips.

Each parallel job reads one 8-row strip of one image as float32 luma (conversion, edge replication and the
NaN/inf check happen during the load, in Numba), then applies the block operator of ``operators`` to each 8×8
block of the strip entirely in SIMD registers and stores the result straight into the output. Scratch is one
strip (8 × W floats, in L1) per job, two for strips cut by the image edge; never a full-size intermediate.

The block step is LLVM vector IR emitted through a Numba ``intrinsic`` (``_apply_block_operator``), because
Numba cannot express what makes it fast: a block row is one 8-lane vector, so ``left·X`` is eight
multiply-adds per row, and ``(left·X)·right`` becomes the same form after an 8×8 transpose done with 24
register shuffles (``X·R = (Rᵀ·Xᵀ)ᵀ``). Written as Numba loops, the two transposes ran scalar and cost more than
both products; keeping the whole block in registers also removes four strip-sized round trips through L1.
Persymmetric operators (the spatial projectors) are multiplied in halves on sums and differences of mirrored
rows, the even/odd split of fast DCTs (``_persymmetric_lanes``). Measured with ``python -m benchmarks.kernels``
(benchmarks/RESULTS.md): 25–31 % of the copy bandwidth at batch 256 before, 50–65 % after. LLVM lowers the
8-lane vectors to AVX2 + FMA here and splits them for narrower SIMD (SSE, NEON); without FMA each multiply-add
is a multiply and an add.

The intrinsic lives in this module on purpose: Numba's on-disk cache is invalidated by changes to the source
file of the cached function only (size and time), so the IR it inlines must sit in the same file. Constants
imported from elsewhere and frozen into the compiled code (``BLOCK``, the luma weights) have the same caveat:
after changing them, clear ``kernels/__pycache__/*.nbi``/``*.nbc``.
"""

from __future__ import annotations

from functools import cache

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.base import BaseContext
from numba.extending import intrinsic

from .layout import LUMA_WEIGHTS, Layout, output_array, raise_if_not_finite
from .operators import BLOCK, block_operator

_R, _G, _B = (np.float32(w) for w in LUMA_WEIGHTS)
# No "nnan"/"ninf": the finiteness check must survive optimisation.
_FASTMATH = {"contract", "reassoc", "nsz", "arcp"}

_F32 = ir.FloatType()
_I32 = ir.IntType(32)
_VECTOR = ir.VectorType(_F32, BLOCK)  # one block row
_ArrayStruct = cgutils.Structure  # what ``context.make_array(array_type)(context, builder, value)`` returns


class _VectorBuilder:
    """The few 8-lane float32 operations the block operator needs, emitted with an llvmlite builder."""

    def __init__(self, context: BaseContext, builder: ir.IRBuilder):
        self.context, self.builder = context, builder
        # fmuladd, not fma: a fused multiply-add where the CPU has one, a multiply and an add where it does not
        # (llvm.fma would become a libm call per lane there).
        self._fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VECTOR, [_VECTOR] * 3),
                                                   "llvm.fmuladd.v8f32")
        self._floor = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_F32, [_F32]),
                                                     "llvm.floor.f32")

    def load(self, array_type: types.Array, array: _ArrayStruct, *indices: int | ir.Value) -> ir.Value:
        """The 8 floats of ``array[indices]`` onwards along the last axis."""
        return self.builder.load(self._vector_pointer(array_type, array, indices), align=4)

    def store(self, value: ir.Value, array_type: types.Array, array: _ArrayStruct, *indices: int | ir.Value) -> None:
        """Write 8 floats to ``array[indices]`` onwards along the last axis."""
        self.builder.store(value, self._vector_pointer(array_type, array, indices), align=4)

    def _vector_pointer(self, array_type: types.Array, array: _ArrayStruct, indices: tuple) -> ir.Value:
        index = [self.context.get_constant(types.intp, i) if isinstance(i, int) else i for i in indices]
        pointer = cgutils.get_item_pointer(self.context, self.builder, array_type, array, index)
        return self.builder.bitcast(pointer, _VECTOR.as_pointer())

    def splat(self, scalar: ir.Value) -> ir.Value:
        """A vector with ``scalar`` in every lane."""
        lane0 = self.builder.insert_element(ir.Constant(_VECTOR, ir.Undefined), scalar, ir.Constant(_I32, 0))
        return self.shuffle(lane0, lane0, [0] * BLOCK)

    def shuffle(self, a: ir.Value, b: ir.Value, lanes: list[int]) -> ir.Value:
        """Pick ``lanes`` from the 16 lanes of ``a`` followed by ``b``."""
        mask = ir.Constant(ir.VectorType(_I32, BLOCK), [ir.Constant(_I32, lane) for lane in lanes])
        return self.builder.shuffle_vector(a, b, mask)

    def fma(self, a: ir.Value, b: ir.Value, c: ir.Value) -> ir.Value:
        """``a·b + c`` lane by lane (fused where the CPU can)."""
        return self.builder.call(self._fma, [a, b, c])

    def rounded_mean(self, rows: list[ir.Value]) -> ir.Value:
        """``floor(mean + 0.5)`` of all lanes of all ``rows`` (a scalar)."""
        # Scaling by 1/64 (a power of two: exact) before summing keeps huge finite inputs from overflowing.
        share = self.splat(ir.Constant(_F32, 1 / (BLOCK * len(rows))))
        mean = self.builder.fmul(rows[0], share)
        for row in rows[1:]:
            mean = self.fma(row, share, mean)
        for distance in (4, 2, 1):  # fold the lanes in halves
            mean = self.builder.fadd(mean, self.shuffle(mean, mean, [(i + distance) % BLOCK for i in range(BLOCK)]))
        lane0 = self.builder.extract_element(mean, ir.Constant(_I32, 0))
        return self.builder.call(self._floor, [self.builder.fadd(lane0, ir.Constant(_F32, 0.5))])

    def transpose(self, rows: list[ir.Value]) -> list[ir.Value]:
        """The 8×8 transpose of ``rows``: interleave pairs of rows, then pairs of pairs, then 128-bit halves."""
        pairs = [self.shuffle(rows[i], rows[i + 1], lanes) for i in range(0, BLOCK, 2)
                 for lanes in ([0, 8, 1, 9, 4, 12, 5, 13], [2, 10, 3, 11, 6, 14, 7, 15])]
        even, odd = [0, 1, 8, 9, 4, 5, 12, 13], [2, 3, 10, 11, 6, 7, 14, 15]
        quads = [[self.shuffle(low01, low23, even), self.shuffle(low01, low23, odd),
                  self.shuffle(high01, high23, even), self.shuffle(high01, high23, odd)]
                 for low01, high01, low23, high23 in (pairs[0:4], pairs[4:8])]
        first, second = [0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]
        return ([self.shuffle(top, bottom, first) for top, bottom in zip(*quads, strict=True)]
                + [self.shuffle(top, bottom, second) for top, bottom in zip(*quads, strict=True)])

    def product(self, matrix_type: types.Array, matrix: _ArrayStruct, rows: list[ir.Value]) -> list[ir.Value]:
        """Rows of ``M·X`` for ``X`` given by its ``rows``; ``matrix`` is ``M`` as ``_lanes`` (``[8, 8, 8]``) or
        ``_persymmetric_lanes`` (``[2, 4, 4, 8]``: sums and differences of mirrored rows) prepared it."""
        if matrix_type.ndim == 3:
            return [self._dot(matrix_type, matrix, (i,), rows) for i in range(BLOCK)]
        half = BLOCK // 2
        sums = [self.builder.fadd(rows[j], rows[BLOCK - 1 - j]) for j in range(half)]
        differences = [self.builder.fsub(rows[j], rows[BLOCK - 1 - j]) for j in range(half)]
        even = [self._dot(matrix_type, matrix, (0, i), sums) for i in range(half)]
        odd = [self._dot(matrix_type, matrix, (1, i), differences) for i in range(half)]
        top = [self.builder.fadd(e, o) for e, o in zip(even, odd, strict=True)]
        bottom = [self.builder.fsub(e, o) for e, o in zip(even, odd, strict=True)]
        return top + bottom[::-1]

    def _dot(self, matrix_type: types.Array, matrix: _ArrayStruct, row: tuple[int, ...],
             vectors: list[ir.Value]) -> ir.Value:
        """``Σₖ matrix[row + (k,)] · vectors[k]``, each coefficient read as a vector of 8 equal lanes."""
        total = self.builder.fmul(self.load(matrix_type, matrix, *row, 0, 0), vectors[0])
        for k in range(1, len(vectors)):
            total = self.fma(self.load(matrix_type, matrix, *row, k, 0), vectors[k], total)
        return total


@intrinsic
def _apply_block_operator(typingctx, src, dst, column, left, right_t, weight, offset, keep):
    """``dst[:8, column:column+8] = keep·(X−c) + weight⊙(left·(X−c)·right) + c·offset`` for the block
    ``X = src[:8, column:column+8]``, ``c`` its rounded mean (``operators`` explains the centring).

    ``left`` and ``right_t`` (= ``rightᵀ``) come prepared by ``_lanes`` or ``_persymmetric_lanes``.
    """
    arrays = (src, dst, left, right_t, weight, offset)
    if not all(isinstance(a, types.Array) and a.dtype == types.float32 and a.layout == "C" for a in arrays):
        return None  # the vector loads need float32 rows that are contiguous in memory
    if keep != types.float32 or not isinstance(column, types.Integer):
        return None
    sig = types.void(src, dst, column, left, right_t, weight, offset, keep)

    def codegen(context, builder, signature, args):
        src_ty, dst_ty, _, left_ty, right_t_ty, weight_ty, offset_ty, _ = signature.args
        src_a, dst_a, left_a, right_a, weight_a, offset_a = (
            context.make_array(signature.args[i])(context, builder, args[i]) for i in (0, 1, 3, 4, 5, 6))
        column, keep_value = args[2], args[7]
        v = _VectorBuilder(context, builder)
        rows = [v.load(src_ty, src_a, r, column) for r in range(BLOCK)]
        centre = v.splat(v.rounded_mean(rows))
        rows = [builder.fsub(row, centre) for row in rows]
        low = v.transpose(v.product(right_t_ty, right_a, v.transpose(v.product(left_ty, left_a, rows))))
        keep_lanes = v.splat(keep_value)
        for r in range(BLOCK):
            result = v.fma(v.load(weight_ty, weight_a, r, 0), low[r], builder.fmul(keep_lanes, rows[r]))
            v.store(v.fma(centre, v.load(offset_ty, offset_a, r, 0), result), dst_ty, dst_a, r, column)
        return context.get_dummy_value()

    return sig, codegen


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


@numba.njit(parallel=True, cache=True, fastmath=_FASTMATH)
def _highpass_strips(x, out, left, right_t, weight, offset, keep, check_finite, bad):
    """Apply the block operator to every strip of every image: ``x`` is ``[N, H, W, C]``, ``out`` ``[N, H, W]``."""
    n_images, height, width = out.shape
    strips = -(-height // BLOCK)
    padded_width = -(-width // BLOCK) * BLOCK
    for job in numba.prange(n_images * strips):
        n = job // strips
        y0 = (job % strips) * BLOCK
        strip = np.empty((BLOCK, padded_width), np.float32)
        _load_strip(x, n, y0, height, width, strip, check_finite, bad)
        # Whole blocks are stored straight into the output; blocks cut by the image edge go through scratch.
        whole_width = width - width % BLOCK if y0 + BLOCK <= height else 0
        rows = out[n, y0:y0 + BLOCK]
        for b0 in range(0, whole_width, BLOCK):
            _apply_block_operator(strip, rows, b0, left, right_t, weight, offset, keep)
        if whole_width < width:
            edge = np.empty((BLOCK, padded_width), np.float32)
            for b0 in range(whole_width, padded_width, BLOCK):
                _apply_block_operator(strip, edge, b0, left, right_t, weight, offset, keep)
            for i in range(min(BLOCK, height - y0)):
                for c in range(whole_width, width):
                    out[n, y0 + i, c] = edge[i, c]


def _lanes(matrix: np.ndarray) -> np.ndarray:
    """``[8, 8, 8]``: each entry of an 8×8 ``matrix`` repeated over 8 lanes, so a multiply-add reads it as a vector."""
    return np.ascontiguousarray(np.repeat(matrix[..., None], BLOCK, axis=-1), dtype=np.float32)


def _persymmetric_lanes(matrix: np.ndarray) -> np.ndarray:
    """``[2, 4, 4, 8]``: a persymmetric 8×8 ``matrix`` (``M[7-i, 7-j] = M[i, j]``) as the two 4×4 matrices that
    act on ``x_j + x_{7-j}`` and on ``x_j - x_{7-j}``; rows ``i`` and ``7-i`` of ``M·x`` are their sum and
    difference. Half the multiply-adds of the full product (the even/odd split of fast DCTs)."""
    half = BLOCK // 2
    columns = matrix[:half, :half].astype(np.float64)
    mirrored = matrix[:half, ::-1][:, :half].astype(np.float64)  # column 7-j
    return _lanes(np.stack([(columns + mirrored) / 2, (columns - mirrored) / 2]))


def _is_persymmetric(matrix: np.ndarray) -> bool:
    """True when ``matrix[7-i, 7-j] == matrix[i, j]`` up to float32 rounding (the spatial projector is)."""
    return bool(np.allclose(matrix, matrix[::-1, ::-1], rtol=0, atol=1e-6))


@cache
def _operator_arrays(cutoff: int, output: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.float32]:
    """The block operator as the kernel takes it: ``left`` and ``rightᵀ`` prepared for vector products
    (persymmetric ones in halves), ``weight``, ``offset`` and ``keep``."""
    op = block_operator(cutoff, output)
    prepare = lambda m: _persymmetric_lanes(m) if _is_persymmetric(m) else _lanes(m)  # noqa: E731
    return prepare(op.left), prepare(op.right.T), op.weight, op.offset, np.float32(op.keep)


def highpass(x: np.ndarray, layout: Layout, cutoff: int, output: str, out: np.ndarray | None = None) -> np.ndarray:
    """Blockwise DCT high-pass of ``x`` per the kernel contract (float32 ``[..., H, W]``), into ``out`` if given."""
    images = x.reshape(layout.num_images, layout.height, layout.width, layout.channels)
    result = output_array(out, layout)
    bad = np.zeros(layout.num_images, np.uint8)
    _highpass_strips(images, result.reshape(-1, layout.height, layout.width), *_operator_arrays(cutoff, output),
                     x.dtype == np.float32, bad)
    raise_if_not_finite(bad)
    return result
