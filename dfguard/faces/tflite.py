"""A minimal reader for TensorFlow Lite flatbuffers: the constant tensors of a model, by name.

Only what loading BlazeFace needs (schema fields: Model.subgraphs/buffers, SubGraph.tensors, Tensor.shape/type/
buffer/name, Buffer.data), written against ``tensorflow/lite/schema/schema.fbs`` with the ``flatbuffers`` runtime
that ships with mediapipe, so no TensorFlow is needed.
"""

from __future__ import annotations

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


def read_constant_tensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of the first subgraph that has data in the file, by name, as float32 where it is float.

    Raises:
        ValueError: the file is not a TFLite flatbuffer (bad identifier) or holds an unknown tensor type.
    """
    data = bytearray(Path(path).read_bytes())
    if data[4:8] != b"TFL3":
        raise ValueError(f"{path} is not a TensorFlow Lite model (file identifier {bytes(data[4:8])!r}, "
                         "expected b'TFL3')")
    model = Table(data, flatbuffers.encode.Get(number_types.UOffsetTFlags.packer_type, data, 0))
    buffers = _tables(model, 4)
    (subgraph, *_) = _tables(model, 2)
    tensors: dict[str, np.ndarray] = {}
    for tensor in _tables(subgraph, 0):
        raw = _vector(buffers[_scalar(tensor, 2, number_types.Uint32Flags)], 0, np.uint8)
        if raw.size == 0:
            continue
        type_code = _scalar(tensor, 1, number_types.Int8Flags)
        if type_code not in TENSOR_TYPES:
            raise ValueError(f"{path}: tensor {_string(tensor, 3)!r} has unsupported type code {type_code}")
        values = raw.view(TENSOR_TYPES[type_code]).reshape(tuple(_vector(tensor, 0, np.int32)))
        tensors[_string(tensor, 3)] = values.astype(np.float32) if values.dtype.kind == "f" else values.copy()
    return tensors
