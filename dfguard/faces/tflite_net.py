"""A TFLite graph run as a PyTorch module, operator by operator, with TFLite's own semantics.

For BlazeFace full-range, whose architecture (a feature pyramid with bilinear upsampling and depth-to-space heads)
is read from its file instead of being written out by hand: ``read_graph`` gives the operators and float32
weights, ``TFLiteNet`` runs them on NCHW tensors (4-D activations are NCHW, lower-rank ones keep TFLite's
layout; a reshape from 4-D goes through NHWC, as in the file). Supported: ADD, CONCATENATION, CONV_2D,
DEPTHWISE_CONV_2D, DEPTH_TO_SPACE, MAX_POOL_2D, PAD, RELU, RESHAPE, RESIZE_BILINEAR; anything else is refused
when the module is built. The forward pass is a fixed sequence of tensor operations, so it exports to ONNX.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import tflite
from .tflite import Graph, Operator

SAME = 0
NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1, -1: 1}
ACTIVATIONS = {0: lambda x: x, 1: F.relu, 3: lambda x: F.relu6(x)}
SUPPORTED = {tflite.ADD, tflite.CONCATENATION, tflite.CONV_2D, tflite.DEPTHWISE_CONV_2D, tflite.DEPTH_TO_SPACE,
             tflite.MAX_POOL_2D, tflite.PAD, tflite.RELU, tflite.RESHAPE, tflite.RESIZE_BILINEAR}


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's SAME padding of one spatial dimension: (before, after), the odd pixel after."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class TFLiteNet(nn.Module):
    """``forward(x)`` with ``x`` the graph's input as NCHW float32 → the graph's outputs, in the file's order."""

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        unsupported = sorted({op.code for op in graph.operators} - SUPPORTED)
        if unsupported:
            raise ValueError(f"the TFLite graph uses operators this module does not run: builtin codes {unsupported}")
        self.graph = graph
        self.steps = []
        for k, op in enumerate(graph.operators):
            self.steps.append(self._prepare(k, op))

    def _buffer(self, name: str, value: torch.Tensor) -> str:
        self.register_buffer(name, value.contiguous(), persistent=True)
        return name

    def _constant(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.graph.constants[index].copy())

    def _prepare(self, k: int, op: Operator) -> dict:
        """What one operator needs at run time: its weights as buffers and its static parameters."""
        step: dict = {"op": op}
        if op.code in (tflite.CONV_2D, tflite.DEPTHWISE_CONV_2D):
            weight = self._constant(op.inputs[1])  # CONV: OHWI; DEPTHWISE: 1, H, W, C·multiplier
            weight = weight.permute(0, 3, 1, 2) if op.code == tflite.CONV_2D else weight.permute(3, 0, 1, 2)
            step["weight"] = self._buffer(f"weight_{k}", weight)
            has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
            step["bias"] = self._buffer(f"bias_{k}", self._constant(op.inputs[2])) if has_bias else None
            step["padding"] = self._padding(op, weight.shape[2], weight.shape[3])
            step["groups"] = 1 if op.code == tflite.CONV_2D else self.graph.shapes[op.inputs[0]][3]
        elif op.code == tflite.MAX_POOL_2D:
            step["padding"] = self._padding(op, op.options["filter_h"], op.options["filter_w"])
        elif op.code == tflite.PAD:
            pads = self.graph.constants[op.inputs[1]].tolist()  # [[N], [H], [W], [C]] (before, after)
            step["pads"] = (*pads[2], *pads[1], *pads[3])  # F.pad: W, then H, then C
        elif op.code == tflite.RESIZE_BILINEAR:
            if op.options["align_corners"] or not op.options["half_pixel_centers"]:
                raise ValueError("RESIZE_BILINEAR is supported with half_pixel_centers only")
            step["size"] = tuple(int(v) for v in self.graph.constants[op.inputs[1]])
        elif op.code == tflite.RESHAPE:
            step["shape"] = tuple(int(v) for v in self.graph.shapes[op.outputs[0]][1:])
        return step

    def _padding(self, op: Operator, kernel_h: int, kernel_w: int) -> tuple[int, int, int, int]:
        """(left, right, top, bottom) for SAME, zeros for VALID, from the input's static NHWC shape."""
        if op.options["padding"] != SAME:
            return 0, 0, 0, 0
        _, height, width, _ = self.graph.shapes[op.inputs[0]]
        top, bottom = same_padding(height, kernel_h, op.options["stride_h"], op.options.get("dilation_h", 1))
        left, right = same_padding(width, kernel_w, op.options["stride_w"], op.options.get("dilation_w", 1))
        return left, right, top, bottom

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Run every operator in order; ``x`` is the graph's (only) input in NCHW."""
        values = {self.graph.inputs[0]: x}
        for step in self.steps:
            op = step["op"]
            values[op.outputs[0]] = self._run(step, op, [values.get(i) for i in op.inputs])
        return tuple(values[o] for o in self.graph.outputs)

    def _run(self, step: dict, op: Operator, inputs: list[torch.Tensor | None]) -> torch.Tensor:
        x = inputs[0]
        activation = ACTIVATIONS[op.options.get("activation", 0)]
        if op.code in (tflite.CONV_2D, tflite.DEPTHWISE_CONV_2D):
            x = F.pad(x, step["padding"]) if any(step["padding"]) else x
            bias = getattr(self, step["bias"]) if step["bias"] else None
            return activation(F.conv2d(x, getattr(self, step["weight"]), bias,
                                       (op.options["stride_h"], op.options["stride_w"]), 0,
                                       (op.options["dilation_h"], op.options["dilation_w"]), step["groups"]))
        if op.code == tflite.ADD:
            return activation(x + inputs[1])
        if op.code == tflite.CONCATENATION:
            axis = op.options["axis"]
            return activation(torch.cat(inputs, dim=NHWC_TO_NCHW_AXIS[axis] if x.dim() == 4 else axis))
        if op.code == tflite.RELU:
            return F.relu(x)
        if op.code == tflite.PAD:
            return F.pad(x, step["pads"])
        if op.code == tflite.MAX_POOL_2D:
            x = F.pad(x, step["padding"], value=float("-inf")) if any(step["padding"]) else x
            kernel, stride = (op.options["filter_h"], op.options["filter_w"]), (op.options["stride_h"],
                                                                                   op.options["stride_w"])
            return activation(F.max_pool2d(x, kernel, stride))
        if op.code == tflite.RESIZE_BILINEAR:
            return F.interpolate(x, size=step["size"], mode="bilinear", align_corners=False)
        if op.code == tflite.DEPTH_TO_SPACE:
            block = op.options["block_size"]
            n, channels, height, width = x.shape
            # TFLite's order: output[h·b + i, w·b + j, c] = input[h, w, (i·b + j)·C + c]
            x = x.reshape(n, block, block, channels // block**2, height, width)
            return x.permute(0, 3, 4, 1, 5, 2).reshape(n, channels // block**2, height * block, width * block)
        if op.code == tflite.RESHAPE:
            x = x.permute(0, 2, 3, 1) if x.dim() == 4 else x
            return x.reshape(x.shape[0], *step["shape"])
        raise AssertionError(f"operator {op.code} was accepted but has no implementation")


def load_tflite_net(path: Path) -> TFLiteNet:
    """The model in a TFLite file as a ``TFLiteNet`` in eval mode."""
    return TFLiteNet(tflite.read_graph(path)).eval()
