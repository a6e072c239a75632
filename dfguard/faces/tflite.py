"""A minimal reader for TensorFlow Lite flatbuffers: a model's constant tensors and its operator graph.

Only what loading BlazeFace needs (schema fields: Model.operator_codes/subgraphs/buffers, SubGraph.tensors/
inputs/outputs/operators, Tensor.shape/type/buffer/name/sparsity, Operator.opcode_index/inputs/outputs/
builtin_options, Buffer.data), written against ``tensorflow/lite/schema/schema.fbs`` with the ``flatbuffers``
runtime that ships with mediapipe, so no TensorFlow is needed. Sparse tensors (TFLite's ``SparsityParameters``,
as in BlazeFace full-range) are densified exactly, and the constant ``DENSIFY``/``DEQUANTIZE`` steps that feed
weights into the graph are folded away, so ``read_graph`` returns float32 weights and the compute operators.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import flatbuffers
import numpy as np
from flatbuffers import number_types
from flatbuffers.table import Table

# TensorType enum of schema.fbs -> NumPy dtype (the types BlazeFace's file uses, plus the obvious ones)
TENSOR_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}


def _field(table: Table, index: int) -> int:
    """Offset of field ``index`` in ``table`` (0 when absent)."""
    return table.Offset(4 + 2 * index)


def _tables(table: Table, index: int) -> list[Table]:
    """The vector of tables in field ``index``."""
    offset = _field(table, index)
    if not offset:
        return []
    start = table.Vector(offset)
    return [Table(table.Bytes, table.Indirect(start + 4 * k)) for k in range(table.VectorLen(offset))]


def _vector(table: Table, index: int, dtype: type) -> np.ndarray:
    """The vector of scalars in field ``index`` as a NumPy array (a view into the file's bytes)."""
    offset = _field(table, index)
    if not offset:
        return np.zeros(0, dtype)
    return np.frombuffer(table.Bytes, dtype=dtype, count=table.VectorLen(offset), offset=table.Vector(offset))


def _string(table: Table, index: int) -> str:
    offset = _field(table, index)
    return table.String(offset + table.Pos).decode() if offset else ""


def _scalar(table: Table, index: int, flags: type, default: int = 0) -> int:
    offset = _field(table, index)
    return table.Get(flags, offset + table.Pos) if offset else default


def _table(table: Table, index: int) -> Table | None:
    """The sub-table (or union value) in field ``index``, or None."""
    offset = _field(table, index)
    return Table(table.Bytes, table.Indirect(offset + table.Pos)) if offset else None


# SparseIndexVector union of schema.fbs: Int32Vector, Uint16Vector, Uint8Vector (each a table of ``values``)
INDEX_TYPES = {1: np.int32, 2: np.uint16, 3: np.uint8}
DENSE, SPARSE_CSR = 0, 1


def densify(values: np.ndarray, shape: tuple[int, ...], sparsity: Table, name: str) -> np.ndarray:
    """The dense tensor of a sparse one: walk ``dim_metadata`` in ``traversal_order``, a DENSE dimension
    enumerating all its indices, a SPARSE_CSR one those its segments list for each position of the previous
    level; the last level's positions index ``values`` (TFLite's own format converter, vectorised per level)."""
    order = _vector(sparsity, 0, np.int32)
    if len(_vector(sparsity, 1, np.int32)) or len(order) != len(shape):
        raise ValueError(f"sparse tensor {name!r} uses block sparsity, which this reader does not support")
    positions = np.zeros(1, np.int64)
    coordinates = np.zeros((1, 0), np.int64)
    for level, metadata in enumerate(_tables(sparsity, 2)):
        if _scalar(metadata, 0, number_types.Int8Flags) == DENSE:
            size = _scalar(metadata, 1, number_types.Int32Flags)
            positions = (positions[:, None] * size + np.arange(size)).ravel()
            coordinates = np.concatenate([np.repeat(coordinates, size, axis=0),
                                          np.tile(np.arange(size), len(coordinates))[:, None]], axis=1)
            continue
        segments = _vector(_table(metadata, 3), 0, INDEX_TYPES[_scalar(metadata, 2, number_types.Uint8Flags)])
        indices = _vector(_table(metadata, 5), 0, INDEX_TYPES[_scalar(metadata, 4, number_types.Uint8Flags)])
        starts, ends = segments[positions].astype(np.int64), segments[positions + 1].astype(np.int64)
        counts = ends - starts
        if level != len(shape) - 1 and counts.sum() and indices.max(initial=0) >= shape[order[level]]:
            raise ValueError(f"sparse tensor {name!r}: an index leaves dimension {order[level]}")
        positions = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends, strict=True)]) if counts.sum() \
            else np.zeros(0, np.int64)
        coordinates = np.concatenate([np.repeat(coordinates, counts, axis=0), indices[positions][:, None]], axis=1)
    if len(positions) != len(values):
        raise ValueError(f"sparse tensor {name!r}: {len(values)} values for {len(positions)} positions")
    dense = np.zeros(shape, values.dtype)
    dense[tuple(coordinates[:, np.argsort(order)].T)] = values[positions]
    return dense


# BuiltinOperator codes of schema.fbs that BlazeFace's graphs use
ADD, CONCATENATION, CONV_2D, DEPTHWISE_CONV_2D, DEPTH_TO_SPACE, DEQUANTIZE, MAX_POOL_2D, RELU, RESHAPE = (
    0, 2, 3, 4, 5, 6, 17, 19, 22)
RESIZE_BILINEAR, PAD, DENSIFY = 23, 34, 124
# builtin options read per operator: (field index, flatbuffers type, name)
OPTION_FIELDS = {
    CONV_2D: ((0, number_types.Int8Flags, "padding"), (1, number_types.Int32Flags, "stride_w"),
              (2, number_types.Int32Flags, "stride_h"), (3, number_types.Int8Flags, "activation"),
              (4, number_types.Int32Flags, "dilation_w"), (5, number_types.Int32Flags, "dilation_h")),
    DEPTHWISE_CONV_2D: ((0, number_types.Int8Flags, "padding"), (1, number_types.Int32Flags, "stride_w"),
                        (2, number_types.Int32Flags, "stride_h"), (3, number_types.Int32Flags, "depth_multiplier"),
                        (4, number_types.Int8Flags, "activation"), (5, number_types.Int32Flags, "dilation_w"),
                        (6, number_types.Int32Flags, "dilation_h")),
    ADD: ((0, number_types.Int8Flags, "activation"),),
    CONCATENATION: ((0, number_types.Int32Flags, "axis"), (1, number_types.Int8Flags, "activation")),
    MAX_POOL_2D: ((0, number_types.Int8Flags, "padding"), (1, number_types.Int32Flags, "stride_w"),
                  (2, number_types.Int32Flags, "stride_h"), (3, number_types.Int32Flags, "filter_w"),
                  (4, number_types.Int32Flags, "filter_h"), (5, number_types.Int8Flags, "activation")),
    RESIZE_BILINEAR: ((2, number_types.BoolFlags, "align_corners"), (3, number_types.BoolFlags,
                                                                     "half_pixel_centers")),
    DEPTH_TO_SPACE: ((0, number_types.Int32Flags, "block_size"),),
}
DEFAULT_OPTIONS = {"dilation_w": 1, "dilation_h": 1, "depth_multiplier": 1}


@dataclass(frozen=True)
class Operator:
    """One compute step: its builtin code, input and output tensor indices (-1: an omitted optional input) and
    its options (``padding`` 0 = SAME, 1 = VALID; ``activation`` 0 = none, 1 = ReLU, 3 = ReLU6)."""

    code: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, int | bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Graph:
    """A TFLite subgraph: constants (float32 where float, dense) by tensor index, tensor names and shapes, the
    compute operators in execution order, and the graph's input and output tensors."""

    constants: dict[int, np.ndarray]
    names: list[str]
    shapes: list[tuple[int, ...]]
    operators: list[Operator]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


def _open(path: Path) -> Table:
    data = bytearray(Path(path).read_bytes())
    if data[4:8] != b"TFL3":
        raise ValueError(f"{path} is not a TensorFlow Lite model (file identifier {bytes(data[4:8])!r}, "
                         "expected b'TFL3')")
    return Table(data, flatbuffers.encode.Get(number_types.UOffsetTFlags.packer_type, data, 0))


def _tensor_value(tensor: Table, buffers: list[Table], path: Path) -> np.ndarray | None:
    """A tensor's data (densified if sparse, in its own dtype), or None when the file holds none."""
    raw = _vector(buffers[_scalar(tensor, 2, number_types.Uint32Flags)], 0, np.uint8)
    if raw.size == 0:
        return None
    name, type_code = _string(tensor, 3), _scalar(tensor, 1, number_types.Int8Flags)
    if type_code not in TENSOR_TYPES:
        raise ValueError(f"{path}: tensor {name!r} has unsupported type code {type_code}")
    values, shape = raw.view(TENSOR_TYPES[type_code]), tuple(int(d) for d in _vector(tensor, 0, np.int32))
    sparsity = _table(tensor, 6)
    return densify(values, shape, sparsity, name) if sparsity is not None else values.reshape(shape).copy()


def read_graph(path: Path) -> Graph:
    """The first subgraph of a TFLite model, weights densified and dequantized to float32 (``DENSIFY`` and
    ``DEQUANTIZE`` of constants folded), other operators kept in order.

    Raises:
        ValueError: not a TFLite flatbuffer, an unknown tensor type, block sparsity, or a graph whose weights
        need an operator other than DENSIFY/DEQUANTIZE to be computed.
    """
    model = _open(path)
    codes = [max(_scalar(c, 0, number_types.Int8Flags), _scalar(c, 3, number_types.Int32Flags))
             for c in _tables(model, 1)]
    buffers = _tables(model, 4)
    (subgraph, *_) = _tables(model, 2)
    tensors = _tables(subgraph, 0)
    names = [_string(t, 3) for t in tensors]
    shapes = [tuple(int(d) for d in _vector(t, 0, np.int32)) for t in tensors]
    constants = {k: v for k, t in enumerate(tensors) if (v := _tensor_value(t, buffers, path)) is not None}
    operators = []
    for table in _tables(subgraph, 3):
        code = codes[_scalar(table, 0, number_types.Uint32Flags)]
        inputs = tuple(int(i) for i in _vector(table, 1, np.int32))
        outputs = tuple(int(i) for i in _vector(table, 2, np.int32))
        if code in (DENSIFY, DEQUANTIZE):
            if inputs[0] not in constants:
                raise ValueError(f"{path}: operator {code} applies to a computed tensor {names[inputs[0]]!r}")
            value = constants[inputs[0]]  # DENSIFY: already dense; DEQUANTIZE: float16 → float32 exactly
            constants[outputs[0]] = value.astype(np.float32) if code == DEQUANTIZE else value
            continue
        options, table_options = {}, _table(table, 4)
        for index, flags, name in OPTION_FIELDS.get(code, ()):
            value = _scalar(table_options, index, flags) if table_options is not None else 0
            options[name] = bool(value) if flags is number_types.BoolFlags else (
                value or DEFAULT_OPTIONS.get(name, value))
        operators.append(Operator(code, inputs, outputs, options))
    return Graph({k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in constants.items()}, names,
                 shapes, operators, tuple(int(i) for i in _vector(subgraph, 1, np.int32)),
                 tuple(int(i) for i in _vector(subgraph, 2, np.int32)))


def read_constant_tensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of the first subgraph that has data in the file (densified), by name, as float32 where it is
    float.

    Raises:
        ValueError: the file is not a TFLite flatbuffer (bad identifier) or holds an unknown tensor type.
    """
    model = _open(path)
    buffers = _tables(model, 4)
    (subgraph, *_) = _tables(model, 2)
    tensors: dict[str, np.ndarray] = {}
    for tensor in _tables(subgraph, 0):
        values = _tensor_value(tensor, buffers, path)
        if values is not None:
            tensors[_string(tensor, 3)] = values.astype(np.float32) if values.dtype.kind == "f" else values
    return tensors
